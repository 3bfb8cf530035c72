package gateway

import (
	"strings"
	"testing"
	"time"
)

// preloadWaitFor polls cond (a state of the pool, which has no event to
// await from outside) until it holds; the deadline only turns a hang into
// a failure.
func preloadWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(60 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("waited 60s for %s", what)
		}
	}
}

// A preloaded pool goes through the supervisor's paths with forked
// workers: serving, a worker that dies (replaced by a fork of the same
// preloader), a reload (a new preloader, its workers replacing the old
// ones) and the stop. Run under -race, it checks the preloader's
// goroutines against the arbiter's.
func TestPreloadedPoolServesDiesReloadsAndStops(t *testing.T) {
	p, srv := startPool(t, "router", func(c *Config) { c.Workers = 2; c.Preload = true })
	_, _, body := get(t, srv.URL+"/")
	if !strings.HasPrefix(body, "hello from ") {
		t.Fatalf("a preloaded worker answered %q", body)
	}
	before := p.Status()
	if len(before.Live) != 2 {
		t.Fatalf("want 2 live workers: %+v", before)
	}
	// /slow-die kills the worker serving it; the pool forks a replacement.
	if code, _, _ := get(t, srv.URL+"/slow-die"); code != 502 {
		t.Fatalf("/slow-die: status %d, want 502", code)
	}
	preloadWaitFor(t, "the replacement to be ready", func() bool { return p.Stats().Restarts == 1 && p.Ready() == 2 })
	p.Reload()
	preloadWaitFor(t, "the reload to complete", func() bool { return p.Status().Reloads == 1 && p.Ready() == 2 })
	after := p.Status()
	for _, w := range after.Live {
		if w.Generation == before.Live[0].Generation {
			continue // an old one still draining
		}
		if w.PID == before.Live[0].PID || w.PID == before.Live[1].PID {
			t.Errorf("a worker of the new generation has an old pid: %+v", after)
		}
	}
	if _, _, body := get(t, srv.URL+"/"); !strings.HasPrefix(body, "hello from ") {
		t.Fatalf("after the reload: %q", body)
	}
}
