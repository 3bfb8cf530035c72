package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/wsgate/wsgate/internal/compose"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/site"
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
	var common commonFlags
	common.register(fs)
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
	st, code := common.load(prog, uri)
	if code != exitOK {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return exitConfig
	}
	pool, err := djangoApplication(st)
	if err != nil {
		return fail(err)
	}
	nodeFile, err := os.CreateTemp("", "wsgate-"+c.name+"-*.json")
	if err != nil {
		return fail(fmt.Errorf("writing the application for Python: %w", err))
	}
	defer os.Remove(nodeFile.Name())
	if _, err := nodeFile.Write(pool.Worker); err != nil {
		nodeFile.Close()
		return fail(fmt.Errorf("writing the application for Python: %w", err))
	}
	if err := nodeFile.Close(); err != nil {
		return fail(fmt.Errorf("writing the application for Python: %w", err))
	}
	cmd, err := st.CommandIn(poolPython(st, pool), c.module, append([]string{nodeFile.Name()}, rest...)...)
	if err != nil {
		return fail(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(cmd.Env, "WSGATE_PROG="+prog+" "+uri)
	return runForwardingSignals(prog, cmd)
}

// djangoApplication is the Python application manage and test run: the one
// Django application of the composed tree (CONFIG_URI#name picks a
// section), or the tree's only Python application when none is recognised
// as Django (Python then says what is wrong).
func djangoApplication(st *site.Site) (*compose.Pool, error) {
	composed, err := compose.Compose(st.App, compose.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Python: st.Command})
	if err != nil {
		return nil, err
	}
	defer composed.Close()
	pools := djangoPools(composed)
	if len(pools) == 0 && len(composed.Pools) == 1 {
		pools = composed.Pools
	}
	path, _, _ := config.ParseURI(st.URI)
	switch len(pools) {
	case 1:
		return pools[0], nil
	case 0:
		if len(composed.Pools) == 0 {
			return nil, fmt.Errorf("%s: no Django application in this configuration (Go components only)", st.URI)
		}
		return nil, fmt.Errorf("%s: none of its %d Python applications is a Django one (%s)", st.URI, len(composed.Pools), poolList(composed.Pools, path))
	}
	return nil, fmt.Errorf("%s mounts %d Django applications: %s; name the one to use in CONFIG_URI", st.URI, len(pools), poolList(pools, path))
}

// poolList names each pool's application, where it is mounted and the
// CONFIG_URI that selects it alone.
func poolList(pools []*compose.Pool, path string) string {
	var names []string
	for _, p := range pools {
		names = append(names, fmt.Sprintf("%s at %s (%s#%s)", p.Node.Source, strings.Join(p.Routes, ", "), path, sectionName(p.Node)))
	}
	return strings.Join(names, "; ")
}

// sectionName is the name CONFIG_URI#name gives a section ("app:blog" →
// "blog").
func sectionName(n *config.Node) string {
	_, name, ok := strings.Cut(n.Source.Section, ":")
	if !ok {
		return n.Source.Section
	}
	return name
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
