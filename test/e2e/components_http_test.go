package e2e

// End-to-end tests of the compress, accesslog and requestid components: the
// real binary serving test/e2e/apps/components.py behind a pipeline of the
// three, talked to by curl and headless Chromium. Identifiers start with
// "cmp".

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/wsgate/wsgate/internal/component/compress"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// cmpSite is the served pipeline, where its access log goes and where the
// application looks for release files.
type cmpSite struct {
	*harness.Server
	accessLog string
	records   string
}

// cmpStart serves components.py behind requestid, accesslog (in format) and
// compress, in that order, from an INI file in a temporary directory.
func cmpStart(t *testing.T, format string) *cmpSite {
	t.Helper()
	return cmpServe(t, `[pipeline:main]
pipeline = requestid accesslog compress components

[filter:requestid]
use = egg:wsgate#requestid

[filter:accesslog]
use = egg:wsgate#accesslog
format = `+format+`
file = %(here)s/access.log

[filter:compress]
use = egg:wsgate#compress

[app:components]
use = call:components:make_app
`)
}

// cmpServe serves the INI text ini (components.py on the Python path).
func cmpServe(t *testing.T, ini string) *cmpSite {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "site.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	records := t.TempDir()
	srv := harness.Start(t, harness.Options{Args: []string{path, "--pythonpath", gwAppsDir(), "--workers", "1", "--h2c"},
		Env: []string{"E2E_RECORD_DIR=" + records}})
	t.Cleanup(srv.Stop)
	return &cmpSite{Server: srv, accessLog: filepath.Join(dir, "access.log"), records: records}
}

// cmpCurlPath is curl's path; the test skips (through testutil.Skip, so
// `make test` fails instead) where it is not installed.
func cmpCurlPath(t *testing.T) string {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		testutil.Skip(t, "curl missing: run ./scripts/system-deps.sh curl (make test does)")
	}
	return curl
}

