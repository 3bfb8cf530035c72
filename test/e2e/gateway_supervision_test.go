package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/wsgate/wsgate/test/e2e/harness"
)

// gwBlock starts GET /block?id=ident in the background and returns once the
// app has the request (a worker is now busy with it), with that worker's pid
// and a channel delivering the response once the test releases it. A request
// answered before it reached the app fails the test with that answer.
func (s *gwServer) gwBlock(t *testing.T, ident string) (pid int, done <-chan gwResponse) {
	t.Helper()
	pid, done, early := s.gwTryBlock(t, ident)
	if early != nil {
		t.Fatalf("block %s: answered %d (%v) %.200q before the app had it\n%s", ident, early.status, early.bodyErr, early.body, s.Logs())
	}
	return pid, done
}

// gwTryBlock is gwBlock that hands back an answer which came before the app
// had the request (a 503 from the queue, say) instead of failing.
func (s *gwServer) gwTryBlock(t *testing.T, ident string) (pid int, done <-chan gwResponse, early *gwResponse) {
	t.Helper()
	started := s.gwRecord(ident + ".started")
	if _, err := os.Stat(started); err == nil {
		t.Fatalf("block id %q used twice in one server", ident)
	}
	ch := make(chan gwResponse, 1)
	go func() {
		resp, err := gwClient.Get(s.URL + "/block?id=" + ident)
		if err != nil {
			ch <- gwResponse{status: -1, bodyErr: err}
			return
		}
		defer resp.Body.Close()
		r := gwResponse{status: resp.StatusCode, header: resp.Header, resp: resp}
		r.body, r.bodyErr = gwReadBody(resp)
		ch <- r
	}()
	var got []byte
	harness.WaitFor(t, "file "+started, func() bool {
		if b, err := os.ReadFile(started); err == nil {
			got = b
			return true
		}
		select {
		case r := <-ch:
			early = &r
			return true
		default:
			return false
		}
	})
	if early != nil {
		return 0, nil, early
	}
	pid, err := strconv.Atoi(string(got))
	if err != nil {
		t.Fatalf("block %s: bad pid %q", ident, got)
	}
	return pid, ch, nil
}

// gwFinish waits for a blocked request's response and checks it is a complete
// 200 from the expected worker.
func gwFinish(t *testing.T, what string, pid int, done <-chan gwResponse) {
	t.Helper()
	r := <-done
	if r.status == -1 {
		t.Fatalf("%s: request failed: %v", what, r.bodyErr)
	}
	gwOK(t, what, r)
	if string(r.body) != strconv.Itoa(pid) {
		t.Errorf("%s: answered by %q, want the worker %d that took it", what, r.body, pid)
	}
}

// gwAssertPoolServes proves that n distinct live workers, none of them in
// dead, serve requests: it holds n requests at once (so n workers must be up
// to take them), then lets them finish. It returns the workers' pids.
func (s *gwServer) gwAssertPoolServes(t *testing.T, n int, tag string, dead ...int) []int {
	t.Helper()
	pids := make([]int, n)
	dones := make([]<-chan gwResponse, n)
	idents := make([]string, n)
	for i := range n {
		// Right after a worker died its replacement may still be
		// importing; a request that waits past --timeout in the queue
		// gets 503 (docs/serve.md), so ask again until Deadline.
		for try := 0; ; try++ {
			idents[i] = fmt.Sprintf("%s-pool%d-%d", tag, i, try)
			var early *gwResponse
			pids[i], dones[i], early = s.gwTryBlock(t, idents[i])
			if early == nil {
				break
			}
			if early.status != 503 || try > 30 {
				t.Fatalf("pool request %d: answered %d (%v) %.200q before the app had it\n%s", i, early.status, early.bodyErr, early.body, s.Logs())
			}
		}
	}
	seen := map[int]bool{}
	for _, p := range pids {
		if seen[p] {
			t.Errorf("two held requests on worker %d with --threads 1", p)
		}
		seen[p] = true
		for _, d := range dead {
			if p == d {
				t.Errorf("request served by worker %d, which should be dead", p)
			}
		}
	}
	for i := range n {
		s.gwRelease(t, idents[i])
		gwFinish(t, fmt.Sprintf("pool request %d", i), pids[i], dones[i])
	}
	return pids
}

