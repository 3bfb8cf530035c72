package e2e

import (
	"fmt"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/test/e2e/harness"
)

// production.ini keeps its secrets out of the file: without them wsgate
// refuses to start and names the file, line, section and option; given with
// --set, the same base.ini settings serve with DEBUG off, and django_full
// serves the files `collectstatic` gathered, and the uploads, from Go.
func TestDemoProductionINI(t *testing.T) {
	dir := demoCopy(t)
	line := demoLineOf(t, filepath.Join(dir, "production.ini"), "SECRET_KEY")

	res := harness.Run(t, harness.Options{Args: []string{"production.ini"}, Dir: dir})
	where := fmt.Sprintf("production.ini:%d [app:django] SECRET_KEY", line)
	if res.ExitCode != 1 || !strings.Contains(res.Output, where) || !strings.Contains(res.Output, "${secret_key}") {
		t.Fatalf("serve production.ini without secret_key: exit %d, want 1 and an error naming %q and ${secret_key}\n%s", res.ExitCode, where, res.Output)
	}
	if strings.Contains(res.Output, "Traceback") {
		t.Fatalf("a configuration mistake printed a traceback\n%s", res.Output)
	}

	secrets := []string{"--set", "secret_key=production-" + demoRandom(t), "--set", "public_host=127.0.0.1"}
	if out, err := demoManageResult(t, dir, nil, append(secrets, "production.ini", "collectstatic", "--noinput")...); err != nil {
		t.Fatalf("wsgate manage production.ini collectstatic: %v\n%s", err, out)
	}
	srv := harness.Start(t, harness.Options{Args: append(secrets, "production.ini"), Dir: dir})
	resp, page := demoGet(t, demoClient(t), srv.URL+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / with production.ini: %s\n%s", resp.Status, page)
	}
	rows := demoSettingRows(page)
	demoCheckServerTiming(t, resp) // the same WSGI middleware as in development
	debugLine := demoLineOf(t, filepath.Join(dir, "production.ini"), "debug")
	if got, want := rows["DEBUG"], [2]string{"False", fmt.Sprintf("production.ini:%d [DEFAULT] debug", debugLine)}; got != want {
		t.Errorf("DEBUG shown as %q, want %q", got, want)
	}
	if got := rows["TIME_ZONE"][0]; got != "Europe/London" {
		t.Errorf("TIME_ZONE shown as %q, want base.ini's Europe/London", got)
	}
	// django_full: the collected files and the uploads, served by Go where
	// the settings say (ETag and Cache-Control are the static component's).
	resp, css := demoGet(t, demoClient(t), srv.URL+"/static/admin/css/base.css")
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); resp.StatusCode != http.StatusOK || ct != "text/css" || !strings.Contains(css, "body") {
		t.Errorf("GET /static/admin/css/base.css: %s %q, want the admin's stylesheet", resp.Status, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("ETag") == "" || resp.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Errorf("GET /static/admin/css/base.css: ETag %q, Cache-Control %q: want the static_cache_control of production.ini",
			resp.Header.Get("ETag"), resp.Header.Get("Cache-Control"))
	}
	if err := os.MkdirAll(filepath.Join(dir, "var", "media"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "var", "media", "upload.txt"), []byte("an upload"), 0o644); err != nil {
		t.Fatal(err)
	}
	if resp, body := demoGet(t, demoClient(t), srv.URL+"/media/upload.txt"); resp.StatusCode != http.StatusOK || body != "an upload" {
		t.Errorf("GET /media/upload.txt: %s %q, want the file in MEDIA_ROOT", resp.Status, body)
	}
	if resp, _ := demoGet(t, demoClient(t), srv.URL+"/media/%2e%2e/demo.sqlite3"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /media/%%2e%%2e/demo.sqlite3: %s, want 400", resp.Status)
	}
	// With DEBUG off a missing page is Django's plain 404, not the debug page.
	resp, page = demoGet(t, demoClient(t), srv.URL+"/no-such-page/")
	if resp.StatusCode != http.StatusNotFound || strings.Contains(page, "URLconf") {
		t.Errorf("GET /no-such-page/: %s, want a plain 404 without the debug page\n%s", resp.Status, page)
	}
	// A host not in ALLOWED_HOSTS (from --set public_host) is refused.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Host = "evil.example"
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET / with Host: evil.example: %s, want 400", resp.Status)
	}
}
