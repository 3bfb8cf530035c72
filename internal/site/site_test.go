package site_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/site"
	"github.com/wsgate/wsgate/internal/testutil"
)

// project writes site.ini (with the given server section) and a module
// found only through the section's pythonpath.
func project(t *testing.T, server string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"lib/sitemod.py": "def make_app(global_conf, **local):\n    return None\n",
		"site.ini":       "[app:main]\nuse = call:sitemod:make_app\n\n[server:main]\n" + server,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The server section fills what the command line left out, a relative
// pythonpath is taken from chdir, and the flags win.
func TestLoadReadsTheServerSection(t *testing.T) {
	py := testutil.VenvPython(t)
	dir := project(t, "python = "+py+"\nchdir = %(here)s\npythonpath = lib\n")
	t.Setenv("WSGATE_PYTHON", "")
	st, err := site.Load(site.Options{URI: filepath.Join(dir, "site.ini")})
	if err != nil {
		t.Fatal(err)
	}
	if st.Python != py || st.Chdir != dir || !slices.Equal(st.PythonPath, []string{"lib"}) {
		t.Errorf("python %q chdir %q pythonpath %q", st.Python, st.Chdir, st.PythonPath)
	}
	if got, want := st.ResolvePath(), []string{filepath.Join(dir, "lib"), dir}; !slices.Equal(got, want) {
		t.Errorf("ResolvePath %q, want %q", got, want)
	}
	if st.App.Factory != "sitemod:make_app" {
		t.Errorf("factory %q: resolved without the section's path?", st.App.Factory)
	}
	other := t.TempDir()
	st, err = site.Load(site.Options{URI: filepath.Join(dir, "site.ini"), Chdir: other, PythonPath: []string{filepath.Join(dir, "lib")}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Chdir != other || !slices.Equal(st.PythonPath, []string{filepath.Join(dir, "lib")}) {
		t.Errorf("flags did not win: chdir %q pythonpath %q", st.Chdir, st.PythonPath)
	}
}

// A bad chdir or interpreter is named where it was written.
func TestLoadNamesBadPaths(t *testing.T) {
	py := testutil.VenvPython(t)
	t.Setenv("WSGATE_PYTHON", "")
	dir := project(t, "python = "+py+"\nchdir = %(here)s/missing\n")
	_, err := site.Load(site.Options{URI: filepath.Join(dir, "site.ini")})
	if err == nil || !strings.Contains(err.Error(), "site.ini:6 [server:main] chdir: chdir "+dir+"/missing") {
		t.Errorf("missing chdir: %v", err)
	}
	dir = project(t, "python = /nonexistent/python3\n")
	_, err = site.Load(site.Options{URI: filepath.Join(dir, "site.ini")})
	if err == nil || !strings.Contains(err.Error(), `cannot run the Python interpreter "/nonexistent/python3" (`) || !strings.Contains(err.Error(), "site.ini:5 [server:main] python") {
		t.Errorf("missing interpreter: %v", err)
	}
}

// The logging file: the configuration's own when it has [loggers] (as
// pserve), --log-config or the section's log_config (gunicorn's logconfig)
// otherwise; one named that cannot serve is refused with its place.
func TestLogConfig(t *testing.T) {
	py := testutil.VenvPython(t)
	dir := project(t, "python = "+py+"\nchdir = %(here)s\npythonpath = lib\n")
	ini := filepath.Join(dir, "site.ini")
	load := func(o site.Options) (*site.Site, error) {
		o.URI = ini
		return site.Load(o)
	}
	st, err := load(site.Options{})
	if err != nil || st.LogConfig != "" || st.Env() != nil {
		t.Fatalf("no [loggers]: LogConfig %q Env %q (%v)", st.LogConfig, st.Env(), err)
	}
	other := filepath.Join(dir, "logging.ini")
	if err := os.WriteFile(other, []byte("[loggers]\nkeys = root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err = load(site.Options{LogConfig: other})
	if err != nil || !slices.Equal(st.Env(), []string{"WSGATE_LOG_CONFIG=" + other}) {
		t.Fatalf("--log-config: Env %q (%v)", st.Env(), err)
	}
	if _, err = load(site.Options{LogConfig: ini}); err == nil || !strings.Contains(err.Error(), "--log-config: "+ini+" has no [loggers] section") {
		t.Fatalf("--log-config without [loggers]: %v", err)
	}
	if _, err = load(site.Options{LogConfig: filepath.Join(dir, "missing.ini")}); err == nil || !strings.Contains(err.Error(), "--log-config: open ") {
		t.Fatalf("--log-config missing: %v", err)
	}
	own := project(t, "python = "+py+"\nchdir = %(here)s\npythonpath = lib\nlogconfig = nowhere.ini\n")
	if _, err = site.Load(site.Options{URI: filepath.Join(own, "site.ini")}); err == nil || !strings.Contains(err.Error(), "site.ini:8 [server:main] logconfig: open nowhere.ini") {
		t.Fatalf("logconfig = nowhere.ini: %v", err)
	}
	withLoggers := project(t, "python = "+py+"\nchdir = %(here)s\npythonpath = lib\n\n[loggers]\nkeys = root\n")
	st, err = site.Load(site.Options{URI: filepath.Join(withLoggers, "site.ini")})
	if err != nil || st.LogConfig != filepath.Join(withLoggers, "site.ini") {
		t.Fatalf("the file's own [loggers]: LogConfig %q (%v)", st.LogConfig, err)
	}
}
