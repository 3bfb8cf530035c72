package config

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Object types, named as PasteDeploy names its object types.
const (
	TypeApplication  = "application"
	TypeFilter       = "filter"
	TypeServer       = "server"
	TypePipeline     = "pipeline"
	TypeFilterApp    = "filter_app"
	TypeFilteredWith = "filtered_with"
)

// Protocols, PasteDeploy's entry point groups.
const (
	ProtocolApp           = "paste.app_factory"
	ProtocolComposite     = "paste.composite_factory"
	ProtocolComposit      = "paste.composit_factory"
	ProtocolFilter        = "paste.filter_factory"
	ProtocolFilterApp     = "paste.filter_app_factory"
	ProtocolServer        = "paste.server_factory"
	ProtocolServerRunner  = "paste.server_runner"
	ProtocolCallable      = "wsgate.callable" // `serve --app module:callable`: the object is the application
	GoFactoryPrefix       = "go:"             // Factory of a node served by a Go component
	workerFormLoadableKey = "loadable"
)

// Source is where a node was written: the section header's line.
type Source struct {
	File    string // display path (relative to the working directory when inside it)
	Line    int
	Section string
}

func (s Source) String() string {
	if s.File == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d [%s]", s.File, s.Line, s.Section)
}

// Node is one PasteDeploy context: what loadcontext would build for a
// section, with the same global_conf and local_conf.
//
// A factory node (application, filter, server) has Use (the spec as written:
// "egg:Dist#entry", "call:mod:obj", or "mod:obj" from a paste.*_factory key),
// and after Resolve a Factory ("module:qualname", or "go:component") and a
// Protocol. A pipeline has Filters and App; a filter_app and a filtered_with
// have Filter and Next. Composite nodes (Protocol paste.composite_factory or
// paste.composit_factory) get Loadable after Resolve: every local_conf value
// naming something loadable, loaded in advance for the worker.
type Node struct {
	ObjectType string
	Protocol   string // "" is PasteDeploy's None
	Use        string
	Factory    string
	GlobalConf *Conf
	LocalConf  *Conf
	Filters    []*Node
	App        *Node
	Filter     *Node
	Next       *Node
	Source     Source
	// Via lists the sections a `use = name` chain went through after Source,
	// outermost first (Source is the section that was asked for).
	Via []Source
	// Wsgate holds the section's wsgate.* keys (how wsgate serves it:
	// wsgate.pool, wsgate.workers…), named without the prefix and taken
	// out of LocalConf, so the factory never receives them. Nil when none.
	Wsgate *Conf
	// Require lists the distributions a `require` option named.
	Require []string
	// Loadable maps each local_conf value of a composite that names an
	// application to that application (filled by Resolve).
	Loadable map[string]*Node
	// LoadableOrder is Loadable's keys in local_conf order.
	LoadableOrder []string

	// Resolution state.
	specKind        string // "egg", "call", "object" ("mod:obj" from a factory key), "" for none
	eggDist         string
	eggEntry        string
	protocolPending bool        // egg: the protocol comes from the entry point group found
	loader          *fileLoader // the file a composite's names are looked up in
	srcIsRef        bool        // Source is the option that named an egg:/call: directly
	resolved        bool
	interp          *interpreterChoice // wsgate.python of its application, nil: the site's
	compositePath   []string           // composites this node was loaded for (cycle detection)
	wordRef         bool               // loaded for one word of a composite's value: a cycle there is no mistake
}

// IsComposite reports whether the node is a composite application.
func (n *Node) IsComposite() bool {
	return n.Protocol == ProtocolComposite || n.Protocol == ProtocolComposit
}

// Walk calls fn on n and every node below it (pipelines, filters, loadables),
// parents first.
func (n *Node) Walk(fn func(*Node)) {
	if n == nil {
		return
	}
	fn(n)
	for _, f := range n.Filters {
		f.Walk(fn)
	}
	n.App.Walk(fn)
	n.Filter.Walk(fn)
	n.Next.Walk(fn)
	for _, k := range n.LoadableOrder {
		n.Loadable[k].Walk(fn)
	}
}

// ContractJSON is the node as `wsgate check --json` prints it (the contract
// form of docs/architecture.md, "The node tree"): here and __file__ left out
// of global_conf, no loadables.
func (n *Node) ContractJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := n.writeJSON(&b, false); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// WorkerJSON is the worker form (docs/architecture.md): global_conf complete
// (here and __file__ kept) and composites carrying "loadable". Call Resolve
// first.
func (n *Node) WorkerJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := n.writeJSON(&b, true); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type jsonField struct {
	key string
	val any
}

func (n *Node) writeJSON(b *bytes.Buffer, worker bool) error {
	var fields []jsonField
	fields = append(fields, jsonField{"object_type", n.ObjectType})
	if n.Protocol == "" {
		fields = append(fields, jsonField{"protocol", nil})
	} else {
		fields = append(fields, jsonField{"protocol", n.Protocol})
	}
	if n.specKind != "" || n.Factory != "" {
		fields = append(fields, jsonField{"use", n.Use}, jsonField{"factory", n.Factory})
	}
	gc := n.GlobalConf
	if !worker {
		gc = gc.without("here", "__file__")
	}
	if gc == nil {
		gc = NewConf()
	}
	lc := n.LocalConf
	if lc == nil {
		lc = NewConf()
	}
	fields = append(fields, jsonField{"global_conf", gc}, jsonField{"local_conf", lc})
	if !worker && n.Wsgate.Len() > 0 {
		fields = append(fields, jsonField{"wsgate", n.Wsgate})
	}
	if worker {
		fields = append(fields, jsonField{"global_conf_sources", gc.originsConf()}, jsonField{"local_conf_sources", lc.originsConf()})
	}
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, "%q:", f.key)
		v, err := json.Marshal(f.val)
		if err != nil {
			return err
		}
		b.Write(v)
	}
	child := func(key string, c *Node) error {
		fmt.Fprintf(b, ",%q:", key)
		return c.writeJSON(b, worker)
	}
	if n.ObjectType == TypePipeline {
		b.WriteString(`,"filters":[`)
		for i, f := range n.Filters {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := f.writeJSON(b, worker); err != nil {
				return err
			}
		}
		b.WriteByte(']')
		if n.App != nil {
			if err := child("app", n.App); err != nil {
				return err
			}
		}
	}
	if n.Filter != nil {
		if err := child("filter", n.Filter); err != nil {
			return err
		}
	}
	if n.Next != nil {
		if err := child("next", n.Next); err != nil {
			return err
		}
	}
	if worker && n.IsComposite() {
		fmt.Fprintf(b, ",%q:{", workerFormLoadableKey)
		for i, k := range n.LoadableOrder {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			if err := n.Loadable[k].writeJSON(b, worker); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	}
	src, _ := json.Marshal(n.Source.String())
	b.WriteString(`,"source":`)
	b.Write(src)
	b.WriteByte('}')
	return nil
}
