package e2e

import (
	"fmt"
	"html"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The demo's home page lists the settings the INI files gave, each with the
// file:line it came from: development.ini's own, those it inherits from
// base.ini through `use = config:base.ini#django`, and DEBUG from `debug` in
// [DEFAULT]; secrets are not shown. The server runs from outside the project
// (`wsgate serve demo/development.ini`): [server:main]'s chdir finds it.
// The static files come from Go (django_full).
func demoHomePageShowsINISettings(t *testing.T, tmpl *demoTemplate) {
	site := tmpl.copy(t)
	project := filepath.Base(site.Dir) // files are named as the command line named them
	site.serve(t, filepath.Dir(site.Dir), filepath.Join(project, "development.ini"))
	resp, page := demoGet(t, demoClient(t), site.URL+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %s\n%s", resp.Status, page)
	}
	rows := demoSettingRows(page)
	demoCheckServerTiming(t, resp)

	want := []struct{ name, value, file, where string }{
		{"DEMO_SITE_TITLE", "wsgate demo (development)", "development.ini", "[app:django] DEMO_SITE_TITLE"},
		{"ALLOWED_HOSTS", "['127.0.0.1', 'localhost', '[::1]']", "development.ini", "[app:django] ALLOWED_HOSTS"},
		{"TIME_ZONE", "Europe/London", "base.ini", "[app:django] TIME_ZONE"},
		{"DEBUG", "True", "development.ini", "[DEFAULT] debug"},
	}
	for _, w := range want {
		row, ok := rows[w.name]
		if !ok {
			t.Fatalf("the home page lists no %s; it lists %v", w.name, rows)
		}
		key := strings.Fields(w.where)[1]
		origin := fmt.Sprintf("%s:%d %s", filepath.Join(project, w.file), demoLineOf(t, filepath.Join(site.Dir, w.file), key), w.where)
		if row[0] != w.value || row[1] != origin {
			t.Errorf("%s: shown as %q from %q, want %q from %q", w.name, row[0], row[1], w.value, origin)
		}
	}
	// base.ini's var_dir = %(here)s/var, through ${var_dir}: this copy's own var/.
	if db := rows["DATABASES"][0]; !strings.Contains(db, filepath.Join(site.Dir, "var", "demo.sqlite3")) {
		t.Errorf("DATABASES shown as %q, want this copy's var/demo.sqlite3", db)
	}
	if v := rows["SECRET_KEY"][0]; v != "(hidden)" {
		t.Errorf("SECRET_KEY shown as %q, want (hidden)", v)
	}
	if strings.Contains(page, site.AdminPassword) || strings.Contains(page, "development-only-") {
		t.Errorf("the home page shows a secret\n%s", page)
	}
	if _, listed := rows["INSTALLED_APPS"]; listed {
		t.Errorf("INSTALLED_APPS, from the settings module, is listed as an INI setting")
	}
	// django_full with debug on: the admin's stylesheet comes from the Go
	// master (the admin app's static/ directory), not from Django, whose
	// every response carries demo/wsgi.py's Server-Timing.
	resp, css := demoGet(t, demoClient(t), site.URL+"/static/admin/css/base.css")
	if resp.StatusCode != http.StatusOK || !strings.Contains(css, "body") || resp.Header.Get("Server-Timing") != "" ||
		resp.Header.Get("ETag") == "" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("GET /static/admin/css/base.css: %s, Server-Timing %q, ETag %q, Vary %q: want the file, from Go", resp.Status,
			resp.Header.Get("Server-Timing"), resp.Header.Get("ETag"), resp.Header.Get("Vary"))
	}
}

var demoServerTiming = regexp.MustCompile(`^django;dur=[0-9]+\.[0-9]$`)

// demoCheckServerTiming checks the header demo/wsgi.py's WSGI middleware
// adds: proof that wsgate serves the object WSGI_APPLICATION names.
func demoCheckServerTiming(t *testing.T, resp *http.Response) {
	t.Helper()
	if got := resp.Header.Get("Server-Timing"); !demoServerTiming.MatchString(got) {
		t.Errorf("Server-Timing: %q, want what demo/wsgi.py's middleware adds (django;dur=MS)", got)
	}
}

var demoSettingRow = regexp.MustCompile(`<tr><td><code>([A-Z_]+)</code></td><td><code>(.*?)</code></td><td>(.*?)</td></tr>`)

// demoSettingRows reads the home page's table: name → [value, origin].
func demoSettingRows(page string) map[string][2]string {
	rows := map[string][2]string{}
	for _, m := range demoSettingRow.FindAllStringSubmatch(page, -1) {
		rows[m[1]] = [2]string{html.UnescapeString(m[2]), html.UnescapeString(m[3])}
	}
	return rows
}

// demoLineOf is the 1-based number of the line of an INI file that sets key.
func demoLineOf(t *testing.T, path, key string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(key) + `\s*=`)
	for i, line := range strings.Split(string(data), "\n") {
		if re.MatchString(line) {
			return i + 1
		}
	}
	t.Fatalf("%s sets no %s", path, key)
	return 0
}
