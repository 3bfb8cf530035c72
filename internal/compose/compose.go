// Package compose turns a site's resolved node tree (internal/config) into
// the server's http.Handler: Go nodes are built through the component
// registry (internal/component), and each Python segment — a maximal
// subtree without a Go node: Python filters around a Python application, or
// a Python composite whose applications are all Python — becomes one worker
// pool that runs it whole.
//
// The rules (docs/architecture.md, "Composition"):
//   - Go filters wrap whatever follows them, Go or Python.
//   - A Python filter can only wrap Python: a Go filter or application
//     after a Python filter in a pipeline, or under a Python filter-app or
//     Python composite, would need Python to call Go, and is refused with
//     the location of both.
//   - One pool per distinct Python application: the same application,
//     configured the same way, reached under several prefixes or through
//     several composites, is served by one pool (PoolKey). Its wsgate.*
//     options (pools.go) name and size the pool; two applications that
//     cannot share a process (two Django configurations) are never one.
package compose

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"slices"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/config"
)

// Options say how to serve the Python segments.
type Options struct {
	// Serve returns the handler of a pool's workers; it is called once per
	// pool, during Compose. Nil (wsgate check) composes without workers:
	// a pool's handler then answers 503.
	Serve func(p *Pool) (http.Handler, error)
	// Site is what metrics and health components report on (nil: none).
	Site   component.Site
	Logger *slog.Logger
	// Python prepares `python -m module args…` as the site's workers run
	// (internal/site's Site.Command): components that read the Python side
	// at load (django_full) call it through component.PythonHost. Nil:
	// such components refuse to load.
	Python func(module string, args ...string) (*exec.Cmd, error)
}

// Pool is one Python segment and the prefixes it is mounted at.
type Pool struct {
	// Name is unique in the site: the segment's section name
	// ("django"), with "-2", "-3"… when two segments share it.
	Name string
	// Key is PoolKey of the segment: equal keys share a pool.
	Key string
	// Node is the segment's root, as the workers load it.
	Node *config.Node
	// Worker is Node's worker-form JSON, what the pool's workers load.
	Worker []byte
	// Routes are the routes the pool serves, as Composed.Routes names them.
	Routes []string
	// Settings are the application's wsgate.* options: the pool's own
	// size and interpreter, where the server's are not to be used.
	Settings PoolSettings
	// Why says why it is a pool of its own (check prints it).
	Why string
}

// Route is one path from the top of the tree to what answers: a Go
// application or a Python pool.
type Route struct {
	// Prefix is where it is mounted ("/" at the top, "/static", "domain
	// example.com /"); nested mounts are joined.
	Prefix string
	// Target says what answers: `go static` or `python pool django`.
	Target string
	// Source locates the answering node.
	Source string
	// Chain lists the Go components the request goes through, outermost
	// first, each with what it sees.
	Chain []string
	// Sees is the largest Sees on the route: SeesResponseBody means the
	// master reads the response body (no fast path).
	Sees component.Sees
}

// Composed is a site ready to serve.
type Composed struct {
	Handler http.Handler
	Pools   []*Pool
	Routes  []Route
	// Marks says, for every node of the tree, who runs it: "Go NAME" or
	// "Python, pool NAME".
	Marks   map[*config.Node]string
	closers []func() error
}

