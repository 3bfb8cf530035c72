package e2e

// `wsgate serve --reload` (docs/serve.md, "Reloading on change") with the
// real binary: edits to the application's module and to an included INI file
// outside the project are served after a reload; a broken module or INI file
// leaves the running workers serving until the next good save.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// reloadApp answers "VERSION greeting"; greeting comes from the INI file.
const reloadApp = `VERSION = %q

def make_app(global_conf, greeting="?"):
    def app(environ, start_response):
        body = ("%%s %%s" %% (VERSION, greeting)).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    return app
`

// reloadProject writes project/{development.ini,reloadapp.py} and
// shared/base.ini (outside the project, included with config:) and returns
// the project directory and the paths of the files the test edits.
func reloadProject(t *testing.T) (project, module, included string) {
	t.Helper()
	base := t.TempDir()
	project = filepath.Join(base, "project")
	module = filepath.Join(project, "reloadapp.py")
	included = filepath.Join(base, "shared", "base.ini")
	reloadWrite(t, filepath.Join(project, "development.ini"), "[app:main]\nuse = config:../shared/base.ini#greeter\n")
	reloadWrite(t, included, "[app:greeter]\npaste.app_factory = reloadapp:make_app\ngreeting = hello\n")
	reloadWrite(t, module, fmt.Sprintf(reloadApp, "v1"))
	reloadSetMtime(t, module, 100*time.Millisecond)
	return project, module, included
}

// reloadSecond is a whole second in the past that module mtimes are set in.
var reloadSecond = time.Now().Add(-time.Hour).Truncate(time.Second)

