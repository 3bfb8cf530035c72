package gateway

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/protocol"
	"github.com/wsgate/wsgate/internal/testutil"
)

// startPool serves testdata/gwapps.py:<app> through real Python workers.
func startPool(t *testing.T, app string, tweak func(*Config)) (*Pool, *httptest.Server) {
	t.Helper()
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Python:  testutil.VenvPython(t),
		Dir:     dir,
		AppName: "gwapps:" + app,
		Node:    []byte(fmt.Sprintf(`{"object_type":"application","protocol":"wsgate.callable","factory":"gwapps:%s","global_conf":{},"local_conf":{}}`, app)),
		Workers: 1,
		Timeout: 20 * time.Second,
		Logger:  slog.New(slog.NewTextHandler(testWriter{t: t}, nil)),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	p := NewPool(cfg)
	if err := p.Start(); err != nil {
		t.Fatalf("starting the pool: %v", err)
	}
	srv := httptest.NewServer(NewHandler(p, ""))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := contextWithTimeout(10 * time.Second)
		defer cancel()
		p.Stop(ctx)
	})
	return p, srv
}

type testWriter struct {
	t      *testing.T
	marker string        // a log line containing it…
	seen   chan struct{} // …is signalled here
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	if w.seen != nil && strings.Contains(string(p), w.marker) {
		select {
		case w.seen <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// client is the tests' HTTP client; its timeout only turns a request that
// never ends (a broken timeout, a lost wake-up) into a failure.
var client = &http.Client{Timeout: time.Minute}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestHelloAndEnviron(t *testing.T) {
	_, srv := startPool(t, "environ_json", nil)
	req, _ := http.NewRequest("GET", srv.URL+"/caf%E9/a%2Fb?x=%20y&z", nil)
	req.Header.Add("X-Dup", "one")
	req.Header.Add("X-Dup", "two")
	req.Header.Add("X_Sneaky", "dropped")
	req.Header.Add("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	want := map[string]string{
		"REQUEST_METHOD":  "GET",
		"SCRIPT_NAME":     "",
		"PATH_INFO":       "/caf\u00e9/a/b", // bytes decoded as latin-1, %2F decoded
		"QUERY_STRING":    "x=%20y&z",
		"REQUEST_URI":     "/caf%E9/a%2Fb?x=%20y&z",
		"SERVER_NAME":     "127.0.0.1",
		"SERVER_PORT":     port,
		"SERVER_PROTOCOL": "HTTP/1.1",
		"REMOTE_ADDR":     "127.0.0.1",
		"HTTP_X_DUP":      "one, two",
		"HTTP_COOKIE":     "a=1; b=2",
		"wsgi.url_scheme": "http",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"HTTP_X_SNEAKY", "CONTENT_LENGTH", "HTTP_CONTENT_LENGTH"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s should be absent, is %q", k, env[k])
		}
	}
	if env["REMOTE_PORT"] == "" {
		t.Error("REMOTE_PORT missing")
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /bad%%zzescape HTTP/1.1\r\nHost: x\r\n\r\n")
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 400 ") {
		t.Errorf("malformed escape: %q, want 400", line)
	}
}

func TestLatin1RoundTrip(t *testing.T) {
	_, srv := startPool(t, "latin1_header", nil)
	code, h, body := get(t, srv.URL+"/%E9t%E9")
	if code != 200 || body != "/\xe9t\xe9" || h.Get("X-Path") != "/\xe9t\xe9" {
		t.Fatalf("got %d %q header %q", code, body, h.Get("X-Path"))
	}
}

// A WSGI response without Content-Type reaches the client without one, as
// from gunicorn, uWSGI or waitress: net/http would sniff one (text/html for
// this body).
func TestNoContentTypeIsNotSniffed(t *testing.T) {
	_, srv := startPool(t, "untyped", nil)
	code, h, body := get(t, srv.URL+"/")
	if code != 200 || body != "<html><body>not sniffed</body></html>" {
		t.Fatalf("got %d %q", code, body)
	}
	if v, ok := h["Content-Type"]; ok {
		t.Errorf("Content-Type %q, want none", v)
	}
	if _, h, _ := get(t, srv.URL+"/?type=text/plain"); h.Get("Content-Type") != "text/plain" {
		t.Errorf("the application's Content-Type: %q, want text/plain", h.Get("Content-Type"))
	}
}

func TestUploadsStreamThroughTheCreditWindow(t *testing.T) {
	_, srv := startPool(t, "upload_hash", nil)
	data := make([]byte, 5<<20+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	sum := sha256.Sum256(data)
	want := fmt.Sprintf("%d %s", len(data), hex.EncodeToString(sum[:]))
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(string(data))
		if chunked {
			body = io.MultiReader(strings.NewReader(string(data))) // unknown length: chunked
		}
		req, _ := http.NewRequest("POST", srv.URL+"/", body)
		if !chunked {
			req.ContentLength = int64(len(data))
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != want {
			t.Fatalf("chunked=%v: app saw %q, want %q", chunked, got, want)
		}
	}
	// and a small one, sent inline with the request
	resp, err := client.Post(srv.URL+"/", "text/plain", strings.NewReader("tiny"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum = sha256.Sum256([]byte("tiny"))
	if string(got) != "4 "+hex.EncodeToString(sum[:]) {
		t.Fatalf("inline body: %q", got)
	}
}

// TestBodyIsSentOnlyAsTheWorkerAsks: the master sends body bytes only
// against the worker's credit. An app that reads 10 bytes of a 32 MB body
// and answers must get its answer out, and the worker must serve on: a
// master pushing the whole body would block on the worker's full socket.
func TestBodyIsSentOnlyAsTheWorkerAsks(t *testing.T) {
	p, srv := startPool(t, "routes", nil)
	pid := fmt.Sprint(p.onlyPid(t))
	body := strings.Repeat("0123456789abcdef", 2<<20)
	for i := 0; i < 2; i++ {
		resp, err := client.Post(srv.URL+"/read-some", "application/octet-stream", strings.NewReader(body))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != pid {
			t.Fatalf("request %d: %d %q, want 200 %q (the same worker)", i, resp.StatusCode, got, pid)
		}
	}
}

// TestFileWrapperIsSentByTheMaster: a real file in wsgi.file_wrapper goes
// out from the master's own descriptor (sendfile): Python never reads it,
// which the app's file object would record.
func TestFileWrapperIsSentByTheMaster(t *testing.T) {
	_, srv := startPool(t, "send_spied_file", nil)
	path := filepath.Join(t.TempDir(), "blob")
	data := make([]byte, 3<<20+5)
	for i := range data {
		data[i] = byte(i / 3)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, h, body := get(t, srv.URL+"/?"+path)
	if code != 200 || body != string(data) {
		t.Fatalf("got %d, %d bytes, want %d", code, len(body), len(data))
	}
	// The reads, if any, happened before the worker's END frame.
	if reads, err := os.ReadFile(path + ".read"); err == nil {
		t.Fatalf("the worker read the file itself (%d reads): the master did not send it", strings.Count(string(reads), "\n"))
	}
	if h.Get("Content-Length") != fmt.Sprint(len(data)) {
		t.Fatalf("Content-Length %q, want %d (from the file's size)", h.Get("Content-Length"), len(data))
	}
}

func TestAppExceptionIs500AndTheWorkerStays(t *testing.T) {
	p, srv := startPool(t, "raises", nil)
	pid := p.onlyPid(t)
	for i := 0; i < 2; i++ {
		if code, _, _ := get(t, srv.URL+"/"); code != 500 {
			t.Fatalf("got %d, want 500", code)
		}
	}
	if p.onlyPid(t) != pid {
		t.Fatal("an application exception replaced the worker")
	}
}

// onlyPid is the pid of the pool's single ready worker.
func (p *Pool) onlyPid(t *testing.T) int {
	t.Helper()
	for {
		s, err := p.acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		pid := s.w.pid
		p.release(s, true, "")
		s.w.served.Add(-1)
		return pid
	}
}

// waitFor polls cond until it holds; the deadline only turns a hang (a
// mechanism that never acts) into a failure, it measures nothing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling the condition, the event awaited
	}
}

// waitReplaced waits until the pool has n ready workers again after one was
// lost (the lost one left StateReady before its client got the answer).
func waitReplaced(t *testing.T, p *Pool, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d ready workers", n), func() bool { return p.Ready() == n })
}

func TestDeadWorkerIs502AndReplaced(t *testing.T) {
	p, srv := startPool(t, "routes", nil)
	_, _, pid := get(t, srv.URL+"/hello")
	for i := 0; i < 2; i++ {
		if code, _, _ := get(t, srv.URL+"/die"); code != http.StatusBadGateway {
			t.Fatalf("request %d: got %d, want 502", i, code)
		}
		waitReplaced(t, p, 1)
		code, _, now := get(t, srv.URL+"/hello")
		if code != 200 || now == pid {
			t.Fatalf("after the crash: %d %q, want 200 from a new worker (the dead one was %s)", code, now, pid)
		}
		pid = now
	}
}

// held starts a request to the routes app's /hold in the background and
// returns once the app holds it, with the pid of the worker holding it; the
// answer comes on the channel after release(dir, id). dir must be made
// before the pool, so that it outlives the server's Close.
func held(t *testing.T, url, dir, id string) (pid string, answer chan string) {
	t.Helper()
	answer = fetch(url + "/hold?" + filepath.Join(dir, id))
	// A test that fails before releasing it must not leave the server's
	// Close waiting for the request (cleanups run last-registered first).
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(dir, id+".release"), nil, 0o644) })
	started := filepath.Join(dir, id+".started")
	waitFor(t, "request "+id+" to reach the app", func() bool {
		b, err := os.ReadFile(started)
		pid = string(b)
		return err == nil && pid != ""
	})
	return pid, answer
}

func release(t *testing.T, dir, id string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, id+".release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fetch GETs url in the background; "STATUS BODY" (or the error) arrives
// on the channel.
func fetch(url string) chan string {
	done := make(chan string, 1)
	go func() {
		resp, err := client.Get(url)
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			done <- fmt.Sprintf("%d %s (body cut: %v)", resp.StatusCode, b, err)
			return
		}
		done <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	return done
}

// TestGarbageFrameKillsOnlyThatWorker: a worker that writes bytes that are
// no frame is killed; the other worker, busy meanwhile, finishes its request
// and keeps serving with the same pid.
func TestGarbageFrameKillsOnlyThatWorker(t *testing.T) {
	dir := t.TempDir() // before the pool: removed after the server is closed
	p, srv := startPool(t, "routes", func(c *Config) { c.Workers = 2 })
	other, answer := held(t, srv.URL, dir, "other")
	// The other worker is idle: the garbage goes there.
	if code, _, body := get(t, srv.URL+"/garbage?"+filepath.Join(dir, "garbage")); code != http.StatusBadGateway {
		t.Fatalf("garbage: got %d %q, want 502", code, body)
	}
	// Killed (and reaped) at once, not left to trip the next request.
	b, err := os.ReadFile(filepath.Join(dir, "garbage.pid"))
	if err != nil {
		t.Fatal(err)
	}
	garbler, _ := strconv.Atoi(string(b))
	waitFor(t, fmt.Sprintf("the worker %d that broke the protocol to be killed", garbler), func() bool {
		return syscall.Kill(garbler, 0) != nil
	})
	release(t, dir, "other")
	if got := <-answer; got != "200 "+other {
		t.Fatalf("the request held by the other worker: %q, want \"200 %s\"", got, other)
	}
	waitReplaced(t, p, 2)
	pid, _ := strconv.Atoi(other)
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the other worker %d is gone: %v", pid, err)
	}
	// The pool is the survivor and a replacement: two requests held at once
	// take one idle worker each.
	x, ax := held(t, srv.URL, dir, "x")
	y, ay := held(t, srv.URL, dir, "y")
	release(t, dir, "x")
	release(t, dir, "y")
	<-ax
	<-ay
	if (x != other) == (y != other) {
		t.Fatalf("after the replacement the workers are %s and %s, want %s (the survivor) and a new one", x, y, other)
	}
}

func TestTimeoutIs504AndTheWorkerReplaced(t *testing.T) {
	dir := t.TempDir() // before the pool: removed after the server is closed
	p, srv := startPool(t, "routes", func(c *Config) { c.Timeout = 500 * time.Millisecond })
	stuck, answer := held(t, srv.URL, dir, "stuck") // released only when the test ends
	if got := <-answer; !strings.HasPrefix(got, "504 ") {
		t.Fatalf("the request past the timeout: %q, want 504", got)
	}
	// Killed (and reaped) at once, not left to fail the next request.
	pid, _ := strconv.Atoi(stuck)
	waitFor(t, fmt.Sprintf("the timed-out worker %d to be killed", pid), func() bool {
		return syscall.Kill(pid, 0) != nil
	})
	// A request queued before the replacement is ready could time out too.
	waitReplaced(t, p, 1)
	if code, _, body := get(t, srv.URL+"/hello"); code != 200 || body == stuck {
		t.Fatalf("after the timeout: %d %q, want 200 from a new worker (the timed-out one was %s)", code, body, stuck)
	}
}

func TestMaxRequestsRecycles(t *testing.T) {
	_, srv := startPool(t, "hello", func(c *Config) { c.MaxRequests = 3 })
	pids := map[string]int{}
	for i := 0; i < 9; i++ {
		code, _, body := get(t, srv.URL+"/")
		if code != 200 {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
		pids[body]++
	}
	if len(pids) != 3 {
		t.Fatalf("9 requests with max-requests 3 went to %d workers: %v", len(pids), pids)
	}
	for pid, n := range pids {
		if n != 3 {
			t.Fatalf("%s served %d requests", pid, n)
		}
	}
}

func TestQueueFullIs503(t *testing.T) {
	p, srv := startPool(t, "sleepy", func(c *Config) { c.QueueSize = 1; c.Pipeline = 1 })
	var wg sync.WaitGroup
	codes := make(chan int, 3)
	// one request occupies the worker, one waits in the queue…
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, _ := get(t, srv.URL+"/?2")
			codes <- code
		}()
	}
	// …and once one waits, the next finds the queue full.
	for p.waiting.Load() < 1 {
		time.Sleep(5 * time.Millisecond) // polling the queue length, the readiness signal here
	}
	code, h, _ := get(t, srv.URL+"/?0")
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("got %d (Retry-After %q), want 503 with Retry-After", code, h.Get("Retry-After"))
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("a queued request got %d", c)
		}
	}
}

