package compose_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	_ "github.com/wsgate/wsgate/internal/component/urlmap"
	"github.com/wsgate/wsgate/internal/compose"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/testutil"
)

// Two test components: a Go filter that tags responses and a Go
// application that answers with what it was mounted as.
func init() {
	component.Register(component.Spec{
		Name: "test-tag", Aliases: []string{"egg:wsgate-test#tag"}, Role: component.Filter, Sees: component.SeesResponseHead,
		Options: []component.Option{{Name: "tag", Type: "string"}},
		Build: func(b *component.Builder) (component.Built, error) {
			tag := b.String("tag", "go")
			return component.Built{Wrap: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Add("X-Tag", tag)
					next.ServeHTTP(w, r)
				})
			}}, nil
		},
	})
	component.Register(component.Spec{
		Name: "test-pick", Aliases: []string{"egg:wsgate-test#pick"}, Role: component.Composite, Sees: component.SeesRequest,
		Options: []component.Option{{Name: "app", Type: "application"}},
		Build: func(b *component.Builder) (component.Built, error) {
			name, _ := b.Lookup("app")
			h, err := b.Host.App(name)
			return component.Built{Handler: h}, err
		},
	})
	component.Register(component.Spec{
		Name: "test-where", Aliases: []string{"egg:wsgate-test#where"}, Role: component.App, Sees: component.SeesResponseBody,
		Build: func(b *component.Builder) (component.Built, error) {
			return component.Built{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sn, pi, _ := component.RequestPath(r)
				f := component.FactsOf(r)
				fmt.Fprintf(w, "go %q %q route %q", sn, pi, f.Route)
			})}, nil
		},
	})
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// load writes ini, loads and resolves it with the test's fake packages.
func load(t testing.TB, ini string) *config.Node {
	t.Helper()
	py := testutil.VenvPython(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	app, err := config.LoadApp("site.ini", config.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(testutil.RepoRoot(), "internal/config/testdata/fakepkgs")
	if err := config.Resolve(app, py, []string{fake}); err != nil {
		t.Fatal(err)
	}
	return app
}

// servePools answers each pool's requests with the pool's name and the
// path the gateway would hand the worker.
func servePools(p *compose.Pool) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sn, pi, _ := component.RequestPath(r)
		fmt.Fprintf(w, "pool %s %q %q pool-fact %q", p.Name, sn, pi, component.FactsOf(r).Pool)
	}), nil
}

func get(t *testing.T, h http.Handler, path string) (string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Body.String(), rec.Header()
}

