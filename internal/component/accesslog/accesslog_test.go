package accesslog

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/componenttest"
	_ "github.com/wsgate/wsgate/internal/component/requestid"
)

// site builds accesslog with options (alternating keys and values) around
// app, logging to a file in a temporary directory; it returns the handler
// and a function that reads the lines logged so far.
func site(t *testing.T, app http.Handler, options ...string) (http.Handler, func() []string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "access.log")
	h := componenttest.Build(t, &componenttest.Host{}, "accesslog", append([]string{"file", logPath}, options...)...).Wrap(app)
	return h, func() []string {
		data, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		return strings.SplitAfter(string(data), "\n")[:strings.Count(string(data), "\n")]
	}
}

// textLine matches one line of the text formats; quoted fields are escaped
// (a `"` inside one is always preceded by a backslash).
var textLine = regexp.MustCompile(`^(\S+) - (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")? (\d+\.\d{6}) "((?:[^"\\]|\\.)*)"\n$`)

// unescape undoes the text formats' escaping.
func unescape(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch {
		case s[i] == '"' || s[i] == '\\':
			b.WriteByte(s[i])
		case s[i] == 'x':
			n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				t.Fatalf("bad escape in %q", s)
			}
			b.WriteByte(byte(n))
			i += 2
		default:
			t.Fatalf("unknown escape \\%c in %q", s[i], s)
		}
	}
	return b.String()
}

func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(201)
	_, _ = io.WriteString(w, "hello, world\n")
}

func TestCombinedLineFromARealClient(t *testing.T) {
	h, lines := site(t, http.HandlerFunc(hello))
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+`/p%22a\th?q="x"&r=\`, nil)
	req.Header.Set("Referer", `http://example.com/"quoted"\back`)
	req.Header.Set("User-Agent", "agent \"007\"\t\\ é")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	got := lines()
	if len(got) != 1 {
		t.Fatalf("%d lines: %q", len(got), got)
	}
	m := textLine.FindStringSubmatch(got[0])
	if m == nil {
		t.Fatalf("line does not parse: %q", got[0])
	}
	if m[1] != "127.0.0.1" || m[2] != "-" || m[5] != "201" || m[6] != "13" || m[10] != "-" {
		t.Errorf("fields: %q", m[1:])
	}
	if want := "GET " + req.URL.RequestURI() + " HTTP/1.1"; unescape(t, m[4]) != want {
		t.Errorf("request %q, want %q", unescape(t, m[4]), want)
	}
	if unescape(t, m[7]) != req.Header.Get("Referer") || unescape(t, m[8]) != req.Header.Get("User-Agent") {
		t.Errorf("referer %q, agent %q", unescape(t, m[7]), unescape(t, m[8]))
	}
	if strings.ContainsAny(m[8], "é\t") {
		t.Errorf("non-ASCII or control bytes left raw: %q", m[8])
	}
}

func TestForgedLineCannotBeInjected(t *testing.T) {
	h, lines := site(t, http.HandlerFunc(hello))
	forged := "x\" 200 1\n203.0.113.9 - admin [01/Jan/2026:00:00:00 +0000] \"GET /admin HTTP/1.1\" 200 1 \"-\" \"-\" 0.000001 \"-\"\r\n"
	// net/http refuses such bytes on the wire; a request built in Go can
	// carry them (HTTP/2 and future transports), and the log must hold.
	r := httptest.NewRequest("GET", "/", nil)
	r.RequestURI = "/" + forged
	r.Header.Set("User-Agent", forged)
	r.Header.Set("Referer", forged)
	h.ServeHTTP(httptest.NewRecorder(), r)
	got := lines()
	if len(got) != 1 {
		t.Fatalf("one request gave %d lines: %q", len(got), got)
	}
	m := textLine.FindStringSubmatch(got[0])
	if m == nil {
		t.Fatalf("line does not parse: %q", got[0])
	}
	if m[1] != "192.0.2.1" || unescape(t, m[8]) != forged || unescape(t, m[4]) != "GET /"+forged+" HTTP/1.1" {
		t.Errorf("fields moved: %q", m[1:])
	}
}

