package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
)

// runWsgate runs the built binary in dir and returns stdout, stderr and the
// exit code.
func runCheckBinary(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(testutil.Binary(t), args...)
	cmd.Dir = dir
	fake := filepath.Join(testutil.RepoRoot(), "internal", "config", "testdata", "fakepkgs")
	cmd.Env = append(append(os.Environ(), "PYTHONPATH="+fake, "WSGATE_PYTHON="), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

const checkTestINI = `[DEFAULT]
debug = false

[pipeline:main]
pipeline = tag app

[filter:tag]
use = egg:FakeApp#tag

[app:app]
use = egg:FakeApp#configed
greeting = hello

[server:main]
use = egg:FakeApp
python = %s
`

func checkTestDir(t *testing.T, serverPython string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.ini"), []byte(strings.Replace(checkTestINI, "%s", serverPython, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheckHumanOutputShowsEverySource(t *testing.T) {
	py := testutil.VenvPython(t)
	dir := checkTestDir(t, py)
	stdout, stderr, code := runCheckBinary(t, dir, nil, "check", "site.ini")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"site.ini: valid (interpreter " + py + ")",
		"global debug = false",
		"pipeline  site.ini:4 [pipeline:main]",
		"├─ filter: filter egg:FakeApp#tag → fakeapp.filters:make_tag (paste.filter_factory)  site.ini:7 [filter:tag]",
		"└─ app: application egg:FakeApp#configed → fakeapp.apps:make_configed_app (paste.app_factory)  site.ini:10 [app:app]",
		"greeting = hello",
	} {
		requireIn(t, stdout, want)
	}
}

func requireIn(t *testing.T, output, want string) {
	t.Helper()
	if !strings.Contains(output, want) {
		t.Errorf("output lacks %q:\n%s", want, output)
	}
}

func TestCheckJSONAndSet(t *testing.T) {
	py := testutil.VenvPython(t)
	dir := checkTestDir(t, py)
	// Flags may follow the URI.
	stdout, stderr, code := runCheckBinary(t, dir, nil, "check", "site.ini", "--json", "--set", "debug=true", "--set", "extra=1")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var tree struct {
		ObjectType string            `json:"object_type"`
		GlobalConf map[string]string `json:"global_conf"`
		Source     string            `json:"source"`
		App        struct {
			Factory string `json:"factory"`
		} `json:"app"`
	}
	if err := json.Unmarshal([]byte(stdout), &tree); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if tree.ObjectType != "pipeline" || tree.Source != "site.ini:4 [pipeline:main]" || tree.App.Factory != "fakeapp.apps:make_configed_app" {
		t.Errorf("unexpected tree %+v", tree)
	}
	if tree.GlobalConf["debug"] != "true" || tree.GlobalConf["extra"] != "1" {
		t.Errorf("--set not applied: %v", tree.GlobalConf)
	}
	if _, ok := tree.GlobalConf["here"]; ok {
		t.Errorf("here must be left out of the contract form: %v", tree.GlobalConf)
	}
}

func TestCheckExitCodes(t *testing.T) {
	py := testutil.VenvPython(t)
	dir := checkTestDir(t, py)
	if err := os.WriteFile(filepath.Join(dir, "bad.ini"), []byte("[app:main]\nuse = egg:FakeApp#nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"check"}, exitUsage, "wsgate check: give exactly one CONFIG_URI"},
		{[]string{"check", "a.ini", "b.ini"}, exitUsage, "wsgate check: give exactly one CONFIG_URI"},
		{[]string{"check", "--bogus", "site.ini"}, exitUsage, "wsgate check: flag provided but not defined: -bogus"},
		{[]string{"check", "--set", "novalue", "site.ini"}, exitUsage, `wsgate check: --set "novalue": want key=value`},
		{[]string{"check", "egg:FakeApp"}, exitUsage, "only config: URIs (or plain file paths) can be loaded"},
		{[]string{"check", "missing.ini"}, exitConfig, "wsgate check: missing.ini: cannot read the configuration: no such file"},
		{[]string{"check", "bad.ini"}, exitConfig, "wsgate check: bad.ini:2 [app:main] use: egg:FakeApp#nope: FakeApp 1.0 has no entry point 'nope'"},
		{[]string{"check", "site.ini#nothing"}, exitConfig, `wsgate check: site.ini: site.ini has no application section named "nothing"`},
	} {
		_, stderr, code := runCheckBinary(t, dir, nil, c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("wsgate %v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.msg)
		}
		if c.code == exitConfig && (strings.Count(strings.TrimSpace(stderr), "\n") > 0 || strings.Contains(stderr, "Traceback") || strings.Contains(stderr, "panic")) {
			t.Errorf("wsgate %v: the error is not one line: %q", c.args, stderr)
		}
	}
	if stdout, _, code := runCheckBinary(t, dir, nil, "check", "-h"); code != exitOK || !strings.Contains(stdout, "Usage: wsgate check") {
		t.Errorf("check -h: exit %d, %q", code, stdout)
	}
}

// TestCheckInterpreterChoice: --python, then WSGATE_PYTHON, then `python =`
// in the server section, then python3.
func TestCheckInterpreterChoice(t *testing.T) {
	py := testutil.VenvPython(t)
	missing := "/nonexistent/bin/python-for-wsgate-test"
	dir := checkTestDir(t, missing+"-from-server")
	_, stderr, code := runCheckBinary(t, dir, nil, "check", "site.ini")
	if code != exitConfig || !strings.Contains(stderr, `cannot run the Python interpreter "`+missing+`-from-server"`) {
		t.Errorf("server python: exit %d %q", code, stderr)
	}
	_, stderr, code = runCheckBinary(t, dir, []string{"WSGATE_PYTHON=" + missing + "-from-env"}, "check", "site.ini")
	if code != exitConfig || !strings.Contains(stderr, missing+"-from-env") {
		t.Errorf("WSGATE_PYTHON: exit %d %q", code, stderr)
	}
	stdout, stderr, code := runCheckBinary(t, dir, []string{"WSGATE_PYTHON=" + missing + "-from-env"}, "check", "--python", py, "site.ini")
	if code != exitOK || !strings.Contains(stdout, "(interpreter "+py+")") {
		t.Errorf("--python: exit %d %q %q", code, stdout, stderr)
	}
}

// check shows who runs each node, the routes with their fast path, and the
// pools: one for an application mounted twice.
func TestCheckShowsTheComposition(t *testing.T) {
	py := testutil.VenvPython(t)
	dir := siteDir(t, `[composite:main]
use = egg:Paste#urlmap
/ = app
/again = app
/tagged = tagged

[pipeline:tagged]
pipeline = tag app

[filter:tag]
use = egg:FakeApp#tag

[app:app]
use = egg:FakeApp#configed
`)
	stdout, stderr, code := runCheckBinary(t, dir, nil, "check", "--python", py, "site.ini")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"application egg:Paste#urlmap → go:urlmap (paste.composite_factory)  site.ini:1 [composite:main]  ⇒ Go urlmap",
		"├─ app: application egg:FakeApp#configed → fakeapp.apps:make_configed_app (paste.app_factory)  site.ini:13 [app:app]  ⇒ Python, pool app",
		"└─ tagged: pipeline  site.ini:7 [pipeline:tagged]  ⇒ Python, pool tagged",
		"  /        → python pool app  site.ini:13 [app:app]  via urlmap (request)  — fast path (largest sees: request)",
		"  /again   → python pool app",
		"  /tagged  → python pool tagged  site.ini:7 [pipeline:tagged]",
		"  app  site.ini:13 [app:app]  serves /, /again",
		"  tagged  site.ini:7 [pipeline:tagged]  serves /tagged",
	} {
		requireIn(t, stdout, want)
	}
}

// A Python filter in front of a Go application would need Python to call
// Go: check and serve refuse it in one line naming both sections.
func TestPythonAroundGoIsRefused(t *testing.T) {
	py := testutil.VenvPython(t)
	dir := siteDir(t, `[pipeline:main]
pipeline = tag map

[filter:tag]
use = egg:FakeApp#tag

[composite:map]
use = egg:wsgate#urlmap
/ = app

[app:app]
use = egg:FakeApp#configed
`)
	want := "site.ini:4 [filter:tag]: Python filter fakeapp.filters:make_tag cannot pass requests to the Go component at site.ini:7 [composite:map] (go:urlmap)"
	for _, cmd := range []string{"check", "serve"} {
		_, stderr, code := runCheckBinary(t, dir, nil, cmd, "--python", py, "site.ini")
		if code != exitConfig || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q; want status 1 and one line containing %q", cmd, code, stderr, want)
		}
	}
}

// Every command that loads a site has the same path flags, and their help
// names each flag's argument (no "-python python =").
func TestSiteFlagsHelp(t *testing.T) {
	for _, cmd := range []string{"check", "manage", "test", "serve"} {
		stdout, stderr, _ := runCheckBinary(t, t.TempDir(), nil, cmd, "-h")
		help := stdout + stderr
		for _, want := range []string{"-python PATH", "-chdir DIR", "-pythonpath DIR", "-set key=value"} {
			if !strings.Contains(help, want) {
				t.Errorf("%s -h lacks %q:\n%s", cmd, want, help)
			}
		}
		if strings.Contains(help, "python =") {
			t.Errorf("%s -h has a garbled argument name:\n%s", cmd, help)
		}
	}
}

// siteDir writes ini as site.ini in a fresh directory.
func siteDir(t *testing.T, ini string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A Go filter after a Python one in a pipeline is refused with both
// locations; before it, it wraps the Python segment, and check shows its
// route reads the body (compress).
func TestGoFilterInAPythonPipeline(t *testing.T) {
	py := testutil.VenvPython(t)
	const sections = `
[filter:tag]
use = egg:FakeApp#tag

[filter:gz]
use = egg:wsgate#compress

[app:app]
use = egg:FakeApp#configed
`
	bad := siteDir(t, "[pipeline:main]\npipeline = tag gz app\n"+sections)
	_, stderr, code := runCheckBinary(t, bad, nil, "check", "--python", py, "site.ini")
	want := "site.ini:4 [filter:tag]: Python filter fakeapp.filters:make_tag cannot pass requests to the Go component at site.ini:7 [filter:gz] (go:compress)"
	if code != exitConfig || !strings.Contains(stderr, want) {
		t.Errorf("Go filter after a Python one: exit %d, stderr %q; want status 1 and %q", code, stderr, want)
	}
	good := siteDir(t, "[pipeline:main]\npipeline = gz tag app\n"+sections)
	stdout, stderr, code := runCheckBinary(t, good, nil, "check", "--python", py, "site.ini")
	if code != exitOK {
		t.Fatalf("Go filter before a Python one: exit %d: %s", code, stderr)
	}
	requireIn(t, stdout, "site.ini:7 [filter:gz]  ⇒ Go compress")
	requireIn(t, stdout, "site.ini:4 [filter:tag]  ⇒ Python, pool main")
	requireIn(t, stdout, "/  → python pool main  site.ini:1 [pipeline:main]  via compress (response body)  — master reads the body (largest sees: response body)")
}
