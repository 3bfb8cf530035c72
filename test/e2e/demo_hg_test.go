package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
)

// The real `hg` client against hgweb embedded in the demo's Django view:
// anyone clones; a push needs a Django user's credentials, which the view
// checks against Django's users before hgweb runs.
func demoHgCloneAndPush(t *testing.T, tmpl *demoTemplate) {
	site := tmpl.start(t)
	hg := demoHgCommand(t)
	repoURL := site.URL + "/hg/demo"
	host := strings.TrimPrefix(site.URL, "http://")
	clone := filepath.Join(t.TempDir(), "clone")

	if out, err := hg("clone", repoURL, clone); err != nil {
		t.Fatalf("anonymous hg clone %s: %v\n%s", repoURL, err, out)
	}
	readme, err := os.ReadFile(filepath.Join(clone, "README.txt"))
	if err != nil || !strings.Contains(string(readme), "Mercurial repository") {
		t.Fatalf("the clone's README.txt: %q, %v", readme, err)
	}

	message := "pushed by the e2e test " + demoRandom(t)
	if err := os.WriteFile(filepath.Join(clone, "NEWS.txt"), []byte(message+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := hg("--cwd", clone, "commit", "--addremove", "--user", "e2e <e2e@example.com>", "--message", message); err != nil {
		t.Fatalf("hg commit: %v\n%s", err, out)
	}

	// (An unknown user, malformed credentials: examples/demo/demo/tests.py.)
	refused := []struct{ name, url, want string }{
		{"anonymous", repoURL, "authorization required"},
		{"wrong password", "http://" + site.AdminUser + ":wrong-" + site.AdminPassword + "@" + host + "/hg/demo", "authorization failed"},
	}
	for _, r := range refused {
		out, err := hg("--cwd", clone, "push", r.url)
		if err == nil || !strings.Contains(out, r.want) {
			t.Fatalf("%s push: err=%v, want a refusal saying %q\n%s", r.name, err, r.want, out)
		}
	}
	if log := demoHgLog(t, hg, filepath.Join(site.Dir, "var", "hg", "demo")); strings.Contains(log, message) {
		t.Fatalf("a refused push reached the repository anyway:\n%s", log)
	}

	authURL := "http://" + site.AdminUser + ":" + site.AdminPassword + "@" + host + "/hg/demo"
	if out, err := hg("--cwd", clone, "push", authURL); err != nil || !strings.Contains(out, "added 1 changesets") {
		t.Fatalf("push as %s: %v\n%s", site.AdminUser, err, out)
	}
	if log := demoHgLog(t, hg, filepath.Join(site.Dir, "var", "hg", "demo")); !strings.Contains(log, message) {
		t.Fatalf("the accepted push is not in the served repository:\n%s", log)
	}

	// What one user pushed, anyone clones.
	second := filepath.Join(t.TempDir(), "second")
	if out, err := hg("clone", repoURL, second); err != nil {
		t.Fatalf("second anonymous clone: %v\n%s", err, out)
	}
	if news, err := os.ReadFile(filepath.Join(second, "NEWS.txt")); err != nil || strings.TrimSpace(string(news)) != message {
		t.Fatalf("the second clone's NEWS.txt: %q, %v", news, err)
	}
}

// demoHgCommand returns a runner of the .venv's Mercurial with no user or
// system configuration, so the machine's hgrc cannot change the outcome.
func demoHgCommand(t *testing.T) func(args ...string) (string, error) {
	t.Helper()
	hgPath := filepath.Join(filepath.Dir(testutil.VenvPython(t)), "hg")
	if _, err := os.Stat(hgPath); err != nil {
		t.Fatalf("Mercurial's hg is not in the virtualenv (%s): run `make venv`", hgPath)
	}
	home := t.TempDir()
	return func(args ...string) (string, error) {
		cmd := exec.Command(hgPath, append([]string{"--noninteractive"}, args...)...)
		cmd.Env = append(os.Environ(), "HGRCPATH=", "HGPLAIN=1", "HOME="+home)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

func demoHgLog(t *testing.T, hg func(args ...string) (string, error), repo string) string {
	t.Helper()
	out, err := hg("log", "-R", repo, "--template", "{desc}\n")
	if err != nil {
		t.Fatalf("hg log -R %s: %v\n%s", repo, err, out)
	}
	return out
}
