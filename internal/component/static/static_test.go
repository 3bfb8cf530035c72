package static

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/config"
)

// site writes the files (name → content; content "->TARGET" makes a
// symbolic link) below a fresh directory and returns it.
func site(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testHost is the Host of a component built alone: it records warnings.
type testHost struct{ logs *bytes.Buffer }

func (h testHost) App(string) (http.Handler, error) { return nil, fmt.Errorf("no apps here") }
func (h testHost) Site() component.Site             { return nil }
func (h testHost) Logger() *slog.Logger             { return slog.New(slog.NewTextHandler(h.logs, nil)) }

// buildINI loads [app:main] of an INI text written in dir as the compose
// step would hand it over, and builds it.
func buildINI(t *testing.T, dir, ini string) (component.Built, string, error) {
	t.Helper()
	path := filepath.Join(dir, "site.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := config.LoadApp(path, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec, ok := component.Lookup(n.Use)
	if !ok {
		t.Fatalf("use = %s is not a registered component", n.Use)
	}
	logs := &bytes.Buffer{}
	b := component.NewBuilder(n, testHost{logs})
	built, err := spec.Build(b)
	if err == nil {
		t.Cleanup(func() { built.Close() })
	}
	return built, logs.String(), err
}

func mustBuild(t *testing.T, root, extra string) http.Handler {
	t.Helper()
	built, _, err := buildINI(t, t.TempDir(), "[app:main]\nuse = egg:wsgate#static\ndocument_root = "+root+"\n"+extra)
	if err != nil {
		t.Fatal(err)
	}
	return built.Handler
}

// rawGet sends one request line as written (no client normalises it) and
// returns the status and body.
func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// No request path reaches a file outside document_root, however written;
// links that stay inside are followed.
func TestTraversalIsRefused(t *testing.T) {
	outside := site(t, map[string]string{"secret.txt": "TOP-SECRET"})
	root := site(t, map[string]string{
		"pub/app.css":  "body{}",
		"pub/.env":     "HIDDEN",
		"link-in.css":  "->pub/app.css",
		"link-out.txt": "->" + filepath.Join(outside, "secret.txt"),
		"dir-out":      "->" + outside,
		".git/config":  "HIDDEN",
		"pub/x%2e.css": "odd but legal",
		"pub/%2e%2e":   "a file named %2e%2e",
	})
	rel, _ := filepath.Rel(root, filepath.Join(outside, "secret.txt"))
	srv := httptest.NewServer(mustBuild(t, root, ""))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	for _, c := range []struct {
		target string
		want   int
	}{
		{"/pub/../" + filepath.ToSlash(rel), 400},
		{"/" + filepath.ToSlash(rel), 400},
		{"/%2e%2e/%2e%2e/etc/passwd", 400},
		{"/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", 400},
		{"/pub%2f..%2f..%2fsecret.txt", 400},
		{"/pub/..%5c..%5csecret.txt", 400},
		{"/pub\\..\\..\\secret.txt", 400},
		{"/pub/app.css%00.txt", 400},
		{"/./pub/app.css", 400},
		{"//etc/passwd", 404}, // absolute paths are names below the root
		{"/link-out.txt", 404},
		{"/dir-out/secret.txt", 404},
		{"/pub/.env", 404},
		{"/.git/config", 404},
		{"/pub", 404}, // a directory, and index is off
		{"/pub/", 404},
		{"/pub/app.css/", 404},
		{"/link-in.css", 200},
		{"/pub/x%252e.css", 200},
		{"/pub/%252e%252e", 200},
	} {
		status, body := rawGet(t, addr, c.target)
		if status != c.want {
			t.Errorf("GET %s: %d, want %d (%q)", c.target, status, c.want, body)
		}
		if strings.Contains(body, "TOP-SECRET") || strings.Contains(body, "HIDDEN") {
			t.Errorf("GET %s leaked a file: %q", c.target, body)
		}
	}
}

// Only regular files: a FIFO in the root is a 404 at once, not a request
// waiting for a writer.
func TestOnlyRegularFiles(t *testing.T) {
	root := site(t, nil)
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	mustBuild(t, root, "").ServeHTTP(rec, httptest.NewRequest("GET", "/fifo", nil))
	if rec.Code != 404 {
		t.Errorf("GET /fifo: %d, want 404", rec.Code)
	}
}

func get(t *testing.T, h http.Handler, target string, hdr ...string) *http.Response {
	t.Helper()
	return do(t, h, "GET", target, hdr...)
}

func do(t *testing.T, h http.Handler, method, target string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ETag, Last-Modified, 304 for either validator, HEAD, Content-Type from
// the extension, Cache-Control as configured.
func TestValidatorsAndHead(t *testing.T) {
	root := site(t, map[string]string{"app.css": "body { color: red }"})
	h := mustBuild(t, root, "cache_control = public, max-age=60\n")
	resp := get(t, h, "/app.css")
	if resp.StatusCode != 200 || body(t, resp) != "body { color: red }" {
		t.Fatalf("GET /app.css: %s", resp.Status)
	}
	tag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if !strings.HasPrefix(tag, `"`) || lm == "" {
		t.Fatalf("ETag %q, Last-Modified %q: want a strong ETag and a date", tag, lm)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "text/css" {
		t.Errorf("Content-Type %q, want text/css", resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=60" {
		t.Errorf("Cache-Control %q", cc)
	}
	if r := get(t, h, "/app.css", "If-None-Match", tag); r.StatusCode != 304 || body(t, r) != "" {
		t.Errorf("If-None-Match with the ETag: %s, want 304 without a body", r.Status)
	}
	if r := get(t, h, "/app.css", "If-None-Match", `"other"`); r.StatusCode != 200 {
		t.Errorf("If-None-Match with another ETag: %s, want 200", r.Status)
	}
	if r := get(t, h, "/app.css", "If-Modified-Since", lm); r.StatusCode != 304 {
		t.Errorf("If-Modified-Since Last-Modified: %s, want 304", r.Status)
	}
	if r := do(t, h, "HEAD", "/app.css"); r.StatusCode != 200 || body(t, r) != "" || r.Header.Get("Content-Length") != "19" {
		t.Errorf("HEAD: %s, Content-Length %q", r.Status, r.Header.Get("Content-Length"))
	}
	if r := do(t, h, "POST", "/app.css"); r.StatusCode != 405 || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %s, Allow %q", r.Status, r.Header.Get("Allow"))
	}
	// A changed file has another ETag: the old one no longer gives 304.
	later := time.Now().Add(time.Hour)
	if err := os.WriteFile(filepath.Join(root, "app.css"), []byte("body { color: blue }"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(root, "app.css"), later, later)
	if r := get(t, h, "/app.css", "If-None-Match", tag); r.StatusCode != 200 || r.Header.Get("ETag") == tag {
		t.Errorf("after a change, the old ETag: %s, ETag %q", r.Status, r.Header.Get("ETag"))
	}
}

func TestRanges(t *testing.T) {
	root := site(t, map[string]string{"data.txt": "0123456789abcdefghij"})
	h := mustBuild(t, root, "")
	r := get(t, h, "/data.txt", "Range", "bytes=5-9")
	if r.StatusCode != 206 || body(t, r) != "56789" || r.Header.Get("Content-Range") != "bytes 5-9/20" {
		t.Errorf("one range: %s %q", r.Status, r.Header.Get("Content-Range"))
	}
	r = get(t, h, "/data.txt", "Range", "bytes=0-1,-3")
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.StatusCode != 206 || mt != "multipart/byteranges" {
		t.Fatalf("two ranges: %s %q", r.Status, r.Header.Get("Content-Type"))
	}
	var parts []string
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, p.Header.Get("Content-Range")+" "+string(b))
	}
	if got := strings.Join(parts, "|"); got != "bytes 0-1/20 01|bytes 17-19/20 hij" {
		t.Errorf("two ranges gave %q", got)
	}
	if r := get(t, h, "/data.txt", "Range", "bytes=50-60"); r.StatusCode != 416 {
		t.Errorf("unsatisfiable range: %s, want 416", r.Status)
	}
	tag := get(t, h, "/data.txt").Header.Get("ETag")
	if r := get(t, h, "/data.txt", "Range", "bytes=0-0", "If-Range", tag); r.StatusCode != 206 {
		t.Errorf("If-Range with the ETag: %s, want 206", r.Status)
	}
	if r := get(t, h, "/data.txt", "Range", "bytes=0-0", "If-Range", `"stale"`); r.StatusCode != 200 {
		t.Errorf("If-Range with another ETag: %s, want the whole file", r.Status)
	}
}

// A precompressed sibling is chosen by Accept-Encoding, with the
// original's type, Vary, and an ETag of its own.
func TestPrecompressedSiblings(t *testing.T) {
	root := site(t, map[string]string{
		"app.js": "IDENTITY", "app.js.gz": "GZIP", "app.js.br": "BROTLI",
		"only.css": "IDENTITY", "only.css.gz": "GZIP",
		"plain.txt": "IDENTITY",
		"older.js":  "IDENTITY", "older.js.gz": "OLDER",
	})
	// A sibling older than its file is still served (collectstatic copies
	// in any order): times are not compared.
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(root, "older.js.gz"), old, old)
	h := mustBuild(t, root, "")
	tags := map[string]bool{}
	for _, c := range []struct{ path, accept, body, coding string }{
		{"/app.js", "gzip, deflate, br", "BROTLI", "br"},
		{"/app.js", "gzip", "GZIP", "gzip"},
		{"/app.js", "br;q=0.5, gzip;q=0.9", "GZIP", "gzip"},
		{"/app.js", "br;q=0, gzip;q=0", "IDENTITY", ""},
		{"/app.js", "*", "BROTLI", "br"},
		{"/app.js", "", "IDENTITY", ""},
		{"/only.css", "br, gzip", "GZIP", "gzip"},
		{"/plain.txt", "br, gzip", "IDENTITY", ""},
		{"/older.js", "gzip", "OLDER", "gzip"},
	} {
		r := get(t, h, c.path, "Accept-Encoding", c.accept)
		// Vary always: the answer depends on Accept-Encoding wherever a
		// sibling could be, as nginx's gzip_static with gzip_vary.
		if b := body(t, r); b != c.body || r.Header.Get("Content-Encoding") != c.coding || r.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("%s with Accept-Encoding %q: %q, Content-Encoding %q, Vary %q; want %q, %q and Vary",
				c.path, c.accept, b, r.Header.Get("Content-Encoding"), r.Header.Get("Vary"), c.body, c.coding)
		}
		if c.path == "/app.js" {
			if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "text/javascript" {
				t.Errorf("%s %q: Content-Type %q, want the original's", c.path, c.accept, r.Header.Get("Content-Type"))
			}
			tags[r.Header.Get("ETag")] = true
		}
	}
	if len(tags) != 3 {
		t.Errorf("identity, gzip and br of app.js have %d distinct ETags, want 3: %v", len(tags), tags)
	}
	off := mustBuild(t, root, "precompressed = false\n")
	if r := get(t, off, "/app.js", "Accept-Encoding", "br"); body(t, r) != "IDENTITY" || r.Header.Get("Vary") != "" {
		t.Errorf("precompressed = false still served a sibling")
	}
}

func TestIndexIsOffByDefault(t *testing.T) {
	root := site(t, map[string]string{"docs/index.html": "<h1>docs</h1>", "index.html": "top"})
	if r := get(t, mustBuild(t, root, ""), "/docs/"); r.StatusCode != 404 {
		t.Errorf("GET /docs/ without index: %s, want 404", r.Status)
	}
	h := mustBuild(t, root, "index = default.htm index.html\n")
	if r := get(t, h, "/docs/"); r.StatusCode != 200 || body(t, r) != "<h1>docs</h1>" {
		t.Errorf("GET /docs/ with index: %s", r.Status)
	}
	if r := get(t, h, "/docs?x=1"); r.StatusCode != 301 || r.Header.Get("Location") != "/docs/?x=1" {
		t.Errorf("GET /docs: %s to %q, want 301 to /docs/?x=1", r.Status, r.Header.Get("Location"))
	}
	if r := get(t, h, "/"); r.StatusCode != 200 || body(t, r) != "top" {
		t.Errorf("GET / with index: %s", r.Status)
	}
	if r := get(t, h, "/index.html/"); r.StatusCode != 404 {
		t.Errorf("GET /index.html/: %s, want 404", r.Status)
	}
}

// Mounted by a urlmap, the file is PATH_INFO's, not the whole path's.
func TestServesPathInfoBelowTheMount(t *testing.T) {
	root := site(t, map[string]string{"app.css": "css"})
	h := mustBuild(t, root, "")
	req := httptest.NewRequest("GET", "/static/app.css", nil)
	req, f := component.Attach(req)
	f.ScriptName, f.PathInfo, f.PathSet = "/static", "/app.css", true
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "css" {
		t.Errorf("PATH_INFO /app.css below /static: %d %q", rec.Code, rec.Body.String())
	}
}

// sendfileWriter records what ServeContent hands to ReadFrom: an *os.File
// (under a LimitedReader) is what lets net/http use sendfile(2).
type sendfileWriter struct {
	*httptest.ResponseRecorder
	src io.Reader
}

func (w *sendfileWriter) ReadFrom(r io.Reader) (int64, error) {
	w.src = r
	return io.Copy(w.ResponseRecorder, r)
}

func TestBodyReachesSendfile(t *testing.T) {
	root := site(t, map[string]string{"big.bin": strings.Repeat("x", 100000)})
	w := &sendfileWriter{ResponseRecorder: httptest.NewRecorder()}
	mustBuild(t, root, "").ServeHTTP(w, httptest.NewRequest("GET", "/big.bin", nil))
	src := w.src
	if lr, ok := src.(*io.LimitedReader); ok {
		src = lr.R
	}
	if _, ok := src.(*os.File); !ok || w.Body.Len() != 100000 {
		t.Errorf("ReadFrom got %T (%d bytes), want the *os.File itself", w.src, w.Body.Len())
	}
}

func TestOptionsAreValidatedAtLoad(t *testing.T) {
	root := site(t, map[string]string{"a.txt": "a"})
	for _, c := range []struct{ extra, want string }{
		{"cache_max_age = 60\ncache_control = no-cache\n", "site.ini:4 [app:main] cache_max_age: give cache_control or cache_max_age, not both"},
		{"cache_max_age = soon\n", `site.ini:4 [app:main] cache_max_age: "soon" is not a whole number`},
		{"dotfiles = maybe\n", `site.ini:4 [app:main] dotfiles: "maybe" is not true or false`},
		{"index = ../x\n", `site.ini:4 [app:main] index: "../x" is not a file name`},
	} {
		dir := t.TempDir()
		_, _, err := buildINI(t, dir, "[app:main]\nuse = egg:Paste#static\ndocument_root = "+root+"\n"+c.extra)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.extra, err, c.want)
		}
	}
	built, _, err := buildINI(t, t.TempDir(), "[app:main]\nuse = egg:Paste#static\ndocument_root = "+root+"\ncache_max_age = 600\n")
	if err != nil {
		t.Fatal(err)
	}
	if cc := get(t, built.Handler, "/a.txt").Header.Get("Cache-Control"); cc != "max-age=600" {
		t.Errorf("Paste's cache_max_age = 600 sent Cache-Control %q", cc)
	}
	if _, _, err := buildINI(t, t.TempDir(), "[app:main]\nuse = egg:Paste#static\n"); err == nil ||
		!strings.Contains(err.Error(), "[app:main]: option document_root is required") {
		t.Errorf("without document_root: %v", err)
	}
	if _, _, err := buildINI(t, t.TempDir(), "[app:main]\nuse = egg:wsgate#static\ndocument_root = "+filepath.Join(root, "a.txt")+"\n"); err == nil ||
		!strings.Contains(err.Error(), "site.ini:3 [app:main] document_root: ") || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("document_root naming a file: %v", err)
	}
}

