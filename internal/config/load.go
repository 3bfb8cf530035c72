package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// This file is PasteDeploy 3's loadwsgi.loadcontext, step by step: which
// section a name selects, how global_conf and local_conf are built and shared,
// what `use`, `set`, `get`, `filter-with`, `next` and `pipeline` do. Comments
// name the PasteDeploy function each part reproduces.

// objectType is PasteDeploy's _ObjectType: the section prefixes that can
// define it and the entry point groups (protocols) its factories come from.
type objectType struct {
	name      string
	prefixes  [][]string // groups; the first prefix of a group that matches wins within the group
	protocols [][]string
}

var (
	appType = &objectType{
		name:      TypeApplication,
		prefixes:  [][]string{{"app", "application"}, {"composite", "composit"}, {"pipeline"}, {"filter-app"}},
		protocols: [][]string{{ProtocolApp}, {ProtocolComposite}, {ProtocolComposit}},
	}
	filterType = &objectType{
		name:      TypeFilter,
		prefixes:  [][]string{{"filter"}},
		protocols: [][]string{{ProtocolFilter, ProtocolFilterApp}},
	}
	serverType = &objectType{
		name:      TypeServer,
		prefixes:  [][]string{{"server"}},
		protocols: [][]string{{ProtocolServer, ProtocolServerRunner}},
	}
)

func (ot *objectType) prefixList() string {
	var all []string
	for _, g := range ot.prefixes {
		for _, p := range g {
			all = append(all, "["+p+":…]")
		}
	}
	return strings.Join(all, ", ")
}

func (ot *objectType) protocolList() []string {
	var all []string
	for _, g := range ot.protocols {
		all = append(all, g...)
	}
	return all
}

// Options change how a configuration is loaded.
type Options struct {
	// Overrides are `--set key=value` pairs: PasteDeploy's global_conf
	// argument of loadapp. They win over [DEFAULT] in every global_conf, are
	// added to [DEFAULT] (for %(key)s) where a file lacks the key, and, like
	// any [DEFAULT] key, hide a section option of the same name.
	Overrides map[string]string
	// Dir is the directory a relative CONFIG_URI is read from (default: the
	// working directory); display paths are relative to it.
	Dir string
}

// ParseURI splits a CONFIG_URI: "file.ini", "file.ini#name" or
// "config:file.ini#name". The name defaults to "main".
func ParseURI(uri string) (path, name string, err error) {
	s := strings.TrimSpace(uri)
	if s == "" {
		return "", "", errors.New("empty configuration URI: give file.ini, file.ini#name or config:file.ini#name")
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s, name = s[:i], s[i+1:]
	}
	if name == "" {
		name = "main"
	}
	if len(s) >= 7 && strings.EqualFold(s[:7], "config:") {
		s = s[7:]
	} else if m := schemeRe.FindString(s); m != "" && len(m) > 2 {
		// egg:, call: and other schemes name no file; one-letter "schemes"
		// are Windows drive letters.
		return "", "", fmt.Errorf("configuration URI %q: only config: URIs (or plain file paths) can be loaded", uri)
	}
	if s == "" {
		return "", "", fmt.Errorf("configuration URI %q names no file", uri)
	}
	return s, name, nil
}

// schemeRe is PasteDeploy's _Loader._absolute_re: a name with a scheme.
var schemeRe = regexp.MustCompile(`^[a-zA-Z]+:`)

// LoadApp loads the application that uri names, as paste.deploy.loadapp
// would (app:, application:, composite:, composit:, pipeline: and
// filter-app: sections). Factories are not resolved yet: call Resolve.
func LoadApp(uri string, opts Options) (*Node, error) {
	return load(appType, uri, opts)
}

// LoadFilter loads the filter that uri names ([filter:NAME]).
func LoadFilter(uri string, opts Options) (*Node, error) {
	return load(filterType, uri, opts)
}

// LoadServer loads [server:NAME] from the file uri names. A file without
// that section gives (nil, nil); any other mistake is an error.
func LoadServer(uri string, opts Options) (*Node, error) {
	return loadServer(uri, opts, false)
}

// LoadServerSettings loads [server:NAME] as wsgate reads it: a section of
// settings, which needs no `use` or factory (wsgate is the server; a `use`
// written for another server is loaded and left alone). A file without
// that section gives (nil, nil).
func LoadServerSettings(uri string, opts Options) (*Node, error) {
	return loadServer(uri, opts, true)
}

