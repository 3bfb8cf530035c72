package reload

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/testutil"
)

// The files --reload watches as configuration: the top file and every file
// a `use = config:` chain or a composite reached, inside the working
// directory or not.
func TestConfigFiles(t *testing.T) {
	base := t.TempDir()
	project := filepath.Join(base, "project")
	shared := filepath.Join(base, "shared")
	files := map[string]string{
		filepath.Join(project, "development.ini"): "[composite:main]\nuse = egg:Paste#urlmap\n/ = home\n/api = config:api.ini\n\n" +
			"[app:home]\nuse = config:../shared/base.ini#greeter\n",
		filepath.Join(project, "api.ini"):      "[app:main]\npaste.app_factory = api:make\n",
		filepath.Join(shared, "base.ini"):      "[app:greeter]\npaste.app_factory = greeter:make\n",
		filepath.Join(shared, "unrelated.ini"): "[app:main]\npaste.app_factory = x:y\n",
		filepath.Join(project, "api.py"):       "def make(global_conf, **local):\n    return None\n",
		filepath.Join(project, "greeter.py"):   "def make(global_conf, **local):\n    return None\n",
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	app, err := config.LoadApp(filepath.Join(project, "development.ini"), config.Options{Dir: project})
	if err != nil {
		t.Fatal(err)
	}
	// A composite's applications join the tree when Resolve loads them.
	if err := config.Resolve(app, testutil.VenvPython(t), []string{project}); err != nil {
		t.Fatal(err)
	}
	got := configFiles(app, project)
	for _, want := range []string{filepath.Join(project, "development.ini"), filepath.Join(project, "api.ini"), filepath.Join(shared, "base.ini")} {
		if !got[want] {
			t.Errorf("configFiles misses %s: %v", want, got)
		}
	}
	if got[filepath.Join(shared, "unrelated.ini")] {
		t.Errorf("configFiles lists a file the configuration never read: %v", got)
	}
	if configFiles(nil, project) == nil || len(configFiles(nil, project)) != 0 {
		t.Errorf("configFiles(nil, project) (serve --app) should be empty")
	}

	// A `use = config:` chain to a file outside the project is in the tree
	// before Resolve.
	home, err := config.LoadApp(filepath.Join(project, "development.ini")+"#home", config.Options{Dir: project})
	if err != nil {
		t.Fatal(err)
	}
	got = configFiles(home, project)
	if want := []string{filepath.Join(project, "development.ini"), filepath.Join(shared, "base.ini")}; len(got) != 2 || !got[want[0]] || !got[want[1]] {
		t.Errorf("configFiles of #home = %v, want %q", got, want)
	}
}

// Only the changed modules' bytecode goes; a module whose name holds glob
// characters is matched literally.
func TestDropBytecode(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "__pycache__")
	if err := os.Mkdir(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"views.cpython-311.pyc", "views.cpython-39.pyc", "views_extra.cpython-311.pyc",
		"models.cpython-311.pyc", "odd[1].cpython-311.pyc", "odd1.cpython-311.pyc"} {
		if err := os.WriteFile(filepath.Join(cache, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dropBytecode([]string{filepath.Join(dir, "views.py"), filepath.Join(dir, "odd[1].py"), filepath.Join(dir, "settings.ini")}, log)
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{"models.cpython-311.pyc", "odd1.cpython-311.pyc", "views_extra.cpython-311.pyc"}
	if !slices.Equal(left, want) {
		t.Fatalf("left %q, want %q", left, want)
	}
}

func TestChangedList(t *testing.T) {
	var paths []string
	for i := range 12 {
		paths = append(paths, filepath.Join("/srv", "m"+strconv.Itoa(i)+".py"))
	}
	if got, want := changedList(paths[:2]), "/srv/m0.py /srv/m1.py"; got != want {
		t.Errorf("changedList = %q, want %q", got, want)
	}
	got := changedList(paths)
	if !strings.HasSuffix(got, " /srv/m9.py (and 2 more)") || strings.Contains(got, "m10") {
		t.Errorf("changedList of 12 = %q, want 10 paths then (and 2 more)", got)
	}
}

// What --reload watches: the workers' directory (not /), the --pythonpath
// directories as the workers read them (relative ones from their directory),
// then the configuration's files.
func TestRoots(t *testing.T) {
	r := &Reloader{workDir: "/srv/app", pythonPath: []string{"lib", "/opt/shared"},
		configFiles: map[string]bool{"/srv/app/development.ini": true, "/etc/wsgate/base.ini": true}}
	want := []string{"/srv/app", "/srv/app/lib", "/opt/shared", "/etc/wsgate/base.ini", "/srv/app/development.ini"}
	if got := r.roots(); !slices.Equal(got, want) {
		t.Errorf("roots() = %q, want %q", got, want)
	}
	r.workDir = "/"
	if got := r.roots(); slices.Contains(got, "/") {
		t.Errorf("roots() in / = %q: the whole file system would be walked", got)
	}
}