// TestGatewayWorkerCrash: a worker dying mid-request costs that request a 502;
// a request running on the other worker is unaffected; the dead worker is
// replaced.
func TestGatewayWorkerCrash(t *testing.T) {
	s := gwStart(t, "--workers", "2", "--threads", "1")
	for _, how := range []string{"exit", "kill", "segv"} {
		t.Run(how, func(t *testing.T) {
			busyPid, busy := s.gwBlock(t, how+"-busy")
			r := gwGet(t, s.URL+"/crash?how="+how+"&id="+how)
			crashed, _ := strconv.Atoi(harness.WaitFile(t, s.gwRecord(how+".pid")))
			if r.status != 502 {
				t.Errorf("request whose worker died (%s): status %d, want 502", how, r.status)
			}
			if crashed == busyPid {
				t.Fatalf("crash request was given to the busy worker %d", busyPid)
			}
			harness.WaitFor(t, fmt.Sprintf("crashed worker %d to be reaped", crashed), func() bool { return harness.ProcessReaped(crashed) })
			s.gwRelease(t, how+"-busy")
			gwFinish(t, "request on the other worker", busyPid, busy)
			s.gwAssertPoolServes(t, 2, how, crashed)
		})
	}
	t.Run("KilledWhileIdle", func(t *testing.T) {
		p0 := s.gwAssertPoolServes(t, 2, "idle-before")[0]
		if err := syscall.Kill(p0, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		harness.WaitFor(t, "killed worker to be reaped", func() bool { return harness.ProcessReaped(p0) })
		for i := range 6 {
			gwOK(t, fmt.Sprintf("request %d after an idle worker was killed", i), gwGet(t, s.URL+"/hello"))
		}
		s.gwAssertPoolServes(t, 2, "idle", p0)
	})
	t.Run("AfterHeaders", func(t *testing.T) {
		r := gwTry(t, s.URL+"/crash?how=exit&after=headers&id=late")
		crashed, _ := strconv.Atoi(harness.WaitFile(t, s.gwRecord("late.pid")))
		gwFailedVisibly(t, "worker died after its first block", r, "first chunk")
		s.gwAssertPoolServes(t, 2, "late", crashed)
	})
}

// TestGatewayWorkerFreezesTheLoadedApp: once a worker has loaded the
// application, what the load made is in the collector's permanent
// generation (gc.freeze), so collections no longer walk it; with --preload
// the preloader does the same before forking.
func TestGatewayWorkerFreezesTheLoadedApp(t *testing.T) {
	for _, extra := range [][]string{nil, {"--preload"}} {
		t.Run(fmt.Sprint(extra), func(t *testing.T) {
			s := gwStart(t, append([]string{"--workers", "1"}, extra...)...)
			r := gwGet(t, s.URL+"/gc")
			gwOK(t, "GET /gc", r)
			var frozen int
			var walked bool
			if _, err := fmt.Sscanf(string(r.body), "frozen=%d app-walked=%t", &frozen, &walked); err != nil {
				t.Fatalf("GET /gc: %q: %v", r.body, err)
			}
			if frozen == 0 || walked {
				t.Errorf("GET /gc: %q: the application's objects are not frozen", r.body)
			}
		})
	}
}

// TestGatewayImportError: an application that cannot be loaded stops serve
// with exit status 1 and one clear line, not a crash loop.
func TestGatewayImportError(t *testing.T) {
	for _, tc := range []struct{ app, python, mention string }{
		{"badimport:app", "", "this module fails at import"},
		{"pep3333:no_such_callable", "", "no_such_callable"},
		{"no_such_module_e2e:app", "", "no_such_module_e2e"},
		{"pep3333:app", "/nonexistent/e2e/python3", "/nonexistent/e2e/python3"},
	} {
		t.Run(tc.app+tc.python, func(t *testing.T) {
			res := harness.Run(t, harness.Options{Args: []string{"--app", tc.app, "--pythonpath", gwAppsDir(), "--workers", "2"}, Python: tc.python})
			if res.ExitCode != 1 {
				t.Errorf("exit status %d, want 1\n%s", res.ExitCode, res.Output)
			}
			var errLines []string
			for _, line := range strings.Split(res.Output, "\n") {
				if strings.HasPrefix(line, "wsgate") && strings.Contains(line, tc.mention) {
					errLines = append(errLines, line)
				}
				if strings.HasPrefix(line, "wsgate: ready") {
					t.Errorf("serve said ready with an application that cannot load")
				}
			}
			if len(errLines) != 1 {
				t.Errorf("want exactly one wsgate error line naming %q, got %d:\n%s", tc.mention, len(errLines), res.Output)
			}
			if strings.Contains(res.Output, "goroutine ") || strings.Contains(res.Output, "panic:") {
				t.Errorf("Go panic for a bad application:\n%s", res.Output)
			}
		})
	}
}

// TestGatewayTimeout: a request past --timeout gets 504, its worker is killed
// and replaced, the other worker keeps serving meanwhile.
func TestGatewayTimeout(t *testing.T) {
	s := gwStart(t, "--workers", "2", "--threads", "1", "--timeout", "2")
	hungPid, hung := s.gwBlock(t, "hung") // never released
	gwOK(t, "request on the other worker", gwGet(t, s.URL+"/hello"))
	r := <-hung
	if r.status != 504 {
		t.Errorf("request past --timeout: status %d (%v), want 504", r.status, r.bodyErr)
	}
	harness.WaitFor(t, fmt.Sprintf("timed-out worker %d to be killed and reaped", hungPid), func() bool { return harness.ProcessReaped(hungPid) })
	s.gwAssertPoolServes(t, 2, "after", hungPid)

	// A response already streaming when the timeout passes: its headers
	// are out, so the client must see it cut short, not complete.
	resp, err := gwClient.Get(s.URL + "/stream?n=3&hold=never")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("a response stopped by --timeout mid-stream ended cleanly with %q", body)
	}
	if !strings.HasPrefix(string(body), "piece 0\n") {
		t.Errorf("streamed part before the timeout: %q", body)
	}
	s.gwAssertPoolServes(t, 2, "after-stream")
}

