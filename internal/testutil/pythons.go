package testutil

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Python is one CPython the runtime is tested on.
type Python struct {
	Version string // "3.9"
	Path    string // the interpreter itself, no virtualenv
}

// Pythons returns every CPython from 3.9 up that the machine has, one per
// minor version, oldest first, as scripts/pythons.sh finds them (PATH and the
// version managers' folders; docs/testing.md says how to add one). Without
// both a 3.9 and a 3.12+ the test skips, which fails it under `make test`.
func Pythons(t testing.TB) []Python {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(RepoRoot(), "scripts", "pythons.sh"), "--require")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		Skip(t, "CPython 3.9 and 3.12+ not both found: %s", strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		t.Fatalf("scripts/pythons.sh: %v\n%s", err, stderr.Bytes())
	}
	var found []Python
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		version, path, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("scripts/pythons.sh printed %q, want \"VERSION PATH\"", line)
		}
		found = append(found, Python{Version: version, Path: path})
	}
	return found
}
