package sendfile

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// fixture is a directory tree: files/ (a root), files/sub/, a secret file
// beside the root, and a link inside the root pointing at it.
type fixture struct {
	dir, files, secret string
	log                *componenttest.Logs
	appWrites          error // what the app's write after the header returned
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	fx := &fixture{dir: dir, files: filepath.Join(dir, "files"), secret: filepath.Join(dir, "secret.txt"), log: &componenttest.Logs{}}
	for name, body := range map[string]string{
		"files/report.pdf":    "%PDF-1.4 a report",
		"files/sub/notes.txt": "0123456789abcdef",
		"secret.txt":          "the secret",
		"other/page.txt":      "elsewhere",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(fx.secret, filepath.Join(fx.files, "link-out.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/notes.txt", filepath.Join(fx.files, "link-in.txt")); err != nil {
		t.Fatal(err)
	}
	return fx
}

// serve builds the filter from ini (in the fixture's directory) in front of
// an app that answers with the headers of its query (?h=Name:value&…), a
// status (?status=404) and a body it writes after them; like the gateway, a
// nil Content-Type when the query names none.
func (fx *fixture) serve(t *testing.T, ini string) *httptest.Server {
	t.Helper()
	host := &componenttest.Host{Log: fx.log.Logger()}
	built, err := componenttest.BuildINI(t, host, fx.dir, ini, "files", true)
	if err != nil {
		t.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range r.URL.Query()["h"] {
			k, v, _ := strings.Cut(h, ":")
			w.Header().Set(k, v)
		}
		if _, ok := w.Header()["Content-Type"]; !ok {
			w.Header()["Content-Type"] = nil // as the gateway says "none, no sniffing"
		}
		w.Header().Set("Content-Length", "9")
		status := http.StatusOK
		if r.URL.Query().Get("status") == "404" {
			status = http.StatusNotFound
		}
		w.WriteHeader(status)
		_, fx.appWrites = w.Write([]byte("app body!"))
	})
	srv := httptest.NewServer(built.Wrap(app))
	t.Cleanup(srv.Close)
	return srv
}

const iniBoth = `[filter:files]
use = egg:wsgate#sendfile
roots = files
accel_map =
    /protected/ = files
    /protected/other/ = other
`

func do(t *testing.T, method, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestServesTheNamedFile(t *testing.T) {
	fx := newFixture(t)
	srv := fx.serve(t, iniBoth)
	report := filepath.Join(fx.files, "report.pdf")
	q := url.Values{"h": {"X-Sendfile:" + report, "Content-Type:application/pdf", "Content-Disposition:attachment; filename=r.pdf", "Cache-Control:private", "X-Accel-Buffering:no"}}
	resp, body := do(t, "GET", srv.URL+"/?"+q.Encode())
	if resp.StatusCode != 200 || body != "%PDF-1.4 a report" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/pdf", "Content-Disposition": "attachment; filename=r.pdf", "Cache-Control": "private",
		"Content-Length": "17", "Accept-Ranges": "bytes", "X-Sendfile": "", "X-Accel-Buffering": "",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if !errors.Is(fx.appWrites, component.ErrTakenOver) {
		t.Errorf("the app's write after the header returned %v, want ErrTakenOver (the worker told to stop)", fx.appWrites)
	}
	etag := resp.Header.Get("Etag")
	if etag == "" || resp.Header.Get("Last-Modified") == "" {
		t.Fatalf("no validators: %v", resp.Header)
	}
	if resp, _ := do(t, "GET", srv.URL+"/?h=X-Sendfile:"+report, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", resp.StatusCode)
	}

	// X-Accel-Redirect: the longest prefix wins, the URI is decoded, its
	// query dropped; the type comes from the name when the app set none.
	resp, body = do(t, "GET", srv.URL+"/?h=X-Accel-Redirect:/protected/sub/not%65s.txt%3Fx=1", "Range", "bytes=4-7")
	if resp.StatusCode != http.StatusPartialContent || body != "4567" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("ranged accel: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if _, body := do(t, "GET", srv.URL+"/?h=X-Accel-Redirect:/protected/other/page.txt"); body != "elsewhere" {
		t.Errorf("longest prefix: %q", body)
	}
	if _, body := do(t, "GET", srv.URL+"/?h=X-Accel-Redirect:/protected/link-in.txt"); body != "0123456789abcdef" {
		t.Errorf("a link inside the root: %q", body)
	}
	resp, body = do(t, "HEAD", srv.URL+"/?h=X-Accel-Redirect:/protected/report.pdf")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != 17 {
		t.Errorf("HEAD: %d %q length %d", resp.StatusCode, body, resp.ContentLength)
	}
	// Not a 200: the app's answer stands, without the header.
	resp, body = do(t, "GET", srv.URL+"/?status=404&h=X-Sendfile:"+report)
	if resp.StatusCode != 404 || body != "app body!" || resp.Header.Get("X-Sendfile") != "" {
		t.Errorf("404 with X-Sendfile: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	// No header: the app's answer, untouched.
	if resp, body := do(t, "GET", srv.URL+"/"); resp.StatusCode != 200 || body != "app body!" {
		t.Errorf("plain answer: %d %q", resp.StatusCode, body)
	}
}

// Whatever the app names outside the configured directories is a 500 and a
// log line naming the header, never the file.
func TestRefusesNamesOutsideTheRoots(t *testing.T) {
	fx := newFixture(t)
	srv := fx.serve(t, iniBoth)
	for _, c := range []struct{ header, value string }{
		{"X-Sendfile", fx.secret},
		{"X-Sendfile", fx.files + "/../secret.txt"},
		{"X-Sendfile", fx.files + "/link-out.txt"},
		{"X-Sendfile", fx.files + "/sub"},
		{"X-Sendfile", "files/report.pdf"},
		{"X-Sendfile", "/etc/passwd"},
		{"X-Accel-Redirect", "/protected/../secret.txt"},
		{"X-Accel-Redirect", "/protected/%2e%2e/secret.txt"},
		{"X-Accel-Redirect", "/protected/..%2fsecret.txt"},
		{"X-Accel-Redirect", "/protected/report.pdf%00.txt"},
		{"X-Accel-Redirect", "/protected/sub\\..\\..\\secret.txt"},
		{"X-Accel-Redirect", "/protected/link-out.txt"},
		{"X-Accel-Redirect", "/elsewhere/secret.txt"},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		q := req.URL.Query()
		q.Set("h", c.header+":"+c.value)
		req.URL.RawQuery = q.Encode()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 500 || strings.Contains(string(body), "secret") || strings.Contains(string(body), "app body") {
			t.Errorf("%s: %s: %d %q, want a bare 500", c.header, c.value, resp.StatusCode, body)
		}
		if !strings.Contains(fx.log.String(), "header="+c.header) {
			t.Errorf("%s: %s: no log line naming the header:\n%s", c.header, c.value, fx.log)
		}
	}
	if resp, _ := do(t, "GET", srv.URL+"/?h=X-Sendfile:"+fx.files+"/missing.pdf"); resp.StatusCode != 404 {
		t.Errorf("a missing file: %d, want 404", resp.StatusCode)
	}
	// Only what is enabled: an accel_map alone refuses X-Sendfile.
	fx2 := newFixture(t)
	srv2 := fx2.serve(t, "[filter:files]\nuse = egg:wsgate#sendfile\naccel_map = /p/ = files\n")
	if resp, _ := do(t, "GET", srv2.URL+"/?h=X-Sendfile:"+filepath.Join(fx2.files, "report.pdf")); resp.StatusCode != 500 {
		t.Errorf("X-Sendfile without roots: %d, want 500", resp.StatusCode)
	}
}

func TestConfigurationErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ ini, want string }{
		{"[filter:files]\nuse = egg:wsgate#sendfile\n", "site.ini:1 [filter:files]: sendfile needs roots"},
		{"[filter:files]\nuse = egg:wsgate#sendfile\nroots = site.ini\n", "site.ini:3 [filter:files] roots: site.ini: open"},
		{"[filter:files]\nuse = egg:wsgate#sendfile\naccel_map = protected = .\n", `site.ini:3 [filter:files] accel_map: "protected = ." is not`},
		{"[filter:files]\nuse = egg:wsgate#sendfile\naccel_map =\n  /a/ = .\n  /a/ = .\n", "prefix /a/ is mapped twice"},
		{"[filter:files]\nuse = egg:wsgate#sendfile\naccel_map = /a/../ = .\n", "unsafe file name"},
	} {
		_, err := componenttest.BuildINI(t, &componenttest.Host{}, dir, c.ini, "files", true)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.ini, err, c.want)
		}
	}
}

// A directory missing at load (made by the site's first-run setup) is
// served once it exists.
func TestMissingRootOpensLater(t *testing.T) {
	fx := newFixture(t)
	srv := fx.serve(t, "[filter:files]\nuse = egg:wsgate#sendfile\naccel_map = /later/ = later\n")
	if resp, _ := do(t, "GET", srv.URL+"/?h=X-Accel-Redirect:/later/a.txt"); resp.StatusCode != 404 {
		t.Errorf("before the directory exists: %d, want 404", resp.StatusCode)
	}
	os.Mkdir(filepath.Join(fx.dir, "later"), 0o755)
	os.WriteFile(filepath.Join(fx.dir, "later", "a.txt"), []byte("made later"), 0o644)
	if _, body := do(t, "GET", srv.URL+"/?h=X-Accel-Redirect:/later/a.txt"); body != "made later" {
		t.Errorf("after: %q", body)
	}
}