func TestCommonFormatAndEmptyBody(t *testing.T) {
	h, lines := site(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), "format", "common")
	r := httptest.NewRequest("DELETE", "/thing", nil)
	r.Header.Set("User-Agent", "curl")
	h.ServeHTTP(httptest.NewRecorder(), r)
	got := lines()
	m := textLine.FindStringSubmatch(got[0])
	if m == nil || m[5] != "200" || m[6] != "-" || m[7] != "" || m[8] != "" || strings.Contains(got[0], "curl") {
		t.Fatalf("common line %q: %q", got[0], m)
	}
}

func TestJSONLines(t *testing.T) {
	h, lines := site(t, http.HandlerFunc(hello), "format", "json")
	agent := "a\"b\\c\nd\x00e\x7f\u2028é"
	r := httptest.NewRequest("POST", "/j?x=1", nil)
	r.Header.Set("User-Agent", agent)
	r.Header.Set("Referer", "\xff\xfe")
	h.ServeHTTP(httptest.NewRecorder(), r)
	got := lines()
	if len(got) != 1 {
		t.Fatalf("%d lines: %q", len(got), got)
	}
	var e struct {
		Time, RemoteAddr, RemoteUser, Method, URI, Proto, Host, Referer, UserAgent, RequestID string
		Status                                                                                int
		Bytes                                                                                 int64
		Duration                                                                              float64
	}
	dec := json.NewDecoder(strings.NewReader(strings.NewReplacer("remote_addr", "RemoteAddr", "remote_user", "RemoteUser",
		"user_agent", "UserAgent", "request_id", "RequestID").Replace(got[0])))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("%q: %v", got[0], err)
	}
	if e.UserAgent != agent || e.Referer != "\ufffd\ufffd" || e.Method != "POST" || e.URI != "/j?x=1" ||
		e.Status != 201 || e.Bytes != 13 || e.RemoteAddr != "192.0.2.1" || e.Host != "example.com" || e.Duration < 0 {
		t.Errorf("%+v", e)
	}
}

// The line carries what the filters inside accesslog established: the id
// requestid gave, the address and user other components set in Facts.
func TestLineHasTheRequestsFacts(t *testing.T) {
	id := componenttest.Build(t, &componenttest.Host{}, "requestid").Wrap(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f := component.FactsOf(r)
			f.RemoteAddr, f.RemoteUser = "198.51.100.7", "alice smith"
			hello(w, r)
		}))
	h, lines := site(t, id)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	m := textLine.FindStringSubmatch(lines()[0])
	if m == nil {
		t.Fatalf("no parse: %q", lines())
	}
	if m[1] != "198.51.100.7" || unescape(t, m[2]) != "alice smith" || m[10] != w.Result().Header.Get("X-Request-ID") || m[10] == "" {
		t.Errorf("fields %q, response id %q", m[1:], w.Result().Header.Get("X-Request-ID"))
	}
}

func TestReopenOnHangup(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	f, err := openAppend(logPath)
	if err != nil {
		t.Fatal(err)
	}
	out := newOutput(f, logPath, 0, defaultFlush)
	out.watchHangup(slog.Default())
	defer out.close()
	h := (&AccessLog{format: "combined", out: out}).Wrap(http.HandlerFunc(hello))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/before", nil))
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/moved", nil))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	<-out.reopened
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/after", nil))
	old, _ := os.ReadFile(logPath + ".1")
	cur, _ := os.ReadFile(logPath)
	if strings.Count(string(old), "\n") != 2 || !strings.Contains(string(old), "/moved") || strings.Count(string(cur), "\n") != 1 || !strings.Contains(string(cur), "/after") {
		t.Errorf("rotated file %q, new file %q", old, cur)
	}
}

// A response the application cut off after it began (the gateway aborts
// with http.ErrAbortHandler) still has its line, marked in JSON, and the
// abort still reaches net/http.
func TestAbortedResponseIsLogged(t *testing.T) {
	h, lines := site(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "half a bo")
		panic(http.ErrAbortHandler)
	}), "format", "json")
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("the abort did not go on: recovered %v", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/cut", nil))
	}()
	got := lines()
	if len(got) != 1 || !strings.Contains(got[0], `"status":200,"bytes":9,`) || !strings.HasSuffix(got[0], `,"aborted":true}`+"\n") {
		t.Errorf("aborted response logged as %q", got)
	}
}