// TestGatewayMaxRequests: --max-requests recycles workers (new pids, old ones
// exit) without failing a single request, also when other threads of the
// recycled worker still have requests in flight.
func TestGatewayMaxRequests(t *testing.T) {
	for _, threads := range []string{"1", "3"} {
		t.Run("threads"+threads, func(t *testing.T) {
			s := gwStart(t, "--workers", "2", "--threads", threads, "--max-requests", "5")
			const clients, each = 6, 10
			var mu sync.Mutex
			pids := map[int]int{}
			var wg sync.WaitGroup
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						r := gwTry(t, s.URL+"/pid")
						if r.status != 200 || r.bodyErr != nil {
							t.Errorf("request during recycling: status %d, %v", r.status, r.bodyErr)
							continue
						}
						pid, _ := strconv.Atoi(string(r.body))
						mu.Lock()
						pids[pid]++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if len(pids) < 3 {
				t.Fatalf("%d requests with --workers 2 --max-requests 5 were served by %d worker pids %v: no recycling", clients*each, len(pids), pids)
			}
			// Recycled workers must exit and be reaped; at most the 2
			// current ones stay.
			harness.WaitFor(t, "recycled workers to exit", func() bool {
				alive := 0
				for pid := range pids {
					if !harness.ProcessReaped(pid) {
						alive++
					}
				}
				return alive <= 2
			})
		})
	}
}