// cmpCurl runs curl (failing the test on an HTTP error) and returns its
// stdout.
func cmpCurl(t *testing.T, args ...string) []byte {
	t.Helper()
	curl := cmpCurlPath(t)
	out, err := exec.Command(curl, append([]string{"--silent", "--show-error", "--fail", "--max-time", "60"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// cmpGet fetches url with curl, with the extra arguments, and returns the
// response's headers (from the last response curl read) and body.
func cmpGet(t *testing.T, url string, extra ...string) (http.Header, []byte) {
	t.Helper()
	hfile := filepath.Join(t.TempDir(), "headers")
	body := cmpCurl(t, append(append([]string{"--dump-header", hfile}, extra...), url)...)
	raw, err := os.ReadFile(hfile)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for _, line := range strings.Split(string(raw), "\r\n")[1:] {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return h, body
}

// Each coding curl can decode is negotiated, decoded by curl and equal, byte
// for byte, to the identity response; what went over the wire is smaller.
func TestComponentsCompressWithCurl(t *testing.T) {
	s := cmpStart(t, "combined")
	for _, path := range []string{"/page", "/json", "/stream", "/file"} {
		idHeaders, identity := cmpGet(t, s.URL+path)
		if ce := idHeaders.Get("Content-Encoding"); ce != "" || len(identity) < 2000 {
			t.Fatalf("%s without Accept-Encoding: Content-Encoding %q, %d bytes", path, ce, len(identity))
		}
		if path == "/page" && idHeaders.Get("Content-Length") != strconv.Itoa(len(identity)) {
			t.Errorf("%s identity: Content-Length %q for %d bytes", path, idHeaders.Get("Content-Length"), len(identity))
		}
		for _, coding := range []string{"gzip", "zstd", "br"} {
			h, wire := cmpGet(t, s.URL+path, "-H", "Accept-Encoding: "+coding)
			// A Content-Length, when net/http could set one, is the encoded body's.
			if h.Get("Content-Encoding") != coding || h.Get("Vary") != "Accept-Encoding" ||
				h.Get("Content-Length") != "" && h.Get("Content-Length") != strconv.Itoa(len(wire)) {
				t.Errorf("%s %s: headers %v", path, coding, h)
			}
			if len(wire) >= len(identity)/2 {
				t.Errorf("%s %s: %d bytes on the wire for %d", path, coding, len(wire), len(identity))
			}
			_, decoded := cmpGet(t, s.URL+path, "--compressed", "-H", "Accept-Encoding: "+coding)
			if !bytes.Equal(decoded, identity) {
				t.Errorf("%s %s: curl decoded %d bytes that differ from the %d identity bytes", path, coding, len(decoded), len(identity))
			}
		}
		// curl's own offer (deflate, gzip, br, zstd): all equal, the server's order wins;
		// over HTTP/1.1 and HTTP/2 alike.
		for _, proto := range []string{"--http1.1", "--http2-prior-knowledge"} {
			h, decoded := cmpGet(t, s.URL+path, "--compressed", proto)
			if h.Get("Content-Encoding") != "zstd" || !bytes.Equal(decoded, identity) {
				t.Errorf("%s --compressed %s: Content-Encoding %q, %d bytes decoded, equal %v", path, proto, h.Get("Content-Encoding"), len(decoded), bytes.Equal(decoded, identity))
			}
		}
	}
	if h, _ := cmpGet(t, s.URL+"/page", "-H", "Accept-Encoding: gzip"); h.Get("ETag") != `W/"page-v1"` {
		t.Errorf("compressed page's ETag %q, want the app's made weak", h.Get("ETag"))
	}
}

// A streamed response stays streamed when compressed: the client decodes
// the first piece while the application still waits to send the rest.
func TestComponentsCompressStreams(t *testing.T) {
	s := cmpStart(t, "combined")
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, coding := range []string{"gzip", "zstd", "br"} {
		req, _ := http.NewRequest("GET", s.URL+"/stream?hold="+coding, nil)
		req.Header.Set("Accept-Encoding", coding)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Header.Get("Content-Encoding") != coding {
			t.Fatalf("%s: Content-Encoding %q", coding, res.Header.Get("Content-Encoding"))
		}
		dec, err := compress.NewDecoder(coding, res.Body)
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, len("piece 0\n")*600)
		if _, err := io.ReadFull(dec, first); err != nil || string(first) != strings.Repeat("piece 0\n", 600) {
			t.Fatalf("%s: first piece %.40q…, %v", coding, first, err)
		}
		if err := os.WriteFile(filepath.Join(s.records, coding+".release"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(dec)
		dec.Close()
		res.Body.Close()
		if err != nil || string(rest) != strings.Repeat("piece 1\n", 600)+strings.Repeat("piece 2\n", 600) {
			t.Errorf("%s: the rest: %d bytes, %v", coding, len(rest), err)
		}
	}
}

// What compress must leave alone, seen from curl.
func TestComponentsCompressLeavesAlone(t *testing.T) {
	s := cmpStart(t, "combined")
	_, page := cmpGet(t, s.URL+"/range")

	h, part := cmpGet(t, s.URL+"/range", "-H", "Accept-Encoding: gzip, br, zstd", "-r", "100-1099")
	if h.Get("Content-Encoding") != "" || h.Get("Content-Range") != fmt.Sprintf("bytes 100-1099/%d", len(page)) || !bytes.Equal(part, page[100:1100]) {
		t.Errorf("range request: headers %v, %d bytes, equal to the slice %v", h, len(part), bytes.Equal(part, page[100:min(1100, len(page))]))
	}
	h, _ = cmpGet(t, s.URL+"/page", "--head", "-H", "Accept-Encoding: gzip")
	if h.Get("Content-Encoding") != "" || h.Get("Content-Length") == "" {
		t.Errorf("HEAD: headers %v", h)
	}
	h, small := cmpGet(t, s.URL+"/small", "-H", "Accept-Encoding: gzip")
	if h.Get("Content-Encoding") != "" || h.Get("Content-Length") != "100" || len(small) != 100 {
		t.Errorf("100-byte body: headers %v, %d bytes", h, len(small))
	}
	h, png := cmpGet(t, s.URL+"/png", "-H", "Accept-Encoding: gzip")
	if h.Get("Content-Encoding") != "" || len(png) != 20000 || h.Get("Vary") != "" {
		t.Errorf("image/png: headers %v, %d bytes", h, len(png))
	}
	h, _ = cmpGet(t, s.URL+"/page", "-H", "Accept-Encoding: gzip;q=0, identity")
	if h.Get("Content-Encoding") != "" || h.Get("Vary") != "Accept-Encoding" {
		t.Errorf("gzip refused: headers %v", h)
	}
}

// cmpCombined matches one combined line of accesslog (see its package doc).
var cmpCombined = regexp.MustCompile(`^(\S+) - (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)" (\d+\.\d{6}) "((?:[^"\\]|\\.)*)"$`)

// cmpUnescape undoes accesslog's escaping (\" \\ \xHH).
func cmpUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] != '\\' || i+1 == len(s):
			b.WriteByte(s[i])
		case s[i+1] == 'x' && i+3 < len(s):
			n, _ := strconv.ParseUint(s[i+2:i+4], 16, 8)
			b.WriteByte(byte(n))
			i += 3
		default:
			b.WriteByte(s[i+1])
			i++
		}
	}
	return b.String()
}

// cmpLogLines waits for n lines in the access log (a line is written when
// the application returns, which may be just after the client has its
// response) and returns every line.
func cmpLogLines(t *testing.T, path string, n int) []string {
	t.Helper()
	var lines []string
	harness.WaitFor(t, fmt.Sprintf("%d lines in %s", n, path), func() bool {
		data, _ := os.ReadFile(path)
		lines = strings.SplitAfter(string(data), "\n")
		lines = lines[:len(lines)-1] // what follows the last newline: nothing, or half a line
		return len(lines) >= n
	})
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\n")
	}
	return lines
}

// Every request curl sent is one access log line whose fields are what curl
// sent and received, however hostile the client's headers; the request id
// is the one the application saw and the client got back.
func TestComponentsAccessLogAndRequestID(t *testing.T) {
	s := cmpStart(t, "combined")
	type sent struct {
		uri, agent, referer, id string
		status                  int
		size                    string
	}
	forged := `x" 200 1 "-" "-" 0.000001 "-"` + "\t\\\xc3\xa9" + ` 203.0.113.9 - admin [01/Jan/2026:00:00:00 +0000] "GET /admin HTTP/1.1`
	var want []sent
	for i, tc := range []struct {
		uri, agent, referer, id string
	}{
		{"/environ?n=1", "curl-e2e", "", "e2e-id-1"},
		{"/environ?q=%22quoted%22&b=%5C", forged, forged, ""},
		{"/environ", "plain", "http://example.com/", `bad"id`},
		{"/missing", "plain", "", ""},
		{"/page", "plain", "", "e2e-id-5"},
	} {
		args := []string{"--dump-header", filepath.Join(t.TempDir(), "h"), "-A", tc.agent, "--write-out", "\n%{http_code} %{size_download}",
			"-H", "Accept-Encoding: gzip"}
		if tc.referer != "" {
			args = append(args, "-e", tc.referer)
		}
		if tc.id != "" {
			args = append(args, "-H", "X-Request-ID: "+tc.id)
		}
		curl := cmpCurlPath(t)
		hfile := args[1]
		out, _ := exec.Command(curl, append(append([]string{"--silent", "--max-time", "60"}, args...), s.URL+tc.uri)...).Output()
		body, trailer, _ := bytesCutLast(out, '\n')
		var status, size int
		fmt.Sscan(string(trailer), &status, &size)
		rawHeaders, _ := os.ReadFile(hfile)
		echoed := regexp.MustCompile(`(?i)\r\nX-Request-Id: (\S+)\r\n`).FindSubmatch(rawHeaders)
		if echoed == nil {
			t.Fatalf("request %d: no X-Request-ID in the response:\n%s", i, rawHeaders)
		}
		id := string(echoed[1])
		switch {
		case tc.id == `bad"id`:
			if id == tc.id || !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(id) {
				t.Errorf("a malformed incoming id came back as %q", id)
			}
		case tc.id != "" && id != tc.id:
			t.Errorf("incoming id %q came back as %q", tc.id, id)
		}
		if strings.HasPrefix(tc.uri, "/environ") {
			var env map[string]string
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("%s: %v: %q", tc.uri, err, body)
			}
			if env["HTTP_X_REQUEST_ID"] != id {
				t.Errorf("%s: the app saw HTTP_X_REQUEST_ID %q, the client got %q", tc.uri, env["HTTP_X_REQUEST_ID"], id)
			}
			// The gateway's log line of the app's wsgi.errors carries the id too.
			if line := s.WaitLog("handling request " + id); !strings.Contains(line, "request_id="+id) {
				t.Errorf("the server's log line about request %s does not name it: %q", id, line)
			}
		}
		want = append(want, sent{tc.uri, tc.agent, tc.referer, id, status, strconv.Itoa(size)})
	}

	lines := cmpLogLines(t, s.accessLog, len(want))
	if len(lines) != len(want) {
		t.Fatalf("%d requests, %d access log lines:\n%s", len(want), len(lines), strings.Join(lines, "\n"))
	}
	for i, line := range lines {
		m := cmpCombined.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %d does not parse: %q", i, line)
		}
		w := want[i]
		referer := w.referer
		if referer == "" {
			referer = "-"
		}
		if m[1] != "127.0.0.1" || cmpUnescape(m[4]) != "GET "+w.uri+" HTTP/1.1" || m[5] != strconv.Itoa(w.status) ||
			m[6] != w.size || cmpUnescape(m[7]) != referer || cmpUnescape(m[8]) != w.agent || m[10] != w.id {
			t.Errorf("line %d: %q\nfields %q\nwant %+v", i, line, m[1:], w)
		}
	}
	if want[4].size == "" || want[4].size == strconv.Itoa(len(mustPage(t, s))) {
		t.Errorf("the log's byte count of the compressed page should be the compressed size, got %s", want[4].size)
	}
}

