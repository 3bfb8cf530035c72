// Package python ships wsgate's Python runtime (the worker loop, the factory
// resolver, the Django helpers) inside the Go binary and starts interpreters
// with it on their path.
//
// The runtime is standard library only, so the user installs nothing on the
// Python side: Unpack writes the embedded tree once to a cache directory keyed
// by its content hash, and every interpreter wsgate starts finds it first on
// PYTHONPATH.
package python

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
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
// WSGATE_PYTHON, else `python = …` from the server section, else python3.
func Interpreter(flag, fromConfig string) string {
	for _, c := range []string{flag, os.Getenv(EnvInterpreter), fromConfig} {
		if strings.TrimSpace(c) != "" {
			return c
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

// Command prepares `interpreter -m module args…` with the runtime first on
// PYTHONPATH, followed by extraPath and whatever PYTHONPATH the user had.
func Command(interpreter string, extraPath []string, module string, args ...string) (*exec.Cmd, error) {
	dir, err := Unpack()
	if err != nil {
		return nil, err
	}
	paths := append([]string{dir}, extraPath...)
	if old := os.Getenv("PYTHONPATH"); old != "" {
		paths = append(paths, old)
	}
	cmd := exec.Command(interpreter, append([]string{"-m", module}, args...)...)
	env := make([]string, 0, len(os.Environ())+2)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PYTHONPATH=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PYTHONPATH="+strings.Join(paths, string(os.PathListSeparator)))
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
