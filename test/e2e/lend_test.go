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
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

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
	PID    int   `json:"pid"`
	Served int64 `json:"requests_served"`
	Lent   int64 `json:"lent_requests"`
}

func (s *lendServer) workers(t *testing.T) []lendWorker {
	t.Helper()
	var pools []struct {
		Live []lendWorker `json:"live_workers"`
	}
	out := wsgateCmd(t, "status", "--json", "--control-socket", s.ctl)
	if err := json.Unmarshal([]byte(out), &pools); err != nil || len(pools) != 1 {
		t.Fatalf("status --json (%v):\n%s", err, out)
	}
	return pools[0].Live
}

// lent is the number of requests the live workers served on lent
// connections.
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
// served by the worker holding the connection (lent_requests counts them),
// and each response is what the master gives: JSON, a chunked stream, a
// 3 MiB body, HEAD, 204, 304, two Set-Cookie headers and a latin-1 one; the
// environ the worker builds is the master's, key by key (REMOTE_PORT too:
// the same connection), for a plain request, for two Cookie headers, a
// query string and a percent-encoded path.
func TestLendKeepAlive(t *testing.T) {
	s := lendStart(t, "--workers", "1")
	c := s.lendDial(t)
	first := c.environ(t, "/environ?a=1")  // the master's: this request lends the connection
	second := c.environ(t, "/environ?a=1") // the worker's
	lendSameEnviron(t, "second /environ on the connection", first, second)
	served := 2

	for _, tc := range []struct {
		target  string
		headers []string
	}{
		{"/environ/two-cookies", []string{"Cookie: a=1", "Cookie: b=2; c=3"}},
		{"/environ/q?x=1&y=caf%C3%A9+%2F&empty=&x=2", nil},
		{"/environ/caf%C3%A9/%2Fslash%20space/%ff", []string{"X-Custom: one", "X-Custom: two", "Accept: */*"}},
	} {
		master := s.lendDial(t).environ(t, tc.target, tc.headers...)
		worker := c.environ(t, tc.target, tc.headers...)
		served++
		lendSameEnviron(t, "GET "+tc.target, master, worker, "REMOTE_PORT")
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
	if lent := s.lent(t); lent < int64(served-1) {
		t.Errorf("lent_requests %d, want at least %d (every request after the connection's first)", lent, served-1)
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
	resp, body := gwReadResponse(t, c.br, "POST")
	var got struct {
		SHA    string `json:"sha256"`
		Length int    `json:"length"`
	}
	if err := json.Unmarshal(body, &got); resp.StatusCode != 200 || err != nil || got.SHA != gwSHA(upload) || got.Length != len(upload) {
		t.Errorf("chunked POST on a lent connection: %d %.300q, want the upload's %d bytes and sha256", resp.StatusCode, body, len(upload))
	}
	if lent := s.lent(t); lent != before {
		t.Errorf("lent_requests went from %d to %d: the worker served the chunked request itself", before, lent)
	}
	resp, body = c.do(t, "GET", "/hello")
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