// Bytes curl would not send, written on a raw connection: a request line and
// a User-Agent with quotes, backslashes and bytes outside ASCII are logged
// escaped in one line; a header carrying a bare LF and a forged line never
// reaches the log (net/http refuses the request with a 400 before any
// component runs).
func TestComponentsAccessLogRawBytes(t *testing.T) {
	s := cmpStart(t, "combined")
	raw := &gwServer{Server: s.Server, addr: strings.TrimPrefix(s.URL, "http://")}
	target := "/environ?a=\"b\"\\c\xff"
	agent := "\"\\\xfe\tua"
	resp := raw.gwRawExchange(t, "GET "+target+" HTTP/1.1\r\nHost: x\r\nUser-Agent: "+agent+"\r\nConnection: close\r\n\r\n")
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) {
		t.Fatalf("raw request with quotes and non-ASCII bytes: %.200q", resp)
	}
	forged := "203.0.113.9 - admin [01/Jan/2026:00:00:00 +0000] \"GET /admin HTTP/1.1\" 200 1 \"-\" \"-\" 0.000001 \"-\""
	resp = raw.gwRawExchange(t, "GET /environ HTTP/1.1\r\nHost: x\r\nUser-Agent: ua\n"+forged+"\r\nConnection: close\r\n\r\n")
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 400")) {
		t.Errorf("a header with a bare LF and a forged line: %.200q", resp)
	}
	cmpCurl(t, s.URL+"/small") // a last request, so that every line before it is in
	lines := cmpLogLines(t, s.accessLog, 2)
	if len(lines) != 2 {
		t.Fatalf("3 requests (one refused by net/http), %d lines:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	m := cmpCombined.FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("line does not parse: %q", lines[0])
	}
	if cmpUnescape(m[4]) != "GET "+target+" HTTP/1.1" || cmpUnescape(m[8]) != agent {
		t.Errorf("raw bytes logged as %q (fields %q)", lines[0], m[1:])
	}
	for _, c := range []byte(lines[0]) {
		if c < 0x20 || c >= 0x7f {
			t.Errorf("byte %#x left raw in %q", c, lines[0])
		}
	}
	for _, line := range lines {
		if strings.HasPrefix(line, "203.0.113.9") {
			t.Errorf("a forged line reached the log: %q", line)
		}
	}
}

