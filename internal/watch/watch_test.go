package watch

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// recorder collects OnChange calls. Tests drive the Watcher with Poll, so
// every call happens in the test's goroutine.
type recorder struct{ calls [][]string }

func (r *recorder) onChange(paths []string) { r.calls = append(r.calls, paths) }

func newWatcher(t *testing.T, roots ...string) (*Watcher, *recorder) {
	t.Helper()
	rec := &recorder{}
	w := New(Options{Roots: roots, OnChange: rec.onChange})
	t.Cleanup(w.Close)
	return w, rec
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// touch gives path a modification time it has never had, so a change is
// visible even when the file system's clock granularity is coarse.
func touch(t *testing.T, path string, step int) {
	t.Helper()
	when := time.Date(2001, 1, 1, 0, 0, step, 0, time.UTC)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

// settle polls until the watcher delivers (a poll that finds nothing new)
// and returns what that last poll delivered.
func settle(t *testing.T, w *Watcher, rec *recorder) []string {
	t.Helper()
	before := len(rec.calls)
	for i := 0; i < 3 && w.Poll(); i++ {
	}
	if w.Poll() {
		t.Fatalf("changes still pending after quiet polls")
	}
	switch len(rec.calls) - before {
	case 0:
		return nil
	case 1:
		return rec.calls[len(rec.calls)-1]
	default:
		t.Fatalf("%d OnChange calls, want at most one: %q", len(rec.calls)-before, rec.calls[before:])
		return nil
	}
}

func TestDetectsCreateModifyDeleteRename(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "pkg", "app.py")
	write(t, app, "x = 1\n")
	w, rec := newWatcher(t, dir)
	if got := settle(t, w, rec); got != nil {
		t.Fatalf("unchanged tree reported %q", got)
	}
	if w.Files() != 1 {
		t.Fatalf("Files() = %d, want 1", w.Files())
	}

	// Modified: same size, new mtime (what a fast editor can produce).
	write(t, app, "x = 2\n")
	touch(t, app, 1)
	if got := settle(t, w, rec); !slices.Equal(got, []string{app}) {
		t.Fatalf("modify: got %q, want %q", got, app)
	}

	// Created.
	views := filepath.Join(dir, "pkg", "views.py")
	write(t, views, "def f(): pass\n")
	if got := settle(t, w, rec); !slices.Equal(got, []string{views}) {
		t.Fatalf("create: got %q, want %q", got, views)
	}

	// Renamed: the old name is gone, the new one appeared.
	renamed := filepath.Join(dir, "pkg", "pages.py")
	if err := os.Rename(views, renamed); err != nil {
		t.Fatal(err)
	}
	if got := settle(t, w, rec); !slices.Equal(got, []string{renamed, views}) {
		t.Fatalf("rename: got %q, want %q", got, []string{renamed, views})
	}

	// Deleted.
	if err := os.Remove(renamed); err != nil {
		t.Fatal(err)
	}
	if got := settle(t, w, rec); !slices.Equal(got, []string{renamed}) {
		t.Fatalf("delete: got %q, want %q", got, renamed)
	}
}

// An editor that saves by writing a new file and renaming it over the old one
// can leave size and mtime (to the second) unchanged: the inode differs.
func TestDetectsReplacementByRename(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app.py")
	write(t, app, "x = 1\n")
	touch(t, app, 1)
	w, rec := newWatcher(t, dir)

	tmp := filepath.Join(dir, "app.py.tmp")
	write(t, tmp, "x = 2\n")
	touch(t, tmp, 1)
	if err := os.Rename(tmp, app); err != nil {
		t.Fatal(err)
	}
	if got := settle(t, w, rec); !slices.Equal(got, []string{app}) {
		t.Fatalf("got %q, want %q", got, app)
	}
}

func TestOnlySuffixesUnderDirectories(t *testing.T) {
	dir := t.TempDir()
	w, rec := newWatcher(t, dir)
	write(t, filepath.Join(dir, "notes.txt"), "x")
	write(t, filepath.Join(dir, "db.sqlite3"), "x")
	write(t, filepath.Join(dir, "app.pyc"), "x")
	if got := settle(t, w, rec); got != nil {
		t.Fatalf("files of other kinds reported: %q", got)
	}
	ini := filepath.Join(dir, "development.ini")
	write(t, ini, "[app:main]\n")
	if got := settle(t, w, rec); !slices.Equal(got, []string{ini}) {
		t.Fatalf("got %q, want %q", got, ini)
	}
}

func TestIgnoredDirectories(t *testing.T) {
	dir := t.TempDir()
	venv := filepath.Join(dir, "env") // a virtualenv under an ordinary name
	write(t, filepath.Join(venv, "pyvenv.cfg"), "home = /usr/bin\n")
	w, rec := newWatcher(t, dir)
	for _, p := range []string{
		".venv/lib/python3.12/site-packages/django/__init__.py",
		".git/hooks/pre-commit.py",
		".tox/py39/x.py",
		"pkg/__pycache__/app.py",
		"node_modules/x/setup.py",
		"env/lib/python3.12/site-packages/y.py",
	} {
		write(t, filepath.Join(dir, p), "x = 1\n")
	}
	if got := settle(t, w, rec); got != nil {
		t.Fatalf("files in ignored directories reported: %q", got)
	}
	// The same tree, with one file of the application itself.
	app := filepath.Join(dir, "pkg", "app.py")
	write(t, app, "x = 1\n")
	if got := settle(t, w, rec); !slices.Equal(got, []string{app}) {
		t.Fatalf("got %q, want %q", got, app)
	}
}

// A root is walked even when its own name would be skipped below a root.
func TestHiddenRootIsWalked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".config")
	write(t, filepath.Join(dir, "a.py"), "")
	w, rec := newWatcher(t, dir)
	if w.Files() != 1 {
		t.Fatalf("Files() = %d, want 1", w.Files())
	}
	write(t, filepath.Join(dir, "a.py"), "changed")
	if got := settle(t, w, rec); len(got) != 1 {
		t.Fatalf("got %q, want a.py", got)
	}
}

