package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
)

// The demo's own Django tests (examples/demo/demo/tests.py) pass under
// `wsgate test development.ini demo`, with the settings the INI files give.
func TestDemoDjangoTestsPassUnderWsgateTest(t *testing.T) {
	dir := demoCopy(t)
	cmd := exec.Command(testutil.Binary(t), "test", "development.ini", "demo")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WSGATE_PYTHON="+testutil.VenvPython(t))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("wsgate test development.ini demo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Ran ") || strings.Contains(string(out), "Ran 0 tests") {
		t.Fatalf("wsgate test development.ini demo ran no test\n%s", out)
	}
}
