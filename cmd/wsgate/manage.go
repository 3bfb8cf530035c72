package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/python"
)

// runManage runs a Django management command with the settings a
// configuration gives: wsgate manage [options] CONFIG_URI ARGS…
func runManage(args []string) int {
	return runDjangoCommand(djangoCommand{
		name:    "manage",
		module:  "wsgate.django.manage",
		argsFor: "ARGS…",
		about: "Runs the Django management command ARGS (migrate, createsuperuser, collectstatic, shell, …) with\n" +
			"the settings CONFIG_URI gives, after the application's start-up hooks; exits with its status.",
	}, args)
}

// djangoCommand describes one of the subcommands that run Django's
// command-line machinery inside a Python interpreter.
type djangoCommand struct {
	name    string // subcommand name
	module  string // python -m module
	argsFor string // what the arguments after CONFIG_URI are, for the usage line
	about   string
}

// runDjangoCommand loads CONFIG_URI's application node as `serve` does,
// hands its worker form to `python -m <module>` and returns that process's
// exit status. Options come before CONFIG_URI; everything after it belongs
// to Django. Stdin, stdout and stderr are the terminal's, so interactive
// commands (shell, createsuperuser) work.
func runDjangoCommand(c djangoCommand, args []string) int {
	prog := "wsgate " + c.name
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	pythonFlag := fs.String("python", "", "Python interpreter (default: $WSGATE_PYTHON, `python =` in the server section, python3)")
	chdir := fs.String("chdir", "", "change to this directory before loading the configuration")
	var sets, pythonPath stringList
	fs.Var(&sets, "set", "override a global_conf / [DEFAULT] value: --set key=value (repeatable)")
	fs.Var(&pythonPath, "pythonpath", "directory to put on the interpreter's sys.path (repeatable)")
	usageText := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: %s [--set key=value]… [--python PATH] [--pythonpath DIR]… [--chdir DIR] CONFIG_URI %s\n", prog, c.argsFor)
		fmt.Fprintln(w, c.about)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		usageText(os.Stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		usageText(os.Stderr)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(os.Stderr, "%s: give a CONFIG_URI\n", prog)
		usageText(os.Stderr)
		return exitUsage
	}
	uri, rest := fs.Arg(0), fs.Args()[1:]
	overrides, err := parseSets(sets)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return exitUsage
	}
	if _, _, err := config.ParseURI(uri); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return exitUsage
	}
	if *chdir != "" {
		if err := os.Chdir(*chdir); err != nil {
			fmt.Fprintf(os.Stderr, "%s: --chdir: %v\n", prog, err)
			return exitUsage
		}
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return exitConfig
	}
	opts := config.Options{Overrides: overrides}
	app, interpreter, err := loadResolvedApp(uri, opts, *pythonFlag, pythonPath)
	if err != nil {
		return fail(err)
	}
	node, err := app.WorkerJSON()
	if err != nil {
		return fail(fmt.Errorf("encoding the application for Python: %w", err))
	}
	nodeFile, err := os.CreateTemp("", "wsgate-"+c.name+"-*.json")
	if err != nil {
		return fail(fmt.Errorf("writing the application for Python: %w", err))
	}
	defer os.Remove(nodeFile.Name())
	if _, err := nodeFile.Write(node); err != nil {
		nodeFile.Close()
		return fail(fmt.Errorf("writing the application for Python: %w", err))
	}
	if err := nodeFile.Close(); err != nil {
		return fail(fmt.Errorf("writing the application for Python: %w", err))
	}
	cmd, err := python.Command(interpreter, pythonPath, c.module, append([]string{nodeFile.Name()}, rest...)...)
	if err != nil {
		return fail(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(cmd.Env, "WSGATE_PROG="+prog+" "+uri)
	return runForwardingSignals(prog, cmd)
}

// runForwardingSignals runs cmd to its end and returns its exit status
// (128+N when signal N ended it). Ctrl-C reaches the child from the terminal
// (same process group), so wsgate only survives it; SIGTERM, SIGHUP and
// SIGQUIT sent to wsgate alone are passed on.
func runForwardingSignals(prog string, cmd *exec.Cmd) int {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(signals)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: starting %s: %v\n", prog, cmd.Path, err)
		return exitConfig
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-signals:
			if sig != os.Interrupt {
				_ = cmd.Process.Signal(sig)
			}
		case err := <-done:
			return exitStatus(prog, err)
		}
	}
}

func exitStatus(prog string, err error) int {
	if err == nil {
		return exitOK
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			return 128 + int(status.Signal())
		}
		return exitErr.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	return exitConfig
}
