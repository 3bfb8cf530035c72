package e2e

// Lent connections (`wsgate serve --lend`, internal/gateway/lend.go,
// python/wsgate/lend.py): after a keep-alive connection's first request the
// worker holds the client's socket and serves the following requests
// itself. These tests prove, with real sockets against the real binary, that
// nothing a client relies on is lost: every response as the master would
// give it, deferral to the master, slow readers, crashes, timeouts,
// take-back, reloads, recycling and shutdown (issue 12, point 2).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/test/e2e/harness"
)

// lendServer is a `wsgate serve --lend` with a control socket, so that
// `wsgate status` can say how many requests the workers served on lent
// connections.
type lendServer struct {
	*gwServer
	ctl string
}

func lendStart(t *testing.T, extra ...string) *lendServer {
	t.Helper()
	ctl := filepath.Join(t.TempDir(), "ctl.sock")
	return &lendServer{gwServer: gwStart(t, append([]string{"--lend", "--control-socket", ctl}, extra...)...), ctl: ctl}
}

// lendWorker is one live worker as `wsgate status --json` shows it.
type lendWorker struct {
	PID      int   `json:"pid"`
	Served   int64 `json:"requests_served"`
	Lent     int64 `json:"lent_requests"`
	Requests []struct {
		Age float64 `json:"age_seconds"`
	} `json:"requests"` // the requests it is serving
}

// lendPool is the server's one pool as `wsgate status --json` shows it.
type lendPool struct {
	Queued int          `json:"queued"` // requests waiting for a worker
	Live   []lendWorker `json:"live_workers"`
}

func (s *lendServer) status(t *testing.T) lendPool {
	t.Helper()
	var pools []lendPool
	out := wsgateCmd(t, "status", "--json", "--control-socket", s.ctl)
	if err := json.Unmarshal([]byte(out), &pools); err != nil || len(pools) != 1 {
		t.Fatalf("wsgate status --json: %v in %.300q", err, out)
	}
	return pools[0]
}

func (s *lendServer) workers(t *testing.T) []lendWorker {
	t.Helper()
	return s.status(t).Live
}

// serving counts the requests the live workers are serving.
func (s *lendServer) serving(t *testing.T) int {
	t.Helper()
	n := 0
	for _, w := range s.workers(t) {
		n += len(w.Requests)
	}
	return n
}

// oldest is the age of the oldest request being served, in seconds (0 if
// none).
func (s *lendServer) oldest(t *testing.T) float64 {
	t.Helper()
	oldest := 0.0
	for _, w := range s.workers(t) {
		for _, r := range w.Requests {
			oldest = max(oldest, r.Age)
		}
	}
	return oldest
}

// lent is the number of requests the live workers read from their lent
// connections themselves (the master sent them the others).
func (s *lendServer) lent(t *testing.T) int64 {
	t.Helper()
	var n int64
	for _, w := range s.workers(t) {
		n += w.Lent
	}
	return n
}

// lendConn is one raw client connection, kept alive across requests.
type lendConn struct {
	net.Conn
	br *bufio.Reader
}

func (s *gwServer) lendDial(t *testing.T) *lendConn {
	t.Helper()
	c := s.gwDial(t)
	return &lendConn{Conn: c, br: bufio.NewReader(c)}
}

// request is the raw bytes of a request with the given extra header lines.
func lendRequest(method, target string, headers ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: lend.test\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// do sends one request and reads its whole response.
func (c *lendConn) do(t *testing.T, method, target string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	if _, err := io.WriteString(c, lendRequest(method, target, headers...)); err != nil {
		t.Fatalf("%s %s: writing: %v", method, target, err)
	}
	return gwReadResponse(t, c.br, method)
}

// environ asks /environ and decodes it.
func (c *lendConn) environ(t *testing.T, target string, headers ...string) map[string]any {
	t.Helper()
	resp, body := c.do(t, "GET", target, headers...)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %.300q", target, resp.StatusCode, body)
	}
	var env map[string]any
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("GET %s: %v in %.300q", target, err, body)
	}
	return env
}

// readUpload reads the answer of POST /read and checks the application
// read upload exactly.
func (c *lendConn) readUpload(t *testing.T, what string, upload []byte) {
	t.Helper()
	resp, body := gwReadResponse(t, c.br, "POST")
	var got struct {
		SHA    string `json:"sha256"`
		Length int    `json:"length"`
	}
	if err := json.Unmarshal(body, &got); resp.StatusCode != 200 || err != nil || got.SHA != gwSHA(upload) || got.Length != len(upload) {
		t.Errorf("%s: %d %.300q, want the upload's %d bytes and sha256", what, resp.StatusCode, body, len(upload))
	}
}

// head sends GET target and reads the response's head only: the test
// reads the body as it pleases.
func (c *lendConn) head(t *testing.T, target string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, lendRequest("GET", target)); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "/", nil)
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return resp
}

// pid asks /pid: which worker serves this connection's request.
func (c *lendConn) pid(t *testing.T) int {
	t.Helper()
	resp, body := c.do(t, "GET", "/pid")
	pid, err := strconv.Atoi(string(body))
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("GET /pid: %d %.200q", resp.StatusCode, body)
	}
	return pid
}

// lendSameEnviron fails the test where two environs differ, key by key;
// the keys in skip may differ.
func lendSameEnviron(t *testing.T, what string, want, got map[string]any, skip ...string) {
	t.Helper()
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		skipped := false
		for _, s := range skip {
			skipped = skipped || s == k
		}
		if !skipped && !reflect.DeepEqual(want[k], got[k]) {
			t.Errorf("%s: environ[%q] = %#v, the master's is %#v", what, k, got[k], want[k])
		}
	}
}