func loadServer(uri string, opts Options, settingsOnly bool) (*Node, error) {
	s, l, name, err := openTop(uri, opts)
	if err != nil {
		return nil, err
	}
	s.settingsOnly = settingsOnly
	found := false
	for _, sec := range l.ini.sections {
		if strings.HasPrefix(sec.name, "server:") && pyStrip(sec.name[len("server:"):]) == name {
			found = true
		}
	}
	if !found {
		return nil, nil
	}
	return s.top(l, serverType, name)
}

func load(ot *objectType, uri string, opts Options) (*Node, error) {
	s, l, name, err := openTop(uri, opts)
	if err != nil {
		return nil, err
	}
	return s.top(l, ot, name)
}

// session is one load: parsed files and the stack of sections being
// resolved (to report cycles instead of recursing forever).
type session struct {
	dir   string
	files map[string]*iniFile
	stack []stackEntry
	nodes int // sections resolved so far, against maxNodes
	// settingsOnly: a server section needs no factory (LoadServerSettings).
	settingsOnly bool
}

// maxNodes bounds how many sections one load may resolve: pipelines of
// pipelines can fan out exponentially, and a configuration that big is a
// mistake, not a site.
const maxNodes = 20000

type stackEntry struct {
	key string
	loc location // the section
}

func openTop(uri string, opts Options) (*session, *fileLoader, string, error) {
	path, name, err := ParseURI(uri)
	if err != nil {
		return nil, nil, "", &Error{File: uri, Msg: err.Error()}
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.Getwd(); err != nil {
			return nil, nil, "", fmt.Errorf("finding the working directory: %w", err)
		}
	}
	s := &session{dir: dir, files: map[string]*iniFile{}}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	gc := NewConf()
	keys := make([]string, 0, len(opts.Overrides))
	for k := range opts.Overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		gc.setFrom(k, opts.Overrides[k], "--set "+k)
	}
	l, err := s.newFileLoader(path, gc, location{file: s.display(path)})
	if err != nil {
		return nil, nil, "", err
	}
	l.topGlobal = gc
	return s, l, name, nil
}

func (s *session) top(l *fileLoader, ot *objectType, name string) (*Node, error) {
	n, err := l.getContext(ot, name, l.topGlobal, location{file: l.display})
	if err != nil {
		return nil, err
	}
	if err := validateProtocols(n); err != nil {
		return nil, err
	}
	return n, nil
}

// validProtocols are the protocols each object type can be built with.
var validProtocols = map[string][]string{
	TypeApplication: {ProtocolApp, ProtocolComposite, ProtocolComposit},
	TypeFilter:      {ProtocolFilter, ProtocolFilterApp},
	TypeServer:      {ProtocolServer, ProtocolServerRunner},
}

// validateProtocols refuses what loadcontext accepts but PasteDeploy cannot
// build (its create() fails): a call: named directly as a pipeline item,
// next or filter-with has no protocol, and `use = call:…` in a filter-app
// section gets "paste.filter-app_factory".
func validateProtocols(root *Node) error {
	var err error
	root.Walk(func(n *Node) {
		if err != nil || n.specKind == "" || n.protocolPending {
			return
		}
		for _, p := range validProtocols[n.ObjectType] {
			if n.Protocol == p {
				return
			}
		}
		loc := n.useLocation()
		if n.Protocol == "" {
			err = loc.errorf("%s has no protocol here: PasteDeploy only infers one from the kind of a section; write a [%s:name] section with `use = %s` and name that section instead",
				n.Use, map[string]string{TypeApplication: "app", TypeFilter: "filter", TypeServer: "server"}[n.ObjectType], n.Use)
			return
		}
		err = loc.errorf("%s would be called as %q, which PasteDeploy cannot build a %s with; give the filter its own [filter:name] section and `use = name`",
			n.Use, n.Protocol, n.ObjectType)
	})
	return err
}

// display names a file for messages: relative to the session directory when
// inside it, absolute otherwise.
func (s *session) display(abs string) string {
	abs = filepath.Clean(abs)
	if rel, err := filepath.Rel(s.dir, abs); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return abs
}

