// Package python ships wsgate's Python runtime (the worker loop, the factory
// resolver, the Django helpers) inside the Go binary and starts interpreters
// with it on their path.
//
// The runtime is standard library only, so the user installs nothing on the
// Python side: Unpack writes the embedded tree once to a cache directory keyed
// by its content hash, and every interpreter wsgate starts finds it first on
// PYTHONPATH — unless that interpreter has the same version of the wsgate
// package installed (pip install wsgate ships both), which it then imports.
package python

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/wsgate/wsgate/internal/version"
)

//go:embed all:wsgate
var runtimeFS embed.FS

// EnvInterpreter names the environment variable that selects the interpreter
// when no --python flag is given.
const EnvInterpreter = "WSGATE_PYTHON"

// EnvCacheDir overrides where the runtime is unpacked (default: the user's
// cache directory, then the system temp directory).
const EnvCacheDir = "WSGATE_CACHE_DIR"

// Interpreter picks the Python interpreter: the --python flag, else
// WSGATE_PYTHON, else `python = …` from the server section, else the python3
// beside the wsgate executable (a virtualenv's bin/, where pip installs
// wsgate), else python3 from PATH.
func Interpreter(flag, fromConfig string) string {
	for _, c := range []string{flag, os.Getenv(EnvInterpreter), fromConfig} {
		if strings.TrimSpace(c) != "" {
			return c
		}
	}
	if exe, err := os.Executable(); err == nil {
		sibling := filepath.Join(filepath.Dir(exe), "python3")
		if info, err := os.Stat(sibling); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return sibling
		}
	}
	return "python3"
}

// runtimeFiles lists the embedded files that make up the runtime, sorted,
// leaving out byte-code caches a developer's checkout may hold.
func runtimeFiles() ([]string, error) {
	var files []string
	err := fs.WalkDir(runtimeFS, "wsgate", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".pyc") {
			return nil
		}
		files = append(files, p)
		return nil
	})
	sort.Strings(files)
	return files, err
}