// Log rotation: the file moved away, SIGHUP makes wsgate open a new one at
// the configured path; lines before go to the moved file, lines after to the
// new one.
func TestComponentsAccessLogReopensOnHangup(t *testing.T) {
	s := cmpStart(t, "common")
	cmpCurl(t, s.URL+"/small?before")
	cmpLogLines(t, s.accessLog, 1)
	if err := os.Rename(s.accessLog, s.accessLog+".1"); err != nil {
		t.Fatal(err)
	}
	s.Signal(syscall.SIGHUP)
	s.WaitLog(`msg="access log reopened"`)
	cmpCurl(t, s.URL+"/small?after")
	now := cmpLogLines(t, s.accessLog, 1)
	old := cmpLogLines(t, s.accessLog+".1", 1)
	if len(now) != 1 || !strings.Contains(now[0], "/small?after") || len(old) != 1 || !strings.Contains(old[0], "/small?before") {
		t.Errorf("after rotation: new file %q, moved file %q", now, old)
	}
}

// With a buffer, lines wait in the master; stopping the server (SIGTERM)
// writes them: the site's components are closed once its requests are done.
func TestComponentsAccessLogBufferWrittenAtStop(t *testing.T) {
	s := cmpServe(t, `[pipeline:main]
pipeline = requestid accesslog components

[filter:requestid]
use = egg:wsgate#requestid

[filter:accesslog]
use = egg:wsgate#accesslog
file = %(here)s/access.log
buffer = 64k
flush = 1h

[app:components]
use = call:components:make_app
`)
	var ids []string
	for i := 0; i < 3; i++ {
		h, _ := cmpGet(t, s.URL+"/small")
		ids = append(ids, h.Get("X-Request-Id"))
	}
	if data, _ := os.ReadFile(s.accessLog); len(data) != 0 {
		t.Fatalf("with a 64k buffer, lines were written before the server stopped: %q", data)
	}
	s.Stop()
	data, err := os.ReadFile(s.accessLog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("3 requests, %d lines after stop: %q", len(lines), data)
	}
	for i, line := range lines {
		if m := cmpCombined.FindStringSubmatch(line); m == nil || m[10] != ids[i] {
			t.Errorf("line %d %q, want request id %s", i, line, ids[i])
		}
	}
}

