package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// demoSite is a private copy of examples/demo (fresh var/, own superuser
// password) prepared as `make demo` prepares it and served by the real
// `wsgate serve development.ini`.
type demoSite struct {
	Dir           string // the copy of examples/demo
	URL           string // http://127.0.0.1:PORT
	AdminUser     string
	AdminPassword string
	Server        *harness.Server
}

// serve runs `wsgate serve CONFIG` from dir.
func (site *demoSite) serve(t *testing.T, dir, config string) {
	t.Helper()
	site.Server = harness.Start(t, harness.Options{Args: []string{config}, Dir: dir})
	site.URL = site.Server.URL
}

// demoPrepare copies the demo into a temporary directory, gives its
// development.ini a superuser password of its own (so a passing login proves
// the INI value made the account), and runs `wsgate manage development.ini
// migrate` and `demo_setup` there: what `make demo` does before serving.
func demoPrepare(t *testing.T) *demoSite {
	t.Helper()
	site := &demoSite{Dir: demoCopy(t), AdminUser: "admin", AdminPassword: "pw-" + demoRandom(t)}
	demoSetINIDefault(t, filepath.Join(site.Dir, "development.ini"), "demo_admin_password", site.AdminPassword)
	demoManage(t, site.Dir, "migrate", "--noinput")
	demoManage(t, site.Dir, "demo_setup")
	return site
}

// demoTemplate is the demo prepared once (demoPrepare) and never served.
// Each test takes a copy of its own, var/ included, so every test starts
// from the same fresh first-run state and none sees another's changes.
type demoTemplate struct{ prepared *demoSite }

func demoNewTemplate(t *testing.T) *demoTemplate {
	t.Helper()
	return &demoTemplate{prepared: demoPrepare(t)}
}

// copy is a private copy of the prepared demo, not yet served.
func (tmpl *demoTemplate) copy(t *testing.T) *demoSite {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	demoCopyTree(t, tmpl.prepared.Dir, dir, false)
	return &demoSite{Dir: dir, AdminUser: tmpl.prepared.AdminUser, AdminPassword: tmpl.prepared.AdminPassword}
}

// start serves a private copy of the prepared demo with
// `wsgate serve development.ini`.
func (tmpl *demoTemplate) start(t *testing.T) *demoSite {
	t.Helper()
	site := tmpl.copy(t)
	site.serve(t, site.Dir, "development.ini")
	return site
}

// demoCopy copies examples/demo, without its var/ state, into a new
// temporary directory.
func demoCopy(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "demo")
	demoCopyTree(t, filepath.Join(testutil.RepoRoot(), "examples", "demo"), dst, true)
	return dst
}

// demoCopyTree copies a demo project directory, leaving out byte-code and,
// when skipVar is set, the var/ state.
func demoCopyTree(t *testing.T, src, dst string, skipVar bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() && ((skipVar && rel == "var") || d.Name() == "__pycache__") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copying the demo %s: %v", src, err)
	}
}

// demoSetINIDefault rewrites `key = …` in an INI file (the demo keeps these
// keys in [DEFAULT]), failing the test when the key is not there.
func demoSetINIDefault(t *testing.T, path, key, value string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `\s*=.*$`)
	if !re.Match(data) {
		t.Fatalf("%s has no %s line", path, key)
	}
	if err := os.WriteFile(path, re.ReplaceAll(data, []byte(key+" = "+value)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// demoManage runs `wsgate manage development.ini ARGS…` in dir and returns its
// output, failing the test unless it succeeds.
func demoManage(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := demoManageResult(t, dir, nil, append([]string{"development.ini"}, args...)...)
	if err != nil {
		t.Fatalf("wsgate manage development.ini %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// demoManageResult runs `wsgate manage ARGS…` in dir with extra environment
// entries and returns its output and error.
func demoManageResult(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(testutil.Binary(t), append([]string{"manage"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "WSGATE_PYTHON="+testutil.VenvPython(t)), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func demoRandom(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// demoClient is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each step of a login flow.
func demoClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// demoGet fetches a URL and returns the response with its body read.
func demoGet(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	return demoRead(t, "GET "+url, resp, err)
}

// demoPostForm posts a form and returns the response with its body read.
func demoPostForm(t *testing.T, c *http.Client, url string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(url, form)
	return demoRead(t, "POST "+url, resp, err)
}

func demoRead(t *testing.T, what string, resp *http.Response, err error) (*http.Response, string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading the body: %v", what, err)
	}
	return resp, string(body)
}

var demoCSRFInput = regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`)

// demoCSRFToken is the CSRF token of the form on an HTML page.
func demoCSRFToken(t *testing.T, page string) string {
	t.Helper()
	m := demoCSRFInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrfmiddlewaretoken in the page:\n%s", page)
	}
	return m[1]
}

// demoLogin logs a client in through a Django login form (the admin's or the
// site's), CSRF token and all, and returns where the login redirected to.
func demoLogin(t *testing.T, c *http.Client, loginURL, user, password string) string {
	t.Helper()
	resp, page := demoGet(t, c, loginURL)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", loginURL, resp.Status)
	}
	u, _ := url.Parse(loginURL)
	form := url.Values{
		"csrfmiddlewaretoken": {demoCSRFToken(t, page)},
		"username":            {user},
		"password":            {password},
		"next":                {u.Query().Get("next")},
	}
	resp, page = demoPostForm(t, c, loginURL, form)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("logging in as %s at %s: %s, want a redirect\n%s", user, loginURL, resp.Status, page)
	}
	return resp.Header.Get("Location")
}
