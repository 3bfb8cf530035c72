package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only when WSGATE_PPROF is set, on its own listener
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	"github.com/wsgate/wsgate/internal/reload"
	"github.com/wsgate/wsgate/internal/sched"
	"github.com/wsgate/wsgate/internal/server"
	"github.com/wsgate/wsgate/internal/site"
	"github.com/wsgate/wsgate/python"
)

// serveOptions are the settings of `wsgate serve`; docs/serve.md lists them.
type serveOptions struct {
	app             string
	pythonPath      stringList
	chdir           string
	binds           stringList
	workers         int
	threads         int
	timeout         float64
	maxRequests     int
	jitter          int
	python          string
	queueSize       int
	pipeline        int
	gracefulTimeout float64
	maxHeaderBytes  int
	logLevel        string
	logFormat       string
	sets            stringList
	reload          bool
	reloadSuffixes  stringList
	schedBatch      bool
	maxWorkerMemory byteSize
	controlSocket   string
	preload         bool
	net             server.Config // TLS, HTTP versions, systemd, user: server.Settings
}

func serveFlags(o *serveOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("wsgate serve", flag.ContinueOnError)
	fs.StringVar(&o.app, "app", "", "serve this WSGI callable, module:callable, without a config file")
	fs.Var(&o.pythonPath, "pythonpath", "`DIR` to put on the workers' sys.path, a relative one from --chdir (repeatable)")
	fs.StringVar(&o.chdir, "chdir", "", "`DIR` the workers run in, on their sys.path; CONFIG_URI is read from the current directory either way")
	fs.Var(&o.binds, "bind", "listen on HOST:PORT or unix:/path.sock (repeatable; default 127.0.0.1:8000)")
	fs.IntVar(&o.workers, "workers", 0, "worker processes per pool (default: the number of CPU cores)")
	fs.IntVar(&o.threads, "threads", 1, "threads per worker")
	fs.Float64Var(&o.timeout, "timeout", 30, "seconds a request may take before 504 and a worker restart (0: no limit)")
	fs.IntVar(&o.maxRequests, "max-requests", 0, "recycle a worker after this many requests (default 0: never)")
	fs.IntVar(&o.jitter, "max-requests-jitter", 0, "add 0..N to each worker's --max-requests")
	fs.Var(&o.maxWorkerMemory, "max-worker-memory", "recycle a worker whose RSS passes `SIZE` bytes (k, m or g suffix; default 0: never)")
	fs.StringVar(&o.python, "python", "", "the Python interpreter `PATH` (default: $WSGATE_PYTHON, else python in the server section, else python3)")
	fs.IntVar(&o.pipeline, "pipeline", 2, "requests dispatched to one worker thread at a time (1: none queued in a busy worker)")
	fs.IntVar(&o.queueSize, "queue-size", 1024, "requests that may wait for a busy pool before 503 (0: none waits)")
	fs.Float64Var(&o.gracefulTimeout, "graceful-timeout", 30, "seconds in-flight requests get to finish on SIGTERM or reload (more than 0)")
	fs.IntVar(&o.maxHeaderBytes, "max-header-size", 64<<10, "bytes of request line and headers accepted (431 past it)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text (key=value lines) or json (one JSON object per line)")
	fs.StringVar(&o.controlSocket, "control-socket", "", "unix socket `PATH` for wsgate status and dump (default: one per site under $XDG_RUNTIME_DIR/wsgate; off: none)")
	fs.Var(&o.sets, "set", "override a [DEFAULT] value of CONFIG_URI: --set `key=value` (repeatable)")
	fs.BoolVar(&o.preload, "preload", false, "load the application once per generation and fork the workers from it (shared memory; reloads still load new code)")
	fs.BoolVar(&o.reload, "reload", false, "reload the workers when a .py or .ini file of the application changes (development)")
	fs.Var(&o.reloadSuffixes, "reload-suffix", "with --reload, also watch files whose name ends so, e.g. .html (repeatable)")
	fs.BoolVar(&o.schedBatch, "sched-batch", true, "run the master under SCHED_BATCH so its wake-ups do not preempt the workers (Linux)")
	for _, s := range server.Settings {
		fs.Var(s.Value(&o.net), s.Flag, s.Help)
	}
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
	if (o.app == "") == (len(positional) == 0) {
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
	}
	for _, n := range numericOptions {
		if set[n.flag] {
			if err := n.check(n.value(&o), "--"+n.flag); err != nil {
				fmt.Fprintf(os.Stderr, "wsgate serve: %v\n", err)
				return exitUsage
			}
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "wsgate serve: --log-level %q: use debug, info, warn or error\n", o.logLevel)
		return exitUsage
	}
	var handler slog.Handler
	switch o.logFormat {
	case "text":
		handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	default:
		fmt.Fprintf(os.Stderr, "wsgate serve: --log-format %q: use text or json\n", o.logFormat)
		return exitUsage
	}
	log := slog.New(handler)
	slog.SetDefault(log)

	cfg := gateway.Config{
		Python:            o.python,
		PythonPath:        o.pythonPath,
		Dir:               o.chdir,
		Workers:           o.workers,
		Threads:           o.threads,
		Timeout:           timeoutOrNone(o.timeout),
		MaxRequests:       o.maxRequests,
		MaxRequestsJitter: o.jitter,
		MaxWorkerMemory:   int64(o.maxWorkerMemory),
		Preload:           o.preload,
		QueueSize:         queueOrNone(o.queueSize),
		Pipeline:          o.pipeline,
		GracefulTimeout:   seconds(o.gracefulTimeout),
		Logger:            log,
	}
	if o.app != "" {
		cfg.AppName = o.app
		cfg.Node = callableNode(o.app)
		// Resolve the interpreter before --chdir changes what a relative
		// path means.
		interp, err := exec.LookPath(python.Interpreter(o.python, ""))
		if err == nil {
			interp, err = filepath.Abs(interp)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "wsgate: error: Python interpreter %s: %v\n", python.Interpreter(o.python, ""), err)
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
	binds := []string(o.binds)
	if len(binds) == 0 {
		binds = []string{"127.0.0.1:8000"}
	}
	var rl *reload.Reloader
	if o.reload {
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

// serve runs the site (st; nil with --app, whose one application cfg
// names) until SIGTERM.
func serve(cfg gateway.Config, st *site.Site, binds []string, o serveOptions, log *slog.Logger, rl *reload.Reloader) int {
	masterProcs()
	if o.schedBatch {
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
	ctlPath, err := controlPath(o.controlSocket, uri, o.app)
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
	if err := o.net.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
		return exitConfig
	}
	socks, err := server.Open(binds, o.net, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
		return exitConfig
	}
	for _, line := range socks.Lines() {
		fmt.Fprintf(os.Stderr, "wsgate: %s\n", line)
	}
	if err := server.DropPrivileges(o.net.User, o.net.Group); err != nil {
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
		MaxHeaderBytes:    o.maxHeaderBytes,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		Logger:            log,
		H2C:               o.net.H2C,
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

// byteSize is a size flag: bytes, or a number with a k, m or g suffix.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Set(v string) error {
	n, err := component.ParseBytes(v)
	if err != nil {
		return fmt.Errorf("%q is not a size (bytes, or a number with k, m or g)", v)
	}
	*b = byteSize(n)
	return nil
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

// numericOption is a number `serve` takes from its command line or its
// server section, with the smallest value that means something: the same
// check for both, named after where the value was written.
type numericOption struct {
	flag, key string
	min       float64
	above     bool // the value must be above min, not just at least min
	integer   bool
	value     func(o *serveOptions) float64
	set       func(o *serveOptions, v float64)
}

var numericOptions = []numericOption{
	intOption("workers", "workers", 1, func(o *serveOptions) *int { return &o.workers }),
	intOption("threads", "threads", 1, func(o *serveOptions) *int { return &o.threads }),
	intOption("pipeline", "pipeline", 1, func(o *serveOptions) *int { return &o.pipeline }),
	intOption("max-requests", "max_requests", 0, func(o *serveOptions) *int { return &o.maxRequests }),
	intOption("max-requests-jitter", "max_requests_jitter", 0, func(o *serveOptions) *int { return &o.jitter }),
	intOption("queue-size", "queue_size", 0, func(o *serveOptions) *int { return &o.queueSize }),
	intOption("max-header-size", "max_header_size", 1, func(o *serveOptions) *int { return &o.maxHeaderBytes }),
	{flag: "timeout", key: "timeout", min: 0,
		value: func(o *serveOptions) float64 { return o.timeout }, set: func(o *serveOptions, v float64) { o.timeout = v }},
	{flag: "graceful-timeout", key: "graceful_timeout", min: 0, above: true,
		value: func(o *serveOptions) float64 { return o.gracefulTimeout }, set: func(o *serveOptions, v float64) { o.gracefulTimeout = v }},
}

func intOption(flag, key string, min int, field func(o *serveOptions) *int) numericOption {
	return numericOption{flag: flag, key: key, min: float64(min), integer: true,
		value: func(o *serveOptions) float64 { return float64(*field(o)) },
		set:   func(o *serveOptions, v float64) { *field(o) = int(v) }}
}

// check refuses a value below the option's minimum; where names it.
func (n numericOption) check(v float64, where string) error {
	switch {
	case n.integer && v < n.min:
		return fmt.Errorf("%s: %v is not a whole number ≥ %v", where, v, n.min)
	case n.above && v <= n.min:
		return fmt.Errorf("%s: %v must be more than %v seconds (there is no \"no limit\" here: in-flight requests need a bound)", where, v, n.min)
	case v < n.min:
		return fmt.Errorf("%s: %v is not a number of seconds ≥ %v", where, v, n.min)
	}
	return nil
}

// loadSite loads CONFIG_URI as every command does (internal/site) and
// fills the options the command line left unset from its server section
// ([server:NAME], else [server:main]).
func loadSite(uri string, o *serveOptions, set map[string]bool) (*site.Site, int) {
	overrides, err := parseSets(o.sets)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate serve: %v\n", err)
		return nil, exitUsage
	}
	if _, _, err := config.ParseURI(uri); err != nil {
		fmt.Fprintf(os.Stderr, "wsgate serve: %v\n", err)
		return nil, exitUsage
	}
	opts := site.Options{URI: uri, Overrides: overrides, Python: o.python, Chdir: o.chdir}
	if set["pythonpath"] {
		opts.PythonPath = o.pythonPath
	}
	st, err := site.Load(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
		return nil, exitConfig
	}
	if st.Server != nil {
		if err := applyServerSection(st.Server.LocalConf, o, set); err != nil {
			fmt.Fprintf(os.Stderr, "wsgate: error: %v\n", err)
			return nil, exitConfig
		}
	}
	o.python, o.pythonPath, o.chdir = st.Python, st.PythonPath, st.Chdir
	return st, exitOK
}

// applyServerSection fills options from a [server:…] section; an option
// given on the command line wins. Unknown options are left alone: the
// section may be written for another server (egg:Paste#http, gunicorn).
func applyServerSection(conf *config.Conf, o *serveOptions, set map[string]bool) error {
	bad := func(key, want string) error {
		v, _ := conf.Get(key)
		where := conf.Origin(key)
		if where == "" {
			where = "[server] " + key
		}
		return fmt.Errorf("%s: %q is not %s", where, v, want)
	}
	str := func(key, flagName string, dst *string) {
		if v, ok := conf.Get(key); ok && !set[flagName] {
			*dst = strings.TrimSpace(v)
		}
	}
	// python, pythonpath and chdir: internal/site reads them, for every
	// command.
	str("log_level", "log-level", &o.logLevel)
	str("log_format", "log-format", &o.logFormat)
	str("control_socket", "control-socket", &o.controlSocket)
	for _, n := range numericOptions {
		v, ok := conf.Get(n.key)
		if !ok || set[n.flag] {
			continue
		}
		where := conf.Origin(n.key)
		if where == "" {
			where = "[server] " + n.key
		}
		var f float64
		var err error
		if n.integer {
			var i int
			i, err = strconv.Atoi(strings.TrimSpace(v))
			f = float64(i)
		} else {
			f, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
		if err != nil {
			if n.integer {
				return bad(n.key, fmt.Sprintf("a whole number ≥ %v", n.min))
			}
			return bad(n.key, "a number of seconds")
		}
		if err := n.check(f, where); err != nil {
			return err
		}
		n.set(o, f)
	}
	for _, e := range []struct {
		key, flag string
		dst       *bool
	}{{"reload", "reload", &o.reload}, {"sched_batch", "sched-batch", &o.schedBatch}, {"preload", "preload", &o.preload}} {
		if v, ok := conf.Get(e.key); ok && !set[e.flag] {
			b, err := asBool(v)
			if err != nil {
				return bad(e.key, "true or false")
			}
			*e.dst = b
		}
	}
	for _, e := range []struct {
		key, flag string
		dst       *byteSize
	}{{"max_worker_memory", "max-worker-memory", &o.maxWorkerMemory}} {
		if v, ok := conf.Get(e.key); ok && !set[e.flag] {
			if err := e.dst.Set(v); err != nil {
				return bad(e.key, "a size (bytes, or a number with k, m or g)")
			}
		}
	}
	for _, s := range server.Settings {
		if v, ok := conf.Get(s.Key); ok && !set[s.Flag] {
			if err := s.Set(&o.net, v); err != nil {
				where := conf.Origin(s.Key)
				if where == "" {
					where = "[server] " + s.Key
				}
				return fmt.Errorf("%s: %w", where, err)
			}
		}
	}
	if v, ok := conf.Get("reload_suffixes"); ok && !set["reload-suffix"] {
		o.reloadSuffixes = append(o.reloadSuffixes, strings.Fields(v)...)
	}
	if !set["bind"] {
		if v, ok := conf.Get("bind"); ok {
			o.binds = strings.Fields(v)
		} else if port, ok := conf.Get("port"); ok {
			host, _ := conf.Get("host")
			host = strings.TrimSpace(host)
			if host == "" {
				host = "127.0.0.1"
			}
			o.binds = []string{net.JoinHostPort(host, strings.TrimSpace(port))}
		}
	}
	return nil
}
