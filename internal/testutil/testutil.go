// Package testutil gives tests the real parts they run against: the project's
// virtualenv interpreter (Django, PasteDeploy, Mercurial… from
// requirements.txt) and a freshly built wsgate binary.
//
// Outside `make test` a missing virtualenv skips the tests that need it; under
// `make test` (WSGATE_TEST_STRICT=1) every skip not on test/skips-allowed.txt
// fails (Skip), so CI can never pass by skipping.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// RepoRoot is the repository's top directory, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func strict() bool { return os.Getenv("WSGATE_TEST_STRICT") == "1" }

// VenvPython returns the project virtualenv's interpreter (WSGATE_TEST_PYTHON
// overrides it).
func VenvPython(t testing.TB) string {
	t.Helper()
	p := os.Getenv("WSGATE_TEST_PYTHON")
	if p == "" {
		p = filepath.Join(RepoRoot(), ".venv", "bin", "python")
	}
	if _, err := os.Stat(p); err != nil {
		Skip(t, "test interpreter %s missing: run `make venv` (or `make test`)", p)
	}
	return p
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

// Binary returns a wsgate binary built from this checkout (WSGATE_BIN
// overrides it), built once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("WSGATE_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		// One place under the checkout's git-ignored bin/, so runs leave no
		// temp directories behind; each process builds to its own name and
		// renames, so test packages built in parallel never see half a file.
		dir := filepath.Join(RepoRoot(), "bin")
		if buildErr = os.MkdirAll(dir, 0o755); buildErr != nil {
			return
		}
		buildPath = filepath.Join(dir, "wsgate-test")
		tmp := fmt.Sprintf("%s.%d", buildPath, os.Getpid())
		cmd := exec.Command("go", "build", "-o", tmp, "./cmd/wsgate")
		cmd.Dir = RepoRoot()
		if buildOut, buildErr = cmd.CombinedOutput(); buildErr == nil {
			buildErr = os.Rename(tmp, buildPath)
		}
	})
	if buildErr != nil {
		t.Fatalf("building wsgate: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}
