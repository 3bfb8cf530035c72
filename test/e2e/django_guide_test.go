package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// djGuideINI returns the INI block of docs/django.md's guide whose first line
// is "# <name> …", so the guide's files are the ones tested.
func djGuideINI(t *testing.T, name string) string {
	t.Helper()
	for _, b := range docBlocks(t, "docs/django.md", djGuide) {
		if m := docININame.FindStringSubmatch(b.text); b.lang == "ini" && m != nil && m[1] == name {
			return b.text
		}
	}
	t.Fatalf("docs/django.md's guide has no ```ini block starting with # %s", name)
	return ""
}

// djGuide is the heading of docs/django.md's guide.
const djGuide = "From `django-admin startproject` to production"

// The guide of docs/django.md, step by step: startproject, the three INI
// files as printed there, check, migrate, production without and with its
// secret, serve.
func TestDjangoGuideFromStartprojectToProduction(t *testing.T) {
	py := testutil.VenvPython(t)
	root := t.TempDir()
	startproject := exec.Command(py, "-m", "django", "startproject", "mysite")
	startproject.Dir = root
	if out, err := startproject.CombinedOutput(); err != nil {
		t.Fatalf("django-admin startproject: %v\n%s", err, out)
	}
	dir := filepath.Join(root, "mysite")
	for _, name := range []string{"base.ini", "development.ini", "production.ini"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(djGuideINI(t, name)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	r := djRun(t, dir, "", nil, "check", "development.ini")
	if r.status != 0 || !regexp.MustCompile(`TIME_ZONE = 'Europe/London'\s+← base\.ini:\d+ \[app:main\] TIME_ZONE`).MatchString(r.stdout) {
		t.Fatalf("check development.ini: want status 0 and TIME_ZONE's origin in base.ini, got %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	if r := djRun(t, dir, "", nil, "manage", "development.ini", "migrate", "--verbosity", "0"); r.status != 0 {
		t.Fatalf("manage migrate: %d\n%s", r.status, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "db.sqlite3")); err != nil {
		t.Fatalf("the database base.ini names was not created: %v", err)
	}
	r = djRun(t, dir, "", nil, "manage", "production.ini", "check")
	if r.status != 1 || !strings.Contains(r.stderr, "[app:main] SECRET_KEY: references ${secret_key}, which is not defined") {
		t.Fatalf("production.ini without --set secret_key: want the one-line error, got %d\n%s", r.status, r.stderr)
	}
	r = djRun(t, dir, "", nil, "manage", "--set", "secret_key=from-the-command-line", "production.ini", "collectstatic", "--noinput")
	if r.status != 0 {
		t.Fatalf("manage --set secret_key=… production.ini collectstatic: %d\n%s", r.status, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "static", "admin")); err != nil {
		t.Fatalf("collectstatic did not fill the STATIC_ROOT base.ini names: %v", err)
	}

	srv := harness.Start(t, harness.Options{Args: []string{"--workers", "1", "development.ini"}, Dir: dir, Python: py})
	req, _ := http.NewRequest("GET", srv.URL+"/admin/login/", nil)
	req.Host = "localhost" // development.ini's ALLOWED_HOSTS
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /admin/login/ on the development server: %d", resp.StatusCode)
	}
	srv.Stop()
}