// With a buffer, lines wait until it fills or the filter closes, and are
// written whole, in order.
func TestBufferedLines(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	// flush: only a full buffer or close writes, here
	built := componenttest.Build(t, &componenttest.Host{}, "accesslog", "file", logPath, "buffer", "1k", "flush", "1h", "format", "common")
	h := built.Wrap(http.HandlerFunc(hello))
	count := func() int {
		data, _ := os.ReadFile(logPath)
		return strings.Count(string(data), "\n")
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/0", nil))
	if n := count(); n != 0 {
		t.Fatalf("a 1k buffer wrote %d lines at once", n)
	}
	sent := 1
	for ; count() == 0; sent++ { // about 80-byte lines: the 13th fills the buffer
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", fmt.Sprintf("/%d", sent), nil))
	}
	if written := count(); sent < 10 || written >= sent {
		t.Errorf("%d lines sent, %d written when the buffer filled", sent, written)
	}
	if err := built.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(logPath)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != sent {
		t.Fatalf("%d lines sent, %d in the file after close", sent, len(lines))
	}
	for i, line := range lines {
		if !strings.Contains(line, fmt.Sprintf(`"GET /%d HTTP/1.1"`, i)) || textLine.FindStringSubmatch(line+"\n") == nil {
			t.Errorf("line %d: %q", i, line)
		}
	}
}

// A gathered line is written `flush` after it, with no other line to
// push it out.
func TestBufferedLineFlushedByTheTimer(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	h := componenttest.Build(t, &componenttest.Host{}, "accesslog", "file", logPath, "buffer", "64k", "flush", "1ms").Wrap(http.HandlerFunc(hello))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/alone", nil))
	for guard := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if data, _ := os.ReadFile(logPath); strings.Contains(string(data), "/alone") {
			return
		}
		if time.Now().After(guard) {
			t.Fatal("a gathered line was never written by the timer")
		}
	}
}

// A request still running when its site was replaced (a configuration
// reload closed the filter) still gets its line.
func TestLineAfterClose(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	built := componenttest.Build(t, &componenttest.Host{}, "accesslog", "file", logPath)
	h := built.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := built.Close(); err != nil {
			t.Error(err)
		}
		hello(w, r)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/late", nil))
	data, _ := os.ReadFile(logPath)
	if !strings.Contains(string(data), "/late") {
		t.Errorf("the line of a request that outlived its filter is lost: %q", data)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"format", "apache", `[filter:accesslog] format: "apache" is not common, combined or json`},
		{"file", "/no/such/dir/access.log", "[filter:accesslog] file: cannot open the access log: open /no/such/dir/access.log: no such file"},
		{"fromat", "json", "[filter:accesslog] fromat: unknown option"},
		{"buffer", "2m", "[filter:accesslog] buffer: 2097152 bytes is more than 1048576, the largest buffer"},
		{"buffer", "lots", `[filter:accesslog] buffer: "lots" is not a size`},
		{"flush", "0", "[filter:accesslog] flush: must be more than 0"},
		{"flush", "soon", `[filter:accesslog] flush: "soon" is not a duration`},
	} {
		componenttest.RequireError(t, "accesslog", tc.want, tc.key, tc.value)
	}
}

// The cached timestamp is the formatted one, across seconds and zones.
func TestCLFTimeCache(t *testing.T) {
	base := time.Date(2026, 12, 1, 14, 59, 59, 999_000_000, time.UTC)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	for _, tm := range []time.Time{base, base.Add(time.Millisecond / 2), base.Add(time.Millisecond), base.In(paris), base, base.Add(3 * time.Second)} {
		if got, want := string(appendCLFTime(nil, tm)), tm.Format(clfTime); got != want {
			t.Errorf("%v: %q, want %q", tm, got, want)
		}
	}
}
