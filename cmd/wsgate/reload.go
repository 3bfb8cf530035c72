package main

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/watch"
)

// `wsgate serve --reload` (docs/serve.md, "Reloading on change"): a watcher
// over the application's files that reloads the workers gracefully, as
// SIGHUP does, and reads the configuration again when one of its INI files
// changed.

// manyWatchedFiles is where the start-up line turns into a warning: a
// directory that large is probably not the project (a home directory).
const manyWatchedFiles = 20000

// workerReloader is what the reloader drives: the worker pool's graceful
// reload (the pool keeps the running workers when the new ones fail).
type workerReloader interface {
	Reload()
}

// nodeReloader is a pool that can also take a new application tree (worker
// form) for the workers of its next reload.
type nodeReloader interface {
	ReloadNode(node []byte)
}

// reloader reacts to the watcher's changes.
type reloader struct {
	uri         string            // CONFIG_URI; "" with --app
	overrides   map[string]string // --set
	python      string
	resolvePath []string // where the configuration's factories are resolved from
	workDir     string   // the workers' directory (on sys.path)
	pythonPath  []string
	configFiles map[string]bool // absolute paths of the INI files read
	configDir   string          // what the configuration's relative paths are relative to
	watcher     *watch.Watcher
	pool        workerReloader
	log         *slog.Logger
}

// newReloader records the files of the application as they are now. app is
// nil with --app. Start it once the workers are up.
func newReloader(uri string, app *config.Node, o serveOptions, python string, log *slog.Logger) (*reloader, error) {
	overrides, err := parseSets(o.sets)
	if err != nil {
		return nil, err
	}
	r := &reloader{uri: uri, overrides: overrides, python: python, pythonPath: o.pythonPath, log: log}
	// config.LoadApp names files relative to the working directory.
	if r.configDir, err = os.Getwd(); err != nil {
		return nil, fmt.Errorf("--reload: finding the working directory: %w", err)
	}
	r.workDir = o.chdir
	if r.workDir == "" {
		r.workDir = r.configDir
	}
	if r.workDir, err = filepath.Abs(r.workDir); err != nil {
		return nil, fmt.Errorf("--reload: %w", err)
	}
	r.resolvePath = append(append([]string{}, o.pythonPath...), r.workDir)
	r.configFiles = configFiles(app, r.configDir)
	interval, err := reloadInterval()
	if err != nil {
		return nil, err
	}
	suffixes := append([]string{}, watch.DefaultSuffixes...)
	for _, s := range o.reloadSuffixes {
		if s = strings.TrimSpace(s); s != "" {
			suffixes = append(suffixes, s)
		}
	}
	r.watcher = watch.New(watch.Options{Roots: r.roots(), OnChange: r.changed, Suffixes: suffixes,
		Interval: interval, Settle: min(interval, watch.DefaultSettle)})
	return r, nil
}

// reloadInterval is the time between two polls: WSGATE_RELOAD_INTERVAL (a
// Go duration, "250ms"), else watch.DefaultInterval.
func reloadInterval() (time.Duration, error) {
	v := os.Getenv("WSGATE_RELOAD_INTERVAL")
	if v == "" {
		return watch.DefaultInterval, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("WSGATE_RELOAD_INTERVAL=%q: want a duration such as 250ms or 2s", v)
	}
	return d, nil
}

// start begins polling and returns the function that stops it.
func (r *reloader) start(pool workerReloader) (stop func()) {
	r.pool = pool
	n := r.watcher.Files()
	attrs := []any{"files", n, "suffixes", strings.Join(r.watcher.Suffixes(), " "), "roots", strings.Join(displayPaths(r.watcher.Roots()), " ")}
	if n > manyWatchedFiles {
		r.log.Warn("--reload watches many files: run wsgate from the project's directory or give --chdir", attrs...)
	} else {
		r.log.Info("--reload: watching for changes", attrs...)
	}
	r.watcher.Start()
	return r.watcher.Close
}

// roots are what --reload watches: every INI file the configuration was read
// from (wherever it lies), the workers' directory and the --pythonpath
// directories (both on sys.path).
func (r *reloader) roots() []string {
	var roots []string
	// Walking the whole file system (a service started in /) would take
	// each poll minutes: the configuration and --pythonpath still count.
	if r.workDir != string(filepath.Separator) {
		roots = append(roots, r.workDir)
	}
	for _, dir := range r.pythonPath {
		// The workers read a relative PYTHONPATH entry from their own
		// directory.
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(r.workDir, dir)
		}
		roots = append(roots, dir)
	}
	return append(roots, slices.Sorted(maps.Keys(r.configFiles))...)
}

