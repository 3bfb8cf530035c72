package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/version"
)

// workerTreeCommand is the hidden command wsgate.django.configure() runs:
// the Python package asks the binary of its own version for the resolved
// application tree in worker form (the JSON `manage` hands to Python), so
// that Django started by manage.py or pytest gets the settings `wsgate
// manage` would give. Not listed in `wsgate help`: the JSON is a contract
// between a binary and the package of the same version, not a user format.
const workerTreeCommand = "worker-tree"

// workerTree is what it prints on stdout.
type workerTree struct {
	Version string          `json:"version"` // the binary's; configure() refuses another
	Node    json.RawMessage `json:"node"`    // config.Node.WorkerJSON
}

// runWorkerTree: wsgate worker-tree [--set key=value]… [--python PATH]
// [--pythonpath DIR]… CONFIG_URI. Errors are one line on stderr, exit 1
// (configuration) or 2 (usage), as for check.
func runWorkerTree(args []string) int {
	prog := "wsgate " + workerTreeCommand
	fs := flag.NewFlagSet(workerTreeCommand, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	pythonFlag := fs.String("python", "", "Python interpreter that resolves the factories")
	var sets, pythonPath stringList
	fs.Var(&sets, "set", "override a global_conf / [DEFAULT] value: --set key=value (repeatable)")
	fs.Var(&pythonPath, "pythonpath", "directory to put on the interpreter's sys.path (repeatable)")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Println("Usage: " + prog + " [--set key=value]… [--python PATH] [--pythonpath DIR]… CONFIG_URI")
		fmt.Println("Prints the resolved application tree for wsgate.django.configure() (docs/django.md).")
		return exitOK
	}
	if err == nil && fs.NArg() != 1 {
		err = errors.New("give exactly one CONFIG_URI")
	}
	var overrides map[string]string
	if err == nil {
		overrides, err = parseSets(sets)
	}
	if err == nil {
		_, _, err = config.ParseURI(fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return exitConfig
	}
	app, _, err := loadResolvedApp(fs.Arg(0), config.Options{Overrides: overrides}, *pythonFlag, pythonPath)
	if err != nil {
		return fail(err)
	}
	node, err := app.WorkerJSON()
	if err != nil {
		return fail(fmt.Errorf("encoding the application for Python: %w", err))
	}
	out, err := json.Marshal(workerTree{Version: version.String(), Node: node})
	if err != nil {
		return fail(fmt.Errorf("encoding the application for Python: %w", err))
	}
	os.Stdout.Write(append(out, '\n'))
	return exitOK
}
