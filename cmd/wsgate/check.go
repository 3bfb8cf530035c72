package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/compose"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/settings"
	"github.com/wsgate/wsgate/internal/site"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// parseInterspersed parses flags that may come before or after the
// positional arguments (`wsgate check app.ini --json`).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseSets turns --set key=value flags into config overrides.
func parseSets(sets []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--set %q: want key=value", s)
		}
		out[k] = v
	}
	return out, nil
}

// commonFlags are the flags every command that loads a site shares
// (internal/site reads them the same way for serve, check, manage, test).
type commonFlags struct {
	o   settings.Serve
	set map[string]bool
}

// register declares the settings of internal/settings that decide how
// Python finds the application (and --set), as serve has them.
func (c *commonFlags) register(fs *flag.FlagSet) {
	settings.SiteFlags(fs, &c.o)
}

// load reads the site of uri; prog prefixes the messages. The exit code
// is exitOK when it loaded.
func (c *commonFlags) load(prog, uri string) (*site.Site, int) {
	overrides, err := parseSets(c.o.Sets)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return nil, exitUsage
	}
	if _, _, err := config.ParseURI(uri); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return nil, exitUsage
	}
	st, err := site.Load(site.Options{URI: uri, Overrides: overrides, Python: c.o.Python, PythonPath: c.o.PythonPath, Chdir: c.o.Chdir, LogConfig: c.o.LogConfig})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return nil, exitConfig
	}
	return st, exitOK
}

// runCheck validates a configuration: loads it as PasteDeploy would,
// resolves every factory in the chosen interpreter, builds every Go
// component and prints the composed tree.
func runCheck(args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the tree as JSON (the contract of docs/config.md)")
	var common commonFlags
	common.register(fs)
	usageText := func(w io.Writer) {
		fmt.Fprintln(w, "Usage: wsgate check [--json] [--set key=value]… [--python PATH] [--pythonpath DIR]… [--chdir DIR] CONFIG_URI")
		fmt.Fprintln(w, "Loads CONFIG_URI (file.ini, file.ini#name, config:file.ini#name) as PasteDeploy would, resolves every")
		fmt.Fprintln(w, "factory, builds the Go components and prints the composed tree: who serves each node (Go, or which")
		fmt.Fprintln(w, "Python pool), and per route whether responses take the fast path. Exit 0 valid, 1 configuration error, 2 usage.")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	positional, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		usageText(os.Stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate check: %v\n", err)
		usageText(os.Stderr)
		return exitUsage
	}
	if len(positional) != 1 {
		fmt.Fprintln(os.Stderr, "wsgate check: give exactly one CONFIG_URI")
		usageText(os.Stderr)
		return exitUsage
	}
	uri := positional[0]
	st, code := common.load("wsgate check", uri)
	if code != exitOK {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "wsgate check: %v\n", err)
		return exitConfig
	}
	composed, err := compose.Compose(st.App, compose.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Python: st.Command})
	if err != nil {
		return fail(err)
	}
	defer composed.Close()
	var reports []*djangoReport
	for _, p := range djangoPools(composed) {
		report, err := djangoSettings(st, p)
		if err != nil {
			return fail(err)
		}
		reports = append(reports, report)
	}
	if *asJSON {
		out, err := st.App.ContractJSON()
		if err != nil {
			return fail(err)
		}
		os.Stdout.Write(out)
		return exitOK
	}
	fmt.Printf("%s: valid (interpreter %s)\n", uri, st.Python)
	if gc := st.App.GlobalConf; gc.Len() > 0 {
		for _, k := range gc.Keys() {
			if k == "here" || k == "__file__" {
				continue
			}
			v, _ := gc.Get(k)
			fmt.Printf("global %s = %s\n", k, strings.ReplaceAll(v, "\n", "\n    "))
		}
	}
	printTree(os.Stdout, st.App, composed.Marks)
	printRoutes(os.Stdout, composed)
	for _, r := range reports {
		printDjangoReport(os.Stdout, r)
	}
	return exitOK
}

// printRoutes lists, per route, what answers, the Go components on the
// way, and whether the response may go from the worker to the client
// untouched (the fast path) or the master reads its body.
func printRoutes(w io.Writer, c *compose.Composed) {
	fmt.Fprintln(w, "routes:")
	width := 0
	for _, r := range c.Routes {
		width = max(width, len(r.Prefix))
	}
	for _, r := range c.Routes {
		path := "fast path"
		if r.Sees >= component.SeesResponseBody {
			path = "master reads the body"
		}
		chain := "no Go component"
		if len(r.Chain) > 0 {
			chain = "via " + strings.Join(r.Chain, " → ")
		}
		fmt.Fprintf(w, "  %-*s  → %s  %s  %s  — %s (largest sees: %s)\n", width, r.Prefix, r.Target, r.Source, chain, path, r.Sees)
	}
	if len(c.Pools) > 0 {
		fmt.Fprintln(w, "pools:")
	}
	for _, p := range c.Pools {
		own := ""
		if settings := p.Settings.String(); settings != "" {
			own = "  " + settings
		}
		fmt.Fprintf(w, "  %s  %s  serves %s%s  — %s\n", p.Name, p.Node.Source, strings.Join(p.Routes, ", "), own, p.Why)
	}
}