// Hash is the content hash of the embedded runtime: it names the cache
// directory, so two wsgate versions never share (or clobber) one.
func Hash() (string, error) {
	files, err := runtimeFiles()
	if err != nil {
		return "", fmt.Errorf("listing the embedded Python runtime: %w", err)
	}
	h := sha256.New()
	for _, f := range files {
		data, err := runtimeFS.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("reading embedded %s: %w", f, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

var (
	unpackOnce sync.Once
	unpackDir  string
	unpackErr  error
)

// Unpack writes the runtime to <cache>/wsgate/runtime-<hash>/ (once per
// process, and only if that directory does not exist yet) and returns the
// directory to put on PYTHONPATH.
func Unpack() (string, error) {
	unpackOnce.Do(func() { unpackDir, unpackErr = unpack() })
	return unpackDir, unpackErr
}

func cacheRoot() string {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return filepath.Join(d, "wsgate")
		}
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("wsgate-%d", os.Getuid()))
}

func unpack() (string, error) {
	sum, err := Hash()
	if err != nil {
		return "", err
	}
	root := cacheRoot()
	final := filepath.Join(root, "runtime-"+sum)
	if _, err := os.Stat(filepath.Join(final, ".complete")); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("creating runtime cache %s: %w", root, err)
	}
	// Unpack beside the final place and rename, so a concurrent wsgate never
	// sees half a runtime.
	tmp, err := os.MkdirTemp(root, ".unpack-")
	if err != nil {
		return "", fmt.Errorf("creating runtime cache %s: %w", root, err)
	}
	defer os.RemoveAll(tmp)
	files, err := runtimeFiles()
	if err != nil {
		return "", err
	}
	for _, f := range files {
		data, err := runtimeFS.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("reading embedded %s: %w", f, err)
		}
		dst := filepath.Join(tmp, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", fmt.Errorf("unpacking runtime: %w", err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return "", fmt.Errorf("unpacking runtime: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(sum+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("unpacking runtime: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another process won the race: its copy is identical.
		if _, statErr := os.Stat(filepath.Join(final, ".complete")); statErr == nil {
			return final, nil
		}
		return "", fmt.Errorf("installing runtime into %s: %w", final, err)
	}
	return final, nil
}

// Runtime is the copy of the Python runtime an interpreter's processes
// import.
type Runtime struct {
	// Installed: the interpreter imports its own wsgate package, of this
	// binary's version (Package is its directory); otherwise the embedded
	// copy, unpacked, goes first on PYTHONPATH (Why says what was found).
	Installed bool
	Package   string
	Why       string
}

func (r Runtime) String() string {
	if r.Installed {
		return "installed (" + r.Package + ")"
	}
	return "embedded (" + r.Why + ")"
}

// probeScript writes the version ("" for none) and the directory of the
// wsgate package the interpreter imports without the embedded runtime on its
// path, NUL-separated. It imports nothing else, so no module of the
// project's can stand in for a standard one.
const probeScript = `import sys, wsgate; sys.stdout.write("%s\0%s" % (getattr(wsgate, "__version__", ""), wsgate.__path__[0]))`

// Choose finds out which runtime interpreter's processes get: the installed
// wsgate package when it is this binary's version, else the embedded one.
// Asking costs an interpreter start, so the answer is kept per interpreter
// and path; an installed answer is trusted only while the package's
// __init__.py is the file it was (one stat; pip replaces it on every upgrade), so a package upgraded under a
// running server is never imported by workers of the old binary.
func Choose(interpreter string, extraPath []string) Runtime {
	key := interpreter + "\x00" + strings.Join(extraPath, "\x00")
	chosenMu.Lock()
	c, ok := chosen[key]
	chosenMu.Unlock()
	if ok && (!c.rt.Installed || sameFile(c.stamp, filepath.Join(c.rt.Package, "__init__.py"))) {
		return c.rt
	}
	rt := probe(interpreter, extraPath)
	c = choice{rt: rt}
	if rt.Installed {
		c.stamp, _ = os.Stat(filepath.Join(rt.Package, "__init__.py"))
	}
	chosenMu.Lock()
	chosen[key] = c
	chosenMu.Unlock()
	return rt
}

type choice struct {
	rt    Runtime
	stamp fs.FileInfo // the installed package's __init__.py when probed
}

var (
	chosenMu sync.Mutex
	chosen   = map[string]choice{}
)

func sameFile(before fs.FileInfo, path string) bool {
	now, err := os.Stat(path)
	return err == nil && before != nil && os.SameFile(before, now) &&
		now.ModTime().Equal(before.ModTime()) && now.Size() == before.Size()
}

// probe asks the interpreter which wsgate package it imports.
func probe(interpreter string, extraPath []string) Runtime {
	probe := exec.Command(interpreter, "-c", probeScript)
	probe.Env = withPythonPath(extraPath)
	out, err := probe.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return Runtime{Why: interpreter + " cannot import a wsgate package of its own"}
	}
	if err != nil {
		return Runtime{Why: fmt.Sprintf("cannot run %s: %v", interpreter, err)}
	}
	pkgVersion, pkg, ok := strings.Cut(string(out), "\x00")
	if !ok || pkg == "" {
		return Runtime{Why: fmt.Sprintf("%s answered %q about its wsgate package", interpreter, out)}
	}
	if pkgVersion != version.String() {
		got := "of no version"
		if pkgVersion != "" {
			got = "version " + pkgVersion
		}
		return Runtime{Why: fmt.Sprintf("%s imports wsgate %s from %s, this binary is %s", interpreter, got, pkg, version.String())}
	}
	return Runtime{Installed: true, Package: pkg}
}

// withPythonPath is this process's environment with PYTHONPATH set to
// paths followed by whatever PYTHONPATH the user had.
func withPythonPath(paths []string) []string {
	paths = append([]string{}, paths...)
	if old := os.Getenv("PYTHONPATH"); old != "" {
		paths = append(paths, old)
	}
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PYTHONPATH=") {
			env = append(env, kv)
		}
	}
	if len(paths) == 0 {
		return env
	}
	return append(env, "PYTHONPATH="+strings.Join(paths, string(os.PathListSeparator)))
}

// Command prepares `interpreter -m module args…` with the runtime Choose
// picks: the embedded one first on PYTHONPATH, followed by extraPath and
// whatever PYTHONPATH the user had.
func Command(interpreter string, extraPath []string, module string, args ...string) (*exec.Cmd, error) {
	paths := extraPath
	if !Choose(interpreter, extraPath).Installed {
		dir, err := Unpack()
		if err != nil {
			return nil, err
		}
		paths = append([]string{dir}, extraPath...)
	}
	cmd := exec.Command(interpreter, append([]string{"-m", module}, args...)...)
	cmd.Env = withPythonPath(paths)
	return cmd, nil
}

// ModuleFile returns the path of an unpacked runtime file, e.g.
// ModuleFile("wsgate/worker.py"), for error messages and tests.
func ModuleFile(rel string) (string, error) {
	dir, err := Unpack()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.FromSlash(path.Clean(rel))), nil
}