// A file root outside every directory root (an included INI file in a shared
// directory) is watched, whatever its name.
func TestFileRoots(t *testing.T) {
	base := t.TempDir()
	project := filepath.Join(base, "project")
	shared := filepath.Join(base, "shared", "base.conf")
	write(t, filepath.Join(project, "app.py"), "")
	write(t, shared, "[DEFAULT]\n")
	write(t, filepath.Join(base, "shared", "other.ini"), "")
	w, rec := newWatcher(t, project, shared)
	if w.Files() != 2 {
		t.Fatalf("Files() = %d, want 2 (app.py and the file root, not its neighbours)", w.Files())
	}
	write(t, shared, "[DEFAULT]\ndebug = true\n")
	write(t, filepath.Join(base, "shared", "other.ini"), "changed")
	if got := settle(t, w, rec); !slices.Equal(got, []string{shared}) {
		t.Fatalf("got %q, want %q", got, shared)
	}
	// A file root deleted and written again: both are changes.
	if err := os.Remove(shared); err != nil {
		t.Fatal(err)
	}
	if got := settle(t, w, rec); !slices.Equal(got, []string{shared}) {
		t.Fatalf("delete: got %q, want %q", got, shared)
	}
	write(t, shared, "[DEFAULT]\n")
	if got := settle(t, w, rec); !slices.Equal(got, []string{shared}) {
		t.Fatalf("re-create: got %q, want %q", got, shared)
	}
}

func TestMissingRootAppears(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	w, rec := newWatcher(t, dir)
	app := filepath.Join(dir, "app.py")
	write(t, app, "")
	if got := settle(t, w, rec); !slices.Equal(got, []string{app}) {
		t.Fatalf("got %q, want %q", got, app)
	}
}

