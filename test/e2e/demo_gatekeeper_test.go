package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The real git client against git http-backend, run by the demo's cgi
// component behind the Django view at /git/: anyone clones, an anonymous
// push is challenged and refused, a Django user's push lands.
func demoGitCloneAndPush(t *testing.T, tmpl *demoTemplate) {
	site := tmpl.start(t)
	home := t.TempDir()
	host := strings.TrimPrefix(site.URL, "http://")
	bare := filepath.Join(site.Dir, "var", "git", "demo.git")
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := gsGit(t, home, "clone", site.URL+"/git/demo.git", clone); err != nil {
		t.Fatalf("anonymous git clone: %v\n%s", err, out)
	}
	if readme, err := os.ReadFile(filepath.Join(clone, "README.txt")); err != nil || !strings.Contains(string(readme), "git http-backend") {
		t.Fatalf("the clone's README.txt: %q, %v", readme, err)
	}
	message := "pushed by the e2e test " + demoRandom(t)
	os.WriteFile(filepath.Join(clone, "NEWS.txt"), []byte(message+"\n"), 0o644)
	if out, err := gsGit(t, home, "-C", clone, "add", "NEWS.txt"); err != nil {
		t.Fatal(out)
	}
	if out, err := gsGit(t, home, "-C", clone, "commit", "-q", "-m", message); err != nil {
		t.Fatal(out)
	}
	for _, u := range []string{
		site.URL + "/git/demo.git",
		"http://" + site.AdminUser + ":wrong-" + site.AdminPassword + "@" + host + "/git/demo.git",
	} {
		if out, err := gsGit(t, home, "-C", clone, "push", u, "HEAD:main"); err == nil {
			t.Fatalf("push to %s accepted:\n%s", u, out)
		}
	}
	if log, _ := gsGit(t, home, "--git-dir", bare, "log", "--format=%s", "main"); strings.Contains(log, message) {
		t.Fatalf("a refused push landed: %s", log)
	}
	authURL := "http://" + site.AdminUser + ":" + site.AdminPassword + "@" + host + "/git/demo.git"
	if out, err := gsGit(t, home, "-C", clone, "push", authURL, "HEAD:main"); err != nil {
		t.Fatalf("push as %s: %v\n%s", site.AdminUser, err, out)
	}
	if log, _ := gsGit(t, home, "--git-dir", bare, "log", "--format=%s", "main"); !strings.Contains(log, message) {
		t.Fatalf("the accepted push is not in %s: %s", bare, log)
	}
}

// A download Django authorises (logged in) and Go sends (X-Accel-Redirect
// through the sendfile filter), with ranges; anonymous clients are sent to
// the login page.
func demoDownloadThroughGo(t *testing.T, tmpl *demoTemplate) {
	site := tmpl.start(t)
	c := demoClient(t)
	url := site.URL + "/downloads/wsgate-demo-report.txt"
	resp, _ := demoGet(t, c, url)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/accounts/login/") {
		t.Fatalf("anonymous download: %s to %q, want the login page", resp.Status, resp.Header.Get("Location"))
	}
	demoLogin(t, c, site.URL+resp.Header.Get("Location"), site.AdminUser, site.AdminPassword)
	want, err := os.ReadFile(filepath.Join(site.Dir, "var", "downloads", "wsgate-demo-report.txt"))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := demoGet(t, c, url)
	if resp.StatusCode != 200 || body != string(want) || resp.Header.Get("X-Accel-Redirect") != "" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="wsgate-demo-report.txt"` || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("logged-in download: %s %v, %d bytes of %d", resp.Status, resp.Header, len(body), len(want))
	}
	// Go sent it (Django's answer has no body and no ranges): a range is
	// honoured.
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Range", "bytes=0-9")
	r, err := c.Do(req)
	resp, body = demoRead(t, "ranged download", r, err)
	if resp.StatusCode != http.StatusPartialContent || body != string(want[:10]) {
		t.Errorf("ranged download: %s %q", resp.Status, body)
	}
}
