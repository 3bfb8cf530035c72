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

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
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
	resp, err := http.DefaultClient.Do(req)
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
		resp, err := http.DefaultClient.Do(req)
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
	resp, err := http.Post(srv.URL+"/", "text/plain", strings.NewReader("tiny"))
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

func TestFileWrapperIsSentByTheMaster(t *testing.T) {
	_, srv := startPool(t, "send_file", nil)
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
	if h.Get("Content-Length") != fmt.Sprint(len(data)) {
		t.Fatalf("Content-Length %q", h.Get("Content-Length"))
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

func TestDeadWorkerIs502AndReplaced(t *testing.T) {
	_, srv := startPool(t, "die", nil)
	for i := 0; i < 3; i++ {
		if code, _, _ := get(t, srv.URL+"/"); code != http.StatusBadGateway {
			t.Fatalf("request %d: got %d, want 502", i, code)
		}
	}
}

func TestGarbageFrameKillsOnlyThatWorker(t *testing.T) {
	_, srv := startPool(t, "garbage", nil)
	for i := 0; i < 2; i++ {
		if code, _, _ := get(t, srv.URL+"/"); code != http.StatusBadGateway {
			t.Fatalf("request %d: got %d, want 502", i, code)
		}
	}
}

func TestTimeoutIs504AndTheWorkerReplaced(t *testing.T) {
	p, srv := startPool(t, "sleepy", func(c *Config) { c.Timeout = 500 * time.Millisecond })
	before := p.onlyPid(t)
	if code, _, _ := get(t, srv.URL+"/?60"); code != http.StatusGatewayTimeout {
		t.Fatalf("got %d, want 504", code)
	}
	if code, body := waitOK(t, srv.URL+"/?0"); code != 200 || body != "slept" {
		t.Fatalf("after the timeout: %d %q", code, body)
	}
	if p.onlyPid(t) == before {
		t.Fatal("the timed-out worker was not replaced")
	}
}

// waitOK retries while the pool replaces a worker (a queued request would
// do the same; this keeps the test independent of queueing).
func waitOK(t *testing.T, url string) (int, string) {
	code, _, body := get(t, url)
	return code, body
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
	seen := make(chan struct{}, 1)
	_, srv := startPool(t, "router", func(c *Config) {
		c.Pipeline = 2
		c.Logger = slog.New(slog.NewTextHandler(testWriter{t: t, marker: "dying soon", seen: seen}, nil))
	})
	// The one worker is busy with a request that will kill it…
	first := make(chan int, 1)
	go func() {
		code, _, _ := get(t, srv.URL+"/slow-die")
		first <- code
	}()
	<-seen
	// …so this one is pipelined behind it, and must be served anyway, by
	// the replacement worker.
	code, _, body := get(t, srv.URL+"/hello")
	if code != 200 || !strings.HasPrefix(body, "hello from ") {
		t.Fatalf("pipelined request: %d %q", code, body)
	}
	if c := <-first; c != http.StatusBadGateway {
		t.Fatalf("the request that killed its worker: %d, want 502", c)
	}
}

// napping starts a request to the nap app in the background; its status
// and body arrive on the returned channel.
func napping(t *testing.T, url string, secs string) chan string {
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/?" + secs)
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	return done
}

// startNapPool serves the nap app with pipelining; seen gets a signal each
// time a nap whose log line contains marker begins.
func startNapPool(t *testing.T, workers int, marker string) (srv *httptest.Server, seen chan struct{}) {
	seen = make(chan struct{}, 2)
	_, srv = startPool(t, "nap", func(c *Config) {
		c.Workers, c.Pipeline = workers, 2
		c.Logger = slog.New(slog.NewTextHandler(testWriter{t: t, marker: marker, seen: seen}, nil))
	})
	return srv, seen
}

func TestPipelinedRequestIsTakenBackFromBehindASlowOne(t *testing.T) {
	srv, seen := startNapPool(t, 2, "napping")
	slow := napping(t, srv.URL, "4")
	<-seen
	short := napping(t, srv.URL, "1")
	<-seen
	// Both workers are busy: each of these is pipelined on one of them, so
	// one waits behind the slow request. It must not wait for it: when the
	// other worker falls idle it takes the request back from the slow one.
	a, b := napping(t, srv.URL, "0"), napping(t, srv.URL, "0")
	for _, ch := range []chan string{a, b, short} {
		if got := <-ch; !strings.HasPrefix(got, "200 napped ") {
			t.Fatalf("got %q", got)
		}
	}
	select {
	case got := <-slow:
		t.Fatalf("the slow request ended (%q) before the requests queued behind it were served elsewhere", got)
	default:
	}
	if got := <-slow; !strings.HasPrefix(got, "200 napped ") {
		t.Fatalf("slow request: %q", got)
	}
}

func TestPipelinedRequestWithNowhereElseToGo(t *testing.T) {
	srv, seen := startNapPool(t, 1, "napping 1")
	slow := napping(t, srv.URL, "1")
	<-seen
	// Pipelined behind the slow request on the only worker: taken back
	// after a while, it finds the same worker again (more than once), and
	// is served once the slow one is done, by the same process.
	next := napping(t, srv.URL, "0")
	first, second := <-slow, <-next
	if !strings.HasPrefix(first, "200 napped ") || !strings.HasPrefix(second, "200 napped ") {
		t.Fatalf("got %q and %q", first, second)
	}
	if first[len("200 napped "):] != second[len("200 napped "):] {
		t.Fatalf("two workers served (%q, %q): the worker was replaced", first, second)
	}
}

func TestRequestTooBigForADispatchMessage(t *testing.T) {
	_, srv := startPool(t, "big_request", nil)
	big := strings.Repeat("h", 300<<10) // beyond protocol.MaxDispatch with its body
	body := strings.Repeat("b", 60<<10) // sent inline with the REQUEST
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(body))
		req.Header.Set("X-Big", big)
		resp, err := http.DefaultClient.Do(req)
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
				resp, err := http.Post(srv.URL+"/?"+naps[(c+i)%len(naps)]+"/"+id, "text/plain", strings.NewReader(body))
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
	_, srv := startPool(t, "dies_when_idle", nil)
	code, _, first := get(t, srv.URL+"/")
	if code != 200 {
		t.Fatalf("first request: %d %q", code, first)
	}
	code, _, second := get(t, srv.URL+"/")
	if code != 200 || !strings.HasPrefix(second, "bye from ") {
		t.Fatalf("the request sent as the worker died: %d %q", code, second)
	}
	if second == first {
		t.Fatalf("both answered by the same process (%q): the worker did not die?", first)
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