func TestLoadErrorStopsStart(t *testing.T) {
	dir, _ := filepath.Abs("testdata")
	p := NewPool(Config{
		Python:  testutil.VenvPython(t),
		Dir:     dir,
		Node:    []byte(`{"object_type":"application","protocol":"wsgate.callable","factory":"gwapps:nope","global_conf":{},"local_conf":{}}`),
		Workers: 2,
		Logger:  slog.New(slog.NewTextHandler(testWriter{t: t}, nil)),
	})
	err := p.Start()
	le, ok := err.(*LoadError)
	if !ok {
		t.Fatalf("Start: %v (%T), want a *LoadError", err, err)
	}
	if le.Error() != "module gwapps has no attribute 'nope'" {
		t.Fatalf("message %q", le.Error())
	}
}

func TestReloadReplacesWorkers(t *testing.T) {
	p, srv := startPool(t, "hello", nil)
	before := p.onlyPid(t)
	p.Reload()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, body := get(t, srv.URL+"/")
		if code != 200 {
			t.Fatalf("during reload: %d %s", code, body)
		}
		if body != fmt.Sprintf("hello from %d", before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("workers not replaced after Reload")
		}
		time.Sleep(20 * time.Millisecond) // polling a state change, not synchronising on it
	}
}

func TestReloadNodeSwitchesTheApplication(t *testing.T) {
	p, srv := startPool(t, "hello", nil)
	// A reload that is superseded before it completes, then one with a new
	// application: the new one wins.
	p.Reload()
	p.ReloadNode([]byte(`{"object_type":"application","protocol":"wsgate.callable","factory":"gwapps:latin1_header","global_conf":{},"local_conf":{}}`))
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, body := get(t, srv.URL+"/switched")
		if code != 200 {
			t.Fatalf("during reload: %d %s", code, body)
		}
		if body == "/switched" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still served by the old application: %q", body)
		}
		time.Sleep(20 * time.Millisecond) // polling a state change, not synchronising on it
	}
}