// A burst of changes seen over several polls (a checkout, a formatter run
// over the tree) is delivered once, when a poll finds nothing new.
func TestBurstIsOneCall(t *testing.T) {
	dir := t.TempDir()
	w, rec := newWatcher(t, dir)
	var want []string
	for round := 0; round < 4; round++ {
		for i := 0; i < 50; i++ {
			p := filepath.Join(dir, "pkg", string(rune('a'+round)), "m"+string(rune('a'+i%26))+string(rune('a'+i/26))+".py")
			write(t, p, "x = 1\n")
			want = append(want, p)
		}
		if !w.Poll() {
			t.Fatalf("round %d: Poll reports nothing pending after new files", round)
		}
		if len(rec.calls) != 0 {
			t.Fatalf("round %d: OnChange called during the burst: %d paths", round, len(rec.calls[0]))
		}
	}
	if w.Poll() {
		t.Fatal("a quiet poll left changes pending")
	}
	slices.Sort(want)
	if len(rec.calls) != 1 || !slices.Equal(rec.calls[0], want) {
		t.Fatalf("got %d calls (first with %d paths), want one call with the %d files", len(rec.calls), lenFirst(rec.calls), len(want))
	}
	if w.Poll() || len(rec.calls) != 1 {
		t.Fatal("changes delivered twice")
	}
}

func lenFirst(calls [][]string) int {
	if len(calls) == 0 {
		return 0
	}
	return len(calls[0])
}

func TestSetRoots(t *testing.T) {
	base := t.TempDir()
	a := filepath.Join(base, "a.ini")
	b := filepath.Join(base, "b.ini")
	c := filepath.Join(base, "c.ini")
	write(t, a, "1")
	write(t, b, "1")
	write(t, c, "1")
	w, rec := newWatcher(t, a, b)

	// b changes before SetRoots keeps it: still reported. c is new: its
	// current state is the baseline, not a change. a is dropped: forgotten.
	write(t, b, "22")
	w.SetRoots([]string{b, c})
	if got := settle(t, w, rec); !slices.Equal(got, []string{b}) {
		t.Fatalf("got %q, want only %q", got, b)
	}
	write(t, a, "22")
	write(t, c, "22")
	if got := settle(t, w, rec); !slices.Equal(got, []string{c}) {
		t.Fatalf("got %q, want only %q", got, c)
	}
	if roots := w.Roots(); !slices.Equal(roots, []string{b, c}) {
		t.Fatalf("Roots() = %q", roots)
	}
}

// OnChange may call SetRoots (serve does, when the configuration now
// includes another file).
func TestSetRootsFromOnChange(t *testing.T) {
	base := t.TempDir()
	a := filepath.Join(base, "a.ini")
	extra := filepath.Join(base, "extra.ini")
	write(t, a, "1")
	write(t, extra, "1")
	var calls [][]string
	var w *Watcher
	w = New(Options{Roots: []string{a}, OnChange: func(p []string) {
		calls = append(calls, p)
		w.SetRoots([]string{a, extra})
	}})
	defer w.Close()
	write(t, a, "22")
	for w.Poll() {
	}
	write(t, extra, "22")
	for w.Poll() {
	}
	if len(calls) != 2 || !slices.Equal(calls[1], []string{extra}) {
		t.Fatalf("calls %q, want [a] then [extra]", calls)
	}
}

// Start polls on its own; Close stops the goroutine (Done is closed by the
// time Close returns), also while changes are pending.
func TestStartAndClose(t *testing.T) {
	dir := t.TempDir()
	got := make(chan []string, 1)
	w := New(Options{Roots: []string{dir}, Interval: time.Millisecond, Settle: time.Millisecond,
		OnChange: func(p []string) { got <- p }})
	w.Start()
	w.Start() // a second Start is a no-op, not a second goroutine
	app := filepath.Join(dir, "app.py")
	write(t, app, "")
	select {
	case p := <-got:
		if !slices.Equal(p, []string{app}) {
			t.Fatalf("got %q, want %q", p, app)
		}
	case <-time.After(time.Minute): // a hang guard, not a measure
		t.Fatal("no OnChange within a minute of polling every millisecond")
	}
	write(t, filepath.Join(dir, "pending.py"), "")
	w.Close()
	select {
	case <-w.Done():
	default:
		t.Fatal("Close returned while the polling goroutine still runs")
	}
	w.Close() // idempotent
}

func TestCloseWithoutStart(t *testing.T) {
	w := New(Options{Roots: []string{t.TempDir()}})
	w.Close()
	w.Close()
}
