package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only when WSGATE_PPROF is set, on its own listener
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	"github.com/wsgate/wsgate/internal/reload"
	"github.com/wsgate/wsgate/internal/sched"
	"github.com/wsgate/wsgate/internal/server"
	"github.com/wsgate/wsgate/internal/settings"
	"github.com/wsgate/wsgate/internal/site"
	"github.com/wsgate/wsgate/python"
)

// serveOptions are the settings of `wsgate serve`, declared once in
// internal/settings (docs/serve.md lists them from there).
type serveOptions = settings.Serve

func serveFlags(o *serveOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("wsgate serve", flag.ContinueOnError)
	settings.Defaults(o)
	settings.Flags(fs, o)
	return fs
}

func runServe(args []string) int {
	var o serveOptions
	fs := serveFlags(&o)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: wsgate serve [options] CONFIG_URI | --app module:callable")
		fs.PrintDefaults()
	}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(positional) > 1 {
		fmt.Fprintf(os.Stderr, "wsgate serve: one CONFIG_URI expected, got %q\n", positional)
		return exitUsage
	}
	if (o.App == "") == (len(positional) == 0) {
		fmt.Fprintln(os.Stderr, "wsgate serve: give either a CONFIG_URI or --app module:callable")
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var st *site.Site
	if len(positional) == 1 {
		var code int
		if st, code = loadSite(positional[0], &o, set); code != exitOK {
			return code
		}
	} else if _, err := settings.Resolve(&o, nil, set); err != nil {
		fmt.Fprintf(os.Stderr, "wsgate serve: %v\n", err)
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.LogLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "wsgate serve: --log-level %q: use debug, info, warn or error\n", o.LogLevel)
		return exitUsage
	}
	var handler slog.Handler
	switch o.LogFormat {
	case "text":
		handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	default:
		fmt.Fprintf(os.Stderr, "wsgate serve: --log-format %q: use text or json\n", o.LogFormat)
		return exitUsage
	}
	log := slog.New(handler)
	slog.SetDefault(log)

	cfg := gateway.Config{
		Python:            o.Python,
		PythonPath:        o.PythonPath,
		Dir:               o.Chdir,
		Workers:           o.Workers,
		Threads:           o.Threads,
		Timeout:           timeoutOrNone(o.Timeout),
		MaxRequests:       o.MaxRequests,
		MaxRequestsJitter: o.MaxRequestsJitter,
		MaxWorkerMemory:   int64(o.MaxWorkerMemory),
		Preload:           o.Preload,
		Lend:              o.Lend,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		QueueSize:         queueOrNone(o.QueueSize),
		Pipeline:          o.Pipeline,
		GracefulTimeout:   seconds(o.GracefulTimeout),
		Logger:            log,
	}
	if st != nil {
		cfg.Env = append(cfg.Env, st.Env()...)
	}
	if o.App != "" {
		if o.LogConfig != "" {
			abs, err := filepath.Abs(o.LogConfig)
			if err != nil {
				fmt.Fprintf(os.Stderr, "wsgate: error: --log-config %s: %v\n", o.LogConfig, err)
				return exitConfig
			}
			cfg.Env = append(cfg.Env, site.EnvLogConfig+"="+abs)
		}
		cfg.AppName = o.App
		cfg.Node = callableNode(o.App)
		// Resolve the interpreter before --chdir changes what a relative
		// path means.
		interp, err := exec.LookPath(python.Interpreter(o.Python, ""))
		if err == nil {
			interp, err = filepath.Abs(interp)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "wsgate: error: Python interpreter %s: %v\n", python.Interpreter(o.Python, ""), err)
			return exitConfig
		}
		cfg.Python = interp
		if cfg.Dir != "" {
			if fi, err := os.Stat(cfg.Dir); err != nil || !fi.IsDir() {
				fmt.Fprintf(os.Stderr, "wsgate: error: --chdir %s: not a directory\n", cfg.Dir)
				return exitConfig
			}
		}
	}
	cfg.Defaults()
	binds := o.Listeners()
	var rl *reload.Reloader
	if o.Reload {
		var err error
		if rl, err = newReloader(st, o, log); err != nil {
			fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
			return exitConfig
		}
	}
	return serve(cfg, st, binds, o, log, rl)
}

// masterProcs is how many OS threads run the master's Go code at once: the
// master only moves bytes, and every core it holds is taken from the Python
// workers. One per four cores (at least one) measured 15–25% less master CPU
// per request on 2 cores than Go's default of one per core: fewer threads
// spinning and waking. GOMAXPROCS in the environment still wins.
func masterProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.NumCPU()/4))
	}
}

// masterGC gives the master's garbage collector twice Go's default headroom.
// Its live heap is small (about 1 MB serving 32 connections), so Go's floor
// of a 4 MB heap goal had it collect every ~1,000 hello-world requests, about
// 1 µs of marking per request; GOGC=200 halves the collections for ~4 MB
// more resident memory. GOGC in the environment still wins.
func masterGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
}

