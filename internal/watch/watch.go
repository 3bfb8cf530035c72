// Package watch notices when the source files of an application change, so
// `wsgate serve --reload` can restart its workers (docs/serve.md, "Reloading
// on change").
//
// It polls: every Interval (1 s by default) it walks its roots and records,
// for each file whose name ends with one of the Suffixes (".py" and ".ini" by
// default), its modification time, size and inode. A file created, modified,
// deleted or renamed (a deletion plus a creation) is a change. Polling needs
// no kernel watch limits and sees the same thing on every file system
// (bind mounts, network shares, editors that save by renaming a new file over
// the old one), at the price of one stat per watched file per interval.
//
// A root is a directory (walked recursively) or a single file. A file root
// is watched whatever its name, so an INI file included from outside the
// project (`use = config:../shared/base.ini`) is watched too.
//
// Directories that never hold the application's own code are skipped: .git,
// .venv, __pycache__, node_modules, every hidden directory (a name starting
// with "."), and every virtual environment (a directory holding pyvenv.cfg,
// whatever its name). A root is walked even when its own name is hidden.
//
// Changes are debounced: once a poll finds a change, the next poll comes
// after Settle (200 ms by default) instead of Interval, and OnChange is called
// only when a poll finds nothing new, with every path that changed since the
// last call. A `git checkout` rewriting 200 files is one call, not 200.
//
// Start polls in its own goroutine; Close stops it and waits for it. Poll
// runs one poll in the caller's goroutine, which is what tests use to drive a
// Watcher step by step without timing.
package watch

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	DefaultInterval = time.Second
	DefaultSettle   = 200 * time.Millisecond
)

// DefaultSuffixes are the file name endings watched when Options.Suffixes
// is empty: Python modules and configuration files.
var DefaultSuffixes = []string{".py", ".ini"}

// skippedDirs are directory names never walked into (hidden ones are
// skipped by rule: see skipDir).
var skippedDirs = map[string]bool{
	"__pycache__":  true,
	"node_modules": true,
}

// Options configure a Watcher.
type Options struct {
	// Roots are the directories (walked recursively) and files to watch.
	// Relative paths are made absolute when the Watcher is created.
	Roots []string
	// Suffixes select the files watched under a directory root (default
	// DefaultSuffixes). File roots are watched whatever their name.
	Suffixes []string
	// Interval is the time between two polls while nothing changes
	// (default DefaultInterval).
	Interval time.Duration
	// Settle is the time between two polls once a change was seen: the
	// changes are delivered when a poll finds nothing new (default
	// DefaultSettle).
	Settle time.Duration
	// OnChange receives the absolute paths that changed since the last
	// call, sorted. It runs in the polling goroutine (or Poll's caller); it
	// may call SetRoots but not Close.
	OnChange func(changed []string)
}

// Watcher polls a set of roots for changed files.
type Watcher struct {
	opts Options

	mu      sync.Mutex
	roots   []string
	files   map[string]stamp // the last poll's view
	pending map[string]bool  // changed since the last OnChange

	stop     chan struct{}
	done     chan struct{}
	started  bool
	stopOnce sync.Once
}

// stamp is what tells two versions of a file apart.
type stamp struct {
	mtime time.Time
	size  int64
	inode uint64
}

// New returns a Watcher over opts.Roots and records the current state of
// their files, so only later changes count. Roots that do not exist (yet)
// are allowed: their files appearing is a change.
func New(opts Options) *Watcher {
	if len(opts.Suffixes) == 0 {
		opts.Suffixes = DefaultSuffixes
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	w := &Watcher{
		opts:    opts,
		roots:   absRoots(opts.Roots),
		pending: map[string]bool{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	w.files = w.scan(w.roots)
	return w
}

// Files is the number of files watched (as of the last poll).
func (w *Watcher) Files() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.files)
}

// Suffixes returns the file name endings watched under directory roots.
func (w *Watcher) Suffixes() []string { return slices.Clone(w.opts.Suffixes) }

// Roots returns the absolute roots being watched.
func (w *Watcher) Roots() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.roots)
}

// SetRoots replaces the roots (a configuration that now includes another
// file, say). Files under a new root are recorded as they are now, not
// reported; files no longer under any root are forgotten; files under both
// keep their last recorded state, so a change not yet seen is still reported.
func (w *Watcher) SetRoots(roots []string) {
	abs := absRoots(roots)
	fresh := w.scan(abs)
	w.mu.Lock()
	defer w.mu.Unlock()
	for path, old := range w.files {
		if _, seen := fresh[path]; seen || underAny(path, abs) {
			fresh[path] = old
		}
	}
	w.roots = abs
	w.files = fresh
}