// A document_root that is not there yet (collectstatic has not run) is a
// located warning and 404s, then served once it exists; relative to here.
func TestMissingRootIsAWarningUntilItExists(t *testing.T) {
	dir := t.TempDir()
	built, logs, err := buildINI(t, dir, "[app:main]\nuse = egg:wsgate#static\ndocument_root = var/static\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "site.ini:3 [app:main] document_root: "+filepath.Join(dir, "var/static")+" does not exist (yet)") {
		t.Errorf("warning logged: %q", logs)
	}
	if r := get(t, built.Handler, "/a.css"); r.StatusCode != 404 {
		t.Errorf("before the directory exists: %s, want 404", r.Status)
	}
	site := filepath.Join(dir, "var/static")
	os.MkdirAll(site, 0o755)
	os.WriteFile(filepath.Join(site, "a.css"), []byte("late"), 0o644)
	if r := get(t, built.Handler, "/a.css"); r.StatusCode != 200 || body(t, r) != "late" {
		t.Errorf("once it exists: %s", r.Status)
	}
}

func TestAcceptQ(t *testing.T) {
	for _, c := range []struct {
		header, coding string
		want           float64
	}{
		{"gzip, br", "br", 1},
		{"GZIP;Q=0.5", "gzip", 0.5},
		{"x-gzip", "gzip", 1},
		{"br;q=0", "br", 0},
		{"*;q=0.3, gzip", "br", 0.3},
		{"*;q=0.3, br;q=0", "br", 0},
		{"gzip;q=abc", "gzip", 0},
		{"", "gzip", 0},
		{"identity", "gzip", 0},
		{"gzip ; q=0.8 , br", "gzip", 0.8},
	} {
		if got := acceptQ(c.header, c.coding); got != c.want {
			t.Errorf("acceptQ(%q, %q) = %v, want %v", c.header, c.coding, got, c.want)
		}
	}
}