// TestLendKeepAlive: on one connection, the requests after the first are
// read and served by the worker holding the connection (lent_requests counts
// them, and the master sent only the first),
// and each response is what the master gives: JSON, a chunked stream, a
// 3 MiB body, HEAD, 204, 304, two Set-Cookie headers and a latin-1 one; the
// environ the worker builds is the master's, key by key (REMOTE_PORT too:
// the same connection), for a plain request, for two Cookie headers, a
// query string and a percent-encoded path.
func TestLendKeepAlive(t *testing.T) {
	s := lendStart(t, "--workers", "1")
	cases := []struct {
		target  string
		headers []string
	}{
		{"/environ/two-cookies", []string{"Cookie: a=1", "Cookie: b=2; c=3"}},
		{"/environ/q?x=1&y=caf%C3%A9+%2F&empty=&x=2", nil},
		{"/environ/caf%C3%A9/%2Fslash%20space/%ff", []string{"X-Custom: one", "X-Custom: two", "Accept: */*"}},
	}
	// What the master builds: each request the first of a connection,
	// closed at once, so that the keep-alive connection below is the
	// worker's only one (none is handed back from behind another's).
	masters := make([]map[string]any, len(cases))
	for i, tc := range cases {
		m := s.lendDial(t)
		masters[i] = m.environ(t, tc.target, tc.headers...)
		m.Close()
	}

	c := s.lendDial(t)
	first := c.environ(t, "/environ?a=1")  // the master's: this request lends the connection
	second := c.environ(t, "/environ?a=1") // the worker's
	lendSameEnviron(t, "second /environ on the connection", first, second)
	served := 2
	for i, tc := range cases {
		worker := c.environ(t, tc.target, tc.headers...)
		served++
		lendSameEnviron(t, "GET "+tc.target, masters[i], worker, "REMOTE_PORT")
		if worker["REMOTE_PORT"] != first["REMOTE_PORT"] {
			t.Errorf("GET %s: REMOTE_PORT %v, the connection's is %v", tc.target, worker["REMOTE_PORT"], first["REMOTE_PORT"])
		}
	}

	resp, body := c.do(t, "GET", "/hello")
	served++
	if resp.StatusCode != 200 || string(body) != "hello world\n" || resp.ContentLength != 12 {
		t.Errorf("GET /hello: %d, Content-Length %d, %q", resp.StatusCode, resp.ContentLength, body)
	}
	resp, body = c.do(t, "GET", "/stream?n=7")
	served++
	want := ""
	for i := range 7 {
		want += fmt.Sprintf("piece %d\n", i)
	}
	if resp.StatusCode != 200 || string(body) != want || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("GET /stream: %d, Transfer-Encoding %v, %q; want 200, chunked, %q", resp.StatusCode, resp.TransferEncoding, body, want)
	}
	const size = 3 << 20
	resp, body = c.do(t, "GET", "/big?size="+strconv.Itoa(size)+"&seed=keep")
	served++
	if resp.StatusCode != 200 || len(body) != size || gwSHA(body) != resp.Header.Get("X-Sha256") {
		t.Errorf("GET /big: %d, %d bytes, sha256 %s, want 200, %d bytes, %s", resp.StatusCode, len(body), gwSHA(body), size, resp.Header.Get("X-Sha256"))
	}
	// gwReadResponse reads no body for HEAD: bytes sent anyway would
	// spoil the next response, which is read on the same connection.
	resp, _ = c.do(t, "HEAD", "/big?size="+strconv.Itoa(size))
	served++
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Errorf("HEAD /big: %d, Content-Length %d, want 200, %d", resp.StatusCode, resp.ContentLength, size)
	}
	for _, status := range []string{"204%20No%20Content", "304%20Not%20Modified"} {
		resp, body = c.do(t, "GET", "/status?status="+status)
		served++
		if code, _ := strconv.Atoi(status[:3]); resp.StatusCode != code || len(body) != 0 {
			t.Errorf("GET /status?status=%s: %d with %q, want %d without a body", status, resp.StatusCode, body, code)
		}
	}
	resp, body = c.do(t, "GET", "/cookies")
	served++
	if got := resp.Header.Values("Set-Cookie"); resp.StatusCode != 200 || string(body) != "cookies" ||
		!reflect.DeepEqual(got, []string{"a=1; Path=/", "b=2, c=3; Path=/"}) || resp.Header.Get("X-Latin1") != "caf\xe9" {
		t.Errorf("GET /cookies: %d %q, Set-Cookie %q, X-Latin1 %q", resp.StatusCode, body, got, resp.Header.Get("X-Latin1"))
	}
	// The connection is still usable, and still the same one.
	if again := c.environ(t, "/environ?a=1"); again["REMOTE_PORT"] != first["REMOTE_PORT"] {
		t.Errorf("the last request came on another connection (REMOTE_PORT %v, first %v)", again["REMOTE_PORT"], first["REMOTE_PORT"])
	}
	served++
	// The master sent each connection's first request (this one's and the
	// three it was compared with); the worker read every other itself.
	ws := s.workers(t)
	if len(ws) != 1 || ws[0].Lent != int64(served-1) || ws[0].Served != int64(served+3) {
		t.Errorf("status: %+v, want %d requests served of which %d read by the worker from the lent connection", ws, served+3, served-1)
	}
}

