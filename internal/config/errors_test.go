package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/testutil"
)

// writeFiles writes name → content into a fresh directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestErrors checks the exact one-line message of every kind of mistake:
// file:LINE [section] option: what is wrong (and what would be right).
func TestErrors(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		uri   string
		want  string
	}{
		{"file not found", nil, "missing.ini", "missing.ini: cannot read the configuration: no such file"},
		{"included file not found", map[string]string{"a.ini": "[app:main]\nuse = config:nope.ini\n"}, "a.ini",
			"a.ini:2 [app:main] use: cannot read nope.ini: no such file"},
		{"directory instead of file", map[string]string{"d/x": ""}, "d", "d: cannot read the configuration: it is a directory, not an INI file"},
		{"not UTF-8", map[string]string{"a.ini": "[app:main]\nuse = egg:X\nname = caf\xe9\n"}, "a.ini",
			"a.ini:3: byte 0xe9 at offset 33 is not UTF-8 (save the file as UTF-8)"},
		{"unknown section kind", map[string]string{"a.ini": "[ap:main]\nuse = egg:X\n"}, "a.ini",
			`a.ini: a.ini has no application section named "main" (looked for [app:…], [application:…], [composite:…], [composit:…], [pipeline:…], [filter-app:…]); found [ap:main]`},
		{"section without kind", map[string]string{"a.ini": "[main]\nuse = egg:X\n"}, "a.ini",
			`a.ini: a.ini has no application section named "main" (looked for [app:…], [application:…], [composite:…], [composit:…], [pipeline:…], [filter-app:…]); found [main] (a section name needs a kind such as app:)`},
		{"missing use", map[string]string{"a.ini": "[app:main]\ndebug = true\n"}, "a.ini",
			"a.ini:1 [app:main]: no `use` and no factory: add `use = egg:Dist#name`, `use = call:module:object`, `use = another-section`, or one of paste.app_factory, paste.composite_factory, paste.composit_factory = module:object"},
		{"use names a missing section", map[string]string{"a.ini": "[app:main]\n\nuse = other\n"}, "a.ini",
			`a.ini:3 [app:main] use: a.ini has no application section named "other" (looked for [app:…], [application:…], [composite:…], [composit:…], [pipeline:…], [filter-app:…])`},
		{"unknown scheme", map[string]string{"a.ini": "[app:main]\nuse = http://example.com/x\n"}, "a.ini",
			`a.ini:2 [app:main] use: unknown scheme "http" in "http://example.com/x": use config:file.ini#name, egg:Dist#entry, call:module:object, or a section name`},
		{"bad interpolation", map[string]string{"a.ini": "[DEFAULT]\nroot = /srv\n[app:main]\nuse = egg:X\npath = %(rot)s/x\n"}, "a.ini",
			"a.ini:5 [app:main] path: %(rot)s names no option of this section or [DEFAULT] (define rot, or write %% for a literal %)"},
		{"lone percent", map[string]string{"a.ini": "[app:main]\nuse = egg:X\nratio = 50%\n"}, "a.ini",
			`a.ini:3 [app:main] ratio: '%' must be followed by '%' or '(' (found "%"); write %% for a literal %`},
		{"bad interpolation in DEFAULT", map[string]string{"a.ini": "[DEFAULT]\nx = %(y)s\n[app:main]\nuse = egg:X\n"}, "a.ini",
			"a.ini:2 [DEFAULT] x: %(y)s names no option of this section or [DEFAULT] (define y, or write %% for a literal %)"},
		{"interpolation loop", map[string]string{"a.ini": "[app:main]\nuse = egg:X\na = %(b)s\nb = %(a)s\n"}, "a.ini",
			"a.ini:3 [app:main] a: interpolation nests deeper than 10 levels (a %(name)s loop?)"},
		{"cycle", map[string]string{"a.ini": "[app:main]\nuse = b\n[app:b]\nuse = main\n"}, "a.ini",
			"a.ini:4 [app:b] use: reference cycle: a.ini:1 [app:main] → a.ini:3 [app:b] → a.ini:1 [app:main]; a section cannot use, filter or contain itself"},
		{"cycle across files", map[string]string{"a.ini": "[app:main]\nuse = config:b.ini\n", "b.ini": "[app:main]\nuse = config:a.ini\n"}, "a.ini",
			"b.ini:2 [app:main] use: reference cycle: a.ini:1 [app:main] → b.ini:1 [app:main] → a.ini:1 [app:main]; a section cannot use, filter or contain itself"},
		{"filter-with cycle", map[string]string{"a.ini": "[app:main]\nuse = egg:X\nfilter-with = f\n[filter:f]\nuse = egg:Y\nfilter-with = f\n"}, "a.ini",
			"a.ini:6 [filter:f] filter-with: reference cycle: a.ini:4 [filter:f] → a.ini:4 [filter:f]; a section cannot use, filter or contain itself"},
		{"pipeline ending in a filter", map[string]string{"a.ini": "[pipeline:main]\npipeline = f1 f2\n[filter:f1]\nuse = egg:X\n[filter:f2]\nuse = egg:X\n"}, "a.ini",
			`a.ini:2 [pipeline:main] pipeline: the pipeline ends in the filter "f2"; its last item must be an application`},
		{"pipeline with settings", map[string]string{"a.ini": "[pipeline:main]\npipeline = app\ndebug = true\n[app:app]\nuse = egg:X\n"}, "a.ini",
			"a.ini:3 [pipeline:main] debug: a pipeline section takes only `pipeline` (and `set`), not debug; put settings in the filter and app sections"},
		{"empty pipeline", map[string]string{"a.ini": "[pipeline:main]\npipeline =\n"}, "a.ini",
			"a.ini:2 [pipeline:main] pipeline: the pipeline is empty; list filters and end with an application"},
		{"pipeline without pipeline", map[string]string{"a.ini": "[pipeline:main]\n"}, "a.ini",
			"a.ini:1 [pipeline:main]: a pipeline section needs `pipeline = filter1 filter2 … app`"},
		{"filter-app without next", map[string]string{"a.ini": "[filter-app:main]\nuse = egg:X\n"}, "a.ini",
			"a.ini:1 [filter-app:main]: a filter-app section needs `next = name-of-the-application` (and `use =` for its filter)"},
		{"get of an unknown global", map[string]string{"a.ini": "[DEFAULT]\na = 1\n[app:main]\nuse = egg:X\nget x = nope\n"}, "a.ini",
			"a.ini:5 [app:main] get x: global_conf has no \"nope\" to get (known: a); define it in [DEFAULT], with `set nope = …`, or with --set nope=…"},
		{"ambiguous", map[string]string{"a.ini": "[app:main]\nuse = egg:X\n[pipeline:main]\npipeline = x\n"}, "a.ini",
			`a.ini: "main" is ambiguous in a.ini: [app:main] (line 1), [pipeline:main] (line 3) all define it; rename all but one`},
		{"two factories", map[string]string{"a.ini": "[app:main]\npaste.app_factory = a:b\npaste.composite_factory = c:d\n"}, "a.ini",
			"a.ini:1 [app:main]: several factories given (paste.app_factory, paste.composite_factory); keep one"},
		{"duplicate section", map[string]string{"a.ini": "[app:main]\nuse = egg:X\n\n[app:main]\n"}, "a.ini",
			"a.ini:4 [app:main]: section appears twice (first at line 1); merge the two or rename one"},
		{"bad call", map[string]string{"a.ini": "[app:main]\nuse = call:nocolon\n"}, "a.ini",
			`a.ini:2 [app:main] use: "call:nocolon" is not call:module:object`},
		{"included file's mistake points into it", map[string]string{"a.ini": "[app:main]\nuse = config:sub/b.ini#x\n", "sub/b.ini": "[app:x]\nuse = egg:X\nv = %(nope)s\n"}, "a.ini",
			"sub/b.ini:3 [app:x] v: %(nope)s names no option of this section or [DEFAULT] (define nope, or write %% for a literal %)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeFiles(t, c.files)
			_, err := config.LoadApp(c.uri, config.Options{Dir: dir})
			if err == nil {
				t.Fatalf("loaded; want %q", c.want)
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Errorf("%T is not a *config.Error", err)
			}
			if err.Error() != c.want {
				t.Errorf("got  %s\nwant %s", err, c.want)
			}
		})
	}
}

