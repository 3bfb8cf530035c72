package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPythonsLooksWhereVersionManagersInstall runs scripts/pythons.sh in a
// made-up home: the machine's real 3.9 and newest CPython linked into uv's and
// asdf's folders must be found there, and a shim that leads nowhere and a
// virtualenv on PATH must not be taken for interpreters.
func TestPythonsLooksWhereVersionManagersInstall(t *testing.T) {
	real := Pythons(t)
	oldest, newest := real[0], real[len(real)-1]
	home, bin := t.TempDir(), t.TempDir()
	link := func(target, path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
	uv := filepath.Join(home, ".local", "share", "uv", "python", "cpython-"+oldest.Version+"-linux", "bin", "python3")
	asdf := filepath.Join(home, ".asdf", "installs", "python", newest.Version, "bin", "python3")
	link(oldest.Path, uv)
	link(newest.Path, asdf)
	for _, tool := range []string{"bash", "sort"} { // all the script needs
		path, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		link(path, filepath.Join(bin, tool))
	}
	// A pyenv shim for a version that is not installed fails; a virtualenv
	// is no interpreter of its own. Both come first on PATH.
	if err := os.WriteFile(filepath.Join(bin, "python3.10"), []byte("#!/bin/sh\necho 'pyenv: python3.10: command not found' >&2\nexit 127\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(oldest.Path, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("making a virtualenv: %v\n%s", err, out)
	}

	run := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(RepoRoot(), "scripts", "pythons.sh"), args...)
		cmd.Env = []string{"HOME=" + home, "PATH=" + filepath.Join(venv, "bin") + string(os.PathListSeparator) + bin}
		out, err := cmd.Output()
		return string(out), err
	}
	want := fmt.Sprintf("%s %s\n%s %s\n", oldest.Version, uv, newest.Version, asdf)
	if got, err := run("--require"); err != nil || got != want {
		t.Errorf("scripts/pythons.sh --require: %v\n%s\nwant\n%s", err, got, want)
	}
	if err := os.Remove(asdf); err != nil {
		t.Fatal(err)
	}
	got, err := run("--require")
	if _, failed := err.(*exec.ExitError); !failed || got != oldest.Version+" "+uv+"\n" {
		t.Errorf("without a 3.12+: %v\n%s\nwant exit 1 after listing the 3.9 alone", err, got)
	}
	if !strings.HasPrefix(oldest.Version, "3.9") {
		t.Errorf("the oldest interpreter found is %s; Pythons requires 3.9", oldest.Version)
	}
}