type djangoReport struct {
	Mode           string `json:"mode"`
	Use            string `json:"use"`
	Source         string `json:"source"`
	SettingsModule string `json:"settings_module"`
	Settings       []struct {
		Name   string `json:"name"`
		Value  string `json:"value"`
		Origin string `json:"origin"`
	} `json:"settings"`
	Warnings []string `json:"warnings"`
	Error    string   `json:"error"`
}

// djangoPools are the pools whose application is (or holds) a Django one.
func djangoPools(c *compose.Composed) []*compose.Pool {
	var out []*compose.Pool
	for _, p := range c.Pools {
		if compose.HoldsDjango(p.Node) {
			out = append(out, p)
		}
	}
	return out
}

// djangoSettings runs `python -m wsgate.django.settings_report` on a pool
// that holds a Django application: the settings the configuration gives
// must load, and the human output shows where each came from.
func djangoSettings(st *site.Site, p *compose.Pool) (*djangoReport, error) {
	cmd, err := st.CommandIn(poolPython(st, p), "wsgate.django.settings_report")
	if err != nil {
		return nil, fmt.Errorf("preparing the Django settings report: %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdin = bytes.NewReader(p.Worker)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var rep djangoReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		if runErr != nil {
			return nil, fmt.Errorf("the Django settings report failed (%v): %s", runErr, lastLine(stderr.String()))
		}
		return nil, fmt.Errorf("the Django settings report answered something unreadable: %w", err)
	}
	if rep.Error != "" {
		return nil, errors.New(rep.Error)
	}
	return &rep, nil
}

// poolPython is the interpreter a pool's application runs in: its
// wsgate.python, else the site's.
func poolPython(st *site.Site, p *compose.Pool) string {
	if p.Settings.Python != "" {
		return p.Settings.Python
	}
	return st.Python
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func printDjangoReport(w io.Writer, r *djangoReport) {
	fmt.Fprintf(w, "Django settings of %s (%s, settings module %s):\n", r.Source, r.Mode, r.SettingsModule)
	for _, s := range r.Settings {
		fmt.Fprintf(w, "  %s = %s    ← %s\n", s.Name, s.Value, s.Origin)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
}

// printTree writes one line per node, indented by depth, with the node's
// source and who runs it ("⇒ Go NAME" or "⇒ Python, pool NAME"), then its
// local_conf.
func printTree(w io.Writer, n *config.Node, marks map[*config.Node]string) {
	printNode(w, n, marks, "", "", "")
}

func printNode(w io.Writer, n *config.Node, marks map[*config.Node]string, indent, label, childIndent string) {
	var b strings.Builder
	b.WriteString(indent + label + n.ObjectType)
	if n.Protocol != "" && n.Factory != "" {
		fmt.Fprintf(&b, " %s → %s (%s)", n.Use, n.Factory, n.Protocol)
	}
	fmt.Fprintf(&b, "  %s", n.Source)
	for _, v := range n.Via {
		fmt.Fprintf(&b, " ← %s", v)
	}
	if m := marks[n]; m != "" {
		b.WriteString("  ⇒ " + m)
	}
	fmt.Fprintln(w, b.String())
	type child struct {
		label string
		node  *config.Node
	}
	var kids []child
	for _, f := range n.Filters {
		kids = append(kids, child{"filter: ", f})
	}
	if n.App != nil {
		kids = append(kids, child{"app: ", n.App})
	}
	if n.Filter != nil {
		kids = append(kids, child{"filter: ", n.Filter})
	}
	if n.Next != nil {
		kids = append(kids, child{"next: ", n.Next})
	}
	for _, k := range n.LoadableOrder {
		kids = append(kids, child{k + ": ", n.Loadable[k]})
	}
	if n.Factory != "" {
		confIndent := childIndent + "    "
		if len(kids) > 0 {
			confIndent = childIndent + "│   "
		}
		for _, k := range n.LocalConf.Keys() {
			v, _ := n.LocalConf.Get(k)
			fmt.Fprintf(w, "%s%s = %s\n", confIndent, k, strings.ReplaceAll(v, "\n", "\n"+confIndent+"  "))
		}
		// wsgate's own options, which the factory does not receive.
		for _, k := range n.Wsgate.Keys() {
			v, _ := n.Wsgate.Get(k)
			fmt.Fprintf(w, "%s%s%s = %s  (wsgate's, not the application's)\n", confIndent, config.WsgatePrefix, k, v)
		}
	}
	for i, k := range kids {
		branch, cont := "├─ ", "│  "
		if i == len(kids)-1 {
			branch, cont = "└─ ", "   "
		}
		printNode(w, k.node, marks, childIndent+branch, k.label, childIndent+cont)
	}
}