// Close releases what the Go components hold.
func (c *Composed) Close() error {
	var first error
	for _, f := range c.closers {
		if err := f(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Compose builds the site's handler from its resolved application tree.
func Compose(app *config.Node, opts Options) (*Composed, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &composer{opts: opts, out: &Composed{Marks: map[*config.Node]string{}}, pools: map[string]*pool{}, names: map[string]bool{}}
	// Names a wsgate.pool gives are not handed out to other pools.
	app.Walk(func(n *config.Node) {
		if v, ok := n.Wsgate.Get("pool"); ok {
			c.names[strings.TrimSpace(v)] = true
		}
	})
	inner, err := c.build(app, at{prefix: "/"})
	if err != nil {
		c.out.Close()
		return nil, err
	}
	c.explainPools()
	c.out.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, f := component.Attach(r)
		if f.Route == "" {
			f.Route = "/"
		}
		inner.ServeHTTP(w, r)
	})
	return c.out, nil
}

type composer struct {
	opts  Options
	out   *Composed
	pools map[string]*pool // by key
	names map[string]bool
}

type pool struct {
	p       *Pool
	handler http.Handler
}

// at is where in the tree a node is built: its route so far.
type at struct {
	prefix string
	chain  []string
	sees   component.Sees
}

func (a at) through(name string, sees component.Sees) at {
	return at{prefix: a.prefix, chain: append(slices.Clip(a.chain), name+" ("+sees.String()+")"), sees: max(a.sees, sees)}
}

func (a at) under(key string) at {
	p := key
	if a.prefix != "/" {
		p = a.prefix + strings.TrimSuffix(key, "/")
	}
	return at{prefix: p, chain: a.chain, sees: a.sees}
}

// isGo reports whether the node itself is a Go component.
func isGo(n *config.Node) bool { return strings.HasPrefix(n.Factory, config.GoFactoryPrefix) }

// firstGo is the first Go node of the tree, nil when it is all Python.
func firstGo(n *config.Node) *config.Node {
	var found *config.Node
	n.Walk(func(x *config.Node) {
		if found == nil && isGo(x) {
			found = x
		}
	})
	return found
}

func (c *composer) build(n *config.Node, a at) (http.Handler, error) {
	goNode := firstGo(n)
	if goNode == nil {
		return c.python(n, a)
	}
	switch {
	case n.ObjectType == config.TypePipeline:
		return c.pipeline(n, a)
	case n.ObjectType == config.TypeFilterApp || n.ObjectType == config.TypeFilteredWith:
		if !isGo(n.Filter) {
			return nil, pythonAroundGo(n.Filter, goNode)
		}
		c.out.Marks[n] = "Go"
		wrap, sees, err := c.filter(n.Filter)
		if err != nil {
			return nil, err
		}
		next, err := c.build(n.Next, a.through(goName(n.Filter), sees))
		if err != nil {
			return nil, err
		}
		return wrap(next), nil
	case isGo(n):
		return c.goApp(n, a)
	}
	// A Python application or composite with a Go node inside it.
	return nil, pythonAroundGo(n, goNode)
}

// pythonAroundGo is the error for a Go node that only Python could call.
func pythonAroundGo(py, goNode *config.Node) error {
	what := "Python " + py.ObjectType
	if py.IsComposite() {
		what = "Python composite"
	}
	return fmt.Errorf("%s: %s %s cannot pass requests to the Go component at %s (%s): Python cannot call Go; put Go filters before Python ones (outermost first) and mount Go applications with a Go composite such as egg:wsgate#urlmap",
		py.Source, what, py.Factory, goNode.Source, goNode.Factory)
}

// pipeline builds `pipeline = f1 f2 … app`: the leading Go filters wrap
// the rest; the trailing Python filters and the application form one
// Python segment.
func (c *composer) pipeline(n *config.Node, a at) (http.Handler, error) {
	c.out.Marks[n] = "Go"
	goCount := 0
	for goCount < len(n.Filters) && isGo(n.Filters[goCount]) {
		goCount++
	}
	rest := n.Filters[goCount:]
	if len(rest) > 0 {
		if g := firstGo(&config.Node{Filters: rest, App: n.App}); g != nil {
			return nil, pythonAroundGo(rest[0], g)
		}
	}
	var wraps []func(http.Handler) http.Handler
	for _, f := range n.Filters[:goCount] {
		wrap, sees, err := c.filter(f)
		if err != nil {
			return nil, err
		}
		wraps = append(wraps, wrap)
		a = a.through(goName(f), sees)
	}
	var inner http.Handler
	var err error
	if len(rest) > 0 {
		seg := *n // the Python tail, as a pipeline of its own
		seg.Filters = rest
		inner, err = c.python(&seg, a)
	} else {
		inner, err = c.build(n.App, a)
	}
	if err != nil {
		return nil, err
	}
	for i := len(wraps) - 1; i >= 0; i-- {
		inner = wraps[i](inner)
	}
	return inner, nil
}

func goName(n *config.Node) string { return strings.TrimPrefix(n.Factory, config.GoFactoryPrefix) }

// spec finds the node's component and checks it stands where it may.
func spec(n *config.Node, wantFilter bool) (*component.Spec, error) {
	s, ok := component.ByName(goName(n))
	if !ok {
		return nil, fmt.Errorf("%s: %s: no such Go component in this build", n.Source, n.Factory)
	}
	switch {
	case wantFilter && s.Role != component.Filter:
		return nil, fmt.Errorf("%s: %s (use = %s) is a Go %s, not a filter", n.Source, s.Name, n.Use, s.Role)
	case !wantFilter && s.Role == component.Filter:
		return nil, fmt.Errorf("%s: %s (use = %s) is a Go filter: put it in a [filter:…] section, a pipeline or filter-with", n.Source, s.Name, n.Use)
	}
	return s, nil
}

// construct runs a component's Build and refuses the options it did not read.
func (c *composer) construct(s *component.Spec, n *config.Node, a at) (component.Built, error) {
	if n.Wsgate.Len() > 0 {
		return component.Built{}, wsgateError(n, n.Wsgate.Keys()[0], "%s is a Go component, served by the master: wsgate.* options size and name the worker pools of Python applications", s.Name)
	}
	b := component.NewBuilder(n, &host{c: c, n: n, at: a, calls: map[string]int{}})
	built, err := s.Build(b)
	if err != nil {
		return built, err
	}
	if built.Close != nil {
		c.out.closers = append(c.out.closers, built.Close)
	}
	for _, k := range b.Unread() {
		if slices.Contains(s.Ignored, k) {
			c.opts.Logger.Info("option ignored by wsgate", "component", s.Name, "option", k, "section", b.Section())
			continue
		}
		var known []string
		for _, o := range s.Options {
			known = append(known, o.Name)
		}
		return built, b.Errorf(k, "%s has no option %q (its options: %s; docs/components.md)", s.Name, k, strings.Join(known, ", "))
	}
	c.out.Marks[n] = "Go " + s.Name
	return built, nil
}

func (c *composer) filter(n *config.Node) (func(http.Handler) http.Handler, component.Sees, error) {
	s, err := spec(n, true)
	if err != nil {
		return nil, 0, err
	}
	built, err := c.construct(s, n, at{})
	if err != nil {
		return nil, 0, err
	}
	if built.Wrap == nil {
		return nil, 0, fmt.Errorf("%s: component %s built no filter", n.Source, s.Name)
	}
	return built.Wrap, s.Sees, nil
}

func (c *composer) goApp(n *config.Node, a at) (http.Handler, error) {
	s, err := spec(n, false)
	if err != nil {
		return nil, err
	}
	a = a.through(s.Name, s.Sees)
	built, err := c.construct(s, n, a)
	if err != nil {
		return nil, err
	}
	if built.Handler == nil {
		return nil, fmt.Errorf("%s: component %s built no application", n.Source, s.Name)
	}
	if s.Role == component.App {
		c.out.Routes = append(c.out.Routes, Route{Prefix: a.prefix, Target: "go " + s.Name, Source: n.Source.String(), Chain: a.chain, Sees: a.sees})
	}
	return built.Handler, nil
}

// python serves seg, a tree without Go nodes, from a worker pool.
func (c *composer) python(seg *config.Node, a at) (http.Handler, error) {
	worker, err := seg.WorkerJSON()
	if err != nil {
		return nil, fmt.Errorf("%s: encoding the application for Python: %w", seg.Source, err)
	}
	settings, err := poolSettings(seg)
	if err != nil {
		return nil, err
	}
	if err := oneDjango(seg); err != nil {
		return nil, err
	}
	key := PoolKey(worker, settings)
	pl, ok := c.pools[key]
	if ok && !bytes.Equal(pl.p.Worker, worker) {
		return nil, fmt.Errorf("%s: wsgate.pool = %s groups %s with %s, another application: a pool's workers load one application, and wsgate does not run two in one process; give each its own wsgate.pool (a section that uses another inherits its wsgate.pool: override it there)",
			settings.Origins["pool"], settings.Pool, seg.Source, pl.p.Node.Source)
	}
	if !ok {
		name := settings.Pool
		if name == "" {
			name = c.poolName(seg)
		}
		pl = &pool{p: &Pool{Name: name, Key: key, Node: seg, Worker: worker, Settings: settings}}
		if c.opts.Serve != nil {
			if pl.handler, err = c.opts.Serve(pl.p); err != nil {
				return nil, err
			}
		} else {
			pl.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "503 Service Unavailable: composed without workers", http.StatusServiceUnavailable)
			})
		}
		c.pools[key] = pl
		c.out.Pools = append(c.out.Pools, pl.p)
	}
	// seg is the tree's own node, or a pipeline made of the tree's
	// Python filters and application: either way its nodes are the tree's.
	mark := "Python, pool " + pl.p.Name
	seg.Walk(func(x *config.Node) { c.out.Marks[x] = mark })
	pl.p.Routes = append(pl.p.Routes, a.prefix)
	c.out.Routes = append(c.out.Routes, Route{Prefix: a.prefix, Target: "python pool " + pl.p.Name, Source: seg.Source.String(), Chain: a.chain, Sees: a.sees})
	name, h := pl.p.Name, pl.handler
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := component.FactsOf(r); f != nil {
			f.Pool = name
		}
		h.ServeHTTP(w, r)
	}), nil
}

