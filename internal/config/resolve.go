package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	"github.com/wsgate/wsgate/python"
)

var (
	nativeMu sync.RWMutex
	native   = map[string]nativeEntry{}
)

type nativeEntry struct {
	component, protocol string
}

// RegisterNative makes `use = <use>` resolve to the Go component named
// component: such nodes get Factory "go:<component>" and are not resolved
// by Python. protocol is the PasteDeploy protocol the component stands for
// (ProtocolApp, ProtocolFilter, ProtocolComposite): a composite's names are
// loaded (Loadable) as for a Python one. use is matched as written (e.g.
// "egg:wsgate#static"). internal/component.Register calls it for every use
// value of every component: the registry is the one source of truth.
func RegisterNative(use, component, protocol string) {
	nativeMu.Lock()
	defer nativeMu.Unlock()
	native[use] = nativeEntry{component, protocol}
}

func nativeComponent(use string) (nativeEntry, bool) {
	nativeMu.RLock()
	defer nativeMu.RUnlock()
	c, ok := native[use]
	return c, ok
}

// resolveRequest is what `python -m wsgate.resolve` reads on stdin.
type resolveRequest struct {
	Specs []resolveSpec `json:"specs"`
}

type resolveSpec struct {
	ID         int    `json:"id"`
	Kind       string `json:"kind"` // egg, call, object, require
	Spec       string `json:"spec,omitempty"`
	Dist       string `json:"dist,omitempty"`
	Entry      string `json:"entry"`
	ObjectType string `json:"object_type,omitempty"`
}

type resolveResult struct {
	ID       int    `json:"id"`
	Factory  string `json:"factory"`
	Protocol string `json:"protocol"`
	Error    string `json:"error"`
}

type resolveResponse struct {
	Results []resolveResult `json:"results"`
}

// Resolve fills Factory (and, for egg: specs, Protocol) on every node of
// the tree with one call of `python -m wsgate.resolve` per level of
// composites, then loads every application a composite names (Loadable) and
// resolves those too. Mistakes come back as *Error located at the node's
// section; a missing or broken interpreter is a plain error.
func Resolve(n *Node, interpreter string, extraPath []string) error {
	errs, err := ResolveEach([]*Node{n}, interpreter, extraPath)
	if err != nil {
		return err
	}
	return errs[0]
}

// ResolveEach resolves several trees with one interpreter run per level of
// composites for all of them (an application and its server, or many
// configurations in a test). errs[i] is tree i's first mistake; err is a
// failure of the interpreter itself.
func ResolveEach(trees []*Node, interpreter string, extraPath []string) (errs []error, err error) {
	errs = make([]error, len(trees))
	pending := make([][]*Node, len(trees))
	for i, t := range trees {
		t.assignInterpreter(nil)
		t.Walk(func(x *Node) { pending[i] = append(pending[i], x) })
	}
	for {
		var all []*Node
		var owner []int
		for i, p := range pending {
			if errs[i] != nil {
				continue
			}
			for _, x := range p {
				all = append(all, x)
				owner = append(owner, i)
			}
		}
		if len(all) == 0 {
			return errs, nil
		}
		nodeErrs, err := resolveBatch(all, interpreter, extraPath)
		if err != nil {
			return nil, err
		}
		for k, e := range nodeErrs {
			if e != nil && errs[owner[k]] == nil {
				errs[owner[k]] = e
			}
		}
		for i, p := range pending {
			var next []*Node
			for _, c := range p {
				if errs[i] != nil || !c.IsComposite() || c.Loadable != nil {
					continue
				}
				added, err := c.loadLoadables()
				if err != nil {
					errs[i] = err
					break
				}
				for _, a := range added {
					a.assignInterpreter(c.interp)
					a.Walk(func(x *Node) {
						if !x.resolved {
							next = append(next, x)
						}
					})
				}
			}
			pending[i] = next
		}
	}
}

func (n *Node) useLocation() location {
	opt := "use"
	if n.specKind == "object" {
		opt = n.Protocol
	}
	return n.optionLocation(opt)
}

// optionLocation locates an option of the node's section (the section
// header when the option is not written there).
func (n *Node) optionLocation(opt string) location {
	if n.srcIsRef {
		opt = ""
	}
	loc := location{file: n.Source.File, line: n.Source.Line, section: n.Source.Section, option: opt}
	if n.loader != nil && !n.srcIsRef {
		if sec, ok := n.loader.ini.byName[n.Source.Section]; ok {
			if o, ok := sec.byName[opt]; ok {
				loc.line = o.line
			}
		}
	}
	return loc
}

