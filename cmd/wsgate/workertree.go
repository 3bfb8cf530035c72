package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/wsgate/wsgate/internal/version"
)

// workerTreeCommand is the hidden command wsgate.django.configure() runs:
// the Python package asks the binary of its own version for the Django
// application `wsgate manage` would run, in worker form, so that Django
// started by manage.py or pytest gets the settings `wsgate manage` gives.
// Not listed in `wsgate help`: the JSON is a contract between a binary and
// the package of the same version, not a user format.
const workerTreeCommand = "worker-tree"

// workerTree is what it prints on stdout.
type workerTree struct {
	Version    string          `json:"version"`     // the binary's; configure() refuses another
	Node       json.RawMessage `json:"node"`        // what manage hands to python -m wsgate.django.manage
	PythonPath []string        `json:"python_path"` // where manage's Python finds the application (site.ResolvePath)
}

// runWorkerTree: wsgate worker-tree [manage's options] CONFIG_URI. The
// site is read and the Django application chosen as `manage` does; errors
// are one line on stderr, exit 1 (configuration) or 2 (usage).
func runWorkerTree(args []string) int {
	prog := "wsgate " + workerTreeCommand
	fs := flag.NewFlagSet(workerTreeCommand, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var common commonFlags
	common.register(fs)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Println("Usage: " + prog + " [--set key=value]… [--python PATH] [--pythonpath DIR]… [--chdir DIR] CONFIG_URI")
		fmt.Println("Prints the Django application of CONFIG_URI for wsgate.django.configure() (docs/django.md).")
		return exitOK
	}
	if err == nil && fs.NArg() != 1 {
		err = errors.New("give exactly one CONFIG_URI")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return exitUsage
	}
	st, code := common.load(prog, fs.Arg(0))
	if code != exitOK {
		return code
	}
	pool, err := djangoApplication(st)
	if err == nil {
		var out []byte
		out, err = json.Marshal(workerTree{Version: version.String(), Node: pool.Worker, PythonPath: st.ResolvePath()})
		if err == nil {
			os.Stdout.Write(append(out, '\n'))
			return exitOK
		}
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	return exitConfig
}