func TestManyReloadsWithoutTrafficKeepServing(t *testing.T) {
	p, srv := startPool(t, "hello", nil)
	// Each reload leaves the old worker's closed slot in the idle queue;
	// more reloads than the queue holds must neither block the pool nor
	// lose the live slots.
	for i := 0; i < cap(p.idle)+3; i++ {
		p.Reload()
		deadline := time.Now().Add(15 * time.Second)
		for p.reloads.Load() != int64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("reload %d did not complete", i+1)
			}
			time.Sleep(5 * time.Millisecond) // polling the reload count, the readiness signal here
		}
	}
	if code, _, body := get(t, srv.URL+"/"); code != 200 {
		t.Fatalf("after many reloads: %d %s", code, body)
	}
}

func TestPipelinedRequestSurvivesTheWorkerAhead(t *testing.T) {
	dir := t.TempDir() // before the pool: removed after the server is closed
	p, srv := startPool(t, "routes", func(c *Config) { c.Pipeline = 2 })
	slots := p.idleSlots(t)
	// The one worker holds a request that will kill it…
	first := fetch(srv.URL + "/hold-die?" + filepath.Join(dir, "first"))
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(dir, "first.release"), nil, 0o644) })
	waitFor(t, "the first request to reach the app", func() bool {
		_, err := os.Stat(filepath.Join(dir, "first.started"))
		return err == nil
	})
	// …and this one is pipelined behind it: it must be served anyway, by
	// the replacement worker.
	second := fetch(srv.URL + "/hello")
	waitFor(t, "the second request to be pipelined", func() bool { return queued(slots) == 2 })
	release(t, dir, "first")
	if got := <-first; !strings.HasPrefix(got, "502 ") {
		t.Fatalf("the request that killed its worker: %q, want 502", got)
	}
	if got := <-second; !strings.HasPrefix(got, "200 ") {
		t.Fatalf("pipelined request: %q", got)
	}
}