// One pool per distinct Python application: the same section under two
// prefixes (and two urlmaps) is one pool; Go filters wrap the Python tail
// of a pipeline, which is its own segment.
func TestComposeSegmentsAndPools(t *testing.T) {
	app := load(t, `[composite:main]
use = egg:Paste#urlmap
/ = plain
/again = plain
/nested = inner
/go = where
/piped = piped

[composite:inner]
use = egg:wsgate#urlmap
/deep = plain

[app:plain]
use = call:fakeapp.apps:make_basic_app

[app:where]
use = egg:wsgate-test#where

[pipeline:piped]
pipeline = gotag pytag plain

[filter:gotag]
use = egg:wsgate-test#tag
tag = from-go

[filter:pytag]
use = call:fakeapp.filters:make_tag
`)
	c, err := compose.Compose(app, compose.Options{Serve: servePools, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := poolRoutes(c); got != "plain=/,/again,/nested/deep piped=/piped" {
		t.Errorf("pools %q", got)
	}
	for path, want := range map[string]string{
		"/x":              `pool plain "" "/x" pool-fact "plain"`,
		"/again/y":        `pool plain "/again" "/y" pool-fact "plain"`,
		"/nested/deep/z":  `pool plain "/nested/deep" "/z" pool-fact "plain"`,
		"/go/a":           `go "/go" "/a" route "/go"`,
		"/piped/q":        `pool piped "/piped" "/q" pool-fact "piped"`,
		"/nested/elsewhr": "404 Not Found",
	} {
		if body, _ := get(t, c.Handler, path); !strings.Contains(body, want) {
			t.Errorf("%s: %q, want %q", path, body, want)
		}
	}
	if _, h := get(t, c.Handler, "/piped/q"); h.Get("X-Tag") != "from-go" {
		t.Errorf("the Go filter before the Python one did not run: X-Tag %q", h.Get("X-Tag"))
	}
	piped := c.Pools[1].Node
	if piped.ObjectType != config.TypePipeline || len(piped.Filters) != 1 || piped.Filters[0].Factory != "fakeapp.filters:make_tag" {
		t.Errorf("the piped pool runs %s with %d filters, want the Python tail only", piped.ObjectType, len(piped.Filters))
	}
	marks := map[string]string{}
	app.Walk(func(n *config.Node) { marks[n.Source.Section] = c.Marks[n] })
	for section, want := range map[string]string{
		"composite:main": "Go urlmap", "composite:inner": "Go urlmap", "app:where": "Go test-where",
		"pipeline:piped": "Go", "filter:gotag": "Go test-tag", "filter:pytag": "Python, pool piped", "app:plain": "Python, pool piped",
	} {
		if marks[section] != want {
			t.Errorf("[%s] marked %q, want %q", section, marks[section], want)
		}
	}
	routes := map[string]compose.Route{}
	for _, r := range c.Routes {
		routes[r.Prefix] = r
	}
	if r := routes["/go"]; r.Sees != component.SeesResponseBody || r.Target != "go test-where" {
		t.Errorf("route /go: %+v", r)
	}
	if r := routes["/piped"]; r.Sees != component.SeesResponseHead || len(r.Chain) != 2 {
		t.Errorf("route /piped: %+v", r)
	}
}

// What only Python could do with Go is refused, naming both places.
func TestComposeRefusesPythonAroundGo(t *testing.T) {
	for name, tc := range map[string]struct{ ini, want string }{
		"go filter after a python filter": {`[pipeline:main]
pipeline = pytag gotag app
[filter:pytag]
use = call:fakeapp.filters:make_tag
[filter:gotag]
use = egg:wsgate-test#tag
[app:app]
use = call:fakeapp.apps:make_basic_app
`, "site.ini:3 [filter:pytag]: Python filter fakeapp.filters:make_tag cannot pass requests to the Go component at site.ini:5 [filter:gotag] (go:test-tag)"},
		"python filter around a go app": {`[pipeline:main]
pipeline = pytag where
[filter:pytag]
use = call:fakeapp.filters:make_tag
[app:where]
use = egg:wsgate-test#where
`, "site.ini:3 [filter:pytag]: Python filter fakeapp.filters:make_tag cannot pass requests to the Go component at site.ini:5 [app:where]"},
		"python composite mounting go": {`[composite:main]
use = call:fakeapp.composites:make_switch
choose = where
[app:where]
use = egg:wsgate-test#where
`, "site.ini:1 [composite:main]: Python composite fakeapp.composites:make_switch cannot pass requests to the Go component at site.ini:4 [app:where]"},
		"unknown option": {`[app:main]
use = egg:wsgate-test#where
colour = blue
`, "site.ini:3 [app:main] colour: test-where has no option \"colour\""},
		"filter as an app": {`[app:main]
use = egg:wsgate-test#tag
`, "is a Go filter: put it in a [filter:…] section"},
		"bad urlmap key": {`[composite:main]
use = egg:Paste#urlmap
port 80 / = where
[app:where]
use = egg:wsgate-test#where
`, "site.ini:3 [composite:main] port 80 /: if you give a port, you must also give a domain"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := compose.Compose(load(t, tc.ini), compose.Options{Serve: servePools, Logger: quiet})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// The registry is config's one source of truth: Paste's urlmap resolves to
// the Go component, with the composite protocol, without Python.
func TestRegistryTeachesConfig(t *testing.T) {
	app := load(t, "[composite:main]\nuse = egg:Paste#urlmap\n/ = a\n[app:a]\nuse = call:fakeapp.apps:make_basic_app\n")
	if app.Factory != "go:urlmap" || !app.IsComposite() || app.Loadable["a"] == nil {
		t.Fatalf("factory %q protocol %q loadable %v", app.Factory, app.Protocol, app.LoadableOrder)
	}
}

// not_found_app answers what no prefix matches, from the option or else
// from global_conf, as Paste's urlmap_factory reads it.
func TestUrlmapNotFoundApp(t *testing.T) {
	for name, ini := range map[string]string{
		"option": "[composite:main]\nuse = egg:wsgate#urlmap\n/a = where\nnot_found_app = fallback\n",
		"global": "[DEFAULT]\nnot_found_app = fallback\n[composite:main]\nuse = egg:wsgate#urlmap\n/a = where\n",
	} {
		t.Run(name, func(t *testing.T) {
			app := load(t, ini+"[app:where]\nuse = egg:wsgate-test#where\n[app:fallback]\nuse = call:fakeapp.apps:make_basic_app\n")
			if name == "global" {
				// Resolve loads only local_conf values: a global one is
				// not loadable by the Go urlmap, and says so.
				_, err := compose.Compose(app, compose.Options{Serve: servePools, Logger: quiet})
				if err == nil || !strings.Contains(err.Error(), "site.ini:3 [composite:main]: not_found_app = fallback is set in [DEFAULT] (site.ini:2 [DEFAULT] not_found_app): write it in this section") {
					t.Fatalf("error %v", err)
				}
				return
			}
			c, err := compose.Compose(app, compose.Options{Serve: servePools, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if body, _ := get(t, c.Handler, "/b"); !strings.Contains(body, `pool fallback "" "/b"`) {
				t.Errorf("/b: %q, want the not_found_app", body)
			}
			if body, _ := get(t, c.Handler, "/a/x"); !strings.Contains(body, `go "/a" "/x"`) {
				t.Errorf("/a/x: %q", body)
			}
		})
	}
}

// BenchmarkComposedUrlmap is the master's cost of composition for one
// request: Facts attached, a two-level urlmap matched, down to a Go
// application that does nothing.
func BenchmarkComposedUrlmap(b *testing.B) {
	component.Register(component.Spec{
		Name: "bench-nothing", Aliases: []string{"egg:wsgate-test#nothing"}, Role: component.App, Summary: "-", Doc: "-",
		Build: func(*component.Builder) (component.Built, error) {
			return component.Built{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}, nil
		},
	})
	app := load(b, "[composite:main]\nuse = egg:wsgate#urlmap\n/ = nothing\n/static = nothing\n/api = inner\n"+
		"[composite:inner]\nuse = egg:wsgate#urlmap\n/v1 = nothing\n/v2 = nothing\n[app:nothing]\nuse = egg:wsgate-test#nothing\n")
	c, err := compose.Compose(app, compose.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/api/v2/items?x=1", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		c.Handler.ServeHTTP(w, req)
	}
}

// A composite's key that is no mount (delegate's app) names no route: its
// application answers at the composite's own.
func TestComposeNonMountKeysKeepTheRoute(t *testing.T) {
	app := load(t, "[composite:main]\nuse = egg:Paste#urlmap\n/under = pick\n[composite:pick]\nuse = egg:wsgate-test#pick\napp = plain\n[app:plain]\nuse = call:fakeapp.apps:make_basic_app\n")
	c, err := compose.Compose(app, compose.Options{Serve: servePools, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Routes) != 1 || c.Routes[0].Prefix != "/under" {
		t.Errorf("routes %+v, want the pool at /under", c.Routes)
	}
}
