package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// Several Django configurations under one server (docs/serve.md, "Worker
// pools"): each Python application that cannot share a process gets a
// worker pool of its own. The real binary, real Django, real requests.
// Identifiers start with "pl".

// plSettings is the settings module of every site here. It defines neither
// DEBUG nor ROOT_URLCONF: with use = egg:twod.wsgi the module would win
// over the INI file, and each application sets its own URLconf.
const plSettings = `
SECRET_KEY = "pools"
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = []
DATABASES = {}
USE_TZ = True
`

const plViews = `
import json
import os
import time

from django.conf import settings
from django.db import connection
from django.http import HttpResponse


def who(request):
    db = ""
    if settings.DATABASES["default"].get("ENGINE", "").endswith("sqlite3"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")  # opens the database the settings name
        db = os.path.basename(str(connection.settings_dict["NAME"]))
    body = {"urlconf": settings.ROOT_URLCONF, "site": getattr(settings, "SITE_NAME", ""), "db": db,
            "pid": os.getpid(), "script_name": request.META.get("SCRIPT_NAME", ""), "path": request.path}
    return HttpResponse(json.dumps(body), content_type="application/json")


def hang(request):
    # Says which worker holds the request, then never answers.
    with open("hang.pid.tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename("hang.pid.tmp", "hang.pid")
    time.sleep(600)
    return HttpResponse("woke up")
`

const plURLs = `
from django.urls import path
from pl_views import hang, who
urlpatterns = [path("", who), path("only-main/", who), path("hang/", hang)]
`

const plURLsSubset = `
from django.urls import path
from pl_views import who
urlpatterns = [path("", who), path("only-subset/", who)]
`

// plTwoDBINI is two Django sites with different DATABASES, each sized by
// its own wsgate.* options, behind a metrics filter.
const plTwoDBINI = `[DEFAULT]
django_settings_module = pl_settings

[pipeline:main]
pipeline = metrics sites

[filter:metrics]
use = egg:wsgate#metrics

[composite:sites]
use = egg:Paste#urlmap
/blog = blog
/shop = shop

[app:blog]
use = egg:wsgate#django
ROOT_URLCONF = "pl_urls"
SITE_NAME = "blog"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "${here}/blog.sqlite3"}}
wsgate.workers = %d

[app:shop]
use = blog
SITE_NAME = "shop"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "${here}/shop.sqlite3"}}
wsgate.workers = 1
`

// plProject writes the Django project and site.ini into a temporary
// directory.
func plProject(t *testing.T, ini string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"pl_settings.py": plSettings, "pl_views.py": plViews, "pl_urls.py": plURLs,
		"pl_urls_subset.py": plURLsSubset, "site.ini": ini,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type plAnswer struct {
	URLConf    string `json:"urlconf"`
	Site       string `json:"site"`
	DB         string `json:"db"`
	PID        int    `json:"pid"`
	ScriptName string `json:"script_name"`
	Path       string `json:"path"`
}

// plGet asks for url and decodes the view's answer; a status other than
// 200 fails the test.
func plGet(t *testing.T, url string) plAnswer {
	t.Helper()
	status, body := reloadFetch(t, url)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %.300q", url, status, body)
	}
	var a plAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("GET %s: %v in %.300q", url, err, body)
	}
	return a
}

// plSubsetSection is docs/django.md's section on serving a subset of the
// views: its INI file and the pools check prints are run as printed.
const plSubsetSection = "Serving a subset of the views, and several Django sites in one server"

