// Package reload is `wsgate serve --reload` (docs/serve.md, "Reloading on
// change"): it watches an application's files with internal/watch and
// reloads the site's worker pools gracefully when they change, as SIGHUP
// does.
//
// What it watches: every INI file the configuration tree was read from
// (Node.Source and Node.Via of every node, wherever the file lies), the
// workers' directory and the --pythonpath directories (both on sys.path),
// for files ending in .py, .ini and Options.Suffixes.
//
// On a change it prints `wsgate: reloading, changed: PATH…` on stderr,
// deletes the cached bytecode of the changed modules (Python would trust a
// .pyc whose recorded mtime second and size match), and calls Site.Reload;
// when one of the configuration's INI files changed it loads and resolves
// the configuration again (internal/site, as at start-up) and hands the new
// tree to Site.ReloadApp, which composes it again. A configuration that no
// longer loads (or composes) is one line,
// `wsgate: reload failed, the running workers keep serving: …`, and no
// reload. A reload whose workers cannot load the application is the pool's
// business: it keeps the running workers.
package reload

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

// manyWatchedFiles is where the start-up line turns into a warning: a
// directory that large is probably not the project (a home directory).
const manyWatchedFiles = 20000

// Site is what the Reloader drives: the running site's worker pools.
type Site interface {
	// Reload replaces every pool's workers gracefully (a pool keeps its
	// running workers when the new ones fail).
	Reload()
	// ReloadApp composes a new application tree and reloads the pools
	// it changes — and every running pool when codeChanged (a source file
	// changed too, which any pool may import); an error leaves the running
	// site as it was.
	ReloadApp(app *config.Node, codeChanged bool) error
}

// Options say what to watch and how to reload.
type Options struct {
	// App is the resolved application tree served (nil with --app): its
	// files are watched.
	App *config.Node
	// LoadApp loads and resolves the configuration again (nil with --app).
	LoadApp func() (*config.Node, error)
	// WorkDir is the workers' directory (--chdir); "" means the working
	// directory.
	WorkDir string
	// PythonPath are the --pythonpath directories.
	PythonPath []string
	// Suffixes are file name endings watched besides .py and .ini
	// (--reload-suffix).
	Suffixes []string
	// Interval is the time between two polls (default watch.DefaultInterval).
	Interval time.Duration
	// Log receives the log lines (default slog.Default()).
	Log *slog.Logger
}

// Reloader reloads a pool when the application's files change.
type Reloader struct {
	loadApp     func() (*config.Node, error) // nil with --app
	workDir     string                       // the workers' directory (on sys.path)
	pythonPath  []string
	configFiles map[string]bool // absolute paths of the INI files read
	configDir   string          // what the configuration's relative paths are relative to
	watcher     *watch.Watcher
	site        Site
	log         *slog.Logger
}

// New records the files of the application as they are now; Start begins
// watching them once the workers are up.
func New(opts Options) (*Reloader, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{loadApp: opts.LoadApp, pythonPath: opts.PythonPath, log: log}
	var err error
	// config.LoadApp names files relative to the working directory.
	if r.configDir, err = os.Getwd(); err != nil {
		return nil, fmt.Errorf("--reload: finding the working directory: %w", err)
	}
	r.workDir = opts.WorkDir
	if r.workDir == "" {
		r.workDir = r.configDir
	}
	if r.workDir, err = filepath.Abs(r.workDir); err != nil {
		return nil, fmt.Errorf("--reload: %w", err)
	}
	r.configFiles = configFiles(opts.App, r.configDir)
	interval := opts.Interval
	if interval <= 0 {
		interval = watch.DefaultInterval
	}
	suffixes := append([]string{}, watch.DefaultSuffixes...)
	for _, s := range opts.Suffixes {
		if s = strings.TrimSpace(s); s != "" {
			suffixes = append(suffixes, s)
		}
	}
	r.watcher = watch.New(watch.Options{Roots: r.roots(), OnChange: r.changed, Suffixes: suffixes,
		Interval: interval, Settle: min(interval, watch.DefaultSettle)})
	return r, nil
}

// Start begins polling and returns the function that stops it.
func (r *Reloader) Start(site Site) (stop func()) {
	r.site = site
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
func (r *Reloader) roots() []string {
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
func (r *Reloader) changed(paths []string) {
	fmt.Fprintf(os.Stderr, "wsgate: reloading, changed: %s\n", changedList(paths))
	dropBytecode(paths, r.log)
	if r.loadApp == nil || !r.touchesConfig(paths) {
		r.site.Reload()
		return
	}
	app, err := r.loadApp()
	if err == nil {
		err = r.site.ReloadApp(app, r.touchesCode(paths))
	}
	if err != nil {
		// The file stays watched: the next save that fixes it reloads.
		fmt.Fprintf(os.Stderr, "wsgate: reload failed, the running workers keep serving: %v\n", err)
		return
	}
	r.configFiles = configFiles(app, r.configDir)
	r.watcher.SetRoots(r.roots())
}

// touchesCode reports whether a path that is not a configuration file
// changed too.
func (r *Reloader) touchesCode(paths []string) bool {
	for _, p := range paths {
		if !r.configFiles[p] {
			return true
		}
	}
	return false
}

func (r *Reloader) touchesConfig(paths []string) bool {
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