// reloadSetMtime sets path's modification time to reloadSecond plus offset.
func reloadSetMtime(t *testing.T, path string, offset time.Duration) {
	t.Helper()
	when := reloadSecond.Add(offset)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func reloadWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reloadFetch GETs url and returns the status and body; a request that gets
// no answer fails the test (the server must keep answering through reloads).
func reloadFetch(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := gwClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// reloadGet returns the body of a GET that must succeed with 200.
func reloadGet(t *testing.T, url string) string {
	t.Helper()
	status, body := reloadFetch(t, url)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200 (the server must keep serving through reloads)\n%s", url, status, body)
	}
	return body
}

// reloadAwaitBody polls until the server answers want. Every answer on the
// way must be a 200 with the old body or the new one: a reload drains the old
// workers only once the new ones are ready, so no request fails or sees
// anything else.
func reloadAwaitBody(t *testing.T, srv *harness.Server, old, want string) {
	t.Helper()
	reloadAwaitBodyAt(t, srv, "/", old, want)
}

func reloadAwaitBodyAt(t *testing.T, srv *harness.Server, path, old, want string) {
	t.Helper()
	end := time.Now().Add(harness.Deadline)
	for {
		got := reloadGet(t, srv.URL+path)
		if got == want {
			return
		}
		if got != old {
			t.Fatalf("body %q, want %q (before the reload) or %q (after)\n%s", got, old, want, srv.Logs())
		}
		if time.Now().After(end) {
			t.Fatalf("still %q %s after the change, want %q\n%s", got, harness.Deadline, want, srv.Logs())
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not synchronising on time
	}
}

// reloadAwaitLines waits until n lines of the server's output contain substr
// (WaitLog finds the first one only; reloads repeat their lines).
func reloadAwaitLines(t *testing.T, srv *harness.Server, substr string, n int) {
	t.Helper()
	harness.WaitFor(t, fmt.Sprintf("%d server lines containing %q", n, substr), func() bool {
		return strings.Count(srv.Logs(), substr) >= n
	})
}

func TestReloadOnChange(t *testing.T) {
	project, module, included := reloadProject(t)
	srv := harness.Start(t, harness.Options{
		Dir:  project,
		Args: []string{"development.ini", "--reload", "--workers", "1"},
		// Poll often: the default second would only make the test slower.
		// Python writes bytecode, as it does by default (an empty value
		// overrides a PYTHONDONTWRITEBYTECODE=1 of the test's environment).
		Env: []string{"WSGATE_RELOAD_INTERVAL=100ms", "PYTHONDONTWRITEBYTECODE="},
	})
	if got := reloadGet(t, srv.URL+"/"); got != "v1 hello" {
		t.Fatalf("first answer %q, want %q", got, "v1 hello")
	}
	srv.WaitLog("--reload: watching for changes")

	// The module changes: the new code is served. The edit keeps the size
	// and the modification time's second: bytecode cached by the first
	// worker (Python checks only those two) would be imported stale.
	reloadWrite(t, module, fmt.Sprintf(reloadApp, "v2"))
	reloadSetMtime(t, module, 200*time.Millisecond)
	reloadAwaitBody(t, srv, "v1 hello", "v2 hello")
	if line := srv.WaitLog("wsgate: reloading, changed:"); !strings.HasSuffix(line, " reloadapp.py") {
		t.Errorf("reload line %q, want it to name reloadapp.py", line)
	}
	reloadWrite(t, module, fmt.Sprintf(reloadApp, "v22"))
	reloadAwaitBody(t, srv, "v2 hello", "v22 hello")

	// A syntax error: the new worker cannot load the application, the
	// running one keeps serving the last good code, and the log says why.
	reloadWrite(t, module, fmt.Sprintf(reloadApp, "v333")+"def broken(:\n")
	reloadAwaitLines(t, srv, "wsgate: reloading, changed:", 3)
	failure := srv.WaitLog("reload failed")
	if !strings.Contains(failure, "SyntaxError") {
		t.Errorf("the reload failure does not name the SyntaxError: %q", failure)
	}
	if got := reloadGet(t, srv.URL+"/"); got != "v22 hello" {
		t.Fatalf("after a broken change: %q, want the last good code's %q\n%s", got, "v22 hello", srv.Logs())
	}

	// Fixed: served.
	reloadWrite(t, module, fmt.Sprintf(reloadApp, "v4444"))
	reloadAwaitBody(t, srv, "v22 hello", "v4444 hello")

	// The included INI file, outside the project directory, changes: the
	// configuration is read again and the new value is served.
	reloadWrite(t, included, "[app:greeter]\npaste.app_factory = reloadapp:make_app\ngreeting = bonjour\n")
	reloadAwaitBody(t, srv, "v4444 hello", "v4444 bonjour")

	// A broken INI file: one clear line naming the file, the running
	// workers keep serving; fixed, it is served.
	reloadWrite(t, included, "[app:greeter]\npaste.app_factory = reloadapp:make_app\ngreeting = bonjour\n[app:greeter]\n")
	reloadAwaitLines(t, srv, "wsgate: reload failed, the running workers keep serving:", 1)
	if line := srv.WaitLog("wsgate: reload failed, the running workers keep serving:"); !strings.Contains(line, "base.ini:") {
		t.Errorf("the configuration error does not name base.ini:LINE: %q", line)
	}
	if got := reloadGet(t, srv.URL+"/"); got != "v4444 bonjour" {
		t.Fatalf("after a broken INI file: %q, want %q", got, "v4444 bonjour")
	}
	reloadWrite(t, included, "[app:greeter]\npaste.app_factory = reloadapp:make_app\ngreeting = hallo\n")
	reloadAwaitBody(t, srv, "v4444 bonjour", "v4444 hallo")
	srv.Stop()
}

// `reload = true` in the server section turns it on as --reload does (and
// reload_suffixes adds file endings); a value that is not a boolean is a
// configuration error naming file:line.
func TestReloadFromServerSection(t *testing.T) {
	project, module, _ := reloadProject(t)
	ini := filepath.Join(project, "development.ini")
	reloadWrite(t, ini, "[app:main]\nuse = config:../shared/base.ini#greeter\n\n[server:main]\nuse = egg:Paste#http\nreload = maybe\n")
	res := harness.Run(t, harness.Options{Dir: project, Args: []string{"development.ini", "--workers", "1"}})
	if res.ExitCode != 1 || !strings.Contains(res.Output, "development.ini:6 [server:main] reload") {
		t.Fatalf("reload = maybe: exit %d, want 1 and an error naming development.ini:6 [server:main] reload\n%s", res.ExitCode, res.Output)
	}

	reloadWrite(t, ini, "[app:main]\nuse = config:../shared/base.ini#greeter\n\n[server:main]\nuse = egg:Paste#http\nreload = true\nreload_suffixes = .txt .html\n")
	srv := harness.Start(t, harness.Options{
		Dir:  project,
		Args: []string{"development.ini", "--workers", "1"},
		Env:  []string{"WSGATE_RELOAD_INTERVAL=100ms"},
	})
	if line := srv.WaitLog("--reload: watching for changes"); !strings.Contains(line, `suffixes=".py .ini .txt .html"`) {
		t.Errorf("reload_suffixes not applied: %q", line)
	}
	reloadWrite(t, module, fmt.Sprintf(reloadApp, "v22"))
	reloadAwaitBody(t, srv, "v1 hello", "v22 hello")
	srv.Stop()
}

// --app with --pythonpath: no configuration file; the module's directory is
// watched.
func TestReloadApp(t *testing.T) {
	dir := t.TempDir()
	module := filepath.Join(dir, "reloadapp.py")
	reloadWrite(t, module, fmt.Sprintf(reloadApp, "v1")+"application = make_app({}, greeting=\"app\")\n")
	srv := harness.Start(t, harness.Options{
		Args: []string{"--app", "reloadapp", "--pythonpath", dir, "--reload", "--workers", "1"},
		Env:  []string{"WSGATE_RELOAD_INTERVAL=100ms"},
	})
	srv.WaitLog("--reload: watching for changes")
	reloadWrite(t, module, fmt.Sprintf(reloadApp, "v22")+"application = make_app({}, greeting=\"app\")\n")
	reloadAwaitBody(t, srv, "v1 app", "v22 app")
	srv.Stop()
}

// A Django project as `django-admin startproject` makes it, settings from
// INI files: a view edited, a setting of the INI file changed, a template
// edited (watched through --reload-suffix .html: Django caches templates,
// DEBUG or not, so only a reload shows the edit).
func TestReloadDjango(t *testing.T) {
	py := testutil.VenvPython(t)
	root := t.TempDir()
	startproject := exec.Command(py, "-m", "django", "startproject", "mysite")
	startproject.Dir = root
	if out, err := startproject.CombinedOutput(); err != nil {
		t.Fatalf("django-admin startproject: %v\n%s", err, out)
	}
	dir := filepath.Join(root, "mysite")
	base := filepath.Join(dir, "base.ini")
	views := filepath.Join(dir, "mysite", "views.py")
	reloadWrite(t, base, "[DEFAULT]\ndebug = false\ndjango_settings_module = mysite.settings\n\n"+
		"[app:main]\nuse = egg:wsgate#django\nALLOWED_HOSTS = [\"127.0.0.1\"]\nTIME_ZONE = \"Europe/London\"\n"+
		"TEMPLATES = [{\"BACKEND\": \"django.template.backends.django.DjangoTemplates\", \"DIRS\": [\"${here}/templates\"]}]\n")
	reloadWrite(t, filepath.Join(dir, "development.ini"), "[DEFAULT]\ndebug = true\n\n[app:main]\nuse = config:base.ini\n")
	reloadWrite(t, filepath.Join(dir, "mysite", "urls.py"),
		"from django.urls import path\nfrom django.views.generic import TemplateView\nfrom . import views\n\n"+
			"urlpatterns = [path(\"\", views.hello), path(\"page\", TemplateView.as_view(template_name=\"page.html\"))]\n")
	page := filepath.Join(dir, "templates", "page.html")
	reloadWrite(t, page, "page one")
	const view = "from django.conf import settings\nfrom django.http import HttpResponse\n\n" +
		"def hello(request):\n    return HttpResponse(%q + \" \" + settings.TIME_ZONE)\n"
	reloadWrite(t, views, fmt.Sprintf(view, "v1"))

	srv := harness.Start(t, harness.Options{
		Dir:  dir,
		Args: []string{"development.ini", "--reload", "--reload-suffix", ".html", "--workers", "1"},
		Env:  []string{"WSGATE_RELOAD_INTERVAL=100ms"},
	})
	srv.WaitLog("--reload: watching for changes")
	if got := reloadGet(t, srv.URL+"/page"); got != "page one" {
		t.Fatalf("first page %q", got)
	}
	if got := reloadGet(t, srv.URL+"/"); got != "v1 Europe/London" {
		t.Fatalf("first answer %q", got)
	}
	reloadWrite(t, views, fmt.Sprintf(view, "v22"))
	reloadAwaitBody(t, srv, "v1 Europe/London", "v22 Europe/London")

	// A syntax error in a view. Django imports the URLconf (and so the
	// views) at the first request, not at load: the new workers start, and
	// a request gets a 500 (Django's DEBUG page cannot render either: it
	// resolves the URL again) with the SyntaxError in the log. Should the
	// Django factory import the URLconf at load, the reload fails instead
	// and the last good code keeps serving. Either way the server answers
	// and the log names the error; the fixed file is served again.
	reloadWrite(t, views, fmt.Sprintf(view, "v333")+"def broken(:\n")
	harness.WaitFor(t, "the broken view's reload", func() bool {
		status, body := reloadFetch(t, srv.URL+"/")
		switch {
		case status == http.StatusOK && body == "v22 Europe/London":
			return strings.Contains(srv.Logs(), "reload failed")
		case status == http.StatusInternalServerError:
			return true
		}
		t.Fatalf("GET / with a broken view: %d %.300q, want the last good page or a 500", status, body)
		return false
	})
	srv.WaitLog("SyntaxError: invalid syntax") // logged once the 500 has gone out
	reloadWrite(t, views, fmt.Sprintf(view, "v4444"))
	harness.WaitFor(t, "the fixed view", func() bool {
		status, body := reloadFetch(t, srv.URL+"/")
		switch {
		case status == http.StatusOK && body == "v4444 Europe/London":
			return true
		case status == http.StatusInternalServerError, status == http.StatusOK && body == "v22 Europe/London":
			return false // the broken state, until the reload
		}
		t.Fatalf("GET / after the fix: %d %.300q", status, body)
		return false
	})
	reloadWrite(t, base, strings.Replace(reloadRead(t, base), "Europe/London", "Europe/Paris", 1))
	reloadAwaitBody(t, srv, "v4444 Europe/London", "v4444 Europe/Paris")
	// The running worker renders the page once (and caches the template).
	if got := reloadGet(t, srv.URL+"/page"); got != "page one" {
		t.Fatalf("page %q, want %q", got, "page one")
	}
	reloadWrite(t, page, "page two")
	reloadAwaitBodyAt(t, srv, "/page", "page one", "page two")
	srv.Stop()
}

func reloadRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An INI change that remounts applications is composed again under
// --reload: the pool whose application stays gets the new settings, a new
// application gets a pool of its own, an unmounted one is no longer served,
// and every request on the way is answered.
func TestReloadRecomposes(t *testing.T) {
	project := t.TempDir()
	module := filepath.Join(project, "reloadapp.py")
	reloadWrite(t, module, fmt.Sprintf(reloadApp, "v1"))
	ini := filepath.Join(project, "site.ini")
	apps := "[app:a]\npaste.app_factory = reloadapp:make_app\ngreeting = %s\n" +
		"[app:b]\npaste.app_factory = reloadapp:make_app\ngreeting = b\n" +
		"[app:c]\npaste.app_factory = reloadapp:make_app\ngreeting = c\n"
	reloadWrite(t, ini, "[composite:main]\nuse = egg:Paste#urlmap\n/ = a\n/b = b\n"+fmt.Sprintf(apps, "a"))
	srv := harness.Start(t, harness.Options{
		Dir:  project,
		Args: []string{"site.ini", "--reload", "--workers", "1"},
		Env:  []string{"WSGATE_RELOAD_INTERVAL=100ms"},
	})
	if ready := srv.WaitLog("wsgate: ready"); !strings.Contains(ready, "2 pools, 2 workers") {
		t.Fatalf("ready line %q", ready)
	}
	srv.WaitLog("--reload: watching for changes")
	if got := reloadGet(t, srv.URL+"/b/x"); got != "v1 b" {
		t.Fatalf("/b/x before the change: %q", got)
	}
	reloadWrite(t, ini, "[composite:main]\nuse = egg:Paste#urlmap\n/ = a\n/c = c\n"+fmt.Sprintf(apps, "a2"))
	harness.WaitFor(t, "/c served by the new pool", func() bool {
		got := reloadGet(t, srv.URL+"/c/x")
		switch got {
		case "v1 c":
			return true
		case "v1 a", "v1 a2": // still the old composition: / caught it
			return false
		}
		t.Fatalf("/c/x answered %q during the reload\n%s", got, srv.Logs())
		return false
	})
	reloadAwaitBody(t, srv, "v1 a", "v1 a2")
	if status, body := reloadFetch(t, srv.URL+"/b/x"); status != http.StatusOK || body != "v1 a2" {
		// /b is no longer mounted: the root application answers it now.
		t.Errorf("/b/x after the change: %d %q, want the root application", status, body)
	}
	// The unmounted pool's worker is stopped, not left running.
	harness.WaitFor(t, "pool b's worker stopped", func() bool {
		for _, line := range strings.Split(srv.Logs(), "\n") {
			if strings.Contains(line, "pool=b ") && strings.Contains(line, "to=stopped") {
				return true
			}
		}
		return false
	})
	srv.Stop()
}

// SIGHUP reloads every pool of a composed site.
func TestSighupReloadsEveryPool(t *testing.T) {
	srv := harness.Start(t, harness.Options{Args: []string{filepath.Join(gwAppsDir(), "pep3333.ini"), "--pythonpath", gwAppsDir(), "--workers", "1"}})
	if ready := srv.WaitLog("wsgate: ready"); !strings.Contains(ready, "2 pools, 2 workers") {
		t.Fatalf("ready line %q", ready)
	}
	before := map[string]string{"/pid": reloadGet(t, srv.URL+"/pid"), "/mount/pid": reloadGet(t, srv.URL+"/mount/pid")}
	srv.Signal(syscall.SIGHUP)
	for _, pool := range []string{"plain", "mounted"} {
		harness.WaitFor(t, "pool "+pool+" reloaded", func() bool {
			for _, line := range strings.Split(srv.Logs(), "\n") {
				if strings.Contains(line, `msg="reload complete"`) && strings.Contains(line, "pool="+pool+" ") {
					return true
				}
			}
			return false
		})
	}
	for path, pid := range before {
		if now := reloadGet(t, srv.URL+path); now == pid {
			t.Errorf("%s: still served by pid %s after SIGHUP", path, now)
		}
	}
	srv.Stop()
}