// The twod.wsgi subset example runs as written (docs/django.md) beside its
// main site: each answers with its own URLconf, from its own pool; check
// shows the pools and why as the page prints them; manage takes the subset
// alone.
func TestPoolsDjangoSubset(t *testing.T) {
	blocks := docBlocks(t, "docs/django.md", plSubsetSection)
	if len(blocks) < 2 || blocks[0].lang != "ini" {
		t.Fatalf("docs/django.md %q: want the INI file, then check's pools", plSubsetSection)
	}
	dir := plProject(t, blocks[0].text)
	// The page's project: mysite.settings, mysite.urls, mysite.urls_subset.
	if err := os.Mkdir(filepath.Join(dir, "mysite"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"__init__.py": "", "settings.py": plSettings, "urls.py": plURLs, "urls_subset.py": plURLsSubset} {
		if err := os.WriteFile(filepath.Join(dir, "mysite", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := djRun(t, dir, "", nil, "check", "site.ini#site", "--pythonpath", ".")
	if check.status != 0 {
		t.Fatalf("check: status %d\n%s%s", check.status, check.stdout, check.stderr)
	}
	for _, want := range strings.Split(strings.TrimSpace(blocks[1].text), "\n") {
		if !strings.Contains(check.stdout, want+"\n") {
			t.Errorf("check does not print docs/django.md's line %q:\n%s", want, check.stdout)
		}
	}
	srv := harness.Start(t, harness.Options{Dir: dir, Args: []string{"site.ini#site", "--pythonpath", ".", "--workers", "1"}})
	if ready := srv.WaitLog("wsgate: ready"); !strings.Contains(ready, "ready, 2 pools, 2 workers (pid ") {
		t.Errorf("ready line %q", ready)
	}
	main := plGet(t, srv.URL+"/only-main/")
	subset := plGet(t, srv.URL+"/sub/only-subset/")
	if main.URLConf != "mysite.urls" || main.ScriptName != "" {
		t.Errorf("main site answered %+v", main)
	}
	if subset.URLConf != "mysite.urls_subset" || subset.ScriptName != "/sub" || subset.Path != "/sub/only-subset/" {
		t.Errorf("subset answered %+v (want its own URLconf, mounted at /sub)", subset)
	}
	if main.PID == subset.PID {
		t.Errorf("main site and subset served by one process (pid %d)", main.PID)
	}
	// Each URLconf is its own: the other's views are not there.
	for _, path := range []string{"/only-subset/", "/sub/only-main/"} {
		if status, _ := reloadFetch(t, srv.URL+path); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, status)
		}
	}
	srv.Stop()
	manage := djRun(t, dir, "", nil, "manage", "--pythonpath", ".", "site.ini#standalone_subset",
		"shell", "-c", "from django.conf import settings; print(settings.ROOT_URLCONF)")
	if manage.status != 0 || lastLine(manage.stdout) != "mysite.urls_subset" {
		t.Errorf("manage site.ini#standalone_subset: status %d, %q %s", manage.status, manage.stdout, manage.stderr)
	}
}

// Two Django sites with different DATABASES under one server, each pool
// sized by its wsgate.workers: the metrics and the ready line show it.
func TestPoolsTwoDatabases(t *testing.T) {
	dir := plProject(t, fmt.Sprintf(plTwoDBINI, 2))
	srv := harness.Start(t, harness.Options{Dir: dir, Args: []string{"site.ini", "--pythonpath", "."}})
	if ready := srv.WaitLog("wsgate: ready"); !strings.Contains(ready, "ready, 2 pools, 3 workers (pid ") {
		t.Errorf("ready line %q, want the pools' own sizes (2 + 1)", ready)
	}
	blog, shop := plGet(t, srv.URL+"/blog/"), plGet(t, srv.URL+"/shop/")
	if blog.DB != "blog.sqlite3" || blog.Site != "blog" || shop.DB != "shop.sqlite3" || shop.Site != "shop" {
		t.Errorf("blog answered %+v, shop %+v", blog, shop)
	}
	for _, db := range []string{"blog.sqlite3", "shop.sqlite3"} {
		if _, err := os.Stat(filepath.Join(dir, db)); err != nil {
			t.Errorf("the database the INI file names was not opened: %v", err)
		}
	}
	status, metrics := reloadFetch(t, srv.URL+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	for _, want := range []string{`wsgate_pool_workers{pool="blog",state="ready"} 2`, `wsgate_pool_workers{pool="shop",state="ready"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, plGrep(metrics, "wsgate_pool_workers"))
		}
	}
	srv.Stop()
}

// lastLine is the last non-empty line of out (Django's shell may say
// something before).
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

func plGrep(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// plLoad asks for each path in turn, from several clients, until stop is
// closed, and counts every answer by path and status.
type plLoad struct {
	mu     sync.Mutex
	counts map[string]int // "path status"
	pids   map[string]map[int]bool
	wg     sync.WaitGroup
	stop   chan struct{}
}

func plStartLoad(t *testing.T, base string, clients int, paths ...string) *plLoad {
	l := &plLoad{counts: map[string]int{}, pids: map[string]map[int]bool{}, stop: make(chan struct{})}
	for _, p := range paths {
		l.pids[p] = map[int]bool{}
	}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				path := paths[(i+n)%len(paths)]
				key, pid := path+" error", 0
				resp, err := gwClient.Get(base + path)
				if err == nil {
					var a plAnswer
					err = json.NewDecoder(resp.Body).Decode(&a)
					resp.Body.Close()
					key, pid = path+" "+strconv.Itoa(resp.StatusCode), a.PID
				}
				l.mu.Lock()
				l.counts[key]++
				if pid != 0 {
					l.pids[path][pid] = true
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// finish stops the load and fails the test unless every answer was a 200;
// it returns how many answers each path got.
func (l *plLoad) finish(t *testing.T, logs func() string) map[string]int {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	ok := map[string]int{}
	for key, n := range l.counts {
		path, status, _ := strings.Cut(key, " ")
		if status != "200" {
			t.Errorf("%d answers %q under load", n, key)
			continue
		}
		ok[path] += n
	}
	if t.Failed() {
		t.Logf("server log:\n%s", logs())
	}
	return ok
}

// A worker of one pool killed with a request in flight costs that request
// only: the other pool's requests, made all the while, are all answered, by
// the same worker as before.
func TestPoolsCrashStaysInItsPool(t *testing.T) {
	dir := plProject(t, fmt.Sprintf(plTwoDBINI, 1))
	srv := harness.Start(t, harness.Options{Dir: dir, Args: []string{"site.ini", "--pythonpath", "."}})
	shopPID := plGet(t, srv.URL+"/shop/").PID
	hung := make(chan int, 1)
	go func() {
		status, _ := reloadFetch(t, srv.URL+"/blog/hang/")
		hung <- status
	}()
	pid, err := strconv.Atoi(harness.WaitFile(t, filepath.Join(dir, "hang.pid")))
	if err != nil {
		t.Fatal(err)
	}
	load := plStartLoad(t, srv.URL, 4, "/shop/")
	// Load is running: at least one answer before the kill.
	harness.WaitFor(t, "the shop pool answering under load", func() bool {
		load.mu.Lock()
		defer load.mu.Unlock()
		return load.counts["/shop/ 200"] > 0
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if status := <-hung; status != http.StatusBadGateway {
		t.Errorf("the request on the killed worker: %d, want 502", status)
	}
	// The blog pool replaces its worker; the shop pool never noticed.
	harness.WaitFor(t, "the blog pool serving again", func() bool {
		status, _ := reloadFetch(t, srv.URL+"/blog/")
		return status == http.StatusOK
	})
	answered := load.finish(t, srv.Logs)
	if answered["/shop/"] == 0 {
		t.Errorf("no shop request answered while the blog worker died")
	}
	if len(load.pids["/shop/"]) != 1 || !load.pids["/shop/"][shopPID] {
		t.Errorf("shop answered from pids %v, want only its worker %d", load.pids["/shop/"], shopPID)
	}
	for _, line := range strings.Split(srv.Logs(), "\n") {
		if strings.Contains(line, "pool=shop") && strings.Contains(line, "to=stopped") {
			t.Errorf("a shop worker stopped: %s", line)
		}
	}
	srv.Stop()
}

// plAwaitReloads waits for a "reload complete" line of each pool after
// the log's first skip lines.
func plAwaitReloads(t *testing.T, srv *harness.Server, skip int, pools ...string) {
	t.Helper()
	for _, pool := range pools {
		harness.WaitFor(t, "pool "+pool+" reloaded", func() bool {
			lines := strings.Split(srv.Logs(), "\n")
			for _, line := range lines[min(skip, len(lines)):] {
				if strings.Contains(line, `msg="reload complete"`) && strings.Contains(line, "pool="+pool+" ") {
					return true
				}
			}
			return false
		})
	}
}

// SIGHUP under load reloads both pools, and every request made meanwhile,
// to either, is answered 200.
func TestPoolsSighupUnderLoad(t *testing.T) {
	dir := plProject(t, fmt.Sprintf(plTwoDBINI, 2))
	srv := harness.Start(t, harness.Options{Dir: dir, Args: []string{"site.ini", "--pythonpath", "."}})
	before := map[string]int{"/blog/": plGet(t, srv.URL+"/blog/").PID, "/shop/": plGet(t, srv.URL+"/shop/").PID}
	load := plStartLoad(t, srv.URL, 6, "/blog/", "/shop/")
	harness.WaitFor(t, "both pools answering under load", func() bool {
		load.mu.Lock()
		defer load.mu.Unlock()
		return load.counts["/blog/ 200"] > 0 && load.counts["/shop/ 200"] > 0
	})
	skip := len(strings.Split(srv.Logs(), "\n"))
	srv.Signal(syscall.SIGHUP)
	plAwaitReloads(t, srv, skip, "blog", "shop")
	answered := load.finish(t, srv.Logs)
	t.Logf("answered during the reload: %v", answered)
	for path, pid := range before {
		if answered[path] == 0 {
			t.Errorf("%s: no answer under load", path)
		}
		if now := plGet(t, srv.URL+path).PID; now == pid {
			t.Errorf("%s: still served by pid %d after SIGHUP", path, pid)
		}
	}
	srv.Stop()
}

// --reload after an INI change reloads the pools the change concerns, and
// only those: the shop's settings change, the blog's workers stay.
func TestPoolsReloadOnlyTheChangedPool(t *testing.T) {
	dir := plProject(t, fmt.Sprintf(plTwoDBINI, 1))
	srv := harness.Start(t, harness.Options{
		Dir:  dir,
		Args: []string{"site.ini", "--pythonpath", ".", "--reload"},
		Env:  []string{"WSGATE_RELOAD_INTERVAL=100ms"},
	})
	srv.WaitLog("--reload: watching for changes")
	blogPID := plGet(t, srv.URL+"/blog/").PID
	ini := filepath.Join(dir, "site.ini")
	reloadWrite(t, ini, strings.Replace(reloadRead(t, ini), `SITE_NAME = "shop"`, `SITE_NAME = "shop2"`, 1))
	harness.WaitFor(t, "the shop's new settings", func() bool {
		return plGet(t, srv.URL+"/shop/").Site == "shop2"
	})
	plAwaitReloads(t, srv, 0, "shop")
	if now := plGet(t, srv.URL+"/blog/"); now.PID != blogPID || now.Site != "blog" {
		t.Errorf("blog answered %+v after a change of the shop only; want its worker %d untouched", now, blogPID)
	}
	for _, line := range strings.Split(srv.Logs(), "\n") {
		if strings.Contains(line, "pool=blog") && strings.Contains(line, "reloading workers") {
			t.Errorf("the blog pool reloaded: %s", line)
		}
	}
	srv.Stop()
}

// plOldApp imports only under Django 4: resolving its factory, or loading
// it, in the server's interpreter (Django 5) fails.
const plOldApp = `
import os

import django

assert django.VERSION[0] == 4, "pl_old needs Django 4, this is %s" % django.get_version()


def make_app(global_conf, **local_conf):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("django %s pid %d" % (django.get_version(), os.getpid())).encode()]
    return app
`

// An application that names another interpreter (wsgate.python) runs in a
// pool of its own under it — its factory resolved there too — beside a
// Django site on the server's interpreter.
func TestPoolsOwnInterpreter(t *testing.T) {
	old := filepath.Join(testutil.RepoRoot(), ".venv-dj42", "bin", "python")
	if _, err := os.Stat(old); err != nil {
		testutil.Skip(t, "the Django 4.2 virtualenv (.venv-dj42, make venv) is missing: %v", err)
	}
	dir := plProject(t, `[DEFAULT]
django_settings_module = pl_settings

[composite:main]
use = egg:Paste#urlmap
/ = site
/old = legacy

[app:site]
use = egg:wsgate#django
ROOT_URLCONF = "pl_urls"

[app:legacy]
paste.app_factory = pl_old:make_app
wsgate.python = `+old+`

[app:legacy_django]
use = site
wsgate.python = `+old+`
`)
	if err := os.WriteFile(filepath.Join(dir, "pl_old.py"), []byte(plOldApp), 0o644); err != nil {
		t.Fatal(err)
	}
	check := djRun(t, dir, "", nil, "check", "site.ini", "--pythonpath", ".")
	if check.status != 0 || !strings.Contains(check.stdout, "  legacy  site.ini:13 [app:legacy]  serves /old  python="+old+"  — its own interpreter, wsgate.python (site.ini:15 [app:legacy] wsgate.python)") {
		t.Fatalf("check: status %d, want the legacy pool and why\n%s%s", check.status, check.stdout, check.stderr)
	}
	if want := "wsgate.python = " + old + "  (wsgate's, not the application's)"; !strings.Contains(check.stdout, want) {
		t.Errorf("check's tree does not show %q:\n%s", want, check.stdout)
	}
	srv := harness.Start(t, harness.Options{Dir: dir, Args: []string{"site.ini", "--pythonpath", ".", "--workers", "1"}})
	if status, body := reloadFetch(t, srv.URL+"/old/"); status != http.StatusOK || !strings.HasPrefix(body, "django 4.2") {
		t.Errorf("/old/: %d %q, want the application under Django 4.2's interpreter", status, body)
	}
	if a := plGet(t, srv.URL+"/"); a.URLConf != "pl_urls" {
		t.Errorf("/: %+v", a)
	}
	srv.Stop()
	// manage runs a Django application in its own interpreter too.
	manage := djRun(t, dir, "", nil, "manage", "--pythonpath", ".", "site.ini#legacy_django",
		"shell", "-c", "import django; print(django.get_version())")
	if manage.status != 0 || !strings.HasPrefix(lastLine(manage.stdout), "4.2") {
		t.Errorf("manage site.ini#legacy_django: status %d, %q %s", manage.status, manage.stdout, manage.stderr)
	}
}

// Each pool has its own --timeout when its application gives
// wsgate.timeout: the blog's hung request gets 504 and its worker is
// replaced; the shop (which uses the blog's section) overrides the option.
func TestPoolsOwnTimeout(t *testing.T) {
	ini := fmt.Sprintf(plTwoDBINI, 2)
	ini = strings.Replace(ini, "wsgate.workers = 1\n", "wsgate.workers = 1\nwsgate.timeout = 0\n", 1) // the shop's
	ini = strings.Replace(ini, "[app:shop]", "wsgate.timeout = 1\n\n[app:shop]", 1)                   // the blog's
	dir := plProject(t, ini)
	srv := harness.Start(t, harness.Options{Dir: dir, Args: []string{"site.ini", "--pythonpath", "."}})
	settings := map[string]string{}
	for _, line := range strings.Split(srv.Logs(), "\n") {
		if strings.Contains(line, `msg="pool settings"`) {
			for _, pool := range []string{"blog", "shop"} {
				if strings.Contains(line, "pool="+pool+" ") {
					settings[pool] = line
				}
			}
		}
	}
	if !strings.Contains(settings["blog"], " timeout=1s ") || !strings.Contains(settings["shop"], " timeout=none ") {
		t.Errorf("pool settings lines: %q", settings)
	}
	if status, _ := reloadFetch(t, srv.URL+"/blog/hang/"); status != http.StatusGatewayTimeout {
		t.Errorf("the blog's hung request: %d, want 504 past its wsgate.timeout", status)
	}
	if a := plGet(t, srv.URL+"/shop/"); a.Site != "shop" {
		t.Errorf("shop answered %+v", a)
	}
	srv.Stop()
}

// Each pool has its own queue: with none allowed (--queue-size 0), a
// request for the blog, whose only worker is busy, gets 503 at once while
// the shop answers.
func TestPoolsQueueIsPerPool(t *testing.T) {
	dir := plProject(t, fmt.Sprintf(plTwoDBINI, 1))
	srv := harness.Start(t, harness.Options{Dir: dir, Args: []string{"site.ini", "--pythonpath", ".", "--queue-size", "0", "--pipeline", "1"}})
	hung := make(chan int, 1)
	go func() {
		status, _ := reloadFetch(t, srv.URL+"/blog/hang/")
		hung <- status
	}()
	pid, err := strconv.Atoi(harness.WaitFile(t, filepath.Join(dir, "hang.pid")))
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := reloadFetch(t, srv.URL+"/blog/"); status != http.StatusServiceUnavailable {
		t.Errorf("the blog with its only worker busy and no queue: %d, want 503", status)
	}
	if a := plGet(t, srv.URL+"/shop/"); a.Site != "shop" {
		t.Errorf("shop answered %+v", a)
	}
	// End the hung request rather than wait for the drain's grace.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-hung
	srv.Stop()
}