// resolveBatch resolves nodes in one interpreter run; the result holds each
// node's first mistake (nil when resolved).
// assignInterpreter sets which interpreter resolves n and the nodes
// below it: the `wsgate.python` of n's spine (n, then the application its
// pipeline, filter-app or filter-with leads to), else inherited's — the
// interpreter the workers of that application will run (docs/serve.md,
// "Worker pools"); nil is the site's.
func (n *Node) assignInterpreter(inherited *interpreterChoice) {
	if n == nil {
		return
	}
	n.interp = inherited
	for x := n; x != nil; {
		if v, ok := x.Wsgate.Get("python"); ok && strings.TrimSpace(v) != "" {
			n.interp = &interpreterChoice{path: strings.TrimSpace(v), origin: x.Wsgate.Origin("python")}
			break
		}
		switch x.ObjectType {
		case TypePipeline:
			x = x.App
		case TypeFilterApp, TypeFilteredWith:
			x = x.Next
		default:
			x = nil
		}
	}
	for _, f := range n.Filters {
		f.assignInterpreter(n.interp)
	}
	n.App.assignInterpreter(n.interp)
	n.Filter.assignInterpreter(n.interp)
	n.Next.assignInterpreter(n.interp)
	for _, k := range n.LoadableOrder {
		n.Loadable[k].assignInterpreter(n.interp)
	}
}

// interpreterChoice is an application's own interpreter (wsgate.python)
// and where it was chosen.
type interpreterChoice struct{ path, origin string }

// resolveBatch resolves nodes, each group in the interpreter its
// application runs in.
func resolveBatch(nodes []*Node, interpreter string, extraPath []string) ([]error, error) {
	errs := make([]error, len(nodes))
	groups := map[interpreterChoice][]int{}
	var order []interpreterChoice
	for i, n := range nodes {
		c := interpreterChoice{path: interpreter}
		if n.interp != nil {
			c = *n.interp
		}
		if _, ok := groups[c]; !ok {
			order = append(order, c)
		}
		groups[c] = append(groups[c], i)
	}
	for _, c := range order {
		var group []*Node
		for _, i := range groups[c] {
			group = append(group, nodes[i])
		}
		if c.origin != "" {
			if _, err := exec.LookPath(c.path); err != nil {
				return nil, fmt.Errorf("%s: cannot run the Python interpreter %q: %v", c.origin, c.path, err)
			}
		}
		groupErrs, err := resolveIn(group, c.path, extraPath)
		if err != nil {
			if c.origin != "" {
				return nil, fmt.Errorf("%s: %w", c.origin, err)
			}
			return nil, err
		}
		for k, i := range groups[c] {
			errs[i] = groupErrs[k]
		}
	}
	return errs, nil
}

// resolveIn resolves nodes with one run of interpreter.
func resolveIn(nodes []*Node, interpreter string, extraPath []string) ([]error, error) {
	var req resolveRequest
	type target struct {
		index   int // in nodes
		require bool
	}
	var targets []target
	add := func(s resolveSpec, t target) {
		s.ID = len(targets)
		req.Specs = append(req.Specs, s)
		targets = append(targets, t)
	}
	for i, n := range nodes {
		if n.resolved {
			continue
		}
		n.resolved = true
		if c, ok := nativeComponent(n.Use); ok && n.specKind != "" {
			n.Factory = GoFactoryPrefix + c.component
			if n.protocolPending {
				n.Protocol = c.protocol
				n.protocolPending = false
			}
			continue
		}
		switch n.specKind {
		case "egg":
			add(resolveSpec{Kind: "egg", Dist: n.eggDist, Entry: n.eggEntry, ObjectType: n.ObjectType}, target{index: i})
		case "call":
			add(resolveSpec{Kind: "call", Spec: n.Use[strings.IndexByte(n.Use, ':')+1:], ObjectType: n.ObjectType}, target{index: i})
		case "object":
			add(resolveSpec{Kind: "object", Spec: n.Use, ObjectType: n.ObjectType}, target{index: i})
		}
		for _, r := range n.Require {
			add(resolveSpec{Kind: "require", Dist: r}, target{index: i, require: true})
		}
	}
	errs := make([]error, len(nodes))
	if len(req.Specs) == 0 {
		return errs, nil
	}
	resp, err := runResolver(req, interpreter, extraPath)
	if err != nil {
		return nil, err
	}
	byID := map[int]resolveResult{}
	for _, r := range resp.Results {
		byID[r.ID] = r
	}
	for id, t := range targets {
		n := nodes[t.index]
		r, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("wsgate.resolve gave no answer for %s", n.Use)
		}
		if r.Error != "" && errs[t.index] == nil {
			if t.require {
				errs[t.index] = n.optionLocation("require").errorf("%s", r.Error)
			} else {
				errs[t.index] = n.useLocation().errorf("%s: %s", n.Use, r.Error)
			}
		}
		if r.Error != "" || t.require {
			continue
		}
		n.Factory = r.Factory
		if n.protocolPending {
			n.Protocol = r.Protocol
			n.protocolPending = false
		}
	}
	return errs, nil
}

