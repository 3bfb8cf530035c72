package compose_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/compose"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/testutil"
)

// wsgate.* options name and size a pool; the factory never sees them.
func TestPoolSettings(t *testing.T) {
	py := testutil.VenvPython(t)
	app := load(t, `[composite:main]
use = egg:Paste#urlmap
/ = site
/sub = subset
/other = other

[app:site]
use = call:fakeapp.apps:make_basic_app
wsgate.workers = 3
wsgate.timeout = 0
wsgate.python = `+py+`
colour = blue

[app:subset]
use = site
wsgate.workers = 1
wsgate.max_requests = 100

[app:other]
use = call:fakeapp.apps:make_basic_app
wsgate.pool = web
wsgate.threads = 4
`)
	c, err := compose.Compose(app, compose.Options{Serve: servePools, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := map[string]string{}
	for _, p := range c.Pools {
		got[p.Name] = p.Settings.String()
		if strings.Contains(string(p.Worker), "wsgate.") {
			t.Errorf("pool %s: the worker form carries a wsgate.* option: %s", p.Name, p.Worker)
		}
		if p.Name != "web" && !strings.Contains(string(p.Worker), `"colour":"blue"`) {
			t.Errorf("pool %s: the application's own option is gone: %s", p.Name, p.Worker)
		}
	}
	want := map[string]string{
		"site":   "workers=3 timeout=0 python=" + py,
		"subset": "workers=1 max_requests=100 timeout=0 python=" + py,
		"web":    "threads=4",
	}
	if len(got) != len(want) {
		t.Fatalf("pools %v, want %v", got, want)
	}
	for name, w := range want {
		// The order of the fields is String's; compare as sets.
		if !sameFields(got[name], w) {
			t.Errorf("pool %s settings %q, want %q", name, got[name], w)
		}
	}
	for _, p := range c.Pools {
		if p.Name == "web" && !strings.Contains(p.Why, "wsgate.pool (") {
			t.Errorf("pool web: why %q", p.Why)
		}
		if p.Name == "subset" && p.Settings.Origins["workers"] != "site.ini:16 [app:subset] wsgate.workers" {
			t.Errorf("subset's workers come from %q", p.Settings.Origins["workers"])
		}
		if p.Name == "subset" && p.Settings.Origins["python"] != "site.ini:11 [app:site] wsgate.python" {
			t.Errorf("subset's python comes from %q", p.Settings.Origins["python"])
		}
	}
}

func sameFields(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	if len(fa) != len(fb) {
		return false
	}
	set := map[string]bool{}
	for _, f := range fa {
		set[f] = true
	}
	for _, f := range fb {
		if !set[f] {
			return false
		}
	}
	return true
}

// Mistakes in wsgate.* options, and groupings a process cannot hold, are
// refused at load with their location.
func TestPoolSettingsRefused(t *testing.T) {
	for name, tc := range map[string]struct{ ini, want string }{
		"bad number": {"[app:main]\nuse = call:fakeapp.apps:make_basic_app\nwsgate.workers = 0\n",
			`site.ini:3 [app:main] wsgate.workers: "0" is not a whole number ≥ 1`},
		"bad timeout": {"[app:main]\nuse = call:fakeapp.apps:make_basic_app\nwsgate.timeout = soon\n",
			`site.ini:3 [app:main] wsgate.timeout: "soon" is not a number of seconds`},
		"unknown option": {"[app:main]\nuse = call:fakeapp.apps:make_basic_app\nwsgate.worker = 2\n",
			`site.ini:3 [app:main] wsgate.worker: wsgate has no application option wsgate.worker`},
		"bad pool name": {"[app:main]\nuse = call:fakeapp.apps:make_basic_app\nwsgate.pool = a b\n",
			`site.ini:3 [app:main] wsgate.pool: "a b" is not a pool name`},
		"on a go component": {"[app:main]\nuse = egg:wsgate-test#where\nwsgate.workers = 2\n",
			`site.ini:3 [app:main] wsgate.workers: test-where is a Go component`},
		"on a python filter": {"[pipeline:main]\npipeline = pytag app\n[filter:pytag]\nuse = call:fakeapp.filters:make_tag\nwsgate.workers = 2\n[app:app]\nuse = call:fakeapp.apps:make_basic_app\n",
			`site.ini:5 [filter:pytag] wsgate.workers: wsgate.* options belong to the application wsgate serves from a pool`},
		"inside a python composite": {"[composite:main]\nuse = call:fakeapp.composites:make_switch\nchoose = a\n[app:a]\nuse = call:fakeapp.apps:make_basic_app\nwsgate.workers = 2\n",
			`site.ini:6 [app:a] wsgate.workers: wsgate.* options belong to the application wsgate serves from a pool; app:a runs inside the pool of site.ini:1 [composite:main]`},
		"two applications in one named pool": {"[composite:main]\nuse = egg:Paste#urlmap\n/ = a\n/b = b\n[app:a]\nuse = call:fakeapp.apps:make_basic_app\nwsgate.pool = web\n[app:b]\nuse = call:fakeapp.apps:make_other_app\nwsgate.pool = web\n",
			`site.ini:10 [app:b] wsgate.pool: wsgate.pool = web groups site.ini:8 [app:b] with site.ini:5 [app:a], another application`},
		"two django configurations in one python composite": {"[composite:main]\nuse = call:fakeapp.composites:make_switch\nchoose = a\nother = b\n[app:a]\nuse = egg:wsgate#django\nDJANGO_SETTINGS_MODULE = x\n[app:b]\nuse = a\nROOT_URLCONF = y\n",
			`site.ini:1 [composite:main]: fakeapp.composites:make_switch loads two Django configurations into one process, site.ini:5 [app:a] and site.ini:8 [app:b]`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := compose.Compose(load(t, tc.ini), compose.Options{Serve: servePools, Logger: quiet})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// The same application named into one pool from two mounts is one pool;
// an automatic name never takes one a wsgate.pool gives.
func TestPoolNames(t *testing.T) {
	c, err := compose.Compose(load(t, `[composite:main]
use = egg:Paste#urlmap
/ = web
/again = web
/x = named

[app:web]
use = call:fakeapp.apps:make_basic_app

[app:named]
use = call:fakeapp.apps:make_other_app
wsgate.pool = web
`), compose.Options{Serve: servePools, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := poolRoutes(c); got != "web-2=/,/again web=/x" {
		t.Errorf("pools %q", got)
	}
}

// poolRoutes lists each pool as name=route,route.
func poolRoutes(c *compose.Composed) string {
	var names []string
	for _, p := range c.Pools {
		names = append(names, p.Name+"="+strings.Join(p.Routes, ","))
	}
	return strings.Join(names, " ")
}

// An interpreter that cannot run is refused where it is named, when the
// application's factories are resolved (by that interpreter).
func TestPoolPythonMissing(t *testing.T) {
	py := testutil.VenvPython(t)
	dir := t.TempDir()
	ini := "[app:main]\nuse = call:fakeapp.apps:make_basic_app\nwsgate.python = /nonexistent/python9\n"
	if err := os.WriteFile(filepath.Join(dir, "site.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	app, err := config.LoadApp("site.ini", config.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	err = config.Resolve(app, py, nil)
	want := `site.ini:3 [app:main] wsgate.python: cannot run the Python interpreter "/nonexistent/python9"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}