// poolName is the segment's section name without its type, made unique.
func (c *composer) poolName(seg *config.Node) string {
	base := seg.Source.Section
	if _, after, ok := strings.Cut(base, ":"); ok {
		base = after
	}
	if base == "" {
		base = "app"
	}
	name := base
	for i := 2; c.names[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	c.names[name] = true
	return name
}

// host is what a Go component of node n may ask of the site.
type host struct {
	c     *composer
	n     *config.Node
	at    at
	calls map[string]int
}

// App builds the application an option value of the composite names (its
// Loadable, as PasteDeploy's loader.get_app would load it). Its route is
// the option key that names it, when that key is a mount: the n-th call for a value takes the n-th
// key with that value (a composite reads its keys in order), so one
// application under two prefixes has two routes (and one pool).
func (h *host) App(name string) (http.Handler, error) {
	child, ok := h.n.Loadable[name]
	for k, v := range h.n.Loadable {
		if !ok && strings.TrimSpace(k) == name {
			child, ok = v, true
		}
	}
	if !ok {
		return nil, fmt.Errorf("%s: %q names no application (a section of the file, or a config:, egg: or call: URI)", h.n.Source, name)
	}
	var keys []string
	for _, k := range h.n.LocalConf.Keys() {
		if v, _ := h.n.LocalConf.Get(k); strings.TrimSpace(v) == name {
			keys = append(keys, k)
		}
	}
	a := h.at
	if i := h.calls[name]; i < len(keys) && mountKey(keys[i]) {
		a = a.under(keys[i])
	}
	h.calls[name]++
	return h.c.build(child, a)
}

// mountKey reports whether a composite's option key is a mount (a path, a
// URL, urlmap's "domain …"/"port …" forms): other composites' keys
// (delegate's app and targets) name no route, and their applications
// answer at the composite's own.
func mountKey(k string) bool {
	return strings.Contains(k, "/") || strings.HasPrefix(k, "domain ") || strings.HasPrefix(k, "port ")
}

func (h *host) Site() component.Site { return h.c.opts.Site }
func (h *host) Logger() *slog.Logger { return h.c.opts.Logger }

// PythonCommand makes host a component.PythonHost.
func (h *host) PythonCommand(module string, args ...string) (*exec.Cmd, error) {
	if h.c.opts.Python == nil {
		return nil, fmt.Errorf("this command cannot run the site's Python to build %s", h.n.Source)
	}
	return h.c.opts.Python(module, args...)
}

var _ component.PythonHost = (*host)(nil)
