// Command wsgate serves WSGI applications (Django first) from PasteDeploy
// configuration files. This package only turns flags into calls into
// internal/; each subcommand lives in a file of its own.
package main

import (
	"fmt"
	"io"
	"os"

	_ "github.com/wsgate/wsgate/internal/component/all" // every Go component
	"github.com/wsgate/wsgate/internal/version"
	"github.com/wsgate/wsgate/python"
)

// Exit codes shared by every subcommand.
const (
	exitOK     = 0
	exitConfig = 1 // the configuration (or the application it names) is wrong
	exitUsage  = 2 // the command line is wrong
)

type command struct {
	name    string
	summary string
	run     func(args []string) int
}

func commands() []command {
	return []command{
		{"serve", "serve a WSGI application: wsgate serve CONFIG_URI | --app module:callable", runServe},
		{"check", "validate a configuration and print its composed tree", runCheck},
		{"manage", "run a Django management command with the settings a configuration gives", runManage},
		{"test", "run Django's test runner with the settings a configuration gives", runTest},
		{"status", "show a running server's pools, workers and the requests they are on", runStatus},
		{"dump", "have a running server log every worker's Python thread stacks", runDump},
		{"version", "print wsgate's version", runVersion},
		{"help", "print this help", runHelp},
	}
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help":
		name = "help"
	case "-V", "--version":
		name = "version"
	case workerTreeCommand: // hidden: wsgate.django.configure()'s
		return runWorkerTree(args[1:])
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(args[1:])
		}
	}
	fmt.Fprintf(os.Stderr, "wsgate: unknown command %q (try 'wsgate help')\n", args[0])
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "wsgate — WSGI gateway for Django and PasteDeploy configurations")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: wsgate COMMAND [options] [CONFIG_URI]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "CONFIG_URI is file.ini, file.ini#name or config:file.ini#name.")
	fmt.Fprintln(w, "Run 'wsgate COMMAND -h' for a command's options; the manual is in docs/.")
}

// runVersion prints the binary's version, then which Python runtime the
// default interpreter's processes import (docs/install.md).
func runVersion(args []string) int {
	fmt.Println("wsgate", version.String())
	interpreter := python.Interpreter("", "")
	fmt.Printf("python runtime for %s: %s\n", interpreter, python.Choose(interpreter, nil))
	return exitOK
}

func runHelp(args []string) int {
	usage(os.Stdout)
	return exitOK
}
