package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
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
	srv.WaitLog(`msg="killing worker"`) // the 504 may reach the client before this line
	logs := srv.Logs()
	if strings.Index(logs, "worker stacks") > strings.Index(logs, `msg="killing worker"`) {
		t.Errorf("the worker was killed before its stacks were logged:\n%s", logs)
	}
}

// wsgateCmd runs a wsgate subcommand to its end and returns its stdout.
func wsgateCmd(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(testutil.Binary(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("wsgate %s: %v\nstderr: %s\nstdout: %s", strings.Join(args, " "), err, stderr.String(), out)
	}
	return string(out)
}

// `wsgate status` shows the request a worker is on, its URI and its age,
// in JSON and in the table; the socket is found from the same arguments
// `serve` was given (--app, from the same directory).
func TestStatusShowsTheRequestInFlight(t *testing.T) {
	ctl := filepath.Join(t.TempDir(), "ctl.sock")
	srv := hangServer(t, "--control-socket", ctl)
	got := hangRequest(t, srv, "st")
	var pools []struct {
		Name       string `json:"name"`
		Generation int    `json:"generation"`
		Live       []struct {
			PID      int    `json:"pid"`
			State    string `json:"state"`
			RSS      int64  `json:"rss_bytes"`
			Requests []struct {
				Method string  `json:"method"`
				URI    string  `json:"uri"`
				Age    float64 `json:"age_seconds"`
			} `json:"requests"`
		} `json:"live_workers"`
	}
	out := wsgateCmd(t, "status", "--json", "--control-socket", ctl)
	if err := json.Unmarshal([]byte(out), &pools); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if len(pools) != 1 || len(pools[0].Live) != 1 {
		t.Fatalf("want one pool with one worker:\n%s", out)
	}
	wk := pools[0].Live[0]
	if wk.State != "ready" || wk.RSS <= 0 || !harness.ProcessAlive(wk.PID) || pools[0].Generation != 1 {
		t.Errorf("worker state, RSS, pid or generation wrong:\n%s", out)
	}
	if len(wk.Requests) != 1 || wk.Requests[0].Method != "GET" || wk.Requests[0].URI != "/hang?id=st" || wk.Requests[0].Age <= 0 {
		t.Errorf("the request in flight is not GET /hang?id=st with an age:\n%s", out)
	}
	table := wsgateCmd(t, "status", "--control-socket", ctl)
	if !strings.Contains(table, "GET /hang?id=st") || !strings.Contains(table, strconv.Itoa(wk.PID)) {
		t.Errorf("the status table lacks the worker or its request:\n%s", table)
	}
	srv.gwRelease(t, "st")
	gwOK(t, "the request after status", <-got)
	out = wsgateCmd(t, "status", "--json", "--control-socket", ctl)
	if err := json.Unmarshal([]byte(out), &pools); err != nil || len(pools[0].Live[0].Requests) != 0 {
		t.Errorf("status still shows a request once it is done (%v):\n%s", err, out)
	}
}

// `wsgate dump` logs the stacks of a stuck worker through the control
// socket, found from the same arguments serve was given.
func TestDumpLogsWorkerStacks(t *testing.T) {
	runtimeDir := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtimeDir) // serve inherits it too
	srv := hangServer(t)
	got := hangRequest(t, srv, "dump")
	sockets, _ := filepath.Glob(filepath.Join(runtimeDir, "wsgate", "app-*.sock"))
	if len(sockets) != 1 {
		t.Errorf("want one default control socket under $XDG_RUNTIME_DIR/wsgate, found %q", sockets)
	}
	out := wsgateCmd(t, "dump", "--app", "inside:hang")
	if !strings.Contains(out, "stacks of 1 workers") {
		t.Errorf("wsgate dump says: %s", out)
	}
	stacksLine(t, srv.WaitLog("msg=\"worker stacks\""), "GET /hang?id=dump")
	srv.gwRelease(t, "dump")
	gwOK(t, "the request after the dump", <-got)
}

