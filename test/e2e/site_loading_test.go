package e2e

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// Every command reads the server section's python, pythonpath and chdir
// as serve does (internal/site): docs/demo.md's `wsgate check
// examples/demo/development.ini` works from the top of the checkout.
func TestCommandsReadTheDemoServerSection(t *testing.T) {
	root := testutil.RepoRoot()
	r := djRun(t, root, "", nil, "check", "examples/demo/development.ini")
	if r.status != 0 || !strings.Contains(r.stdout, "examples/demo/development.ini: valid") {
		t.Fatalf("check from the repository root: status %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	r = djRun(t, root, "", nil, "manage", "examples/demo/development.ini", "check")
	if r.status != 0 || !strings.Contains(r.stdout+r.stderr, "System check identified no issues") {
		t.Fatalf("manage check from the repository root: status %d\n%s%s", r.status, r.stdout, r.stderr)
	}
}

// A relative pythonpath in the server section is found from its chdir, by
// check and serve alike, wherever wsgate is started; a section without
// `use` is read (wsgate is the server).
func TestCommandsShareTheSitePaths(t *testing.T) {
	project := t.TempDir()
	if err := os.MkdirAll(filepath.Join(project, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	app := "def make_app(global_conf, **local):\n" +
		"    import os\n" +
		"    def app(environ, start_response):\n" +
		"        start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
		"        return [('cwd ' + os.getcwd()).encode()]\n" +
		"    return app\n"
	ini := "[app:main]\nuse = call:siteapp:make_app\n\n[server:main]\nchdir = %(here)s\npythonpath = lib\nworkers = 1\n"
	for name, text := range map[string]string{"lib/siteapp.py": app, "site.ini": ini} {
		if err := os.WriteFile(filepath.Join(project, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	elsewhere := t.TempDir()
	cfg := filepath.Join(project, "site.ini")
	if r := djRun(t, elsewhere, "", nil, "check", cfg); r.status != 0 || !strings.Contains(r.stdout, "siteapp:make_app") {
		t.Fatalf("check: status %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	srv := harness.Start(t, harness.Options{Dir: elsewhere, Args: []string{cfg}})
	resp, err := gwClient.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "cwd "+project {
		t.Errorf("serve: %d %q, want the worker running in %s", resp.StatusCode, body, project)
	}
	srv.Stop()
}
