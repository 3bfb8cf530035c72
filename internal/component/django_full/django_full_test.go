package django_full

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/python"
)

// host stands in for the compose step: the Django application is a
// handler that says what it was asked (the worker pool is compose's
// business); Python is the real interpreter, in the project's directory.
type host struct {
	t    *testing.T
	dir  string
	logs *bytes.Buffer
}

func (h host) App(name string) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := component.FactsOf(r)
		fmt.Fprintf(w, "django %s: SCRIPT_NAME=%q PATH_INFO=%q set=%v", name, f.ScriptName, f.PathInfo, f.PathSet)
	}), nil
}
func (h host) Site() component.Site { return nil }
func (h host) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(h.logs, nil)) }
func (h host) PythonCommand(module string, args ...string) (*exec.Cmd, error) {
	cmd, err := python.Command(testutil.VenvPython(h.t), []string{h.dir}, module, args...)
	if cmd != nil {
		cmd.Dir = h.dir
	}
	return cmd, err
}

const settingsPy = `SECRET_KEY = "test"
INSTALLED_APPS = ["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                  "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles"]
ROOT_URLCONF = "urls"
STATIC_URL = "static/"
`

// project writes a Django project (settings module, extra files) and an
// INI file, and builds [composite:main] from it.
func project(t *testing.T, ini string, files map[string]string) (http.Handler, string, error) {
	t.Helper()
	py := testutil.VenvPython(t)
	dir := t.TempDir()
	files["settings.py"] = settingsPy
	files["urls.py"] = "urlpatterns = []\n"
	files["site.ini"] = ini
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n, err := config.LoadApp(filepath.Join(dir, "site.ini"), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := config.Resolve(n, py, []string{dir}); err != nil {
		t.Fatal(err)
	}
	spec, ok := component.Lookup(n.Use)
	if !ok {
		t.Fatalf("%s is not a component", n.Use)
	}
	logs := &bytes.Buffer{}
	built, err := spec.Build(component.NewBuilder(n, host{t, dir, logs}))
	if err != nil {
		return nil, logs.String(), err
	}
	t.Cleanup(func() { built.Close() })
	return built.Handler, logs.String(), nil
}

// pathCase is a request path and the answer it must get.
type pathCase struct {
	path   string
	status int
	body   string
}

func checkPaths(t *testing.T, h http.Handler, cases []pathCase) {
	t.Helper()
	for _, c := range cases {
		if status, body := get(h, c.path); status != c.status || body != c.body {
			t.Errorf("GET %s: %d %.80q, want %d %.80q", c.path, status, body, c.status, c.body)
		}
	}
}

func get(h http.Handler, target string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

const productionINI = `[DEFAULT]
debug = false

[composite:main]
use = egg:wsgate#django_full
django = django
static_cache_control = public, max-age=60

[app:django]
use = egg:wsgate#django
django_settings_module = settings
STATIC_ROOT = "%(here)s/var/static"
MEDIA_ROOT = "var/media"
MEDIA_URL = "/uploads/"
`

// DEBUG off: STATIC_URL from STATIC_ROOT, MEDIA_URL from MEDIA_ROOT (a
// relative one from the workers' directory), the rest to Django.
func TestProductionServesStaticRootAndMedia(t *testing.T) {
	h, _, err := project(t, productionINI, map[string]string{
		"var/static/app.css":   "collected css",
		"var/media/photo.txt":  "an upload",
		"assets/not-there.css": "only in a finder dir",
	})
	if err != nil {
		t.Fatal(err)
	}
	checkPaths(t, h, []pathCase{
		{"/static/app.css", 200, "collected css"},
		{"/uploads/photo.txt", 200, "an upload"},
		{"/static/missing.css", 404, "404 page not found\n"}, // Go's answer, not Django's
		{"/static/../settings.py", 400, "Bad Request\n"},
		{"/admin/", 200, `django django: SCRIPT_NAME="" PATH_INFO="" set=false`},
		{"/static", 200, `django django: SCRIPT_NAME="" PATH_INFO="" set=false`},
	})
	rec := httptest.NewRecorder()
	req, f := component.Attach(httptest.NewRequest("GET", "/static/app.css", nil))
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Cache-Control") != "public, max-age=60" || f.ScriptName != "/static" || f.PathInfo != "/app.css" || f.Route != "/static" {
		t.Errorf("a static file: Cache-Control %q, SCRIPT_NAME %q, PATH_INFO %q, route %q", rec.Header().Get("Cache-Control"), f.ScriptName, f.PathInfo, f.Route)
	}
}

// Mounted under an outer urlmap, django_full matches STATIC_URL below its
// own mount, as Django prefixes a relative STATIC_URL with SCRIPT_NAME.
func TestMountedBelowAPrefix(t *testing.T) {
	h, _, err := project(t, productionINI, map[string]string{"var/static/app.css": "collected css"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req, f := component.Attach(httptest.NewRequest("GET", "/app/static/app.css", nil))
	f.ScriptName, f.PathInfo, f.PathSet = "/app", "/static/app.css", true
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "collected css" || f.ScriptName != "/app/static" || f.PathInfo != "/app.css" {
		t.Errorf("below /app: %d %q, SCRIPT_NAME %q PATH_INFO %q", rec.Code, rec.Body.String(), f.ScriptName, f.PathInfo)
	}
}

// DEBUG on: as runserver, the finders' directories in order; what none of
// them has goes to Django with the path as the client sent it.
func TestDebugServesFromTheFinders(t *testing.T) {
	ini := strings.Replace(productionINI, "debug = false", "debug = true", 1) + "STATICFILES_DIRS = [\"%(here)s/assets\"]\n"
	h, _, err := project(t, ini, map[string]string{
		"var/static/app.css":    "collected, stale",
		"assets/app.css":        "from the finder",
		"assets/admin/own.css":  "the project's own",
		"var/media/a/photo.txt": "an upload",
	})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(filepath.Join(djangoDir(t), "contrib/admin/static/admin/css/base.css"))
	if err != nil {
		t.Fatal(err)
	}
	checkPaths(t, h, []pathCase{
		{"/static/app.css", 200, "from the finder"},
		{"/static/admin/own.css", 200, "the project's own"},
		{"/static/admin/css/base.css", 200, string(admin)},
		{"/static/nowhere.css", 200, `django django: SCRIPT_NAME="" PATH_INFO="" set=false`}, // as it came
		{"/uploads/a/photo.txt", 200, "an upload"},
	})
}

func djangoDir(t *testing.T) string {
	out, err := exec.Command(testutil.VenvPython(t), "-c", "import django, os; print(os.path.dirname(django.__file__))").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// Without STATIC_ROOT and with DEBUG off nothing can serve STATIC_URL: a
// warning says so; a missing MEDIA_ROOT is a warning too.
func TestWarnings(t *testing.T) {
	ini := strings.Replace(productionINI, `STATIC_ROOT = "%(here)s/var/static"`, "", 1)
	h, logs, err := project(t, ini, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "STATIC_ROOT is not set and DEBUG is off: nothing serves STATIC_URL (/static/)") {
		t.Errorf("no warning about STATIC_ROOT: %s", logs)
	}
	if !strings.Contains(logs, "site.ini:6 [composite:main] django: ") || !strings.Contains(logs, "var/media does not exist (yet)") {
		t.Errorf("no located warning about MEDIA_ROOT: %s", logs)
	}
	if status, body := get(h, "/static/app.css"); status != 200 || !strings.HasPrefix(body, "django") {
		t.Errorf("GET /static/app.css without STATIC_ROOT: %d %q, want Django", status, body)
	}
}

func TestMistakesAreLocated(t *testing.T) {
	for _, c := range []struct{ ini, want string }{
		{"[composite:main]\nuse = egg:wsgate#django_full\n", "site.ini:1 [composite:main]: option django is required"},
		{"[composite:main]\nuse = egg:wsgate#django_full\ndjango = django\ndjango_app = django\n" + djangoApp, "site.ini:4 [composite:main] django_app: give django or django_app, not both"},
		{"[composite:main]\nuse = egg:wsgate#django_full\ndjango = django\nstatic = sometimes\n" + djangoApp, `site.ini:4 [composite:main] static: "sometimes" is not true or false`},
		{"[composite:main]\nuse = egg:django-pastedeploy-settings#full_django\ndjango_app = files\n[app:files]\nuse = egg:Paste#urlmap\n",
			`site.ini:3 [composite:main] django_app: "files" is not a Django application`},
		{"[composite:main]\nuse = egg:wsgate#django_full\ndjango = django\n" + djangoApp + "STATIC_ROOT = \"/srv\"\nSTATIC_URL = \"/\"\n",
			`site.ini:3 [composite:main] django: STATIC_URL is "/": serving it from Go would hide Django`},
		{"[composite:main]\nuse = egg:wsgate#django_full\ndjango = django\n" + djangoApp + "ALLOWED_HOSTS = \"x\"\n",
			"site.ini:7 [app:django] ALLOWED_HOSTS: "},
	} {
		_, _, err := project(t, c.ini, map[string]string{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\nerror %v\nwant %q", c.ini, err, c.want)
		}
	}
}

const djangoApp = "[app:django]\nuse = egg:wsgate#django\ndjango_settings_module = settings\n"

func TestMountPrefix(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"/static/", "/static/", ""},
		{"static/", "/static/", ""},
		{"/media", "/media/", ""},
		{"https://cdn.example/static/", "", ""},
		{"//cdn.example/static/", "", ""},
		{"/", "", `is "/"`},
	} {
		got, err := mountPrefix(c.in)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("mountPrefix(%q) = %q, %v; want %q, %q", c.in, got, err, c.want, c.err)
		}
	}
}