// The server's log line about an application error names the request, as
// its access log line and its response do.
func TestComponentsRequestIDInTheErrorLine(t *testing.T) {
	s := cmpStart(t, "combined")
	res, err := http.Get(s.URL + "/raise")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	id := res.Header.Get("X-Request-Id")
	if res.StatusCode != 500 || id == "" {
		t.Fatalf("status %d, X-Request-ID %q", res.StatusCode, id)
	}
	line := s.WaitLog("raised on purpose for request " + id)
	if !strings.Contains(line, `msg="application error"`) || !strings.Contains(line, "request_id="+id) {
		t.Errorf("the error line does not name request %s: %q", id, line)
	}
	access := cmpLogLines(t, s.accessLog, 1)
	if m := cmpCombined.FindStringSubmatch(access[0]); m == nil || m[5] != "500" || m[10] != id {
		t.Errorf("access line %q", access[0])
	}
}

// bytesCutLast splits b around the last sep.
func bytesCutLast(b []byte, sep byte) (before, after []byte, found bool) {
	if i := bytes.LastIndexByte(b, sep); i >= 0 {
		return b[:i], b[i+1:], true
	}
	return b, nil, false
}

func mustPage(t *testing.T, s *cmpSite) []byte {
	_, page := cmpGet(t, s.URL+"/page")
	return page
}

