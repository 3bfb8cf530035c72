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
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/gateway"
	"github.com/wsgate/wsgate/internal/server"
	"github.com/wsgate/wsgate/python"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// serveOptions are the settings of `wsgate serve`; docs/serve.md lists them.
type serveOptions struct {
	app             string
	pythonPath      listFlag
	chdir           string
	binds           listFlag
	workers         int
	threads         int
	timeout         float64
	maxRequests     int
	jitter          int
	python          string
	queueSize       int
	gracefulTimeout float64
	maxHeaderBytes  int
	logLevel        string
}

func serveFlags(o *serveOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("wsgate serve", flag.ContinueOnError)
	fs.StringVar(&o.app, "app", "", "serve this WSGI callable, module:callable, without a config file")
	fs.Var(&o.pythonPath, "pythonpath", "add a directory to the workers' Python path (repeatable)")
	fs.StringVar(&o.chdir, "chdir", "", "run the workers in this directory (it goes on the Python path)")
	fs.Var(&o.binds, "bind", "listen on HOST:PORT or unix:/path.sock (repeatable; default 127.0.0.1:8000)")
	fs.IntVar(&o.workers, "workers", 0, "worker processes (default: the number of CPU cores)")
	fs.IntVar(&o.threads, "threads", 0, "threads per worker (default 1)")
	fs.Float64Var(&o.timeout, "timeout", 0, "seconds a request may take before 504 and a worker restart (default 30)")
	fs.IntVar(&o.maxRequests, "max-requests", 0, "recycle a worker after this many requests (default 0: never)")
	fs.IntVar(&o.jitter, "max-requests-jitter", 0, "add 0..N to each worker's --max-requests")
	fs.StringVar(&o.python, "python", "", "Python interpreter (default: $WSGATE_PYTHON, else python3)")
	fs.IntVar(&o.queueSize, "queue-size", 0, "requests that may wait for a busy pool before 503 (default 1024)")
	fs.Float64Var(&o.gracefulTimeout, "graceful-timeout", 0, "seconds in-flight requests get to finish on SIGTERM (default 30)")
	fs.IntVar(&o.maxHeaderBytes, "max-header-size", 64<<10, "bytes of request line and headers accepted (431 past it)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return fs
}

// parseInterleaved parses flags that may come before or after CONFIG_URI.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func runServe(args []string) int {
	var o serveOptions
	fs := serveFlags(&o)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: wsgate serve [options] CONFIG_URI | --app module:callable")
		fs.PrintDefaults()
	}
	positional, err := parseInterleaved(fs, args)
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
	if (o.app == "") == (len(positional) == 0) {
		fmt.Fprintln(os.Stderr, "wsgate serve: give either a CONFIG_URI or --app module:callable")
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "wsgate serve: --log-level %q: use debug, info, warn or error\n", o.logLevel)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	cfg := gateway.Config{
		Python:            python.Interpreter(o.python, ""),
		PythonPath:        o.pythonPath,
		Dir:               o.chdir,
		Workers:           o.workers,
		Threads:           o.threads,
		Timeout:           seconds(o.timeout),
		MaxRequests:       o.maxRequests,
		MaxRequestsJitter: o.jitter,
		QueueSize:         o.queueSize,
		GracefulTimeout:   seconds(o.gracefulTimeout),
		Logger:            log,
	}
	if o.app != "" {
		cfg.AppName = o.app
		cfg.Node = callableNode(o.app)
	} else {
		fmt.Fprintf(os.Stderr, "wsgate serve: serving a CONFIG_URI (%s) is not wired yet; use --app\n", positional[0])
		return exitUsage
	}
	// Resolve the interpreter before --chdir changes what a relative path means.
	interp, err := exec.LookPath(cfg.Python)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: Python interpreter %s: %v\n", cfg.Python, err)
		return exitConfig
	}
	if cfg.Python, err = filepath.Abs(interp); err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: Python interpreter %s: %v\n", interp, err)
		return exitConfig
	}
	if cfg.Dir != "" {
		if fi, err := os.Stat(cfg.Dir); err != nil || !fi.IsDir() {
			fmt.Fprintf(os.Stderr, "wsgate: error: --chdir %s: not a directory\n", cfg.Dir)
			return exitConfig
		}
	}
	binds := []string(o.binds)
	if len(binds) == 0 {
		binds = []string{"127.0.0.1:8000"}
	}
	return serve(cfg, binds, o, log)
}

func serve(cfg gateway.Config, binds []string, o serveOptions, log *slog.Logger) int {
	if addr := os.Getenv("WSGATE_PPROF"); addr != "" {
		go func() {
			log.Info("pprof listening", "addr", addr)
			if err := http.ListenAndServe(addr, http.DefaultServeMux); err != nil {
				log.Error("pprof listener", "error", err.Error())
			}
		}()
	}
	lns, err := server.Listen(binds)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
		return exitConfig
	}
	for _, l := range lns {
		fmt.Fprintf(os.Stderr, "wsgate: listening on %s\n", l.URL)
	}
	pool := gateway.NewPool(cfg)
	if err := pool.Start(); err != nil {
		for _, l := range lns {
			l.Close()
		}
		var le *gateway.LoadError
		if errors.As(err, &le) {
			fmt.Fprintf(os.Stderr, "wsgate: error: cannot load the application %s: %v\n", cfg.AppName, le)
			log.Debug("traceback", "text", le.Traceback())
		} else {
			fmt.Fprintf(os.Stderr, "wsgate: error: cannot start the workers: %v\n", err)
		}
		return exitConfig
	}
	pc := pool.Config()
	fmt.Fprintf(os.Stderr, "wsgate: ready, %d workers (pid %d)\n", pc.Workers, os.Getpid())
	err = server.Serve(context.Background(), lns, server.Options{
		Handler:           gateway.NewHandler(pool, ""),
		Supervisor:        pool,
		GracefulTimeout:   pc.GracefulTimeout,
		MaxHeaderBytes:    o.maxHeaderBytes,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		Logger:            log,
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