func runResolver(req resolveRequest, interpreter string, extraPath []string) (*resolveResponse, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	cmd, err := python.Command(interpreter, extraPath, "wsgate.resolve")
	if err != nil {
		return nil, fmt.Errorf("preparing the Python resolver: %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.Is(err, exec.ErrNotFound) || (!errors.As(err, &ee)) {
			return nil, fmt.Errorf("cannot run the Python interpreter %q: %w (choose one with --python or WSGATE_PYTHON)", interpreter, err)
		}
		return nil, fmt.Errorf("the Python resolver failed (%s: %v): %s", interpreter, err, lastLine(stderr.String()))
	}
	var resp resolveResponse
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return nil, fmt.Errorf("the Python resolver (%s) answered something unreadable: %w; stderr: %s", interpreter, err, lastLine(stderr.String()))
	}
	return &resp, nil
}

// lastLine is the last non-empty line of a process's stderr: the exception
// line of a traceback, or the whole message.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// loadLoadables loads, for a composite, what its factory may ask its
// loader for: each local_conf value that names an application (a section
// of the composite's file, or a config:/egg:/call: URI), and, in values of
// several words (`pipeline = auth session app`), each word that names an
// application or filter section. They are loaded with the composite's
// global_conf, as PasteDeploy's loader.get_app(value) would.
func (n *Node) loadLoadables() ([]*Node, error) {
	n.Loadable = map[string]*Node{}
	l := n.loader
	if l == nil {
		return nil, nil
	}
	key := n.Source.String()
	for _, p := range n.compositePath {
		if p == key {
			if n.wordRef {
				// A word that happened to name an enclosing section:
				// nothing the factory can ask for without looping.
				return nil, nil
			}
			return nil, n.useLocation().errorf("composite cycle: %s contains itself through %s", key, strings.Join(append(n.compositePath, key), " → "))
		}
	}
	path := append(append([]string(nil), n.compositePath...), key)
	var added []*Node
	addChild := func(name string, child *Node, word bool) {
		child.Walk(func(x *Node) {
			x.compositePath = path
			x.wordRef = x.wordRef || word
		})
		n.Loadable[name] = child
		n.LoadableOrder = append(n.LoadableOrder, name)
		added = append(added, child)
	}
	for _, k := range n.LocalConf.Keys() {
		v, _ := n.LocalConf.Get(k)
		loc := location{file: n.Source.File, line: n.Source.Line, section: n.Source.Section, option: k}
		if sec, ok := l.ini.byName[n.Source.Section]; ok {
			if o, ok := sec.byName[k]; ok {
				loc.line = o.line
			}
		}
		if _, done := n.Loadable[v]; !done {
			isName := false
			if m := schemeRe.FindString(v); m != "" {
				switch strings.ToLower(strings.TrimSuffix(m, ":")) {
				case "config", "egg", "call":
					isName = true
				}
			} else if _, err := l.findConfigSection(appType, v, loc); err == nil {
				isName = true
			}
			if isName {
				child, err := l.getContext(appType, v, n.GlobalConf, loc)
				if err != nil {
					return nil, err
				}
				addChild(v, child, false)
			}
		}
		words := pyFields(v)
		if len(words) < 2 {
			continue
		}
		for _, w := range words {
			if _, done := n.Loadable[w]; done || schemeRe.MatchString(w) {
				continue
			}
			for _, ot := range []*objectType{appType, filterType} {
				if _, err := l.findConfigSection(ot, w, loc); err != nil {
					continue
				}
				child, err := l.getContext(ot, w, n.GlobalConf, loc)
				if err != nil {
					if strings.Contains(err.Error(), "reference cycle") {
						break
					}
					return nil, err
				}
				addChild(w, child, true)
				break
			}
		}
	}
	return added, nil
}
