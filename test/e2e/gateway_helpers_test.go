package e2e

// Helpers of the gateway end-to-end tests. Every identifier here starts with
// "gw" so the other test files of this package (demo_*) cannot collide.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// gwIOGuard bounds a single client read or write so that a server which stops
// answering fails the test instead of hanging it. Not a speed assertion.
const gwIOGuard = 60 * time.Second

// gwServer is a running `wsgate serve --app pep3333:app` plus the directory
// where the app leaves its records (E2E_RECORD_DIR).
type gwServer struct {
	*harness.Server
	rec  string
	addr string // host:port of the first listener
}

func gwAppsDir() string { return filepath.Join(testutil.RepoRoot(), "test", "e2e", "apps") }

// gwStart serves test/e2e/apps/pep3333.py:app with extra serve flags. When the
// test ends it stops the server (exit 0 required) and fails if a validator
// assertion (a PEP 3333 violation) was logged.
func gwStart(t *testing.T, extra ...string) *gwServer {
	t.Helper()
	return gwStartApp(t, "pep3333:app", "", extra...)
}

func gwStartApp(t *testing.T, app, python string, extra ...string) *gwServer {
	t.Helper()
	return gwStartArgs(t, python, append([]string{"--app", app, "--pythonpath", gwAppsDir()}, extra...)...)
}

// gwStartArgs is gwStartApp with every argument of `wsgate serve` given
// (a CONFIG_URI instead of --app, for instance).
func gwStartArgs(t *testing.T, python string, args ...string) *gwServer {
	t.Helper()
	rec := t.TempDir()
	srv := harness.Start(t, harness.Options{Args: args, Env: []string{"E2E_RECORD_DIR=" + rec}, Python: python})
	s := &gwServer{Server: srv, rec: rec, addr: strings.TrimPrefix(srv.URL, "http://")}
	t.Cleanup(func() {
		srv.Stop()
		// The validator fails through its assert_() helper (the runtime
		// raises AssertionError of its own for app errors, and app
		// tracebacks pass through validate.py, so neither says anything).
		if logs := srv.Logs(); strings.Contains(logs, "in assert_") || strings.Contains(logs, "garbage collected without being closed") {
			t.Errorf("a wsgiref.validate assertion (PEP 3333 violation) was logged:\n%s", srv.Logs())
		}
	})
	return s
}

// gwRecord is the path of a record file the app writes.
func (s *gwServer) gwRecord(name string) string { return filepath.Join(s.rec, name) }

// gwRelease lets a /block?id=ident request finish.
func (s *gwServer) gwRelease(t *testing.T, ident string) {
	t.Helper()
	if err := os.WriteFile(s.gwRecord(ident+".release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// gwClient is a plain HTTP client with a hang guard.
var gwClient = &http.Client{Timeout: gwIOGuard}

type gwResponse struct {
	status  int
	header  http.Header
	body    []byte
	bodyErr error // error while reading the body (a truncated response)
	resp    *http.Response
}

func gwDo(t *testing.T, req *http.Request) gwResponse {
	t.Helper()
	resp, err := gwClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return gwResponse{status: resp.StatusCode, header: resp.Header, body: body, bodyErr: err, resp: resp}
}

// gwTry is gwGet for responses that may legitimately fail in transport: a
// failure gives status -1 and the error in bodyErr.
func gwTry(t *testing.T, url string) gwResponse {
	t.Helper()
	resp, err := gwClient.Get(url)
	if err != nil {
		return gwResponse{status: -1, bodyErr: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return gwResponse{status: resp.StatusCode, header: resp.Header, body: body, bodyErr: err, resp: resp}
}

func gwGet(t *testing.T, url string) gwResponse {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return gwDo(t, req)
}

// gwOK fails the test unless r is a 200 whose body was read completely.
func gwOK(t *testing.T, what string, r gwResponse) {
	t.Helper()
	if r.status != 200 || r.bodyErr != nil {
		t.Fatalf("%s: status %d, body error %v, want 200 and a complete body; body: %.300q", what, r.status, r.bodyErr, r.body)
	}
}

// gwJSON decodes a 200 JSON response into v.
func gwJSON(t *testing.T, what string, r gwResponse, v any) {
	t.Helper()
	gwOK(t, what, r)
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%s: %v in %.300q", what, err, r.body)
	}
}

func gwSHA(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// gwDial opens a raw connection to the server with a hang guard.
func (s *gwServer) gwDial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatalf("dial %s: %v", s.addr, err)
	}
	_ = c.SetDeadline(time.Now().Add(gwIOGuard))
	t.Cleanup(func() { c.Close() })
	return c
}

// gwRawExchange writes raw request bytes and returns everything the server
// sends until it closes the connection.
func (s *gwServer) gwRawExchange(t *testing.T, raw string) []byte {
	t.Helper()
	c := s.gwDial(t)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("writing request: %v", err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading response to %.80q: %v (got %.300q)", raw, err, b)
	}
	return b
}

// gwReadResponse parses one response for a request of the given method from
// br, reading its body (if the method and status allow one) completely.
func gwReadResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "/", nil)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("reading response to %s: %v", method, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading %s response body: %v (got %.300q)", method, err, body)
	}
	return resp, body
}

// gwLatin1 is the string whose code points are the bytes of b: how PEP 3333
// says a server presents raw bytes in native strings.
func gwLatin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// gwLines builds a body of text lines of varied lengths (one longer than any
// read buffer) ending without a newline, so every wsgi.input reading mode
// meets its edge cases.
func gwLines() []byte {
	var sb strings.Builder
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&sb, "line %d %s\n", i, strings.Repeat("ab", i%97))
	}
	sb.WriteString(strings.Repeat("L", 70000) + "\n")
	sb.WriteString("\n\nlast line without newline")
	return []byte(sb.String())
}