// fileLoader is PasteDeploy's ConfigLoader: one file and its parser
// defaults (here, __file__, [DEFAULT], and what an including file passed in).
type fileLoader struct {
	s          *session
	filename   string // as PasteDeploy holds it (joined, not normalised): relative names resolve from its directory
	abs        string
	display    string
	ini        *iniFile
	defaults   *Conf // raw parser defaults
	defaultLoc map[string]location
	defaultOrg map[string]string // origin of defaults an including file passed in
	topGlobal  *Conf
}

// newFileLoader is _loadconfig + ConfigLoader.__init__ + update_defaults.
func (s *session) newFileLoader(filename string, gc *Conf, ref location) (*fileLoader, error) {
	filename = pyStrip(filename)
	abs, err := filepath.Abs(filename)
	if err != nil {
		return nil, ref.errorf("cannot resolve path %s: %v", filename, err)
	}
	display := s.display(abs)
	f, ok := s.files[abs]
	if !ok {
		data, err := os.ReadFile(abs)
		if err != nil {
			var why string
			switch {
			case errors.Is(err, os.ErrNotExist):
				why = "no such file"
			case errors.Is(err, os.ErrPermission):
				why = "permission denied"
			default:
				why = err.Error()
				if st, serr := os.Stat(abs); serr == nil && st.IsDir() {
					why = "it is a directory, not an INI file"
				}
			}
			if ref.file == display && ref.line == 0 {
				return nil, &Error{File: display, Msg: "cannot read the configuration: " + why}
			}
			return nil, ref.errorf("cannot read %s: %s", display, why)
		}
		if f, err = parseINI(display, data); err != nil {
			return nil, err
		}
		s.files[abs] = f
	}
	l := &fileLoader{s: s, filename: filename, abs: abs, display: display, ini: f,
		defaults: NewConf(), defaultLoc: map[string]location{}, defaultOrg: map[string]string{}}
	l.defaults.Set("here", filepath.Dir(abs))
	l.defaults.Set("__file__", abs)
	for _, o := range f.defaults.opts {
		l.defaults.Set(o.name, o.value)
		l.defaultLoc[o.name] = location{file: display, line: o.line, section: defaultSection, option: o.name}
	}
	// update_defaults(global_conf, overwrite=False): the file's own
	// [DEFAULT] keeps its values for interpolation; new keys are added.
	for _, k := range gc.Keys() {
		if !l.defaults.Has(k) {
			v, _ := gc.Get(k)
			l.defaults.Set(k, v)
			l.defaultLoc[k] = location{file: display, section: defaultSection, option: k}
			l.defaultOrg[k] = gc.Origin(k)
		}
	}
	return l, nil
}

// interpolatedDefaults is NicerConfigParser.defaults(): each default
// interpolated against the defaults, falling back to the raw value when the
// result is empty.
func (l *fileLoader) interpolatedDefaults() (*Conf, error) {
	out := NewConf()
	lookup := func(k string) (string, bool) { return l.defaults.Get(k) }
	for _, k := range l.defaults.Keys() {
		raw, _ := l.defaults.Get(k)
		v, err := interpolate(raw, lookup)
		if err != nil {
			loc := l.defaultLoc[k]
			if loc.file == "" {
				loc = location{file: l.display, section: defaultSection, option: k}
			}
			if loc.line == 0 && k != "here" && k != "__file__" {
				return nil, loc.errorf("value %q passed in by the including file or --set: %v", raw, err)
			}
			return nil, loc.errorf("%v", err)
		}
		if v == "" {
			v = raw
		}
		origin := l.defaultOrg[k]
		if loc, ok := l.defaultLoc[k]; ok && loc.line > 0 {
			origin = loc.String()
		}
		out.setFrom(k, v, origin)
	}
	return out, nil
}