// changed runs in the watcher's goroutine with the paths that changed.
func (r *reloader) changed(paths []string) {
	fmt.Fprintf(os.Stderr, "wsgate: reloading, changed: %s\n", changedList(paths))
	dropBytecode(paths, r.log)
	if r.uri == "" || !r.touchesConfig(paths) {
		r.pool.Reload()
		return
	}
	app, err := loadAppTree(r.uri, r.overrides, r.python, r.resolvePath)
	var node []byte
	if err == nil {
		node, err = app.WorkerJSON()
	}
	if err != nil {
		// The file stays watched: the next save that fixes it reloads.
		fmt.Fprintf(os.Stderr, "wsgate: reload failed, the running workers keep serving: %v\n", err)
		return
	}
	r.configFiles = configFiles(app, r.configDir)
	r.watcher.SetRoots(r.roots())
	if nr, ok := r.pool.(nodeReloader); ok {
		nr.ReloadNode(node)
		return
	}
	r.log.Warn("this build reloads the application's code but not its configuration: restart wsgate to apply the INI change")
	r.pool.Reload()
}

func (r *reloader) touchesConfig(paths []string) bool {
	for _, p := range paths {
		if r.configFiles[p] {
			return true
		}
	}
	return false
}

// dropBytecode removes the cached bytecode (__pycache__/NAME.*.pyc) of the
// changed modules. Python trusts a .pyc whose recorded source modification
// time, in whole seconds, and size match the source: an edit that keeps the
// size within the same second would otherwise be imported stale, by the new
// workers or by the configuration's resolver.
func dropBytecode(paths []string, log *slog.Logger) {
	for _, p := range paths {
		if !strings.HasSuffix(p, ".py") {
			continue
		}
		stem := strings.TrimSuffix(filepath.Base(p), ".py")
		cached, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "__pycache__", globEscape(stem)+".*.pyc"))
		for _, c := range cached {
			if err := os.Remove(c); err != nil && !os.IsNotExist(err) {
				log.Warn("--reload: cannot remove cached bytecode; an edit within the same second may be imported stale", "file", c, "error", err.Error())
			}
		}
	}
}

// globEscape quotes the characters filepath.Match treats as special.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// loadAppTree loads and resolves CONFIG_URI's application again, as
// `wsgate serve` did at start-up (the server section is not read again:
// listeners and pool size stay as they are).
func loadAppTree(uri string, overrides map[string]string, python string, resolvePath []string) (*config.Node, error) {
	app, err := config.LoadApp(uri, config.Options{Overrides: overrides})
	if err != nil {
		return nil, err
	}
	if err := config.Resolve(app, python, resolvePath); err != nil {
		return nil, err
	}
	var goNode string
	app.Walk(func(n *config.Node) {
		if strings.HasPrefix(n.Factory, config.GoFactoryPrefix) && goNode == "" {
			goNode = n.Source.String()
		}
	})
	if goNode != "" {
		return nil, fmt.Errorf("%s: Go-native components are not served by this build yet", goNode)
	}
	return app, nil
}

// configFiles lists, as absolute paths, every INI file a node of the tree
// was read from: each node's section and the sections a `use` chain went
// through (included files, `config:` URIs of composites). Relative source
// paths are relative to dir (config.Options.Dir, else the working directory).
func configFiles(app *config.Node, dir string) map[string]bool {
	files := map[string]bool{}
	add := func(s config.Source) {
		if s.File == "" {
			return
		}
		path := s.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		files[filepath.Clean(path)] = true
	}
	app.Walk(func(n *config.Node) {
		add(n.Source)
		for _, v := range n.Via {
			add(v)
		}
	})
	return files
}

// maxListedChanges bounds the reload line: a checkout can change hundreds
// of files.
const maxListedChanges = 10

// changedList is the reload line's list of paths.
func changedList(paths []string) string {
	shown := displayPaths(paths[:min(len(paths), maxListedChanges)])
	if more := len(paths) - len(shown); more > 0 {
		shown = append(shown, fmt.Sprintf("(and %d more)", more))
	}
	return strings.Join(shown, " ")
}

// displayPaths shortens paths inside the working directory, for log lines.
func displayPaths(paths []string) []string {
	wd, _ := os.Getwd()
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = p
		if rel, err := filepath.Rel(wd, p); wd != "" && err == nil && !strings.HasPrefix(rel, "..") {
			out[i] = rel
		}
	}
	return out
}

// asBool reads a boolean option as PasteDeploy's asbool does.
func asBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "y", "t", "1":
		return true, nil
	case "false", "no", "off", "n", "f", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", s)
}