// serve runs the site (st; nil with --app, whose one application cfg
// names) until SIGTERM.
func serve(cfg gateway.Config, st *site.Site, binds []string, o serveOptions, log *slog.Logger, rl *reload.Reloader) int {
	masterProcs()
	masterGC()
	if o.SchedBatch {
		switch err := sched.BatchThreads(); {
		case err == nil:
			cfg.ResetWorkerSched = true // the workers inherit it: they go back to SCHED_OTHER
		case errors.Is(err, sched.ErrNotOther):
			log.Debug("scheduling policy chosen outside wsgate; left alone")
		default:
			log.Warn("cannot run the master under SCHED_BATCH", "error", err.Error())
		}
	}
	if addr := os.Getenv("WSGATE_PPROF"); addr != "" {
		go func() {
			log.Info("pprof listening", "addr", addr)
			if err := http.ListenAndServe(addr, http.DefaultServeMux); err != nil {
				log.Error("pprof listener", "error", err.Error())
			}
		}()
	}
	running := newRunningSite(cfg, log)
	uri := ""
	if st != nil {
		uri = st.URI
	}
	ctlPath, err := controlPath(o.ControlSocket, uri, o.App)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: --control-socket: %v\n", err)
		return exitConfig
	}
	if st != nil {
		running.python = st.Command
		if err := running.prepare(st.App); err != nil {
			fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
			return exitConfig
		}
	} else {
		running.prepareSingle(cfg)
	}
	if err := o.Net.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
		return exitConfig
	}
	socks, err := server.Open(binds, o.Net, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
		return exitConfig
	}
	for _, line := range socks.Lines() {
		fmt.Fprintf(os.Stderr, "wsgate: %s\n", line)
	}
	if err := server.DropPrivileges(o.Net.User, o.Net.Group); err != nil {
		socks.Close()
		fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
		return exitConfig
	}
	defer openControl(running, ctlPath, log)()
	if failed, err := running.start(); err != nil {
		socks.Close()
		name := cfg.AppName
		if st != nil {
			name = st.URI
			if running.PoolCount() > 1 {
				name += " (pool " + failed + ")"
			}
		}
		if le, ok := loadErrorOf(err); ok {
			fmt.Fprintf(os.Stderr, "wsgate: error: cannot load the application %s: %v\n", name, le)
			log.Debug("traceback", "text", le.Traceback())
		} else {
			fmt.Fprintf(os.Stderr, "wsgate: error: cannot start the workers: %v\n", err)
		}
		return exitConfig
	}
	pools := ""
	if n := running.PoolCount(); n > 1 {
		pools = fmt.Sprintf("%d pools, ", n)
	}
	fmt.Fprintf(os.Stderr, "wsgate: ready, %s%d workers (pid %d)\n", pools, running.Workers(), os.Getpid())
	defer running.dumpOnSIGUSR1()()
	if rl != nil {
		defer rl.Start(running)()
	}
	err = server.Serve(context.Background(), socks, server.Options{
		Handler:           running,
		Supervisor:        running,
		GracefulTimeout:   cfg.GracefulTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		Logger:            log,
		H2C:               o.Net.H2C,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
		return exitConfig
	}
	return exitOK
}

// callableNode is the worker-form node of `--app module:callable`
// (docs/architecture.md): the object itself is the application.
func callableNode(spec string) []byte {
	node := map[string]any{
		"object_type": "application",
		"protocol":    "wsgate.callable",
		"factory":     spec,
		"global_conf": map[string]string{},
		"local_conf":  map[string]string{},
	}
	b, _ := json.Marshal(node)
	return b
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}

// timeoutOrNone: 0 means no timeout, as with gunicorn.
func timeoutOrNone(s float64) time.Duration {
	if s == 0 {
		return gateway.NoTimeout
	}
	return seconds(s)
}

// queueOrNone: 0 means no request waits for a worker.
func queueOrNone(n int) int {
	if n == 0 {
		return gateway.NoQueue
	}
	return n
}

// loadSite loads CONFIG_URI as every command does (internal/site) and
// fills the options the command line left unset from its server section
// ([server:NAME], else [server:main]).
func loadSite(uri string, o *serveOptions, set map[string]bool) (*site.Site, int) {
	overrides, err := parseSets(o.Sets)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate serve: %v\n", err)
		return nil, exitUsage
	}
	if _, _, err := config.ParseURI(uri); err != nil {
		fmt.Fprintf(os.Stderr, "wsgate serve: %v\n", err)
		return nil, exitUsage
	}
	opts := site.Options{URI: uri, Overrides: overrides, Python: o.Python, Chdir: o.Chdir, LogConfig: o.LogConfig}
	if set["pythonpath"] {
		opts.PythonPath = o.PythonPath
	}
	st, err := site.Load(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
		return nil, exitConfig
	}
	var conf *config.Conf
	if st.Server != nil {
		conf = st.Server.LocalConf
	}
	unused, err := settings.Resolve(o, conf, set)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
		return nil, exitConfig
	}
	if len(unused) > 0 {
		// A section written for waitress, gunicorn or Paste runs
		// unchanged; what does not map is said once, not refused.
		fmt.Fprintf(os.Stderr, "wsgate: notice: %s: not used by wsgate: %s\n", st.Server.Source, strings.Join(unused, ", "))
	}
	o.Python, o.PythonPath, o.Chdir = st.Python, st.PythonPath, st.Chdir
	return st, exitOK
}