// Start polls in a new goroutine until Close.
func (w *Watcher) Start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return
	}
	w.started = true
	go w.run()
}

// Close stops polling and returns once the polling goroutine has exited
// (waiting for an OnChange call in progress). It is safe to call more than
// once, and without Start.
func (w *Watcher) Close() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.mu.Lock()
	started := w.started
	w.mu.Unlock()
	if started {
		<-w.done
	}
}

// Done is closed when the polling goroutine has exited.
func (w *Watcher) Done() <-chan struct{} { return w.done }

func (w *Watcher) run() {
	defer close(w.done)
	timer := time.NewTimer(w.opts.Interval)
	defer timer.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-timer.C:
		}
		next := w.opts.Interval
		if w.Poll() {
			next = w.opts.Settle
		}
		timer.Reset(next)
	}
}

// Poll walks the roots once. Files that changed since the previous poll join
// the pending set; when this poll finds nothing new and changes are pending,
// they are handed to OnChange (in the caller's goroutine) and the set is
// emptied. Poll reports whether changes are still pending, i.e. whether the
// next poll should come soon.
func (w *Watcher) Poll() (pending bool) {
	w.mu.Lock()
	roots := w.roots
	w.mu.Unlock()
	now := w.scan(roots)

	w.mu.Lock()
	found := false
	for path, st := range now {
		if old, ok := w.files[path]; !ok || old != st {
			w.pending[path] = true
			found = true
		}
	}
	for path := range w.files {
		if _, ok := now[path]; !ok {
			w.pending[path] = true
			found = true
		}
	}
	w.files = now
	if found || len(w.pending) == 0 {
		pending = len(w.pending) > 0
		w.mu.Unlock()
		return pending
	}
	changed := make([]string, 0, len(w.pending))
	for path := range w.pending {
		changed = append(changed, path)
	}
	clear(w.pending)
	w.mu.Unlock()

	slices.Sort(changed)
	if w.opts.OnChange != nil {
		w.opts.OnChange(changed)
	}
	return false
}

// scan records every watched file under roots. Unreadable directories and
// files that vanish during the walk are left out (a vanished file is a
// deletion the next poll confirms or not).
func (w *Watcher) scan(roots []string) map[string]stamp {
	files := map[string]stamp{}
	for _, root := range roots {
		fi, err := os.Stat(root)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			files[root] = stampOf(fi)
			continue
		}
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if d != nil && d.IsDir() && path != root {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if path != root && skipDir(path, d.Name()) {
					return fs.SkipDir
				}
				return nil
			}
			if !w.watched(d.Name()) {
				return nil
			}
			fi, err := os.Stat(path) // follows a symlinked file to its content
			if err != nil || fi.IsDir() {
				return nil
			}
			files[path] = stampOf(fi)
			return nil
		})
	}
	return files
}

func (w *Watcher) watched(name string) bool {
	for _, s := range w.opts.Suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// skipDir tells whether a directory below a root holds no application code:
// hidden directories (.git, .venv, .tox, .mypy_cache…), caches and
// dependencies by name, and virtual environments by their pyvenv.cfg.
func skipDir(path, name string) bool {
	if strings.HasPrefix(name, ".") || skippedDirs[name] {
		return true
	}
	_, err := os.Lstat(filepath.Join(path, "pyvenv.cfg"))
	return err == nil
}

func stampOf(fi fs.FileInfo) stamp {
	st := stamp{mtime: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.inode = sys.Ino
	}
	return st
}

// absRoots cleans the roots, makes them absolute and drops duplicates.
func absRoots(roots []string) []string {
	var out []string
	for _, r := range roots {
		if r == "" {
			continue
		}
		abs, err := filepath.Abs(r)
		if err != nil {
			continue
		}
		if !slices.Contains(out, abs) {
			out = append(out, abs)
		}
	}
	return out
}

// underAny tells whether path is one of roots or inside one of them.
func underAny(path string, roots []string) bool {
	for _, r := range roots {
		if path == r || strings.HasPrefix(path, r+string(filepath.Separator)) || r == string(filepath.Separator) {
			return true
		}
	}
	return false
}