// TestLendPipelining: after the first request, three requests sent in one
// write are answered in order by the worker holding the connection.
func TestLendPipelining(t *testing.T) {
	s := lendStart(t, "--workers", "1")
	c := s.lendDial(t)
	c.do(t, "GET", "/hello")
	before := s.lent(t)
	raw := lendRequest("GET", "/environ?n=1") + lendRequest("GET", "/big?size=200000&seed=p") + lendRequest("GET", "/stream?n=3")
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, body := gwReadResponse(t, c.br, "GET")
	var env map[string]any
	if err := json.Unmarshal(body, &env); resp.StatusCode != 200 || err != nil || env["QUERY_STRING"] != "n=1" {
		t.Errorf("first pipelined response: %d %.200q (%v), want /environ?n=1's", resp.StatusCode, body, err)
	}
	resp, body = gwReadResponse(t, c.br, "GET")
	if resp.StatusCode != 200 || len(body) != 200000 || gwSHA(body) != resp.Header.Get("X-Sha256") {
		t.Errorf("second pipelined response: %d, %d bytes, want /big's 200000", resp.StatusCode, len(body))
	}
	resp, body = gwReadResponse(t, c.br, "GET")
	if resp.StatusCode != 200 || string(body) != "piece 0\npiece 1\npiece 2\n" {
		t.Errorf("third pipelined response: %d %q, want /stream's", resp.StatusCode, body)
	}
	if lent := s.lent(t); lent-before != 3 {
		t.Errorf("lent_requests went from %d to %d, want the three pipelined requests served by the worker", before, lent)
	}
}

// TestLendDefers: what the worker does not serve itself goes back to the
// master and is served there, on the same connection: a chunked upload,
// then a request with Connection: close, which is answered and closes the
// connection. A malformed request on a lent connection gets the master's
// 400, byte for byte what the server says without --lend.
func TestLendDefers(t *testing.T) {
	s := lendStart(t, "--workers", "1")
	c := s.lendDial(t)
	c.do(t, "GET", "/hello")
	before := s.lent(t)
	upload := gwLines()
	var chunked bytes.Buffer
	chunked.WriteString("POST /read?mode=readline HTTP/1.1\r\nHost: lend.test\r\nTransfer-Encoding: chunked\r\n\r\n")
	for rest := upload; len(rest) > 0; {
		n := min(len(rest), 5000)
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", n, rest[:n])
		rest = rest[n:]
	}
	chunked.WriteString("0\r\n\r\n")
	if _, err := c.Write(chunked.Bytes()); err != nil {
		t.Fatal(err)
	}
	c.readUpload(t, "chunked POST on a lent connection", upload)
	if lent := s.lent(t); lent != before {
		t.Errorf("lent_requests went from %d to %d: the worker served the chunked request itself", before, lent)
	}
	resp, body := c.do(t, "GET", "/hello")
	if resp.StatusCode != 200 || string(body) != "hello world\n" {
		t.Errorf("GET /hello after the chunked POST: %d %q", resp.StatusCode, body)
	}
	resp, body = c.do(t, "GET", "/hello", "Connection: close")
	if resp.StatusCode != 200 || string(body) != "hello world\n" || !resp.Close {
		t.Errorf("GET /hello with Connection: close: %d %q, close %v", resp.StatusCode, body, resp.Close)
	}
	if rest, err := io.ReadAll(c.br); err != nil || len(rest) > 0 {
		t.Errorf("after Connection: close: %q %v, want the connection closed", rest, err)
	}

	plain := gwStart(t, "--workers", "1")
	for _, bad := range []string{
		"GET /hello HTTP/1.1\r\nHost: x\r\nNo-Colon-Here\r\n\r\n",
		"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
		"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"GE(T /hello HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /hello HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
		"GET /hello HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
	} {
		want := plain.gwRawExchange(t, bad)
		c := s.lendDial(t)
		c.do(t, "GET", "/hello")
		if _, err := io.WriteString(c, bad); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c.br)
		if err != nil {
			t.Fatalf("%q on a lent connection: %v", bad, err)
		}
		if !bytes.HasPrefix(want, []byte("HTTP/1.1 400 ")) || !bytes.Equal(lendNoDate(got), lendNoDate(want)) {
			t.Errorf("%q on a lent connection:\n%q\nwithout --lend (want a 400):\n%q", bad, got, want)
		}
	}
}

