package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// development.ini's `reload = true` and `reload_suffixes = .html`: editing a
// template of the running demo reloads the workers, and the next request
// sees the edit (Django alone would keep serving its cached template).
func demoReloadsOnTemplateEdit(t *testing.T, tmpl *demoTemplate) {
	site := tmpl.start(t)
	site.Server.WaitLog("--reload: watching") // edits from now on are seen

	if _, page := demoGet(t, demoClient(t), site.URL+"/"); !strings.Contains(page, "<h2>Try it</h2>") {
		t.Fatalf("the home page has no <h2>Try it</h2> to edit\n%s", page)
	}
	template := filepath.Join(site.Dir, "demo", "templates", "demo", "home.html")
	data, err := os.ReadFile(template)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), "<h2>Try it</h2>", "<h2>Try it, edited</h2>", 1)
	if err := os.WriteFile(template, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if line := site.Server.WaitLog("wsgate: reloading, changed:"); !strings.Contains(line, "demo/templates/demo/home.html") {
		t.Fatalf("the reload names %q, want the edited template", line)
	}
	site.Server.WaitLog("reload complete")
	if _, page := demoGet(t, demoClient(t), site.URL+"/"); !strings.Contains(page, "<h2>Try it, edited</h2>") {
		t.Fatalf("after the reload the home page still shows the old template\n%s", page)
	}
}