// options is ConfigParser.options(section): the section's keys, then the
// defaults' keys it lacks.
func (l *fileLoader) options(sec *iniSection) []string {
	var out []string
	for _, o := range sec.opts {
		out = append(out, o.name)
	}
	for _, k := range l.defaults.Keys() {
		if _, ok := sec.byName[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// optionLoc locates an option of sec, or the [DEFAULT] one it inherits.
func (l *fileLoader) optionLoc(sec *iniSection, name string) location {
	if o, ok := sec.byName[name]; ok {
		return location{file: l.display, line: o.line, section: sec.name, option: name}
	}
	if loc, ok := l.defaultLoc[name]; ok {
		return loc
	}
	return location{file: l.display, section: sec.name, option: name}
}

// get is ConfigParser.get(section, option): interpolated with the
// section's options over the defaults.
func (l *fileLoader) get(sec *iniSection, name string) (string, error) {
	raw, ok := "", false
	if o, found := sec.byName[name]; found {
		raw, ok = o.value, true
	} else {
		raw, ok = l.defaults.Get(name)
	}
	if !ok {
		return "", l.optionLoc(sec, name).errorf("no such option")
	}
	lookup := func(k string) (string, bool) {
		if o, found := sec.byName[k]; found {
			return o.value, true
		}
		return l.defaults.Get(k)
	}
	v, err := interpolate(raw, lookup)
	if err != nil {
		loc := l.optionLoc(sec, name)
		loc.section = sec.name
		return "", loc.errorf("%v", err)
	}
	return v, nil
}

// findConfigSection is ConfigLoader.find_config_section.
func (l *fileLoader) findConfigSection(ot *objectType, name string, ref location) (*iniSection, error) {
	var possible []*iniSection
	for _, group := range ot.prefixes {
		for _, prefix := range group {
			var found []*iniSection
			for _, sec := range l.ini.sections {
				if strings.HasPrefix(sec.name, prefix+":") && pyStrip(sec.name[len(prefix)+1:]) == name {
					found = append(found, sec)
				}
			}
			if len(found) > 0 {
				possible = append(possible, found...)
				break
			}
		}
	}
	switch len(possible) {
	case 0:
		return nil, ref.errorf("%s has no %s section named %q (looked for %s)%s",
			l.display, ot.name, name, ot.prefixList(), l.nearMiss(name))
	case 1:
		return possible[0], nil
	}
	var names []string
	for _, p := range possible {
		names = append(names, fmt.Sprintf("[%s] (line %d)", p.name, p.line))
	}
	return nil, ref.errorf("%q is ambiguous in %s: %s all define it; rename all but one",
		name, l.display, strings.Join(names, ", "))
}

// nearMiss suggests sections whose name matches but whose kind does not.
func (l *fileLoader) nearMiss(name string) string {
	var hits []string
	for _, sec := range l.ini.sections {
		if i := strings.IndexByte(sec.name, ':'); i >= 0 && pyStrip(sec.name[i+1:]) == name {
			hits = append(hits, "["+sec.name+"]")
		} else if sec.name == name {
			hits = append(hits, "["+sec.name+"] (a section name needs a kind such as app:)")
		}
	}
	if len(hits) == 0 {
		return ""
	}
	return "; found " + strings.Join(hits, ", ")
}

// getContext is ConfigLoader.get_context.
func (l *fileLoader) getContext(ot *objectType, name string, globalConf *Conf, ref location) (*Node, error) {
	if schemeRe.MatchString(name) {
		n, err := l.s.loadContext(ot, name, filepath.Dir(l.filename), globalConf, ref)
		if err == nil && n.Source.File == "" {
			// An egg: or call: named directly (pipeline item, next,
			// filter-with): the naming option is its source.
			n.Source = Source{File: ref.file, Line: ref.line, Section: ref.section}
			n.srcIsRef = true
		}
		return n, err
	}
	sec, err := l.findConfigSection(ot, name, ref)
	if err != nil {
		return nil, err
	}
	secLoc := location{file: l.display, line: sec.line, section: sec.name}
	if l.s.nodes++; l.s.nodes > maxNodes {
		return nil, ref.errorf("the configuration expands to more than %d sections (pipelines or composites nested in each other many times?)", maxNodes)
	}
	key := l.abs + "\x00" + sec.name
	for i, e := range l.s.stack {
		if e.key == key {
			var chain []string
			for _, c := range l.s.stack[i:] {
				chain = append(chain, fmt.Sprintf("%s:%d [%s]", c.loc.file, c.loc.line, c.loc.section))
			}
			chain = append(chain, fmt.Sprintf("%s:%d [%s]", secLoc.file, secLoc.line, secLoc.section))
			return nil, ref.errorf("reference cycle: %s; a section cannot use, filter or contain itself",
				strings.Join(chain, " → "))
		}
	}
	l.s.stack = append(l.s.stack, stackEntry{key: key, loc: secLoc})
	defer func() { l.s.stack = l.s.stack[:len(l.s.stack)-1] }()

	defaults, err := l.interpolatedDefaults()
	if err != nil {
		return nil, err
	}
	gc := defaults.Copy()
	gc.Update(globalConf)
	local := NewConf()
	additions := NewConf()
	gets := NewConf()
	getLoc := map[string]location{}
	for _, opt := range l.options(sec) {
		switch {
		case strings.HasPrefix(opt, "set "):
			v, err := l.get(sec, opt)
			if err != nil {
				return nil, err
			}
			n := pyStrip(opt[4:])
			origin := l.optionLoc(sec, opt).String()
			additions.setFrom(n, v, origin)
			gc.setFrom(n, v, origin)
		case strings.HasPrefix(opt, "get "):
			v, err := l.get(sec, opt)
			if err != nil {
				return nil, err
			}
			n := pyStrip(opt[4:])
			gets.Set(n, v)
			getLoc[n] = l.optionLoc(sec, opt)
		default:
			if defaults.Has(opt) {
				// PasteDeploy skips a section option that [DEFAULT] also has.
				continue
			}
			v, err := l.get(sec, opt)
			if err != nil {
				return nil, err
			}
			local.setFrom(opt, v, l.optionLoc(sec, opt).String())
		}
	}
	for _, localVar := range gets.Keys() {
		globVar, _ := gets.Get(localVar)
		v, ok := gc.Get(globVar)
		if !ok {
			return nil, getLoc[localVar].errorf("global_conf has no %q to get (known: %s); define it in [DEFAULT], with `set %s = …`, or with --set %s=…",
				globVar, strings.Join(gc.without("here", "__file__").Keys(), ", "), globVar, globVar)
		}
		local.setFrom(localVar, v, gc.Origin(globVar))
	}
	filterWith, hasFilterWith := "", false
	if (ot == appType || ot == filterType) && local.Has("filter-with") {
		filterWith, _ = local.Pop("filter-with")
		hasFilterWith = true
	}
	var require []string
	if r, ok := local.Pop("require"); ok {
		require = pyFields(r)
	}
	var ctx *Node
	switch {
	case strings.HasPrefix(sec.name, "filter-app:"):
		ctx, err = l.filterAppContext(sec, gc, local, additions)
	case strings.HasPrefix(sec.name, "pipeline:"):
		ctx, err = l.pipelineContext(sec, gc, local)
	case local.Has("use"):
		ctx, err = l.contextFromUse(ot, sec, local, gc, additions)
	default:
		ctx, err = l.contextFromExplicit(ot, sec, local, gc)
	}
	if err != nil {
		return nil, err
	}
	ctx.Require = append(ctx.Require, require...)
	takeWsgateKeys(ctx)
	if hasFilterWith {
		fw := &Node{ObjectType: TypeFilteredWith, GlobalConf: gc, LocalConf: local, loader: l,
			Source: Source{File: l.display, Line: sec.line, Section: sec.name}}
		if fw.LocalConf == ctx.LocalConf {
			fw.Wsgate = ctx.Wsgate // one dict, as PasteDeploy shares it
		} else {
			takeWsgateKeys(fw)
		}
		fw.Filter, err = l.getContext(filterType, filterWith, gc, l.optionLoc(sec, "filter-with"))
		if err != nil {
			return nil, err
		}
		fw.Next = ctx
		return fw, nil
	}
	return ctx, nil
}

// contextFromUse is ConfigLoader._context_from_use.
func (l *fileLoader) contextFromUse(ot *objectType, sec *iniSection, local, gc, additions *Conf) (*Node, error) {
	use, _ := local.Pop("use")
	ctx, err := l.getContext(ot, use, gc, l.optionLoc(sec, "use"))
	if err != nil {
		return nil, err
	}
	ctx.GlobalConf.Update(additions)
	ctx.LocalConf.Update(local)
	if f, ok := gc.Get("__file__"); ok {
		// "use sections shouldn't overwrite the original __file__"
		ctx.GlobalConf.Set("__file__", f)
	}
	ctx.loader = l
	if ctx.Protocol == "" && !ctx.protocolPending {
		switch kind := sec.name[:strings.IndexByte(sec.name, ':')]; kind {
		case "application", "app":
			ctx.Protocol = ProtocolApp
		case "composit", "composite":
			ctx.Protocol = ProtocolComposit
		default:
			ctx.Protocol = "paste." + kind + "_factory"
		}
	}
	src := Source{File: l.display, Line: sec.line, Section: sec.name}
	if ctx.Source.File != "" && !ctx.srcIsRef {
		ctx.Via = append([]Source{ctx.Source}, ctx.Via...)
	}
	ctx.Source = src
	ctx.srcIsRef = false
	return ctx, nil
}

// contextFromExplicit is ConfigLoader._context_from_explicit: a
// paste.*_factory key names the factory.
func (l *fileLoader) contextFromExplicit(ot *objectType, sec *iniSection, local, gc *Conf) (*Node, error) {
	type found struct{ protocol, expr string }
	var possible []found
	for _, group := range ot.protocols {
		for _, p := range group {
			if v, ok := local.Get(p); ok {
				possible = append(possible, found{p, v})
				break
			}
		}
	}
	secLoc := location{file: l.display, line: sec.line, section: sec.name}
	if len(possible) > 1 {
		var keys []string
		for _, p := range possible {
			keys = append(keys, p.protocol)
		}
		return nil, secLoc.errorf("several factories given (%s); keep one", strings.Join(keys, ", "))
	}
	if len(possible) == 0 && ot == serverType && l.s.settingsOnly {
		return &Node{ObjectType: ot.name, GlobalConf: gc, LocalConf: local, loader: l,
			Source: Source{File: l.display, Line: sec.line, Section: sec.name}}, nil
	}
	if len(possible) == 0 {
		return nil, secLoc.errorf("no `use` and no factory: add `use = egg:Dist#name`, `use = call:module:object`, `use = another-section`, or one of %s = module:object",
			strings.Join(ot.protocolList(), ", "))
	}
	p := possible[0]
	local.Delete(p.protocol)
	return &Node{ObjectType: ot.name, Protocol: p.protocol, Use: p.expr, specKind: "object",
		GlobalConf: gc, LocalConf: local, loader: l,
		Source: Source{File: l.display, Line: sec.line, Section: sec.name}}, nil
}

// filterAppContext is ConfigLoader._filter_app_context.
func (l *fileLoader) filterAppContext(sec *iniSection, gc, local, additions *Conf) (*Node, error) {
	next, ok := local.Pop("next")
	if !ok {
		return nil, location{file: l.display, line: sec.line, section: sec.name}.errorf(
			"a filter-app section needs `next = name-of-the-application` (and `use =` for its filter)")
	}
	ctx := &Node{ObjectType: TypeFilterApp, GlobalConf: gc, LocalConf: local, loader: l,
		Source: Source{File: l.display, Line: sec.line, Section: sec.name}}
	var err error
	ctx.Next, err = l.getContext(appType, next, gc, l.optionLoc(sec, "next"))
	if err != nil {
		return nil, err
	}
	if local.Has("use") {
		ctx.Filter, err = l.contextFromUse(filterType, sec, local, gc, additions)
	} else {
		ctx.Filter, err = l.contextFromExplicit(filterType, sec, local, gc)
	}
	if err != nil {
		return nil, err
	}
	return ctx, nil
}

// pipelineContext is ConfigLoader._pipeline_app_context.
func (l *fileLoader) pipelineContext(sec *iniSection, gc, local *Conf) (*Node, error) {
	secLoc := location{file: l.display, line: sec.line, section: sec.name}
	value, ok := local.Pop("pipeline")
	if !ok {
		return nil, secLoc.errorf("a pipeline section needs `pipeline = filter1 filter2 … app`")
	}
	if local.Len() > 0 {
		keys := local.Keys()
		return nil, l.optionLoc(sec, keys[0]).errorf(
			"a pipeline section takes only `pipeline` (and `set`), not %s; put settings in the filter and app sections",
			strings.Join(keys, ", "))
	}
	items := pyFields(value)
	ref := l.optionLoc(sec, "pipeline")
	if len(items) == 0 {
		return nil, ref.errorf("the pipeline is empty; list filters and end with an application")
	}
	ctx := &Node{ObjectType: TypePipeline, GlobalConf: gc, LocalConf: local, loader: l,
		Source: Source{File: l.display, Line: sec.line, Section: sec.name}}
	var err error
	last := items[len(items)-1]
	ctx.App, err = l.getContext(appType, last, gc, ref)
	if err != nil {
		if _, ferr := l.findConfigSection(filterType, last, ref); ferr == nil && !schemeRe.MatchString(last) {
			return nil, ref.errorf("the pipeline ends in the filter %q; its last item must be an application", last)
		}
		return nil, err
	}
	for _, name := range items[:len(items)-1] {
		f, err := l.getContext(filterType, name, gc, ref)
		if err != nil {
			return nil, err
		}
		ctx.Filters = append(ctx.Filters, f)
	}
	return ctx, nil
}

// loadContext is loadwsgi.loadcontext for a name with a scheme.
func (s *session) loadContext(ot *objectType, uri, relativeTo string, gc *Conf, ref location) (*Node, error) {
	// A missing fragment means main; an empty one stays empty, as in
	// PasteDeploy.
	name := "main"
	if i := strings.IndexByte(uri, '#'); i >= 0 {
		uri, name = uri[:i], uri[i+1:]
	}
	i := strings.IndexByte(uri, ':')
	scheme, path := strings.ToLower(uri[:i]), uri[i+1:]
	switch scheme {
	case "config":
		return s.loadConfig(ot, path, name, relativeTo, gc, ref)
	case "egg":
		conf := gc
		if conf.Len() == 0 {
			conf = NewConf()
		}
		return &Node{ObjectType: ot.name, Use: uri + "#" + name, specKind: "egg", eggDist: path, eggEntry: name,
			protocolPending: true, GlobalConf: conf, LocalConf: NewConf()}, nil
	case "call":
		if !strings.Contains(path, ":") {
			return nil, ref.errorf("%q is not call:module:object", uri)
		}
		conf := gc
		if conf.Len() == 0 {
			conf = NewConf()
		}
		return &Node{ObjectType: ot.name, Use: uri, specKind: "call",
			GlobalConf: conf, LocalConf: NewConf()}, nil
	}
	return nil, ref.errorf("unknown scheme %q in %q: use config:file.ini#name, egg:Dist#entry, call:module:object, or a section name", scheme, uri)
}

// loadConfig is loadwsgi._loadconfig.
func (s *session) loadConfig(ot *objectType, path, name, relativeTo string, gc *Conf, ref location) (*Node, error) {
	isAbs := filepath.IsAbs(path)
	path = strings.ReplaceAll(path, `\`, "/")
	if !isAbs {
		rel := strings.ReplaceAll(relativeTo, `\`, "/")
		if strings.HasSuffix(rel, "/") {
			path = rel + path
		} else {
			path = rel + "/" + path
		}
	}
	if strings.HasPrefix(path, "///") {
		path = path[2:]
	}
	path = pyUnquote(path)
	l, err := s.newFileLoader(path, gc, ref)
	if err != nil {
		return nil, err
	}
	return l.getContext(ot, name, gc, ref)
}

// pyUnquote is urllib.parse.unquote: %XX sequences decoded as UTF-8 (bad
// sequences become U+FFFD), malformed escapes left as they are.
func pyUnquote(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var raw []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			raw = append(raw, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		raw = append(raw, s[i])
	}
	if utf8.Valid(raw) {
		return string(raw)
	}
	return strings.ToValidUTF8(string(raw), "\uFFFD")
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// WsgatePrefix starts the keys of an application section that are
// wsgate's own (wsgate.pool, wsgate.workers…): how wsgate serves the
// application, not what its factory receives.
const WsgatePrefix = "wsgate."

// takeWsgateKeys moves n's wsgate.* keys out of its local_conf into
// n.Wsgate (without the prefix, with their origins), after those a `use`
// chain brought: the section that uses another overrides its keys, as it
// overrides local_conf.
func takeWsgateKeys(n *Node) {
	for _, k := range n.LocalConf.Keys() {
		if !strings.HasPrefix(k, WsgatePrefix) {
			continue
		}
		if n.Wsgate == nil {
			n.Wsgate = NewConf()
		}
		origin := n.LocalConf.Origin(k)
		v, _ := n.LocalConf.Pop(k)
		n.Wsgate.setFrom(strings.TrimPrefix(k, WsgatePrefix), v, origin)
	}
}