// lendNoDate drops the Date header line, which two answers a second apart
// may differ in.
func lendNoDate(b []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(b, []byte("\r\n")) {
		if !bytes.HasPrefix(line, []byte("Date: ")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\r\n"))
}

// TestLendSlowReader: a client that stops reading a 10 MiB response on a
// lent connection holds no worker: with one worker, other requests are
// served meanwhile, and the slow client still gets every byte. The same
// while a client reads at about 10 KB/s. A list body's rest is written by
// the worker as the client reads, then by the master (list); a generator's
// goes to the master (stream).
func TestLendSlowReader(t *testing.T) {
	for _, body := range []string{"list", "stream"} {
		t.Run(body, func(t *testing.T) { lendSlowReader(t, "&body="+body) })
	}
}

func lendSlowReader(t *testing.T, kind string) {
	s := lendStart(t, "--workers", "1", "--timeout", "10")
	const size = 10 << 20
	c := s.lendDial(t)
	c.do(t, "GET", "/hello")
	before := s.lent(t)
	resp := c.head(t, "/big?size="+strconv.Itoa(size)+"&seed=slow"+kind)
	first := make([]byte, 10<<10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		gwOK(t, fmt.Sprintf("request %d while a lent connection does not read its 10 MiB", i), gwGet(t, s.URL+"/hello"))
	}
	rest, err := io.ReadAll(resp.Body)
	if body := append(first, rest...); err != nil || len(body) != size || gwSHA(body) != resp.Header.Get("X-Sha256") {
		t.Errorf("the slow response: %d bytes (%v), want %d whose sha256 is %s", len(body), err, size, resp.Header.Get("X-Sha256"))
	}
	if lent := s.lent(t); lent <= before {
		t.Errorf("lent_requests %d, %d before: the worker did not serve the 10 MiB request on the lent connection", lent, before)
	}
	c.do(t, "GET", "/hello") // the connection goes on after the handed-over output

	// A client reading at about 10 KB/s until the other requests are done.
	d := s.lendDial(t)
	d.do(t, "GET", "/hello")
	resp = d.head(t, "/big?size="+strconv.Itoa(size)+"&seed=trickle"+kind)
	othersDone := make(chan struct{})
	got := make(chan []byte, 1)
	go func() {
		var body []byte
		piece := make([]byte, 1<<10)
		for {
			select {
			case <-othersDone:
				rest, _ := io.ReadAll(resp.Body)
				got <- append(body, rest...)
				return
			case <-time.After(100 * time.Millisecond): // pacing the reader, not waiting for anything
			}
			n, err := io.ReadFull(resp.Body, piece)
			body = append(body, piece[:n]...)
			if err != nil {
				got <- body
				return
			}
		}
	}()
	for i := range 10 {
		gwOK(t, fmt.Sprintf("request %d while a lent connection reads at 10 KB/s", i), gwGet(t, s.URL+"/hello"))
	}
	select {
	case body := <-got:
		t.Fatalf("the trickling reader ended (%d bytes) before the other requests were served", len(body))
	default:
	}
	close(othersDone)
	if body := <-got; len(body) != size || gwSHA(body) != resp.Header.Get("X-Sha256") {
		t.Errorf("the trickled response: %d bytes, want %d whose sha256 is %s", len(body), size, resp.Header.Get("X-Sha256"))
	}
}

// TestLendSlowUpload: a client sending its request body slowly on a lent
// connection holds no worker: with one worker, other requests are served
// meanwhile, and the upload arrives whole. A body of up to 64 KiB: the
// worker hands the connection back with the part it read, and the master
// reads the body before it takes a worker. A larger one: the master watches
// it arrive, finds it slow and reads it into a file first (spool.go). The
// same on the master's path (--lend=false).
func TestLendSlowUpload(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		args []string
	}{
		{"60KB", 60000, nil},
		{"1MiB", 1 << 20, nil},
		{"1MiB-nolend", 1 << 20, []string{"--lend=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := lendStart(t, append([]string{"--workers", "1", "--timeout", "10"}, tc.args...)...)
			c := s.lendDial(t)
			c.do(t, "GET", "/hello")
			upload := bytes.Repeat(gwLines(), 1+tc.size/len(gwLines()))[:tc.size]
			head := fmt.Sprintf("POST /read?mode=chunks HTTP/1.1\r\nHost: lend.test\r\nContent-Length: %d\r\n\r\n", len(upload))
			if _, err := io.WriteString(c, head+string(upload[:1000])); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				gwOK(t, fmt.Sprintf("request %d while a client sends its body slowly", i), gwGet(t, s.URL+"/hello"))
			}
			if _, err := c.Write(upload[1000:]); err != nil {
				t.Fatal(err)
			}
			c.readUpload(t, "the slow upload", upload)
			c.do(t, "GET", "/hello")
		})
	}
}

// TestLendWorkerSegv: a worker killed by SIGSEGV costs the request it was
// serving on a lent connection, the connection's first or a later one (502
// before the headers, a truncated body and a closed connection after), and
// the other connection it held goes
// back to the master untouched: its next request is served by the
// replacement, without reconnecting.
func TestLendWorkerSegv(t *testing.T) {
	s := lendStart(t, "--workers", "1")
	b := s.lendDial(t)
	for _, tc := range []struct{ name, target string }{
		{"first", "/crash?how=segv&id=first"}, // the request that lends the connection
		{"before", "/crash?how=segv&id=before"},
		{"after", "/crash?how=segv&after=headers&id=after"},
		{"killed", "/block?id=killed"},
	} {
		a := s.lendDial(t)
		pid := b.pid(t)
		if tc.name != "first" {
			if mine := a.pid(t); mine != pid {
				t.Fatalf("%s: the two connections are served by %d and %d with one worker", tc.name, pid, mine)
			}
		}
		if _, err := io.WriteString(a, lendRequest("GET", tc.target)); err != nil {
			t.Fatal(err)
		}
		if tc.name == "killed" {
			if started := harness.WaitFile(t, s.gwRecord("killed.started")); started != strconv.Itoa(pid) {
				t.Fatalf("the block runs in %s, not in the connection's worker %d", started, pid)
			}
			if err := syscall.Kill(pid, syscall.SIGSEGV); err != nil {
				t.Fatal(err)
			}
		}
		req, _ := http.NewRequest("GET", "/", nil)
		resp, err := http.ReadResponse(a.br, req)
		if err != nil {
			t.Fatalf("%s: no response on the connection whose worker died: %v", tc.name, err)
		}
		body, err := io.ReadAll(resp.Body)
		switch tc.name {
		case "after":
			if resp.StatusCode != 200 || err == nil || string(body) != "first chunk before the crash\n" {
				t.Errorf("%s: %d %q (%v), want the first chunk of a 200 cut short", tc.name, resp.StatusCode, body, err)
			}
		default:
			if resp.StatusCode != 502 || err != nil {
				t.Errorf("%s: %d %q (%v), want 502", tc.name, resp.StatusCode, body, err)
			}
		}
		if rest, err := io.ReadAll(a.br); len(rest) > 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
			t.Errorf("%s: after the failed request %q (%v), want the connection closed", tc.name, rest, err)
		}
		harness.WaitFor(t, "the killed worker to be reaped", func() bool { return harness.ProcessReaped(pid) })
		if next := b.pid(t); next == pid {
			t.Errorf("%s: the other connection's request served by the dead worker %d", tc.name, pid)
		}
	}
}

