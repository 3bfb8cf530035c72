package e2e

import (
	"strings"
	"syscall"
	"testing"

	"github.com/wsgate/wsgate/test/e2e/harness"
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

// hangServer serves inside:hang, whose /hang?id=X requests sleep inside
// wsgate_e2e_distinctive_sleeper until released.
func hangServer(t *testing.T, extra ...string) *gwServer {
	return gwStartApp(t, "inside:hang", "", append([]string{"--workers", "1"}, extra...)...)
}

// hangRequest starts /hang?id=ident and returns once the app is inside
// its sleeper; the channel gets the response.
func hangRequest(t *testing.T, srv *gwServer, ident string) <-chan gwResponse {
	t.Helper()
	got := make(chan gwResponse, 1)
	go func() { got <- gwTry(t, srv.URL+"/hang?id="+ident) }()
	harness.WaitFile(t, srv.gwRecord(ident+".started"))
	return got
}

// stacksLine checks that a "worker stacks" log line holds the app's frame
// and the request the worker is on.
func stacksLine(t *testing.T, line, uri string) {
	t.Helper()
	for _, want := range []string{"wsgate_e2e_distinctive_sleeper", "inside.py", uri} {
		if !strings.Contains(line, want) {
			t.Errorf("the worker stacks line lacks %q:\n%s", want, line)
		}
	}
}

// SIGUSR1 to the master logs the Python stacks of a worker stuck in the
// application, with the request it is on.
func TestSIGUSR1LogsWorkerStacks(t *testing.T) {
	srv := hangServer(t)
	got := hangRequest(t, srv, "usr1")
	srv.Signal(syscall.SIGUSR1)
	stacksLine(t, srv.WaitLog("msg=\"worker stacks\""), "GET /hang?id=usr1")
	srv.gwRelease(t, "usr1")
	gwOK(t, "the request after the dump", <-got)
}

// A request past --timeout has its stack logged before its worker is
// killed: the stack shows the app's function the request was stuck in.
func TestTimeoutLogsTheStuckRequestsStack(t *testing.T) {
	srv := hangServer(t, "--timeout", "1")
	got := make(chan gwResponse, 1)
	go func() { got <- gwTry(t, srv.URL+"/hang?id=stuck") }()
	line := srv.WaitLog("msg=\"worker stacks\"")
	stacksLine(t, line, "GET /hang?id=stuck")
	if !strings.Contains(line, "request timed out") {
		t.Errorf("the stacks line does not say the request timed out:\n%s", line)
	}
	if r := <-got; r.status != 504 {
		t.Errorf("the stuck request got status %d, want 504", r.status)
	}
	logs := srv.Logs()
	if strings.Index(logs, "worker stacks") > strings.Index(logs, "killing worker") {
		t.Errorf("the worker was killed before its stacks were logged:\n%s", logs)
	}
}
