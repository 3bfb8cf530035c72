package python

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/version"
)

// interpreter is the Python the tests run: WSGATE_TEST_PYTHON, else python3.
func interpreter(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WSGATE_TEST_PYTHON"); p != "" {
		return p
	}
	return "python3"
}

// fakeInstall writes a wsgate package of the given version into a fresh
// directory (standing in for site-packages) and returns that directory.
func fakeInstall(t *testing.T, pkgVersion string) string {
	t.Helper()
	dir := t.TempDir()
	pkg := filepath.Join(dir, "wsgate")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "__init__.py"), []byte("__version__ = \""+pkgVersion+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// workerPythonPath is the PYTHONPATH Command gives a worker with site on
// --pythonpath, and the directory of the unpacked embedded runtime.
func workerPythonPath(t *testing.T, site string) (paths []string, unpacked string) {
	t.Helper()
	cmd, err := Command(interpreter(t), []string{site}, "wsgate.worker")
	if err != nil {
		t.Fatal(err)
	}
	if unpacked, err = Unpack(); err != nil {
		t.Fatal(err)
	}
	for _, kv := range cmd.Env {
		if v, ok := strings.CutPrefix(kv, "PYTHONPATH="); ok {
			return filepath.SplitList(v), unpacked
		}
	}
	return nil, unpacked
}

func TestChooseInstalledPackageOfTheSameVersion(t *testing.T) {
	t.Setenv("PYTHONPATH", "")
	t.Chdir(t.TempDir()) // not python/, where the checkout's own wsgate package is
	site := fakeInstall(t, version.String())
	rt := Choose(interpreter(t), []string{site})
	if !rt.Installed || rt.Package != filepath.Join(site, "wsgate") {
		t.Fatalf("Choose = %+v, want the installed package in %s", rt, site)
	}
	paths, unpacked := workerPythonPath(t, site)
	for _, p := range paths {
		if p == unpacked {
			t.Fatalf("PYTHONPATH %v holds the embedded runtime, which would shadow the installed one", paths)
		}
	}
}

func TestChooseEmbeddedWhenTheInstalledVersionDiffers(t *testing.T) {
	t.Setenv("PYTHONPATH", "")
	t.Chdir(t.TempDir()) // not python/, where the checkout's own wsgate package is
	site := fakeInstall(t, "0.0.1-other")
	rt := Choose(interpreter(t), []string{site})
	if rt.Installed || !strings.Contains(rt.Why, "0.0.1-other") || !strings.Contains(rt.Why, version.String()) {
		t.Fatalf("Choose = %+v, want the embedded runtime, naming both versions", rt)
	}
	if got, unpacked := workerPythonPath(t, site); len(got) < 2 || got[0] != unpacked || got[1] != site {
		t.Fatalf("PYTHONPATH = %v, want the embedded runtime %s first, then %s", got, unpacked, site)
	}
}

func TestChooseEmbeddedWithoutAnInstalledPackage(t *testing.T) {
	t.Setenv("PYTHONPATH", "")
	t.Chdir(t.TempDir())
	if rt := Choose(interpreter(t), nil); rt.Installed || !strings.Contains(rt.Why, "cannot import") {
		t.Fatalf("Choose = %+v, want the embedded runtime: the interpreter has no wsgate", rt)
	}
	if rt := Choose(filepath.Join(t.TempDir(), "no-python"), nil); rt.Installed || !strings.Contains(rt.Why, "cannot run") {
		t.Fatalf("Choose = %+v, want the embedded runtime and why", rt)
	}
}

func TestInterpreterOrder(t *testing.T) {
	t.Setenv(EnvInterpreter, "")
	if got := Interpreter("/flag/python", "/config/python"); got != "/flag/python" {
		t.Fatalf("Interpreter = %q, want the flag's", got)
	}
	t.Setenv(EnvInterpreter, "/env/python")
	if got := Interpreter("", "/config/python"); got != "/env/python" {
		t.Fatalf("Interpreter = %q, want WSGATE_PYTHON's", got)
	}
	t.Setenv(EnvInterpreter, "")
	if got := Interpreter("", "/config/python"); got != "/config/python" {
		t.Fatalf("Interpreter = %q, want the configuration's", got)
	}
	// The test binary has no python3 beside it: PATH's.
	if got := Interpreter("", ""); got != "python3" {
		t.Fatalf("Interpreter = %q, want python3", got)
	}
}

// The probe's answer is kept, but not past an upgrade of the installed
// package: workers of this binary must not import another version.
func TestChooseNoticesAnUpgradedPackage(t *testing.T) {
	t.Setenv("PYTHONPATH", "")
	t.Chdir(t.TempDir())
	site := fakeInstall(t, version.String())
	if rt := Choose(interpreter(t), []string{site}); !rt.Installed {
		t.Fatalf("Choose = %+v, want the installed package", rt)
	}
	init := filepath.Join(site, "wsgate", "__init__.py")
	if err := os.Remove(init); err != nil { // as pip does: a new file
		t.Fatal(err)
	}
	if err := os.WriteFile(init, []byte("__version__ = \"999.0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rt := Choose(interpreter(t), []string{site}); rt.Installed || !strings.Contains(rt.Why, "999.0") {
		t.Fatalf("after the upgrade Choose = %+v, want the embedded runtime naming 999.0", rt)
	}
}