// TestLendWorkerDiesOwingAResponse: a worker that dies while a client has
// not yet read all of a response it wrote (the rest waits in the worker, to
// be written as the client reads: OWED) costs that connection, which the
// master closes; it is not served again as if the response were whole, and
// the other connection the worker held is served by its replacement.
func TestLendWorkerDiesOwingAResponse(t *testing.T) {
	s := lendStart(t, "--workers", "1")
	other := s.lendDial(t)
	pid := other.pid(t)
	c := s.lendDial(t)
	if mine := c.pid(t); mine != pid {
		t.Fatalf("the two connections are served by %d and %d with one worker", pid, mine)
	}
	// More than the kernel's socket buffers take: the worker owes the rest.
	const size = 48 << 20
	resp := c.head(t, "/big?size="+strconv.Itoa(size)+"&seed=owed")
	if got := resp.Header.Get("X-Pid"); got != strconv.Itoa(pid) {
		t.Fatalf("the big response came from %s, not the connection's worker %d", got, pid)
	}
	first := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	// The worker is free meanwhile: the other connection is served.
	if again := other.pid(t); again != pid {
		t.Fatalf("the other connection moved from worker %d to %d", pid, again)
	}
	// Killed once it has finished that request (its page says it serves
	// nothing): until then the master closes the connection, which a client
	// may retry, rather than give it back.
	harness.WaitFor(t, "the worker to finish the other connection's request", func() bool {
		return s.serving(t) == 0
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// A hang guard, not a timing: a connection given back as if whole would
	// wait here for the rest until the server's idle timeout.
	c.SetReadDeadline(time.Now().Add(lendHangGuard))
	rest, err := io.ReadAll(resp.Body)
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) || len(first)+len(rest) >= size {
		t.Fatalf("after the worker died: %d of %d bytes (%v), want the body cut short by a closed connection",
			len(first)+len(rest), size, err)
	}
	if more, err := io.ReadAll(c.br); len(more) > 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("after the cut-short body %q (%v), want the connection closed", more, err)
	}
	harness.WaitFor(t, "the killed worker to be reaped", func() bool { return harness.ProcessReaped(pid) })
	if next := other.pid(t); next == pid {
		t.Errorf("the other connection's request served by the dead worker %d", pid)
	}
}

// lendHangGuard bounds one request of a load run. It is below the 30 s in
// which the server closes a connection that sends no request headers, so
// that a request nobody answers shows as this client's timeout (a hang),
// not as an ordinary close.
const lendHangGuard = 20 * time.Second

// lendLoadResult is what a load run saw.
type lendLoadResult struct {
	ok       int64
	failures []string
}

// lendLoad runs clients keep-alive clients, each on its own raw connection,
// asking /pid until stop is closed. A request without a complete 200 is a
// failure, and its client connects again; a connection the server closes
// after a response that said so is not. done delivers the result once
// every client has finished; progress counts the 200s so far.
func (s *gwServer) lendLoad(clients int) (stop chan struct{}, progress func() int64, done <-chan lendLoadResult) {
	stop = make(chan struct{})
	var mu sync.Mutex
	var res lendLoadResult
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn net.Conn
			var br *bufio.Reader
			fail := func(format string, args ...any) {
				mu.Lock()
				res.failures = append(res.failures, fmt.Sprintf("client %d at %s: ", i, time.Now().Format("15:04:05.000"))+fmt.Sprintf(format, args...))
				mu.Unlock()
				if conn != nil {
					conn.Close()
					conn = nil
				}
			}
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			req, _ := http.NewRequest("GET", "/", nil)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if conn == nil {
					var err error
					if conn, err = net.Dial("tcp", s.addr); err != nil {
						fail("dial: %v", err)
						continue
					}
					br = bufio.NewReader(conn)
				}
				_ = conn.SetDeadline(time.Now().Add(lendHangGuard))
				if _, err := io.WriteString(conn, lendRequest("GET", "/pid")); err != nil {
					fail("write: %v", err)
					continue
				}
				resp, err := http.ReadResponse(br, req)
				if err != nil {
					fail("read: %v", err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil || resp.StatusCode != 200 {
					fail("%d %q %v", resp.StatusCode, body, err)
					continue
				}
				mu.Lock()
				res.ok++
				mu.Unlock()
				if resp.Close {
					conn.Close()
					conn = nil
				}
			}
		}()
	}
	ch := make(chan lendLoadResult, 1)
	go func() {
		wg.Wait()
		mu.Lock()
		ch <- res
		mu.Unlock()
	}()
	progress = func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return res.ok
	}
	return stop, progress, ch
}

// lendAwaitLoad ends a load run and returns its result; a client still
// waiting on its connection after harness.Deadline fails the test.
func lendAwaitLoad(t *testing.T, stop chan struct{}, done <-chan lendLoadResult) lendLoadResult {
	t.Helper()
	close(stop)
	select {
	case res := <-done:
		return res
	case <-time.After(harness.Deadline):
		t.Fatalf("a client connection still hangs %s after the load stopped", harness.Deadline)
	}
	return lendLoadResult{}
}

// lendAwaitProgress waits until the load has had n more 200s.
func lendAwaitProgress(t *testing.T, progress func() int64, n int64) {
	t.Helper()
	from := progress()
	harness.WaitFor(t, fmt.Sprintf("%d more requests served", n), func() bool { return progress() >= from+n })
}

