package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
)

// TestOperationsSystemdUnits: the unit files of docs/operations.md, as
// written (with this build's binary in ExecStart), pass systemd-analyze
// verify without a single complaint: no unknown key, no bad value.
func TestOperationsSystemdUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testutil.Skip(t, "systemd-analyze not installed (Debian's systemd package; make test installs it)")
	}
	doc, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"wsgate.socket", "wsgate-redirect.socket", "wsgate.service"} {
		m := regexp.MustCompile("`/etc/systemd/system/" + regexp.QuoteMeta(name) + "`:\n\n```ini\n((?s:.*?))```").FindSubmatch(doc)
		if m == nil {
			t.Fatalf("docs/operations.md has no %s block", name)
		}
		unit := strings.ReplaceAll(string(m[1]), "/usr/local/bin/wsgate", testutil.Binary(t))
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, path)
	}
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
