package gateway

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/component"
)

func TestStatsCountStatesAndRestarts(t *testing.T) {
	seen := make(chan struct{}, 1)
	p, srv := startPool(t, "router", func(c *Config) {
		c.Workers = 2
		c.Logger = slog.New(slog.NewTextHandler(testWriter{t: t, marker: "dying soon", seen: seen}, nil))
	})
	st := p.Stats()
	if st.Workers != 2 || st.Ready != 2 || st.States["ready"] != 2 || st.States["starting"] != 0 || st.Restarts != 0 || st.Busy != 0 || st.Queued != 0 {
		t.Fatalf("after start: %+v", st)
	}
	done := make(chan int, 1)
	go func() {
		code, _, _ := get(t, srv.URL+"/slow-die")
		done <- code
	}()
	<-seen
	if st := p.Stats(); st.Busy != 1 {
		t.Fatalf("with a request in flight: %+v", st)
	}
	if code := <-done; code != http.StatusBadGateway {
		t.Fatalf("the request that killed its worker: %d", code)
	}
	// The replacement is counted once it is spawned; wait for it to be ready
	// (polling Stats is the readiness signal here).
	for st = p.Stats(); st.Ready != 2; st = p.Stats() {
		time.Sleep(5 * time.Millisecond)
	}
	if st.Restarts != 1 || st.States["ready"] != 2 || st.States["draining"] != 0 || st.Busy != 0 {
		t.Fatalf("after a worker died and was replaced: %+v", st)
	}
}

func TestQueueWaitReachesFacts(t *testing.T) {
	seen := make(chan struct{}, 1)
	p, _ := startPool(t, "nap", func(c *Config) {
		c.Pipeline = 1 // the second request must queue, not pipeline
		c.Logger = slog.New(slog.NewTextHandler(testWriter{t: t, marker: "napping 0.3", seen: seen}, nil))
	})
	facts := make(chan *component.Facts, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, f := component.Attach(r)
		NewHandler(p, "").ServeHTTP(w, r)
		facts <- f
	}))
	defer srv.Close()
	first := napping(t, srv.URL, "0.3")
	<-seen
	second := napping(t, srv.URL, "0")
	for p.Stats().Queued != 1 { // the second request is in the queue
		time.Sleep(time.Millisecond)
	}
	for _, ch := range []chan string{first, second} {
		if got := <-ch; !strings.HasPrefix(got, "200 napped") {
			t.Fatalf("got %q", got)
		}
	}
	a, b := <-facts, <-facts
	if !a.Dispatched || !b.Dispatched {
		t.Fatalf("Dispatched not set: %+v %+v", a, b)
	}
	// The first took the idle worker; the second waited for the first to
	// end, so it waited longer than the first.
	if !(b.QueueWait > a.QueueWait) {
		t.Fatalf("queue wait of the queued request %v, of the first %v", b.QueueWait, a.QueueWait)
	}
}