// TestLendWorkerSegvUnderLoad: keep-alive clients hammer the server (their
// connections lent to the two workers) while a worker is killed by SIGSEGV
// again and again: each kill costs at most the one request that worker was
// serving, no other client sees an error, and no connection hangs.
func TestLendWorkerSegvUnderLoad(t *testing.T) {
	s := lendStart(t, "--workers", "2")
	stop, progress, done := s.lendLoad(8)
	const kills = 4
	for k := range kills {
		lendAwaitProgress(t, progress, 200)
		var live []lendWorker
		harness.WaitFor(t, "two workers with lent requests", func() bool {
			live = s.workers(t)
			return len(live) == 2 && live[0].Lent > 0 && live[1].Lent > 0
		})
		pid := live[k%2].PID
		if err := syscall.Kill(pid, syscall.SIGSEGV); err != nil {
			t.Fatal(err)
		}
		harness.WaitFor(t, "the killed worker to be reaped", func() bool { return harness.ProcessReaped(pid) })
	}
	lendAwaitProgress(t, progress, 200)
	res := lendAwaitLoad(t, stop, done)
	for _, f := range res.failures {
		if strings.Contains(f, "i/o timeout") {
			t.Errorf("a request was never answered: %s", f)
		}
	}
	if len(res.failures) > kills {
		t.Errorf("%d requests failed with %d workers killed (at most one each), %d served:\n%s",
			len(res.failures), kills, res.ok, strings.Join(res.failures, "\n"))
	}
	t.Logf("%d requests served, %d failed, %d workers killed:\n%s", res.ok, len(res.failures), kills, strings.Join(res.failures, "\n"))
}

// TestLendTimeout: a request on a lent connection past --timeout gets the
// master's 504 (the master reads the worker's page: it never saw the
// request), the worker is killed and replaced.
func TestLendTimeout(t *testing.T) {
	s := lendStart(t, "--workers", "1", "--timeout", "2")
	c := s.lendDial(t)
	pid := c.pid(t)
	resp, body := c.do(t, "GET", "/block?id=never")
	if started := harness.WaitFile(t, s.gwRecord("never.started")); started != strconv.Itoa(pid) {
		t.Errorf("the block ran in %s, not in the connection's worker %d", started, pid)
	}
	if resp.StatusCode != 504 {
		t.Errorf("a lent request past --timeout: %d %q, want 504", resp.StatusCode, body)
	}
	harness.WaitFor(t, "the timed-out worker to be reaped", func() bool { return harness.ProcessReaped(pid) })
	if next := s.lendDial(t).pid(t); next == pid {
		t.Errorf("served by the timed-out worker %d", pid)
	}
}

// TestLendTakeBack: a request on a connection lent to a worker busy with a
// slow request on another connection is not stuck behind it: the worker
// gives the waiting connection back and the other worker serves it while
// the slow request still runs; so are new connections' first requests.
func TestLendTakeBack(t *testing.T) {
	s := lendStart(t, "--workers", "2")
	var slow, waiting *lendConn
	var busy int
	byWorker := map[int]*lendConn{}
	for try := 0; slow == nil; try++ {
		if try == 20 {
			t.Fatal("20 connections, never two lent to one worker")
		}
		c := s.lendDial(t)
		pid := c.pid(t)
		// Asked again right away: both are lent to that worker now (a
		// connection idle for 2 s goes back to the master).
		if prev := byWorker[pid]; prev != nil && prev.pid(t) == pid && c.pid(t) == pid {
			slow, waiting, busy = prev, c, pid
		}
		byWorker[pid] = c
	}
	if _, err := io.WriteString(slow, lendRequest("GET", "/block?id=slow")); err != nil {
		t.Fatal(err)
	}
	if started := harness.WaitFile(t, s.gwRecord("slow.started")); started != strconv.Itoa(busy) {
		t.Fatalf("the slow request runs in %s, not in the connection's worker %d", started, busy)
	}
	other := waiting.pid(t)
	if other == busy {
		t.Errorf("the waiting connection was served by the busy worker %d", busy)
	}
	s.gwRelease(t, "slow")
	resp, body := gwReadResponse(t, slow.br, "GET")
	if resp.StatusCode != 200 || string(body) != strconv.Itoa(busy) {
		t.Errorf("the slow request: %d %q, want 200 from %d", resp.StatusCode, body, busy)
	}
}

// TestLendSlowRequestKeepsItsConnectionOnTheMaster: a lent connection
// whose requests take over 20 ms (their moving average, lend.py's
// Conn.cost: a quarter of a 100 ms one) goes back to the master for good:
// its later requests are served on the master's path (lending gains
// nothing against a slow request), while a connection of quick requests
// stays lent.
func TestLendSlowRequestKeepsItsConnectionOnTheMaster(t *testing.T) {
	s := lendStart(t, "--workers", "1")
	c := s.lendDial(t)
	c.do(t, "GET", "/hello") // lends it
	before := s.lent(t)
	c.do(t, "GET", "/hello")
	if lent := s.lent(t); lent != before+1 {
		t.Fatalf("lent_requests %d after one quick request on a lent connection, want %d", lent, before+1)
	}
	if resp, body := c.do(t, "GET", "/sleep?ms=100"); resp.StatusCode != 200 {
		t.Fatalf("GET /sleep: %d %q", resp.StatusCode, body)
	}
	slow := s.lent(t)
	for i := range 3 {
		if resp, body := c.do(t, "GET", "/hello"); resp.StatusCode != 200 {
			t.Fatalf("request %d after the slow one: %d %q", i, resp.StatusCode, body)
		}
	}
	if lent := s.lent(t); lent != slow {
		t.Errorf("lent_requests %d after three quick requests that followed a slow one, want %d: the connection was lent again", lent, slow)
	}
	quick := s.lendDial(t)
	quick.do(t, "GET", "/hello")
	quick.do(t, "GET", "/hello")
	if lent := s.lent(t); lent != slow+1 {
		t.Errorf("lent_requests %d after a new connection's second request, want %d: quick connections are still lent", lent, slow+1)
	}
}