// With --log-format json every log line is a JSON object, and what a worker
// writes to its stderr or to wsgi.errors during a request comes with the
// worker's pid and the request's URI.
func TestJSONLogAttributesWorkerOutputToTheRequest(t *testing.T) {
	srv := gwStartApp(t, "inside:chatty", "", "--workers", "1", "--log-format", "json")
	r := gwGet(t, srv.URL+"/talk?x=1")
	gwOK(t, "the chatty request", r)
	pid, err := strconv.Atoi(string(r.body))
	if err != nil {
		t.Fatalf("the app answered %q, not its pid", r.body)
	}
	for _, want := range []struct{ msg, text string }{
		{"worker stderr", "chatty on stderr"},
		{"wsgi.errors", "chatty on wsgi.errors"},
	} {
		line := srv.WaitLog(want.text)
		var rec struct {
			Msg  string `json:"msg"`
			PID  int    `json:"pid"`
			URI  string `json:"uri"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON log line (%v): %s", err, line)
		}
		if rec.Msg != want.msg || rec.PID != pid || rec.URI != "/talk?x=1" || rec.Text != want.text {
			t.Errorf("want msg %q, pid %d, uri /talk?x=1, text %q; got %s", want.msg, pid, want.text, line)
		}
	}
}

// workerPSS is the mean proportional set size (kB) of the workers the
// server's control socket lists, from /proc/PID/smaps_rollup.
func workerPSS(t *testing.T, ctl string) int {
	t.Helper()
	var pools []struct {
		Live []struct {
			PID int `json:"pid"`
		} `json:"live_workers"`
	}
	out := wsgateCmd(t, "status", "--json", "--control-socket", ctl)
	if err := json.Unmarshal([]byte(out), &pools); err != nil || len(pools) != 1 || len(pools[0].Live) == 0 {
		t.Fatalf("status --json (%v):\n%s", err, out)
	}
	total := 0
	for _, w := range pools[0].Live {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", w.PID))
		if err != nil {
			t.Fatal(err)
		}
		var kb int
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Pss:") {
				kb, _ = strconv.Atoi(strings.Fields(line)[1])
			}
		}
		if kb == 0 {
			t.Fatalf("no Pss in /proc/%d/smaps_rollup:\n%s", w.PID, b)
		}
		total += kb
	}
	return total / len(pools[0].Live)
}

// Preloaded workers share the memory the application's import made: each
// costs much less (PSS) than a worker that imported it itself.
func TestPreloadWorkersShareMemory(t *testing.T) {
	pss := map[bool]int{}
	for _, preload := range []bool{false, true} {
		ctl := filepath.Join(t.TempDir(), "ctl.sock")
		args := []string{"--workers", "3", "--control-socket", ctl}
		if preload {
			args = append(args, "--preload")
		}
		srv := gwStartApp(t, "preloaded:versioned", "", args...)
		gwOK(t, "a request", gwGet(t, srv.URL+"/"))
		pss[preload] = workerPSS(t, ctl)
		srv.Stop()
	}
	t.Logf("mean worker PSS: %d kB without preload, %d kB with", pss[false], pss[true])
	if 3*pss[true] > 2*pss[false] {
		t.Errorf("preloaded workers do not share their memory: mean PSS %d kB, %d kB without preload", pss[true], pss[false])
	}
}

// SIGHUP with --preload starts a new preloader that imports the changed
// code: the new workers serve it.
func TestPreloadSIGHUPServesNewCode(t *testing.T) {
	srv := gwStartApp(t, "preloaded:versioned", "", "--workers", "2", "--preload")
	if r := gwGet(t, srv.URL+"/"); !strings.HasPrefix(string(r.body), "1 ") {
		t.Fatalf("before the reload: %q, want version 1", r.body)
	}
	if err := os.WriteFile(srv.gwRecord("version"), []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.Signal(syscall.SIGHUP)
	srv.WaitLog("reload complete")
	if r := gwGet(t, srv.URL+"/"); !strings.HasPrefix(string(r.body), "2 ") {
		t.Fatalf("after SIGHUP: %q, want version 2", r.body)
	}
	if n := strings.Count(srv.Logs(), "msg=\"preloader ready\""); n != 2 {
		t.Errorf("%d preloaders loaded the application, want 2 (one per generation)\n%s", n, srv.Logs())
	}
}

// --reload with --preload: a changed .py file is imported by a new
// preloader, whose workers serve it.
func TestPreloadReloadOnChangeServesNewCode(t *testing.T) {
	dir := t.TempDir()
	mod := filepath.Join(dir, "preload_change.py")
	write := func(version string) {
		src := "def app(environ, start_response):\n" +
			"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
			"    return [b'" + version + "']\n"
		if err := os.WriteFile(mod, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("old")
	srv := gwStartArgs(t, "", "--app", "preload_change:app", "--pythonpath", dir, "--workers", "2", "--preload", "--reload")
	if r := gwGet(t, srv.URL+"/"); string(r.body) != "old" {
		t.Fatalf("before the change: %q", r.body)
	}
	write("new")
	srv.WaitLog("reload complete")
	if r := gwGet(t, srv.URL+"/"); string(r.body) != "new" {
		t.Fatalf("after the change: %q, want new", r.body)
	}
}

// A preloaded worker that dies is replaced by a fork of the same preloader
// (no new import), and an application that cannot load under --preload is
// one error line and exit status 1, as without.
func TestPreloadReplacesADeadWorkerAndReportsLoadErrors(t *testing.T) {
	srv := gwStartApp(t, "preloaded:versioned", "", "--workers", "1", "--preload")
	first := gwGet(t, srv.URL+"/")
	gwOK(t, "the first request", first)
	pid, _ := strconv.Atoi(strings.Fields(string(first.body))[1])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.WaitLog("reason=died")
	var second gwResponse
	harness.WaitFor(t, "a request served by the replacement", func() bool {
		second = gwTry(t, srv.URL+"/")
		return second.status == 200 && !strings.HasSuffix(string(second.body), " "+strconv.Itoa(pid))
	})
	if n := strings.Count(srv.Logs(), "msg=\"preloader started\""); n != 1 {
		t.Errorf("%d preloaders started, want the first one to fork the replacement\n%s", n, srv.Logs())
	}

	res := harness.Run(t, harness.Options{Args: []string{"--app", "badimport:app", "--pythonpath", gwAppsDir(), "--preload", "--workers", "2"}})
	if res.ExitCode != 1 || !strings.Contains(res.Output, "wsgate: error: cannot load the application badimport:app: RuntimeError") {
		t.Errorf("a preloaded application that cannot load: exit %d, want 1 and the error line\n%s", res.ExitCode, res.Output)
	}
}

// The stacks come even from a worker whose only thread holds the GIL in C
// code (a backtracking regular expression): faulthandler's C handler needs
// no GIL, where a Python signal handler would never run.
func TestSIGUSR1LogsStacksWhileTheAppHoldsTheGIL(t *testing.T) {
	srv := gwStartApp(t, "inside:gil", "", "--workers", "1", "--graceful-timeout", "0.5")
	go gwTry(t, srv.URL+"/gil?id=c")
	harness.WaitFile(t, srv.gwRecord("c.started"))
	srv.Signal(syscall.SIGUSR1)
	line := srv.WaitLog("msg=\"worker stacks\"")
	for _, want := range []string{"wsgate_e2e_gil_holder", "GET /gil?id=c"} {
		if !strings.Contains(line, want) {
			t.Errorf("the stacks of a worker holding the GIL lack %q:\n%s", want, line)
		}
	}
}

// Behind a requestid filter, `wsgate status` and the stacks line name the
// request a worker is on by its id; the control socket of a site served
// from a file is found from the file (its default, under XDG_RUNTIME_DIR).
func TestStatusAndStacksNameTheRequestID(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	ini := filepath.Join(gwAppsDir(), "inside.ini")
	srv := gwStartArgs(t, "", ini, "--pythonpath", gwAppsDir(), "--workers", "1")
	got := make(chan gwResponse, 1)
	go func() {
		req, _ := http.NewRequest("GET", srv.URL+"/hang?id=rid", nil)
		req.Header.Set("X-Request-ID", "e2e-rid-7")
		got <- gwDo(t, req)
	}()
	harness.WaitFile(t, srv.gwRecord("rid.started"))
	out := wsgateCmd(t, "status", "--json", ini)
	if !strings.Contains(out, `"request_id": "e2e-rid-7"`) || !strings.Contains(out, `"uri": "/hang?id=rid"`) {
		t.Errorf("status lacks the request and its id:\n%s", out)
	}
	wsgateCmd(t, "dump", ini)
	line := srv.WaitLog("msg=\"worker stacks\"")
	if !strings.Contains(line, "id=e2e-rid-7") || !strings.Contains(line, "wsgate_e2e_distinctive_sleeper") {
		t.Errorf("the stacks line lacks the request id or the app's frame:\n%s", line)
	}
	srv.gwRelease(t, "rid")
	gwOK(t, "the request after status and dump", <-got)
}
