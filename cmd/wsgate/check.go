package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/python"
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

// runCheck validates a configuration: loads it as PasteDeploy would,
// resolves every factory in the chosen interpreter and prints the tree.
func runCheck(args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the tree as JSON (the contract of docs/config.md)")
	pythonFlag := fs.String("python", "", "Python interpreter (default: $WSGATE_PYTHON, `python =` in the server section, python3)")
	var sets, pythonPath stringList
	fs.Var(&sets, "set", "override a global_conf / [DEFAULT] value: --set key=value (repeatable)")
	fs.Var(&pythonPath, "pythonpath", "directory to put on the interpreter's sys.path (repeatable)")
	usageText := func(w io.Writer) {
		fmt.Fprintln(w, "Usage: wsgate check [--json] [--set key=value]… [--python PATH] [--pythonpath DIR]… CONFIG_URI")
		fmt.Fprintln(w, "Loads CONFIG_URI (file.ini, file.ini#name, config:file.ini#name) as PasteDeploy would,")
		fmt.Fprintln(w, "resolves every factory and prints the composed tree. Exit 0 valid, 1 configuration error, 2 usage.")
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
	overrides, err := parseSets(sets)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate check: %v\n", err)
		return exitUsage
	}
	uri := positional[0]
	if _, _, err := config.ParseURI(uri); err != nil {
		fmt.Fprintf(os.Stderr, "wsgate check: %v\n", err)
		return exitUsage
	}
	opts := config.Options{Overrides: overrides}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "wsgate check: %v\n", err)
		return exitConfig
	}
	app, interpreter, err := loadResolvedApp(uri, opts, *pythonFlag, pythonPath)
	if err != nil {
		return fail(err)
	}
	report, err := djangoSettings(app, interpreter, pythonPath)
	if err != nil {
		return fail(err)
	}
	if *asJSON {
		out, err := app.ContractJSON()
		if err != nil {
			return fail(err)
		}
		os.Stdout.Write(out)
		return exitOK
	}
	fmt.Printf("%s: valid (interpreter %s)\n", uri, interpreter)
	if gc := app.GlobalConf; gc.Len() > 0 {
		for _, k := range gc.Keys() {
			if k == "here" || k == "__file__" {
				continue
			}
			v, _ := gc.Get(k)
			fmt.Printf("global %s = %s\n", k, strings.ReplaceAll(v, "\n", "\n    "))
		}
	}
	printTree(os.Stdout, app)
	if report != nil {
		printDjangoReport(os.Stdout, report)
	}
	return exitOK
}

// djangoFactories are the factories whose settings `check` asks
// wsgate.django.settings_report about.
var djangoFactories = map[string]bool{
	"wsgate.django.factory:make_wsgi_app": true,
	"wsgate.django.compat:make_twod_app":  true,
	"wsgate.django.compat:make_dpds_app":  true,
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

// djangoSettings runs `python -m wsgate.django.settings_report` on the
// tree when it holds a Django application: the settings the configuration
// gives must load, and the human output shows where each came from.
func djangoSettings(app *config.Node, interpreter string, pythonPath []string) (*djangoReport, error) {
	found := false
	app.Walk(func(n *config.Node) { found = found || djangoFactories[n.Factory] })
	if !found {
		return nil, nil
	}
	tree, err := app.WorkerJSON()
	if err != nil {
		return nil, err
	}
	cmd, err := python.Command(interpreter, pythonPath, "wsgate.django.settings_report")
	if err != nil {
		return nil, fmt.Errorf("preparing the Django settings report: %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdin = bytes.NewReader(tree)
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

// loadResolvedApp loads the application tree of uri and resolves its
// factories with the interpreter chosen as every command chooses it
// (--python, WSGATE_PYTHON, `python =` in the server section, python3).
func loadResolvedApp(uri string, opts config.Options, pythonFlag string, pythonPath []string) (*config.Node, string, error) {
	app, err := config.LoadApp(uri, opts)
	if err != nil {
		return nil, "", err
	}
	server, err := serverFor(uri, opts)
	if err != nil {
		return nil, "", err
	}
	fromConfig := ""
	if server != nil {
		fromConfig, _ = server.LocalConf.Get("python")
	}
	interpreter := python.Interpreter(pythonFlag, fromConfig)
	if err := config.Resolve(app, interpreter, pythonPath); err != nil {
		return nil, "", err
	}
	return app, interpreter, nil
}

// serverFor finds the server section for uri: [server:NAME] of the URI's
// name, else [server:main]; nil when the file has neither.
func serverFor(uri string, opts config.Options) (*config.Node, error) {
	path, name, err := config.ParseURI(uri)
	if err != nil {
		return nil, err
	}
	s, err := config.LoadServer(uri, opts)
	if err != nil || s != nil || name == "main" {
		return s, err
	}
	return config.LoadServer(path+"#main", opts)
}

// printTree writes one line per node, indented by depth, with the node's
// source, then its local_conf.
func printTree(w io.Writer, n *config.Node) {
	printNode(w, n, "", "", "")
}

func printNode(w io.Writer, n *config.Node, indent, label, childIndent string) {
	var b strings.Builder
	b.WriteString(indent + label + n.ObjectType)
	if n.Protocol != "" && n.Factory != "" {
		fmt.Fprintf(&b, " %s → %s (%s)", n.Use, n.Factory, n.Protocol)
	}
	fmt.Fprintf(&b, "  %s", n.Source)
	for _, v := range n.Via {
		fmt.Fprintf(&b, " ← %s", v)
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
	}
	for i, k := range kids {
		branch, cont := "├─ ", "│  "
		if i == len(kids)-1 {
			branch, cont = "└─ ", "   "
		}
		printNode(w, k.node, childIndent+branch, k.label, childIndent+cont)
	}
}