// TestLendQuickRequestsGoBeforeSlowOnes: once the master has seen a path's
// request take long, a new request for it is not lent, and when it waits
// for a worker a quick request that came after it goes first
// (internal/gateway/slowpaths.go): the quick one waits for the request in
// progress only, not also for the slow one queued before it.
func TestLendQuickRequestsGoBeforeSlowOnes(t *testing.T) {
	s := lendStart(t, "--workers", "1", "--timeout", "30")
	c := s.lendDial(t)
	// The connection's first request is lent; a slow one hands it back for
	// good, and the master serves its requests from then on.
	if resp, body := c.do(t, "GET", "/sleep?ms=100"); resp.StatusCode != 200 {
		t.Fatalf("GET /sleep: %d %q", resp.StatusCode, body)
	}
	lent := s.lent(t)
	// The master learns that /block is slow: one runs 30 ms on its path.
	if _, err := io.WriteString(c, lendRequest("GET", "/block?id=teach")); err != nil {
		t.Fatal(err)
	}
	harness.WaitFile(t, s.gwRecord("teach.started"))
	harness.WaitFor(t, "the request to run 30 ms", func() bool { return s.oldest(t) >= 0.03 })
	s.gwRelease(t, "teach")
	if resp, body := gwReadResponse(t, c.br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("GET /block?id=teach: %d %q", resp.StatusCode, body)
	}
	// The one worker, held by a request of the master's; a slow request,
	// then a quick one, wait for it.
	if _, err := io.WriteString(c, lendRequest("GET", "/block?id=held")); err != nil {
		t.Fatal(err)
	}
	harness.WaitFile(t, s.gwRecord("held.started"))
	slow, quick := s.lendDial(t), s.lendDial(t)
	if _, err := io.WriteString(slow, lendRequest("GET", "/block?id=slow")); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "the slow request to queue", func() bool { return s.status(t).Queued == 1 })
	if _, err := io.WriteString(quick, lendRequest("GET", "/pid")); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "the quick request to queue", func() bool { return s.status(t).Queued == 2 })
	answered := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", "/", nil)
		resp, err := http.ReadResponse(quick.br, req)
		if err != nil {
			answered <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		answered <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	s.gwRelease(t, "held")
	if resp, body := gwReadResponse(t, c.br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("the held request: %d %q", resp.StatusCode, body)
	}
	// Which goes first: the quick request's answer, or the slow one's start
	// (it holds the worker until released).
	var answer string
	slowFirst := false
	harness.WaitFor(t, "the quick request's answer or the slow one's start", func() bool {
		select {
		case answer = <-answered:
			return true
		default:
		}
		_, err := os.Stat(s.gwRecord("slow.started"))
		slowFirst = err == nil
		return slowFirst
	})
	s.gwRelease(t, "slow")
	if slowFirst {
		t.Fatal("the slow request, queued first, went first: the quick one waits for it")
	}
	if !strings.HasPrefix(answer, "200 ") {
		t.Fatalf("the quick request: %q", answer)
	}
	if resp, body := gwReadResponse(t, slow.br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("the slow request: %d %q", resp.StatusCode, body)
	}
	// The quick request's connection was lent with it: its next request is
	// the worker's; the slow one's was not: its next comes through the master.
	quick.pid(t)
	if got := s.lent(t); got != lent+1 {
		t.Errorf("lent_requests %d after a second request on the quick connection, want %d: it was not lent", got, lent+1)
	}
	slow.pid(t)
	if got := s.lent(t); got != lent+1 {
		t.Errorf("lent_requests %d after a second request on the slow connection, want %d: a request for a slow path was lent", got, lent+1)
	}
}

// TestLendNewConnectionsNotBehindALentRequest: while one worker of two is
// held by a request of a lent connection, new connections' first requests,
// which the master dispatches, are served by the other worker. The master's
// queue does not see the held worker as busy (a lent request takes no
// slot): acquire prefers a worker that serves no lent request, and a
// pipelined request is not taken back to the held worker's idle slot.
// KNOWN BUG: this test still fails about one run in eight (a request that
// finds only the held worker's slot free waits behind the held request;
// see the report of the lendtests branch).
func TestLendNewConnectionsNotBehindALentRequest(t *testing.T) {
	s := lendStart(t, "--workers", "2", "--timeout", "10")
	c := s.lendDial(t)
	busy := c.pid(t)
	if _, err := io.WriteString(c, lendRequest("GET", "/block?id=held")); err != nil {
		t.Fatal(err)
	}
	if started := harness.WaitFile(t, s.gwRecord("held.started")); started != strconv.Itoa(busy) {
		t.Fatalf("the held request runs in %s, not in the connection's worker %d", started, busy)
	}
	for i := range 6 {
		if pid := s.lendDial(t).pid(t); pid == busy {
			t.Errorf("new connection %d was served by the held worker %d", i, busy)
		}
	}
	s.gwRelease(t, "held")
	resp, body := gwReadResponse(t, c.br, "GET")
	if resp.StatusCode != 200 || string(body) != strconv.Itoa(busy) {
		t.Errorf("the held request: %d %q, want 200 from %d (a request stuck behind it past --timeout costs it its worker)", resp.StatusCode, body, busy)
	}
}