// JSON lines: each one a JSON object whose strings are what curl sent.
func TestComponentsAccessLogJSON(t *testing.T) {
	s := cmpStart(t, "json")
	agent := "agent \"with\" quotes \\ and\ttab \xc3\xa9"
	cmpCurl(t, "-A", agent, "-H", "X-Request-ID: json-1", s.URL+"/small?x=%0A")
	lines := cmpLogLines(t, s.accessLog, 1)
	if len(lines) != 1 {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatalf("%q: %v", lines[0], err)
	}
	if e["user_agent"] != agent || e["uri"] != "/small?x=%0A" || e["status"] != 200.0 || e["bytes"] != 100.0 || e["request_id"] != "json-1" || e["method"] != "GET" {
		t.Errorf("JSON line %v", e)
	}
}

// cmpByCoding mounts the application four times: at / behind compress
// with its defaults, and at /gzip, /br and /zstd behind a compress that
// offers that coding only, so a browser (which chooses its own
// Accept-Encoding) can be made to decode each.
const cmpByCoding = `[composite:main]
use = egg:wsgate#urlmap
/ = default
/gzip = only_gzip
/br = only_br
/zstd = only_zstd

[pipeline:default]
pipeline = compress components
[pipeline:only_gzip]
pipeline = gzip components
[pipeline:only_br]
pipeline = br components
[pipeline:only_zstd]
pipeline = zstd components

[filter:compress]
use = egg:wsgate#compress
[filter:gzip]
use = egg:wsgate#compress
encodings = gzip
[filter:br]
use = egg:wsgate#compress
encodings = br
[filter:zstd]
use = egg:wsgate#compress
encodings = zstd

[app:components]
use = call:components:make_app
`

// Headless Chromium negotiates a coding, decodes each of gzip, br and zstd
// and gets the identity bytes: synchronous XMLHttpRequests read the
// Content-Encoding and the decoded text; the page it parsed is whole.
func TestComponentsCompressWithChromium(t *testing.T) {
	browser := demoStartChromium(t)
	s := cmpServe(t, cmpByCoding)
	_, identity := cmpGet(t, s.URL+"/json")
	page := browser.newPage(t)
	page.navigate(t, s.URL+"/page")
	if n := page.evalString(t, `String(document.querySelectorAll("p").length) + " " + document.querySelector("p:last-of-type").textContent`); n != "1500 paragraph 1499: the quick brown fox jumps over the lazy dog 2 times." {
		t.Errorf("the compressed page as Chromium parsed it: %q", n)
	}
	xhr := func(path string) (encoding, text string) {
		t.Helper()
		var got []string
		js := fmt.Sprintf(`(() => { const x = new XMLHttpRequest(); x.open("GET", %q, false); x.send();
			return [x.getResponseHeader("Content-Encoding") || "", x.responseText]; })()`, path)
		if err := page.cdp.Evaluate(page.session, js, &got); err != nil {
			t.Fatal(err)
		}
		return got[0], got[1]
	}
	_, envText := xhr("/environ")
	var env map[string]string
	if err := json.Unmarshal([]byte(envText), &env); err != nil {
		t.Fatal(err)
	}
	offered := env["HTTP_ACCEPT_ENCODING"]
	for _, prefix := range []string{"", "/gzip", "/br", "/zstd"} {
		encoding, text := xhr(prefix + "/json")
		want := strings.TrimPrefix(prefix, "/")
		if prefix == "" {
			want = "zstd" // the default order among equal qualities
		}
		if !strings.Contains(offered, want) {
			t.Errorf("Chromium does not offer %s (it sends Accept-Encoding: %s)", want, offered)
			continue
		}
		if encoding != want {
			t.Errorf("%s/json: Chromium got Content-Encoding %q, want %s", prefix, encoding, want)
		}
		if text != string(identity) {
			t.Errorf("%s/json: Chromium decoded %d bytes that differ from the %d identity bytes", prefix, len(text), len(identity))
		}
	}
}