// gwHideLength wraps a body so net/http cannot see its length and sends it
// chunked, in pieces of at most n bytes (one chunk each).
// gwPost is a POST of body. With piece > 0 the body goes out in reads of at
// most piece bytes and without a Content-Length (chunked over HTTP/1.1, DATA
// frames over HTTP/2); with 0 it goes as it is, a Content-Length if its type
// tells one (a *bytes.Reader does).
func gwPost(t *testing.T, url string, body io.Reader, piece int) *http.Request {
	t.Helper()
	if piece > 0 {
		body = gwHideLength{r: body, n: piece}
	}
	req, err := http.NewRequest("POST", url, body)
	if err != nil {
		t.Fatal(err)
	}
	if piece > 0 {
		req.ContentLength = -1
	}
	return req
}

type gwHideLength struct {
	r io.Reader
	n int
}

func (h gwHideLength) Read(p []byte) (int, error) {
	if len(p) > h.n {
		p = p[:h.n]
	}
	return h.r.Read(p)
}

// gwReadBody reads a response body to its end.
func gwReadBody(resp *http.Response) ([]byte, error) { return io.ReadAll(resp.Body) }

// gwFailedVisibly fails the test unless a response whose app failed mid-body
// tells the client so: an error status (the server had not sent the headers
// yet), the already-started 200 with firstChunk cut short, or no response at
// all (the connection cut before anything reached the client).
func gwFailedVisibly(t *testing.T, what string, r gwResponse, firstChunk string) {
	t.Helper()
	switch {
	case r.status == 500 || r.status == 502 || r.status == -1:
	case r.status == 200 && r.bodyErr != nil:
		if !strings.HasPrefix(string(r.body), firstChunk) {
			t.Errorf("%s: truncated 200 with body %.200q, want it to start with %q", what, r.body, firstChunk)
		}
	case r.status == 200:
		t.Errorf("%s: the response ended cleanly (%d bytes) although the app failed mid-body: the client cannot tell it is truncated", what, len(r.body))
	default:
		t.Errorf("%s: status %d, want 500/502 or a visibly truncated 200", what, r.status)
	}
}

// gwChildren lists the live child processes of pid (a master's workers).
func gwChildren(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[0] != "Z" && f[1] == strconv.Itoa(pid) {
			kid, _ := strconv.Atoi(e.Name())
			kids = append(kids, kid)
		}
	}
	return kids
}

// gwReadChars is the bytes a process has read through read-like system calls
// (rchar in /proc/PID/io).
func gwReadChars(t *testing.T, pid int) int64 {
	t.Helper()
	return gwProcIO(t, pid, "rchar")
}

// gwProcIO is one counter of /proc/PID/io (rchar, syscr…), for the whole
// process (every thread).
func gwProcIO(t *testing.T, pid int, key string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/io", key, pid)
	return 0
}