// TestLendBurstOfConnectionsIsSpread: 32 clients connect at once, as wrk
// does, and each connection is lent to a worker with its first request;
// neither worker ends up with fewer than a quarter of them (a worker serves
// the connections it holds in turn, so one holding 31 made every request on
// them wait for 30 others while the other worker idled; an even split is
// the rule, 23 to 9 happens on a busy machine when a worker's requests run
// late and those parked behind them are taken back). The connections
// then stay quiet, so that no rescue moves them before each is asked which
// worker holds it, one at a time.
func TestLendBurstOfConnectionsIsSpread(t *testing.T) {
	s := lendStart(t, "--workers", "2")
	const n = 32
	conns := make([]*lendConn, n)
	for i := range conns {
		conns[i] = s.lendDial(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := io.WriteString(c, lendRequest("GET", "/sleep?ms=2")); err != nil {
				errs <- err
				return
			}
			resp, err := http.ReadResponse(c.br, nil)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err == nil && resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a first request: %v", err)
		}
	}
	held := map[int]int{}
	for _, c := range conns {
		held[c.pid(t)]++
	}
	if s.lent(t) < n {
		t.Fatalf("%d of the %d /pid requests were read by the workers from lent connections: not every connection was lent", s.lent(t), n)
	}
	if len(held) != 2 {
		t.Fatalf("the %d connections are held by %d workers (%v), want both", n, len(held), held)
	}
	for pid, k := range held {
		if k < n/4 {
			t.Errorf("worker %d holds %d of the %d connections (%v), want at least a quarter", pid, k, n, held)
		}
	}
}

// TestLendReloadUnderLoad: 20 SIGHUP reloads while keep-alive clients, their
// connections lent, send requests: not one request fails, not one socket
// error (a draining worker gives its connections back to the master).
func TestLendReloadUnderLoad(t *testing.T) {
	s := lendStart(t, "--workers", "2")
	stop, progress, done := s.lendLoad(6)
	for i := 1; i <= 20; i++ {
		lendAwaitProgress(t, progress, 100)
		s.Signal(syscall.SIGHUP)
		harness.WaitFor(t, fmt.Sprintf("reload %d to complete", i), func() bool {
			return strings.Count(s.Logs(), "reload complete") >= i
		})
	}
	lendAwaitProgress(t, progress, 100)
	if s.lent(t) == 0 {
		t.Errorf("no request served on a lent connection by the last workers")
	}
	res := lendAwaitLoad(t, stop, done)
	if len(res.failures) > 0 {
		t.Errorf("%d requests failed across 20 reloads (%d served):\n%s", len(res.failures), res.ok, strings.Join(res.failures, "\n"))
	}
	t.Logf("%d requests served across 20 reloads", res.ok)
}

// TestLendMaxRequests: --max-requests counts the requests the workers read
// from a lent connection themselves (the master never sees them): workers
// are replaced, and the connection they held goes on without a failed
// request. One connection, so that only the lent requests can reach the
// limit (with two, a rescue may hand one back now and then, and its next
// request, the master's, would count).
func TestLendMaxRequests(t *testing.T) {
	s := lendStart(t, "--workers", "2", "--max-requests", "5")
	c := s.lendDial(t)
	pids := map[int]bool{}
	served := 0
	harness.WaitFor(t, "five workers to have served", func() bool {
		pids[c.pid(t)] = true // fails the test unless a complete 200 on the same connection
		served++
		return len(pids) >= 5
	})
	t.Logf("%d workers served %d requests", len(pids), served)
}

// TestLendGracefulShutdown: SIGTERM while a lent connection's request runs:
// the request completes with its 200, an idle lent connection is closed, and
// the server exits 0 once its worker has stopped.
func TestLendGracefulShutdown(t *testing.T) {
	s := lendStart(t, "--workers", "1")
	c, idle := s.lendDial(t), s.lendDial(t)
	pid := c.pid(t)
	idle.pid(t)
	if _, err := io.WriteString(c, lendRequest("GET", "/block?id=drain")); err != nil {
		t.Fatal(err)
	}
	harness.WaitFile(t, s.gwRecord("drain.started"))
	s.Signal(syscall.SIGTERM)
	s.WaitLog("draining")
	s.gwRelease(t, "drain")
	resp, body := gwReadResponse(t, c.br, "GET")
	if resp.StatusCode != 200 || string(body) != strconv.Itoa(pid) {
		t.Errorf("the request in flight at SIGTERM: %d %q, want 200 from %d", resp.StatusCode, body, pid)
	}
	if code := s.Wait(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	// The master waited for its worker (which holds the client's socket
	// and could answer on its own) before it stopped.
	workerStopped, masterStopped := -1, -1
	for i, line := range strings.Split(s.Logs(), "\n") {
		if strings.Contains(line, `msg="worker state"`) && strings.Contains(line, "pid="+strconv.Itoa(pid)+" ") && strings.Contains(line, "to=stopped") {
			workerStopped = i
		}
		if strings.Contains(line, "msg=stopped") {
			masterStopped = i
		}
	}
	if workerStopped < 0 || masterStopped < workerStopped {
		t.Errorf("the master stopped (line %d) without seeing its worker %d stop (line %d):\n%s", masterStopped, pid, workerStopped, s.Logs())
	}
	for what, conn := range map[string]*lendConn{"the drained": c, "the idle": idle} {
		if rest, err := io.ReadAll(conn.br); len(rest) > 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
			t.Errorf("%s connection after the exit: %q %v, want it closed", what, rest, err)
		}
	}
}