// TestGatewayDrain: SIGTERM stops accepting, lets the in-flight request
// finish, and exits 0.
func TestGatewayDrain(t *testing.T) {
	s := gwStart(t, "--workers", "2", "--threads", "1")
	pid, inflight := s.gwBlock(t, "inflight")
	s.Signal(syscall.SIGTERM)
	harness.WaitFor(t, "the listener to refuse connections after SIGTERM", func() bool {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	select {
	case <-s.Done():
		t.Fatalf("serve exited with a request in flight\n%s", s.Logs())
	default:
	}
	s.gwRelease(t, "inflight")
	gwFinish(t, "in-flight request during drain", pid, inflight)
	if code := s.Wait(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0\n%s", code, s.Logs())
	}
	harness.WaitFor(t, "workers to exit with the master", func() bool { return !harness.ProcessAlive(pid) })
}

// TestGatewayQueueFull: with every worker busy, requests wait in a bounded
// queue; past it they get 503 with Retry-After, and the queued ones are served
// once a worker is free.
func TestGatewayQueueFull(t *testing.T) {
	const queue, extra = 2, 8
	s := gwStart(t, "--workers", "1", "--threads", "1", "--queue-size", strconv.Itoa(queue))
	pid, busy := s.gwBlock(t, "occupy")
	results := make(chan gwResponse, queue+extra)
	for range queue + extra {
		go func() {
			resp, err := gwClient.Get(s.URL + "/hello")
			if err != nil {
				results <- gwResponse{status: -1, bodyErr: err}
				return
			}
			defer resp.Body.Close()
			r := gwResponse{status: resp.StatusCode, header: resp.Header}
			r.body, r.bodyErr = gwReadBody(resp)
			results <- r
		}()
	}
	// The worker is held, so only the requests beyond the queue can
	// answer now; they must all be rejections.
	for i := range extra {
		r := <-results
		if r.status != 503 || r.header.Get("Retry-After") == "" {
			t.Errorf("answer %d while the worker is busy and the queue full: status %d Retry-After %q (%v), want 503 with Retry-After",
				i, r.status, r.header.Get("Retry-After"), r.bodyErr)
		}
	}
	s.gwRelease(t, "occupy")
	gwFinish(t, "the occupying request", pid, busy)
	for range queue {
		r := <-results
		if r.status != 200 {
			t.Errorf("queued request: status %d, want 200 once the worker was free", r.status)
		}
	}
}

// TestGatewayDrainBounded: a request that outlives --graceful-timeout does not
// keep a terminating server alive: the drain ends because that timeout (not
// the 30 s default) passed, the request is cut, its worker killed, and serve
// exits 0 as after any drain.
func TestGatewayDrainBounded(t *testing.T) {
	s := gwStart(t, "--workers", "1", "--threads", "1", "--graceful-timeout", "1")
	pid, stuck := s.gwBlock(t, "stuck") // never released
	s.Signal(syscall.SIGTERM)
	if code := s.Wait(); code != 0 {
		t.Errorf("exit status %d after a drain past --graceful-timeout, want 0\n%s", code, s.Logs())
	}
	// The log says which timeout ended the drain (the one in force).
	if line := s.WaitLog("graceful timeout passed with requests still running"); !strings.Contains(line, "graceful_timeout=1s") {
		t.Errorf("the drain ended on another timeout than --graceful-timeout 1: %q", line)
	}
	if line := s.WaitLog("graceful timeout passed; killing worker"); !strings.Contains(line, fmt.Sprintf("pid=%d", pid)) {
		t.Errorf("the worker killed is not the stuck one (%d): %q", pid, line)
	}
	if r := <-stuck; r.status == 200 && r.bodyErr == nil {
		t.Errorf("the stuck request looks complete (%q) although it never finished", r.body)
	}
	harness.WaitFor(t, fmt.Sprintf("stuck worker %d to die with the master", pid), func() bool { return !harness.ProcessAlive(pid) })
}

// TestGatewayReload: SIGHUP replaces every worker; a request in flight on an
// old worker completes, requests keep being served throughout.
func TestGatewayReload(t *testing.T) {
	s := gwStart(t, "--workers", "2", "--threads", "1")
	oldA, heldA := s.gwBlock(t, "old-a")
	oldB, heldB := s.gwBlock(t, "old-b")
	s.gwRelease(t, "old-b")
	gwFinish(t, "old-b", oldB, heldB)

	// Requests keep coming through the reload; none may fail.
	stop := make(chan struct{})
	loadDone := make(chan []string)
	go func() {
		var failures []string
		for {
			select {
			case <-stop:
				loadDone <- failures
				return
			default:
			}
			if r := gwTry(t, s.URL+"/hello"); r.status != 200 || r.bodyErr != nil {
				failures = append(failures, fmt.Sprintf("%d %v", r.status, r.bodyErr))
			}
		}
	}()
	s.Signal(syscall.SIGHUP)
	s.WaitLog("reload complete")
	s.gwAssertPoolServes(t, 2, "new", oldA, oldB)
	close(stop)
	if failures := <-loadDone; len(failures) > 0 {
		t.Errorf("%d requests failed during the reload: %v", len(failures), failures)
	}
	s.gwRelease(t, "old-a")
	gwFinish(t, "request in flight across the reload", oldA, heldA)
	harness.WaitFor(t, "old workers to exit and be reaped", func() bool { return harness.ProcessReaped(oldA) && harness.ProcessReaped(oldB) })
}

// gwImportFailures counts the failed imports of apps/flaky.py so far.
func (s *gwServer) gwImportFailures() int {
	matches, _ := filepath.Glob(s.gwRecord("import-failed-*"))
	return len(matches)
}

// TestGatewayRespawnFailsToLoad: a worker that dies and whose replacement
// cannot load the app (the code changed under it) costs nothing to the other
// worker's clients; once the app loads again the pool is whole.
func TestGatewayRespawnFailsToLoad(t *testing.T) {
	s := gwStartApp(t, "flaky:app", "", "--workers", "2", "--threads", "1")
	pids := s.gwAssertPoolServes(t, 2, "start")
	p0, p1 := pids[0], pids[1]

	if err := os.WriteFile(s.gwRecord("fail-import"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p0, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "a replacement worker to fail its import", func() bool { return s.gwImportFailures() > 0 })
	for i := range 10 {
		r := gwGet(t, s.URL+"/pid")
		gwOK(t, fmt.Sprintf("request %d while the replacement cannot load", i), r)
		if string(r.body) != strconv.Itoa(p1) {
			t.Errorf("request %d served by %q, want the surviving worker %d", i, r.body, p1)
		}
	}
	select {
	case <-s.Done():
		t.Fatalf("serve exited because a replacement worker could not load the app\n%s", s.Logs())
	default:
	}
	if err := os.Remove(s.gwRecord("fail-import")); err != nil {
		t.Fatal(err)
	}
	s.gwAssertPoolServes(t, 2, "healed", p0)
}

// TestGatewayReloadFailsToLoad: SIGHUP while the app cannot load keeps the old
// workers serving; a later SIGHUP with the app fixed replaces them.
func TestGatewayReloadFailsToLoad(t *testing.T) {
	s := gwStartApp(t, "flaky:app", "", "--workers", "1", "--threads", "1")
	old, held := s.gwBlock(t, "before")
	s.gwRelease(t, "before")
	gwFinish(t, "before", old, held)

	if err := os.WriteFile(s.gwRecord("fail-import"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.Signal(syscall.SIGHUP)
	harness.WaitFor(t, "the reloaded worker to fail its import", func() bool { return s.gwImportFailures() > 0 })
	for i := range 5 {
		r := gwGet(t, s.URL+"/pid")
		gwOK(t, fmt.Sprintf("request %d after a failed reload", i), r)
		if string(r.body) != strconv.Itoa(old) {
			t.Errorf("request %d served by %q, want the old worker %d", i, r.body, old)
		}
	}
	if err := os.Remove(s.gwRecord("fail-import")); err != nil {
		t.Fatal(err)
	}
	s.Signal(syscall.SIGHUP)
	s.WaitLog("reload complete")
	s.gwAssertPoolServes(t, 1, "reloaded", old)
}

// TestGatewayMasterKilled: workers do not outlive a master killed with
// SIGKILL (which cannot drain anything), whether idle or busy in the app.
func TestGatewayMasterKilled(t *testing.T) {
	s := gwStart(t, "--workers", "2", "--threads", "1")
	idle := s.gwAssertPoolServes(t, 2, "learn")
	busy, _ := s.gwBlock(t, "orphan") // never released
	s.Signal(syscall.SIGKILL)
	s.Wait()
	for _, pid := range append(idle, busy) {
		harness.WaitFor(t, fmt.Sprintf("worker %d to exit after its master was killed", pid), func() bool { return !harness.ProcessAlive(pid) })
	}
}

// TestGatewayBindBusy: a port already taken is one clear error and exit 1.
func TestGatewayBindBusy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	res := harness.Run(t, harness.Options{Args: []string{"--app", "pep3333:app", "--pythonpath", gwAppsDir(), "--workers", "1", "--bind", l.Addr().String()}})
	if res.ExitCode != 1 || !strings.Contains(res.Output, l.Addr().String()) {
		t.Errorf("bind to a busy %s: exit %d, want 1 and an error naming the address:\n%s", l.Addr(), res.ExitCode, res.Output)
	}
	if strings.Contains(res.Output, "goroutine ") || strings.Contains(res.Output, "panic:") {
		t.Errorf("Go panic for a busy port:\n%s", res.Output)
	}
}
