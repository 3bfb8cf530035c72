package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/wsgate/wsgate/test/e2e/harness"
)

// The static component's e2e tests: Paste's URL map puts the pep3333 test
// application at / and egg:Paste#static at /static, as an existing Paste
// file would; one worker, so a busy worker is the whole pool.
const stINI = `[composite:main]
use = egg:Paste#urlmap
/ = app
/static = static

[app:app]
use = call:pep3333:make_app

[app:static]
use = egg:Paste#static
document_root = %(here)s/files
cache_max_age = 60
`

const stCSS = "body { color: #123456 } /* the site's stylesheet */\n"

// stStart writes stINI, the files below files/ and a secret beside them,
// and serves it.
func stStart(t *testing.T) (*gwServer, string) {
	t.Helper()
	dir := t.TempDir()
	js := strings.Repeat("console.log('wsgate static');\n", 200)
	var gz, br bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(js))
	zw.Close()
	bw := brotli.NewWriter(&br)
	bw.Write([]byte(js))
	bw.Close()
	for name, content := range map[string]string{
		"site.ini":           stINI,
		"secret.txt":         "E2E-SECRET outside the document root",
		"files/app.css":      stCSS,
		"files/app.js":       js,
		"files/app.js.gz":    gz.String(),
		"files/app.js.br":    br.String(),
		"files/.htpasswd":    "E2E-SECRET dotfile",
		"files/sub/a.txt":    "0123456789",
		"files/sub/a..b.txt": "two dots, a legal name",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(dir, "files", "link-out.txt")); err != nil {
		t.Fatal(err)
	}
	rec := t.TempDir()
	srv := harness.Start(t, harness.Options{
		Args: []string{"--workers", "1", "--h2c", "--pythonpath", gwAppsDir(), filepath.Join(dir, "site.ini")},
		Env:  []string{"E2E_RECORD_DIR=" + rec},
	})
	t.Cleanup(srv.Stop)
	return &gwServer{Server: srv, rec: rec, addr: strings.TrimPrefix(srv.URL, "http://")}, dir
}

// A stylesheet is served while the only worker of the server is held by a
// slow view: the Go master answers it without a worker. The view is released only
// after, so the order is certain, not timed.
func TestStaticWhileTheOnlyWorkerIsBusy(t *testing.T) {
	s, _ := stStart(t)
	// One worker in the whole server: /static has no pool of its own.
	if ready := s.WaitLog("wsgate: ready"); !strings.Contains(ready, "ready, 1 workers") {
		t.Fatalf("%q: want one worker in all, the app's", ready)
	}
	_, done := s.gwBlock(t, "slow-view") // returns once the app has the request
	r := gwGet(t, s.URL+"/static/app.css")
	gwOK(t, "GET /static/app.css while the worker is busy", r)
	if string(r.body) != stCSS {
		t.Errorf("GET /static/app.css: %q", r.body)
	}
	select {
	case r := <-done:
		t.Fatalf("the slow view ended (%d) before it was released", r.status)
	default:
	}
	s.gwRelease(t, "slow-view")
	if r := <-done; r.status != 200 {
		t.Errorf("the slow view: %d after its release", r.status)
	}
}

