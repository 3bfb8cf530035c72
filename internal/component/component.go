// Package component is the registry of wsgate's Go-native components: the
// applications, filters and composites that `use = egg:wsgate#NAME` (or a
// Paste name such as `egg:Paste#urlmap`) puts in front of the Python workers.
//
// Each component lives in its own package under internal/component/ and
// registers one Spec from its init function, as Caddy modules do. A Spec
// declares the component's INI options (name, type, default, help: the
// source docs/components.md is rendered from), what the component must see
// of a response (Sees: the gateway's fast path depends on it), and a Build
// function that turns one configured section into an http.Handler (an
// application or a composite) or a wrapper (a filter). Build validates
// everything it reads: a wrong option is an error naming
// file:line [section] option, at load, never at the first request.
//
// internal/compose walks the resolved node tree, builds the Go nodes through
// this registry and hands Python segments to worker pools.
package component

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/wsgate/wsgate/internal/config"
)

// Role is where a component can stand in the tree.
type Role int

const (
	// App answers requests itself (static, health, metrics, proxy, cgi).
	App Role = iota
	// Filter wraps the application after it (compress, accesslog, …): a
	// `[filter:…]` section, a pipeline member, `filter-with`.
	Filter
	// Composite dispatches to applications it names in its options
	// (urlmap, django_full): a `[composite:…]` section.
	Composite
)

func (r Role) String() string {
	switch r {
	case App:
		return "application"
	case Filter:
		return "filter"
	case Composite:
		return "composite"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Sees is how much of an exchange a component must see. The gateway may
// hand a response from a worker straight to the client only on routes where
// no component needs the response body; `wsgate check` shows, per route,
// the largest Sees on it.
type Sees int

const (
	// SeesRequest: the request only (urlmap, proxyfix, bodylimit, requestid).
	SeesRequest Sees = iota
	// SeesResponseHead: the response's status and headers, not its body
	// (accesslog, metrics count the bytes written but never read them).
	SeesResponseHead
	// SeesResponseBody: the response body itself (compress).
	SeesResponseBody
)

func (s Sees) String() string {
	switch s {
	case SeesRequest:
		return "request"
	case SeesResponseHead:
		return "response head"
	case SeesResponseBody:
		return "response body"
	}
	return fmt.Sprintf("Sees(%d)", int(s))
}

// Option declares one INI option of a component. docs/components.md is
// rendered from these declarations (a test fails when it is stale).
type Option struct {
	Name     string // the INI key, as users write it
	Type     string // what the value is, for the docs: "string", "path", "bool", "int", "bytes", "duration", "list", "networks", …
	Default  string // "" when there is none
	Required bool
	Help     string // one or two sentences
}

// Spec is one registered component.
type Spec struct {
	// Name is the component's name: `use = egg:wsgate#Name`.
	Name string
	// Aliases are other `use` values served by this component, as written
	// (e.g. "egg:Paste#urlmap"): existing INI files keep working.
	Aliases []string
	Role    Role
	Sees    Sees
	// Summary is one sentence for `wsgate check` and the docs' index.
	Summary string
	// Doc is the rest of the component's documentation (markdown).
	Doc string
	// Options are every option the component reads. An option outside this
	// list is a configuration error (a typo must not pass silently), except
	// for aliases whose original accepts options wsgate ignores: list those
	// in Ignored.
	Options []Option
	// Ignored options are accepted and left unused, with a notice (e.g.
	// Paste's options that have no meaning here).
	Ignored []string
	// Build makes the component from one configured section.
	Build func(b *Builder) (Built, error)
}

// Uses are every `use` value that selects the component.
func (s *Spec) Uses() []string {
	return append([]string{"egg:wsgate#" + s.Name}, s.Aliases...)
}

// Built is what Build returns: Handler for an App or a Composite, Wrap for a
// Filter.
type Built struct {
	Handler http.Handler
	Wrap    func(next http.Handler) http.Handler
	// Close, if set, releases what the component holds (files, listeners,
	// goroutines) when the site is replaced or stopped.
	Close func() error
}

var (
	mu       sync.RWMutex
	registry = map[string]*Spec{} // by Name
	byUse    = map[string]*Spec{} // by every use value
)

// Register adds a component; it panics on a duplicate name or use value (a
// programming mistake, found by any test that imports both packages).
func Register(s Spec) {
	mu.Lock()
	defer mu.Unlock()
	if s.Name == "" || s.Build == nil {
		panic("component: Register needs a Name and a Build function")
	}
	if _, dup := registry[s.Name]; dup {
		panic("component: " + s.Name + " registered twice")
	}
	sp := &s
	registry[s.Name] = sp
	for _, u := range sp.Uses() {
		if _, dup := byUse[u]; dup {
			panic("component: use value " + u + " registered twice")
		}
		byUse[u] = sp
		// The configuration loader learns the name here, so a section
		// using it resolves to "go:NAME" and is never asked of Python.
		config.RegisterNative(u, sp.Name, sp.Role.protocol())
	}
}

// protocol is the PasteDeploy protocol a component of this role stands for.
func (r Role) protocol() string {
	switch r {
	case Filter:
		return config.ProtocolFilter
	case Composite:
		return config.ProtocolComposite
	}
	return config.ProtocolApp
}

// Lookup returns the component a `use` value selects.
func Lookup(use string) (*Spec, bool) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := byUse[strings.TrimSpace(use)]
	return s, ok
}

// ByName returns the component registered under name.
func ByName(name string) (*Spec, bool) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := registry[name]
	return s, ok
}

// All returns every registered component, sorted by name.
func All() []*Spec {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]*Spec, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