// startTakeBackPool serves the routes app with pipelining; taken counts the
// requests taken back from behind another (a debug log line each).
func startTakeBackPool(t *testing.T, workers int) (p *Pool, srv *httptest.Server, taken *atomic.Int64) {
	taken = new(atomic.Int64)
	p, srv = startPool(t, "routes", func(c *Config) {
		c.Workers, c.Pipeline = workers, 2
		// Beyond the tests' own 30 s guards: a held request must not
		// end by timing out while a test awaits a take-back.
		c.Timeout = time.Minute
		c.Logger = slog.New(slog.NewTextHandler(countingWriter{t: t, marker: "pipelined request taken back", n: taken},
			&slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	return p, srv, taken
}

// idleSlots are the slots of the pool's idle workers (their tokens are
// taken and given back), to look at their queues.
func (p *Pool) idleSlots(t *testing.T) []*slot {
	t.Helper()
	var slots []*slot
	for len(p.idle) > 0 {
		s, err := p.acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		slots = append(slots, s)
	}
	for _, s := range slots {
		p.pushToken(p.idle, s)
	}
	return slots
}

// queued is how many exchanges the slots carry (in flight or pipelined).
func queued(slots []*slot) int {
	n := 0
	for _, s := range slots {
		s.mu.Lock()
		n += len(s.queue)
		s.mu.Unlock()
	}
	return n
}

// TestRequestIsPipelinedBehindABusyOne: with the only worker busy, the next
// request is written to that worker's socket at once (it waits there, not
// in the pool's queue).
func TestRequestIsPipelinedBehindABusyOne(t *testing.T) {
	dir := t.TempDir() // before the pool: removed after the server is closed
	p, srv, _ := startTakeBackPool(t, 1)
	slots := p.idleSlots(t)
	pid, first := held(t, srv.URL, dir, "first")
	second := fetch(srv.URL + "/hello")
	waitFor(t, "the second request to be pipelined or queued", func() bool { return queued(slots) == 2 || p.waiting.Load() > 0 })
	if n := p.waiting.Load(); n > 0 {
		t.Fatalf("the second request waits in the pool's queue (%d waiting), not pipelined on the busy worker", n)
	}
	release(t, dir, "first")
	if a, b := <-first, <-second; a != "200 "+pid || b != "200 "+pid {
		t.Fatalf("got %q and %q, want both from %s", a, b, pid)
	}
}

// TestPipelinedRequestIsTakenBackFromBehindASlowOne: both workers busy, two
// requests are pipelined, one behind each. When one worker is free again,
// the request behind the other (still held) is taken back and served there.
func TestPipelinedRequestIsTakenBackFromBehindASlowOne(t *testing.T) {
	dir := t.TempDir() // before the pool: removed after the server is closed
	p, srv, taken := startTakeBackPool(t, 2)
	slots := p.idleSlots(t)
	slowPid, slow := held(t, srv.URL, dir, "slow")
	freedPid, freed := held(t, srv.URL, dir, "freed")
	if slowPid == freedPid {
		t.Fatalf("both held requests on worker %s", slowPid)
	}
	c, d := fetch(srv.URL+"/hello"), fetch(srv.URL+"/hello")
	waitFor(t, "both requests to be pipelined", func() bool { return queued(slots) == 4 })
	release(t, dir, "freed")
	if got := <-freed; got != "200 "+freedPid {
		t.Fatalf("released request: %q", got)
	}
	// One of the two was pipelined behind the held request, which never ends
	// before the test says so: only taking it back lets it be served.
	for _, ch := range []chan string{c, d} {
		select {
		case got := <-ch:
			if got != "200 "+freedPid {
				t.Fatalf("got %q, want it served by the free worker %s", got, freedPid)
			}
		case got := <-slow:
			t.Fatalf("the held request ended (%q) although it was never released", got)
		case <-time.After(30 * time.Second):
			t.Fatal("a request pipelined behind the held one was not taken back (gave up after 30 s)")
		}
	}
	if taken.Load() == 0 {
		t.Fatal("both served, yet no take-back was logged")
	}
	release(t, dir, "slow")
	if got := <-slow; got != "200 "+slowPid {
		t.Fatalf("held request: %q", got)
	}
}

// TestPipelinedRequestWithNowhereElseToGo: pipelined behind a held request
// on the only worker, a request is taken back after a while, finds the same
// worker again (more than once), and is served once the held one is done, by
// the same process.
func TestPipelinedRequestWithNowhereElseToGo(t *testing.T) {
	dir := t.TempDir() // before the pool: removed after the server is closed
	_, srv, taken := startTakeBackPool(t, 1)
	pid, first := held(t, srv.URL, dir, "first")
	next := fetch(srv.URL + "/hello")
	waitFor(t, "the pipelined request to be taken back twice", func() bool { return taken.Load() >= 2 })
	release(t, dir, "first")
	if a, b := <-first, <-next; a != "200 "+pid || b != "200 "+pid {
		t.Fatalf("got %q and %q, want both from %s (the worker kept)", a, b, pid)
	}
}

func TestRequestTooBigForADispatchMessage(t *testing.T) {
	_, srv := startPool(t, "big_request", nil)
	big := strings.Repeat("h", 300<<10) // beyond protocol.MaxDispatch with its body
	body := strings.Repeat("b", 60<<10) // sent inline with the REQUEST
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(body))
		req.Header.Set("X-Big", big)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256([]byte(body))
		want := fmt.Sprintf("%d %d %s", len(big), len(body), hex.EncodeToString(sum[:]))
		if resp.StatusCode != 200 || string(got) != want {
			t.Fatalf("request %d: %d %q, want %q", i, resp.StatusCode, got, want)
		}
		// and an ordinary request after it, on the dispatch socket
		if code, _, _ := get(t, srv.URL+"/"); code != 200 {
			t.Fatalf("the request after the big one: %d", code)
		}
	}
}

// countingWriter counts the log lines that contain a marker.
type countingWriter struct {
	t      *testing.T
	marker string
	n      *atomic.Int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.marker) {
		w.n.Add(1)
	} else {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// TestTakingBackUnderLoad: requests of mixed lengths from many clients, with
// pipelining, so that requests are taken back from behind slower ones again
// and again; every response must still be the one of its own request.
func TestTakingBackUnderLoad(t *testing.T) {
	var taken atomic.Int64
	_, srv := startPool(t, "nap_echo", func(c *Config) {
		c.Workers, c.Pipeline = 2, 2
		c.Logger = slog.New(slog.NewTextHandler(countingWriter{t: t, marker: "taken back", n: &taken},
			&slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	naps := []string{"0", "0", "0", "0.001", "0.003", "0.02", "0.08"}
	const clients, each = 24, 20
	var wg sync.WaitGroup
	errs := make(chan string, clients*each)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("c%d-r%d", c, i)
				body := ""
				if i%3 == 0 {
					body = "payload-" + id // an inline body, part of the dispatch message
				}
				resp, err := client.Post(srv.URL+"/?"+naps[(c+i)%len(naps)]+"/"+id, "text/plain", strings.NewReader(body))
				if err != nil {
					errs <- err.Error()
					continue
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := id + " " + body; resp.StatusCode != 200 || string(got) != want {
					errs <- fmt.Sprintf("%s: %d %q, want %q", id, resp.StatusCode, got, want)
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if taken.Load() == 0 {
		t.Fatal("no request was taken back: the load did not exercise what this test is for")
	}
	t.Logf("%d requests taken back", taken.Load())
}

// TestRequestToAWorkerThatDiedIdle: the worker dies after its answer, while
// the next request is on its way to it. That request never reached the
// application, so it is served by the replacement, not failed with 502.
func TestRequestToAWorkerThatDiedIdle(t *testing.T) {
	dir := t.TempDir() // before the pool: removed after the server is closed
	p, srv := startPool(t, "routes", nil)
	slots := p.idleSlots(t)
	code, _, first := get(t, srv.URL+"/answer-then-die?"+filepath.Join(dir, "bye"))
	if code != 200 {
		t.Fatalf("first request: %d %q", code, first)
	}
	// The worker is in the answer's close(): the next request is written
	// to its socket, then the worker dies without having read it.
	second := fetch(srv.URL + "/hello")
	waitFor(t, "the second request to be sent to the worker", func() bool { return queued(slots) == 1 })
	release(t, dir, "bye")
	if got := <-second; !strings.HasPrefix(got, "200 ") || got == "200 "+first {
		t.Fatalf("the request sent as the worker died: %q (the dying worker was %s)", got, first)
	}
}

// TestDispatchMessageBound: the largest dispatch message follows the send
// buffer the kernel gave the socket (half of it, shared by the pipeline), so
// the queued messages never block their writer.
func TestDispatchMessageBound(t *testing.T) {
	p, _ := startPool(t, "hello", nil)
	s, err := p.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.pushToken(p.idle, s)
	raw, err := s.disp.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sndbuf int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		sndbuf, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if want := min(protocol.MaxDispatch, sndbuf/(2*p.cfg.Pipeline)); s.dispMax != want {
		t.Fatalf("dispMax %d for a send buffer of %d bytes, want %d", s.dispMax, sndbuf, want)
	}
}

// Reloading lasts from Reload until the new workers serve (systemd's
// RELOADING=1 … READY=1): when it ends, the worker answering is a new one.
func TestReloadingLastsUntilTheNewWorkersServe(t *testing.T) {
	p, srv := startPool(t, "hello", nil)
	before := p.onlyPid(t)
	if p.Reloading() {
		t.Fatal("Reloading before any reload")
	}
	p.Reload()
	p.Reload() // coalesced or superseded: one end covers both
	if !p.Reloading() {
		t.Fatal("not Reloading right after Reload")
	}
	deadline := time.Now().Add(15 * time.Second)
	for p.Reloading() {
		if time.Now().After(deadline) {
			t.Fatal("still Reloading")
		}
		time.Sleep(5 * time.Millisecond) // polling the state under test
	}
	if _, _, body := get(t, srv.URL+"/"); body == fmt.Sprintf("hello from %d", before) {
		t.Fatalf("Reloading ended while the old worker (pid %d) still serves", before)
	}
}
