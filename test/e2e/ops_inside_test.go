package e2e

import (
	"strings"
	"testing"
)

// A worker that grows past --max-worker-memory is replaced once its request
// is done: the leaking application is served by a new worker and no request
// fails on the way.
func TestMaxWorkerMemoryRecyclesALeakingWorker(t *testing.T) {
	srv := gwStartApp(t, "inside:leaky", "", "--workers", "1", "--max-worker-memory", "48m")
	first := ""
	for i := 0; i < 200; i++ {
		r := gwGet(t, srv.URL+"/")
		gwOK(t, "a request to the leaking app", r)
		pid := string(r.body)
		if first == "" {
			first = pid
		}
		if pid != first {
			line := srv.WaitLog("reason=max-worker-memory")
			if !strings.Contains(line, "pid="+first) {
				t.Fatalf("the worker drained for its memory is not the first one (pid %s): %s", first, line)
			}
			return
		}
	}
	t.Fatalf("200 MiB kept, and worker %s still serves with --max-worker-memory 48m\n%s", first, srv.Logs())
}