// TestResolveErrors checks the messages of factories Python cannot find.
func TestResolveErrors(t *testing.T) {
	py := testutil.VenvPython(t)
	fake, _ := filepath.Abs("testdata/fakepkgs")
	cases := []struct{ ini, want string }{
		{"[app:main]\nuse = egg:NoSuchDist\n", "a.ini:2 [app:main] use: egg:NoSuchDist#main: no installed distribution named 'NoSuchDist' in "},
		{"[app:main]\nuse = egg:FakeApp#nope\n", "a.ini:2 [app:main] use: egg:FakeApp#nope: FakeApp 1.0 has no entry point 'nope' in paste.app_factory, paste.composite_factory, paste.composit_factory; it offers FakeApp#ambiguous (paste.app_factory)"},
		{"[app:main]\npaste.app_factory = nosuchmodule:f\n", "a.ini:2 [app:main] paste.app_factory: nosuchmodule:f: no module named 'nosuchmodule'"},
		{"[app:main]\npaste.app_factory = fakeapp.apps:nope\n", "a.ini:2 [app:main] paste.app_factory: fakeapp.apps:nope: fakeapp.apps has no attribute 'nope'"},
		{"[app:main]\nuse = call:fakeapp.broken:make_app\n", "a.ini:2 [app:main] use: call:fakeapp.broken:make_app: importing fakeapp.broken failed: RuntimeError: this module is broken on purpose"},
		{"[app:main]\nuse = call:fakeapp.apps:DescribingApp.__call__\n", "a.ini:2 [app:main] use: call:fakeapp.apps:DescribingApp.__call__: PasteDeploy's call: looks up 'DescribingApp.__call__' as one attribute name"},
		{"[app:main]\nuse = egg:FakeApp#broken\n", "a.ini:2 [app:main] use: egg:FakeApp#broken: entry point broken = fakeapp.broken:make_app of FakeApp 1.0: importing fakeapp.broken failed: RuntimeError: this module is broken on purpose"},
		{"[app:main]\nuse = egg:FakeApp\nrequire = NotThere\n", "a.ini:3 [app:main] require: no installed distribution named 'NotThere' in "},
		{"[app:main]\nuse = egg:FakeApp\nfilter-with = f\n[filter:f]\nuse = egg:wsgate#django\n", "a.ini:5 [filter:f] use: egg:wsgate#django: wsgate's built-in egg:wsgate#django is an application, not a filter"},
	}
	for _, c := range cases {
		dir := writeFiles(t, map[string]string{"a.ini": c.ini})
		n, err := config.LoadApp("a.ini", config.Options{Dir: dir})
		if err != nil {
			t.Fatalf("%q: %v", c.ini, err)
		}
		err = config.Resolve(n, py, []string{fake})
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q:\ngot  %v\nwant %s…", c.ini, err, c.want)
		}
	}
}
