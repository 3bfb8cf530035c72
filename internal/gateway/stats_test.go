package gateway

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
)

func TestStatsCountStatesAndRestarts(t *testing.T) {
	dir := t.TempDir() // before the pool: removed after the server is closed
	p, srv := startPool(t, "routes", func(c *Config) { c.Workers = 2 })
	st := p.Stats()
	if st.Workers != 2 || st.Ready != 2 || st.States["ready"] != 2 || st.States["starting"] != 0 || st.Restarts != 0 || st.Busy != 0 || st.Queued != 0 {
		t.Fatalf("after start: %+v", st)
	}
	dying := filepath.Join(dir, "dying")
	answer := fetch(srv.URL + "/hold-die?" + dying)
	waitFor(t, "the request to reach the app", func() bool { return fileExists(dying + ".started") })
	if st := p.Stats(); st.Busy != 1 {
		t.Fatalf("with a request in flight: %+v", st)
	}
	release(t, dir, "dying")
	if got := <-answer; !strings.HasPrefix(got, "502 ") {
		t.Fatalf("the request that killed its worker: %q", got)
	}
	waitReplaced(t, p, 2)
	if st := p.Stats(); st.Restarts != 1 || st.States["ready"] != 2 || st.States["draining"] != 0 || st.Busy != 0 {
		t.Fatalf("after a worker died and was replaced: %+v", st)
	}
}

func TestQueueWaitReachesFacts(t *testing.T) {
	dir := t.TempDir() // before the pool: removed after the server is closed
	p, _ := startPool(t, "routes", func(c *Config) {
		c.Pipeline = 1 // the second request must queue, not pipeline
	})
	// By path: the handlers may end in either order (the queued request
	// is quick and may be done before the held one has returned).
	facts := map[string]*component.Facts{}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, f := component.Attach(r)
		NewHandler(p, "").ServeHTTP(w, r)
		mu.Lock()
		facts[r.URL.Path] = f
		mu.Unlock()
	}))
	defer srv.Close()
	_, first := held(t, srv.URL, dir, "first")
	second := fetch(srv.URL + "/hello")
	waitFor(t, "the second request to queue", func() bool { return p.Stats().Queued == 1 })
	release(t, dir, "first")
	for _, ch := range []chan string{first, second} {
		if got := <-ch; !strings.HasPrefix(got, "200 ") {
			t.Fatalf("got %q", got)
		}
	}
	srv.Close() // waits for the handlers
	a, b := facts["/hold"], facts["/hello"]
	if a == nil || b == nil {
		t.Fatalf("facts of /hold and /hello not both recorded: %v", facts)
	}
	if !a.Dispatched || !b.Dispatched {
		t.Fatalf("Dispatched not set: %+v %+v", a, b)
	}
	// The first took the idle worker; the second waited for the first to
	// end, so it waited longer than the first.
	if !(b.QueueWait > a.QueueWait) {
		t.Fatalf("queue wait of the queued request %v, of the first %v", b.QueueWait, a.QueueWait)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
