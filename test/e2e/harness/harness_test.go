package harness

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
)

// fakeServe stands in for `wsgate serve` so the harness's own behaviour can be
// checked without the gateway: FAKE_MODE picks how it behaves.
const fakeServe = `
import http.server, os, signal, sys
mode = os.environ.get("FAKE_MODE", "ok")
if mode == "fail":
    print("wsgate: cannot load app: boom", file=sys.stderr, flush=True)
    sys.exit(1)
def term(*_):
    print("fake: terminating", file=sys.stderr, flush=True)
    os._exit(3 if mode == "badexit" else 0)
signal.signal(signal.SIGTERM, term)  # before "ready", as wsgate must
srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
print("some start-up noise", file=sys.stderr, flush=True)
print("wsgate: listening on http://127.0.0.1:%d" % srv.server_address[1], file=sys.stderr, flush=True)
print("wsgate: ready, 1 workers (pid %d)" % os.getpid(), file=sys.stderr, flush=True)
print("args: " + " ".join(sys.argv[1:]), flush=True)
srv.serve_forever()
`

// useFake points testutil.Binary at the fake server for this test.
func useFake(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "fake_serve.py")
	if err := os.WriteFile(script, []byte(fakeServe), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "wsgate")
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s %s \"$@\"\n", testutil.VenvPython(t), script)
	if err := os.WriteFile(bin, []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WSGATE_BIN", bin)
}

// recorder is a testing.TB that records failures instead of failing the real
// test, so the harness's failure paths can be asserted. Fatalf ends the
// goroutine, as testing's does.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	failures []string
	cleanups []func()
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
func (r *recorder) Logf(string, ...any)               {}
func (r *recorder) Cleanup(f func())                  { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.failures) > 0
}

// run calls f with the recorder in its own goroutine (Fatalf may end it),
// then runs the registered cleanups, last first.
func (r *recorder) run(f func(tb testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.failures, "\n")
}

func TestStartServesAndStops(t *testing.T) {
	useFake(t)
	rec := &recorder{TB: t}
	rec.run(func(tb testing.TB) {
		s := Start(tb, Options{Args: []string{"--app", "x:y"}})
		if !strings.HasPrefix(s.URL, "http://127.0.0.1:") || len(s.Listeners) != 1 {
			t.Errorf("URL %q listeners %v", s.URL, s.Listeners)
		}
		resp, err := http.Get(s.URL + "/")
		if err != nil {
			t.Fatalf("GET %s: %v", s.URL, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// The harness adds the interpreter and a free port.
		if line := s.WaitLog("args: "); !strings.Contains(line, "--python") || !strings.Contains(line, "--bind 127.0.0.1:0 --app x:y") {
			t.Errorf("arguments given to serve: %q", line)
		}
		s.Stop()
		if !strings.Contains(s.Logs(), "fake: terminating") {
			t.Errorf("Stop did not send SIGTERM: %s", s.Logs())
		}
	})
	if rec.Failed() {
		t.Errorf("a well-behaved server was reported as failing:\n%s", rec.all())
	}
}

func TestStartReportsExitBeforeReady(t *testing.T) {
	useFake(t)
	rec := &recorder{TB: t}
	rec.run(func(tb testing.TB) {
		Start(tb, Options{Env: []string{"FAKE_MODE=fail"}})
		t.Errorf("Start returned for a server that exited before it was ready")
	})
	if got := rec.all(); !strings.Contains(got, "exited before it was ready") || !strings.Contains(got, "cannot load app: boom") {
		t.Errorf("failure should say the server exited and show its log, got:\n%s", got)
	}
}

func TestStopReportsBadExitStatus(t *testing.T) {
	useFake(t)
	rec := &recorder{TB: t}
	rec.run(func(tb testing.TB) {
		Start(tb, Options{Env: []string{"FAKE_MODE=badexit"}}).Stop()
	})
	if got := rec.all(); !strings.Contains(got, "exit status 3") {
		t.Errorf("Stop should report the exit status 3, got:\n%s", got)
	}
}

func TestCleanupStopsAForgottenServer(t *testing.T) {
	useFake(t)
	rec := &recorder{TB: t}
	var pid int
	rec.run(func(tb testing.TB) { pid = Start(tb, Options{}).PID })
	if rec.Failed() {
		t.Errorf("cleanup of a running server failed:\n%s", rec.all())
	}
	if ProcessAlive(pid) {
		t.Errorf("server %d still running after cleanup", pid)
	}
}

func TestRunReturnsExitAndOutput(t *testing.T) {
	useFake(t)
	res := Run(t, Options{Env: []string{"FAKE_MODE=fail"}})
	if res.ExitCode != 1 || !strings.Contains(res.Output, "cannot load app: boom") {
		t.Errorf("Run: %+v", res)
	}
}