// Every way of writing a path out of document_root, sent as written by
// curl --path-as-is and by a raw socket: refused, and the secret never
// shows; a name with two dots in it is still a name.
func TestStaticTraversalRefused(t *testing.T) {
	s, _ := stStart(t)
	curl := gwCurl(t)
	for _, c := range []struct {
		path string
		want string
	}{
		{"/static/../secret.txt", "400"},
		{"/static/sub/../../secret.txt", "400"},
		{"/static/%2e%2e/secret.txt", "400"},
		{"/static/%2E%2E%2Fsecret.txt", "400"},
		{"/static/sub%2f..%2f..%2fsecret.txt", "400"},
		{"/static/..%5csecret.txt", "400"},
		{"/static/..\\secret.txt", "400"},
		{"/static/app.css%00.txt", "400"},
		{"/static/%zz.css", "400"}, // a malformed escape
		{"/static/link-out.txt", "404"},
		{"/static/.htpasswd", "404"},
		{"/static/sub/", "404"},
		{"/static/sub/a..b.txt", "200"},
	} {
		out := curl("--path-as-is", "--write-out", "\n%{http_code}", s.URL+c.path)
		i := strings.LastIndex(out, "\n")
		body, code := out[:i], out[i+1:]
		if code != c.want || strings.Contains(body, "E2E-SECRET") {
			t.Errorf("curl --path-as-is %s: %s %.100q, want %s without the secret", c.path, code, body, c.want)
		}
		raw := string(s.gwRawExchange(t, "GET "+c.path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		if !strings.HasPrefix(raw, "HTTP/1.1 "+c.want+" ") || strings.Contains(raw, "E2E-SECRET") {
			t.Errorf("raw GET %s: %.100q, want %s without the secret", c.path, raw, c.want)
		}
	}
}

// ETag, If-None-Match and If-Modified-Since, ranges and HEAD, by curl.
func TestStaticValidatorsAndRangesWithCurl(t *testing.T) {
	s, _ := stStart(t)
	curl := gwCurl(t)
	url := s.URL + "/static/app.css"
	head := curl("--dump-header", "-", "--output", "/dev/null", url)
	etag := regexp.MustCompile(`(?im)^etag: ("[^"]+")\r?$`).FindStringSubmatch(head)
	lm := regexp.MustCompile(`(?im)^last-modified: (.+?)\r?$`).FindStringSubmatch(head)
	if etag == nil || lm == nil || !regexp.MustCompile(`(?im)^cache-control: max-age=60\r?$`).MatchString(head) {
		t.Fatalf("GET %s: want ETag, Last-Modified and Paste's cache_max_age as Cache-Control\n%s", url, head)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-H", "If-None-Match: " + etag[1]}, "304 "},
		{[]string{"-H", `If-None-Match: "something-else"`}, "200 " + stCSS},
		{[]string{"-H", "If-Modified-Since: " + lm[1]}, "304 "},
		{[]string{"--range", "0-3"}, "206 body"},
		{[]string{"--range", "-3", "-H", "If-Range: " + etag[1]}, "206 " + stCSS[len(stCSS)-3:]},
		{[]string{"--range", "0-3", "-H", `If-Range: "stale"`}, "200 " + stCSS},
		{[]string{"--range", "500-600"}, "416 "},
	} {
		out := curl(append(c.args, "--write-out", "%{http_code}", url)...)
		got := out[len(out)-3:] + " " + out[:len(out)-3]
		if c.want == "416 " {
			got = out[len(out)-3:] + " "
		}
		if got != c.want {
			t.Errorf("curl %s: %q, want %q", strings.Join(c.args, " "), got, c.want)
		}
	}
	multi := curl("--range", "0-3,5-9", "--dump-header", "-", url)
	if !strings.Contains(strings.ToLower(multi), "content-type: multipart/byteranges") ||
		!strings.Contains(multi, "Content-Range: bytes 0-3/") || !strings.Contains(multi, "Content-Range: bytes 5-9/") {
		t.Errorf("two ranges: want a multipart/byteranges answer\n%s", multi)
	}
	// Over HTTP/2 (h2c) too, where nothing is corked: streams share the connection.
	if out := curl("--http2-prior-knowledge", "--write-out", "%{http_version}", url); out != stCSS+"2" {
		t.Errorf("curl --http2-prior-knowledge: %q, want the file over HTTP/2", out)
	}
	head = curl("--head", url)
	if !strings.HasPrefix(head, "HTTP/1.1 200") || !regexp.MustCompile(fmt.Sprintf(`(?im)^content-length: %d\r?$`, len(stCSS))).MatchString(head) {
		t.Errorf("curl --head: %q", head)
	}
}

// The .br and .gz siblings reach clients that accept them, and curl
// --compressed decodes them back to the file.
func TestStaticPrecompressedSiblings(t *testing.T) {
	s, dir := stStart(t)
	curl := gwCurl(t)
	js, err := os.ReadFile(filepath.Join(dir, "files", "app.js"))
	if err != nil {
		t.Fatal(err)
	}
	url := s.URL + "/static/app.js"
	for _, c := range []struct{ accept, coding string }{
		{"br", "br"},
		{"gzip", "gzip"},
		{"gzip;q=1, br;q=0.5", "gzip"},
		{"identity", ""},
	} {
		out := curl("--compressed", "-H", "Accept-Encoding: "+c.accept, "--dump-header", "-", url)
		hdr, body, _ := strings.Cut(out, "\r\n\r\n")
		enc := regexp.MustCompile(`(?im)^content-encoding: (\S+)\r?$`).FindStringSubmatch(hdr + "\r\n")
		got := ""
		if enc != nil {
			got = enc[1]
		}
		if got != c.coding || body != string(js) || !regexp.MustCompile(`(?im)^vary: accept-encoding\r?$`).MatchString(hdr+"\r\n") {
			t.Errorf("Accept-Encoding %s: Content-Encoding %q (want %q), decoded body equal: %v\n%s", c.accept, got, c.coding, body == string(js), hdr)
		}
	}
	// Without --compressed, the bytes of the sibling file itself.
	raw := curl("-H", "Accept-Encoding: br", url)
	br, _ := os.ReadFile(filepath.Join(dir, "files", "app.js.br"))
	if raw != string(br) {
		t.Errorf("Accept-Encoding: br without decoding: %d bytes, want app.js.br's %d", len(raw), len(br))
	}
}

// A file goes out by sendfile(2): the master makes a handful of read
// system calls (sendfile counts as one) to send 8 MiB, where a copy through
// a 32 KiB buffer would make 256.
func TestStaticFileGoesOutBySendfile(t *testing.T) {
	s, dir := stStart(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16)
	if err := os.WriteFile(filepath.Join(dir, "files", "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	gwOK(t, "GET /static/app.css", gwGet(t, s.URL+"/static/app.css")) // first use of the MIME table, once
	before := gwProcIO(t, s.PID, "syscr")
	r := gwGet(t, s.URL+"/static/big.bin")
	gwOK(t, "GET /static/big.bin", r)
	if calls := gwProcIO(t, s.PID, "syscr") - before; calls > 64 || !bytes.Equal(r.body, big) {
		t.Errorf("serving 8 MiB took %d read system calls in the master (want a few: sendfile); body equal: %v", calls, bytes.Equal(r.body, big))
	}
}
