package e2e

import (
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// A view that holds its worker until the test releases it: it writes
// E2E_RECORD_DIR/slow.started, then waits for slow.release.
const dfSlowView = `
import os, time
from django.http import HttpResponse
from django.urls import path

def slow(request):
    rec = os.environ["E2E_RECORD_DIR"]
    open(os.path.join(rec, "slow.started"), "w").close()
    while not os.path.exists(os.path.join(rec, "slow.release")):
        time.sleep(0.01)
    return HttpResponse("slow done")

urlpatterns += [path("slow/", slow)]
`

// dfProject makes a startproject site with the slow view and the INI file
// given, and returns its directory.
func dfProject(t *testing.T, iniName, ini string) string {
	t.Helper()
	py := testutil.VenvPython(t)
	root := t.TempDir()
	cmd := exec.Command(py, "-m", "django", "startproject", "mysite")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("django-admin startproject: %v\n%s", err, out)
	}
	dir := filepath.Join(root, "mysite")
	urls := filepath.Join(dir, "mysite", "urls.py")
	f, err := os.OpenFile(urls, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(dfSlowView)
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, iniName), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func dfGet(t *testing.T, url, host string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	resp, err := gwClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// The cookbook's site.ini as printed in docs/cookbook.md, on a
// startproject site: collectstatic, then the static files and the uploads
// come from Go — while the only worker is held by a slow view — and the
// rest from Django, compressed, all of it logged and counted.
func TestDjangoFullCookbookSite(t *testing.T) {
	ini := ""
	for _, b := range docBlocks(t, "docs/cookbook.md", "Django with its static and media files, and nothing in front") {
		if m := docININame.FindStringSubmatch(b.text); b.lang == "ini" && m != nil && m[1] == "site.ini" {
			ini = b.text
		}
	}
	if ini == "" {
		t.Fatal("docs/cookbook.md's Django recipe has no ```ini block starting with # site.ini")
	}
	dir := dfProject(t, "site.ini", ini)
	secret := []string{"--set", "secret_key=cookbook-" + demoRandom(t)}
	if r := djRun(t, dir, "", nil, append(append([]string{"manage"}, secret...), "site.ini", "collectstatic", "--noinput", "--verbosity", "0")...); r.status != 0 {
		t.Fatalf("wsgate manage site.ini collectstatic: %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	os.MkdirAll(filepath.Join(dir, "var", "media", "avatars"), 0o755)
	os.WriteFile(filepath.Join(dir, "var", "media", "avatars", "ada.txt"), []byte("Ada's avatar"), 0o644)

	rec := t.TempDir()
	srv := harness.Start(t, harness.Options{Args: append(secret, "--workers", "1", "site.ini"), Dir: dir,
		Env: []string{"E2E_RECORD_DIR=" + rec}})
	defer srv.Stop()
	host := "www.example.com" // the cookbook's ALLOWED_HOSTS

	slow := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", srv.URL+"/slow/", nil)
		req.Host = host
		resp, err := gwClient.Do(req)
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- resp.Status + " " + string(b)
	}()
	harness.WaitFor(t, "the slow view to start", func() bool {
		_, err := os.Stat(filepath.Join(rec, "slow.started"))
		return err == nil
	})

	resp, css := dfGet(t, srv.URL+"/static/admin/css/base.css", host)
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); resp.StatusCode != 200 || ct != "text/css" || !strings.Contains(css, "body") {
		t.Errorf("GET /static/admin/css/base.css while the worker is busy: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("static file Cache-Control %q, want the cookbook's static_cache_control", cc)
	}
	if resp, body := dfGet(t, srv.URL+"/media/avatars/ada.txt", host); resp.StatusCode != 200 || body != "Ada's avatar" {
		t.Errorf("GET /media/avatars/ada.txt: %s %q", resp.Status, body)
	}
	if resp, _ := dfGet(t, srv.URL+"/static/missing.css", host); resp.StatusCode != 404 {
		t.Errorf("GET /static/missing.css: %s, want Go's 404", resp.Status)
	}
	raw := string((&gwServer{addr: strings.TrimPrefix(srv.URL, "http://")}).gwRawExchange(t,
		"GET /static/../site.ini HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"))
	if !strings.HasPrefix(raw, "HTTP/1.1 400 ") || strings.Contains(raw, "secret_key") {
		t.Errorf("GET /static/../site.ini: %.80q, want 400", raw)
	}
	select {
	case s := <-slow:
		t.Fatalf("the slow view ended (%s) before it was released", s)
	default:
	}
	os.WriteFile(filepath.Join(rec, "slow.release"), nil, 0o644)
	if s := <-slow; s != "200 OK slow done" {
		t.Errorf("the slow view: %q", s)
	}
	if resp, page := dfGet(t, srv.URL+"/admin/login/", host); resp.StatusCode != 200 || !strings.Contains(page, "csrfmiddlewaretoken") {
		t.Errorf("GET /admin/login/ (Django): %s", resp.Status)
	}
	// The recipe's Go filters: Django's pages compressed, the files not
	// (they go out by sendfile); every request logged; metrics at /metrics.
	gz := func(path string) string {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Host = host
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := gwClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Status + " " + resp.Header.Get("Content-Encoding")
	}
	if got := gz("/admin/login/"); got != "200 OK gzip" {
		t.Errorf("GET /admin/login/ accepting gzip: %q, want Django's page compressed", got)
	}
	if got := gz("/static/admin/css/base.css"); got != "200 OK " {
		t.Errorf("GET /static/admin/css/base.css accepting gzip: %q, want the file as it is", got)
	}
	srv.WaitLog(`"GET /static/admin/css/base.css HTTP/1.1" 200`)
	if resp, page := dfGet(t, srv.URL+"/metrics", host); resp.StatusCode != 200 || !strings.Contains(page, "wsgate_requests_total") {
		t.Errorf("GET /metrics: %s, want the Prometheus page", resp.Status)
	}
}

// With debug on, django_full serves STATIC_URL from the finders'
// directories, as runserver does: an edited file is served at once,
// without collectstatic; a name no directory has reaches Django.
func TestDjangoFullDevelopmentServesTheFinders(t *testing.T) {
	dir := dfProject(t, "dev.ini", `[DEFAULT]
debug = true

[composite:main]
use = egg:wsgate#django_full
django = django

[app:django]
use = egg:wsgate#django
django_settings_module = mysite.settings
ALLOWED_HOSTS = ["localhost"]
STATICFILES_DIRS = ["%(here)s/assets"]
`)
	os.MkdirAll(filepath.Join(dir, "assets"), 0o755)
	os.WriteFile(filepath.Join(dir, "assets", "site.css"), []byte("h1 { color: red }"), 0o644)
	// check builds django_full too, which asks the site's Python for the settings.
	if r := djRun(t, dir, "", nil, "check", "dev.ini"); r.status != 0 || !strings.Contains(r.stdout, "⇒ Go django_full") ||
		!strings.Contains(r.stdout, "⇒ Python, pool django") {
		t.Errorf("wsgate check dev.ini: %d, want django_full run by Go and Django by a pool\n%s%s", r.status, r.stdout, r.stderr)
	}
	srv := harness.Start(t, harness.Options{Args: []string{"--workers", "1", "dev.ini"}, Dir: dir})
	defer srv.Stop()
	if resp, body := dfGet(t, srv.URL+"/static/site.css", "localhost"); resp.StatusCode != 200 || body != "h1 { color: red }" {
		t.Errorf("GET /static/site.css: %s %q", resp.Status, body)
	}
	os.WriteFile(filepath.Join(dir, "assets", "site.css"), []byte("h1 { color: blue }"), 0o644)
	if resp, body := dfGet(t, srv.URL+"/static/site.css", "localhost"); resp.StatusCode != 200 || body != "h1 { color: blue }" {
		t.Errorf("GET /static/site.css after an edit: %s %q", resp.Status, body)
	}
	if resp, css := dfGet(t, srv.URL+"/static/admin/css/base.css", "localhost"); resp.StatusCode != 200 || !strings.Contains(css, "body") {
		t.Errorf("GET /static/admin/css/base.css (the admin app's static/): %s", resp.Status)
	}
	// Not in any finder directory: Django answers, with its debug 404 page
	// (Go's own 404 is a line of plain text).
	if resp, page := dfGet(t, srv.URL+"/static/nowhere.css", "localhost"); resp.StatusCode != 404 || !strings.Contains(page, "<title>Page not found at /static/nowhere.css</title>") {
		t.Errorf("GET /static/nowhere.css: %s, want Django's debug 404\n%.300s", resp.Status, page)
	}
}
