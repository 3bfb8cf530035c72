package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
)

// TestMakeVenvInstallsWhatVenvNeedsFirst: Debian's python3 cannot make a
// virtualenv until python3-venv is installed, so on a fresh machine `make venv`
// (and `make demo`, `make test`) must install it before its first
// `python3 -m venv`. The interpreter here lacks ensurepip as Debian's does
// without the package; make -n shows the order of the recipe's commands.
func TestMakeVenvInstallsWhatVenvNeedsFirst(t *testing.T) {
	python := filepath.Join(t.TempDir(), "python3")
	if err := os.WriteFile(python, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "-n", "-B", "venv", "PYTHON="+python)
	cmd.Dir = testutil.RepoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n venv: %v\n%s", err, out)
	}
	deps := strings.Index(string(out), "scripts/system-deps.sh python3-venv")
	venv := strings.Index(string(out), python+" -m venv")
	if deps < 0 || venv < 0 || deps > venv {
		t.Errorf("make venv must install python3-venv (scripts/system-deps.sh) before `%s -m venv`; it runs:\n%s", python, out)
	}
}
