package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// End-to-end tests of `wsgate manage` and `wsgate test`: the real binary,
// the real Python interpreter of .venv, real Django, a project whose
// settings come from an INI file. Identifiers start with "dj".

const djSettings = `
SECRET_KEY = "module-secret"
DEBUG = False
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
DATABASES = {}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
`

const djHooks = `
from django.conf import settings


def record():
    with open(settings.HOOK_LOG, "a") as f:
        f.write("hook ran\n")
`

const djINI = `[DEFAULT]
debug = true
django_settings_module = djsite_settings

[app:main]
use = egg:wsgate#django
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "${here}/db.sqlite3"}}
HOOK_LOG = "${here}/hooks.log"
FROM_INI = "yes, from the INI file"
startup = djsite_hooks:record
`

const djPassingTests = `
from django.conf import settings
from django.test import SimpleTestCase


class SettingsComeFromTheINI(SimpleTestCase):
    def test_setting(self):
        self.assertEqual(settings.FROM_INI, "yes, from the INI file")
        self.assertTrue(settings.DEBUG is False)  # the test runner turns DEBUG off
`

const djFailingTests = `
from django.test import SimpleTestCase


class Failing(SimpleTestCase):
    def test_fails(self):
        self.assertEqual(1, 2)
`

// djProject writes a small Django project configured by dev.ini into a
// temporary directory and returns it.
func djProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"djsite_settings.py": djSettings,
		"djsite_hooks.py":    djHooks,
		"dev.ini":            djINI,
		"test_djpass.py":     djPassingTests,
		"test_djfail.py":     djFailingTests,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.TrimLeft(text, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type djResult struct {
	status         int
	stdout, stderr string
}

// djRun runs wsgate with args in dir, stdin as given, and returns its exit
// status and output.
func djRun(t *testing.T, dir, stdin string, env []string, args ...string) djResult {
	t.Helper()
	cmd := exec.Command(testutil.Binary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "WSGATE_PYTHON="+testutil.VenvPython(t)), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	status := 0
	if err != nil {
		exitErr, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("wsgate %v: %v", args, err)
		}
		status = exitErr.ExitCode()
	}
	return djResult{status, stdout.String(), stderr.String()}
}

func TestDjangoManageRunsCommandsWithTheINISettings(t *testing.T) {
	dir := djProject(t)
	r := djRun(t, dir, "", nil, "manage", "dev.ini", "migrate", "--verbosity", "0")
	if r.status != 0 {
		t.Fatalf("manage migrate: status %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "db.sqlite3")); err != nil {
		t.Fatalf("migrate did not create the database the INI file names: %v", err)
	}
	hooks, err := os.ReadFile(filepath.Join(dir, "hooks.log"))
	if err != nil || string(hooks) != "hook ran\n" {
		t.Fatalf("start-up hook: want one run before the command, got %q (%v)", hooks, err)
	}

	// Environment and stdin reach the command: createsuperuser --noinput, then shell reading stdin.
	r = djRun(t, dir, "", []string{"DJANGO_SUPERUSER_PASSWORD=s3cret-pass", "DJANGO_SUPERUSER_EMAIL=a@example.com"},
		"manage", "dev.ini", "createsuperuser", "--noinput", "--username", "admin")
	if r.status != 0 {
		t.Fatalf("manage createsuperuser: status %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	script := "from django.conf import settings\nfrom django.contrib.auth.models import User\n" +
		"print('seen:', settings.FROM_INI, User.objects.get(username='admin').check_password('s3cret-pass'))\n"
	r = djRun(t, dir, script, nil, "manage", "dev.ini", "shell")
	if r.status != 0 || !strings.Contains(r.stdout, "seen: yes, from the INI file True") {
		t.Fatalf("manage shell with stdin: status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
}

func TestDjangoManageExitsWithTheCommandsStatus(t *testing.T) {
	dir := djProject(t)
	if r := djRun(t, dir, "", nil, "manage", "dev.ini", "check"); r.status != 0 {
		t.Fatalf("manage check: status %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	r := djRun(t, dir, "", nil, "manage", "dev.ini", "no_such_command")
	if r.status != 1 || !strings.Contains(r.stderr, "Unknown command: 'no_such_command'") {
		t.Fatalf("manage no_such_command: want status 1 and Django's message, got %d\n%s", r.status, r.stderr)
	}
	// A command that fails with CommandError.
	r = djRun(t, dir, "", nil, "manage", "dev.ini", "migrate", "no_such_app")
	if r.status != 1 {
		t.Fatalf("manage migrate no_such_app: want status 1, got %d\n%s", r.status, r.stderr)
	}
	// Options before CONFIG_URI: --chdir to the project, --set a DEFAULT
	// value. --chdir is where Python runs (and on its path) for every
	// command; CONFIG_URI is read from where wsgate was started
	// (docs/serve.md, "Paths").
	elsewhere := t.TempDir()
	r = djRun(t, elsewhere, "", nil, "manage", "--chdir", dir, "--set", "debug=false", filepath.Join(dir, "dev.ini"),
		"shell", "-c", "import os; from django.conf import settings; print('DEBUG is', settings.DEBUG, 'in', os.getcwd())")
	if r.status != 0 || !strings.Contains(r.stdout, "DEBUG is False in "+dir) {
		t.Fatalf("manage --chdir --set debug=false: status %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	r = djRun(t, elsewhere, "", nil, "manage", "--chdir", dir, "dev.ini", "check")
	if r.status != 1 || !strings.Contains(r.stderr, "dev.ini") {
		t.Fatalf("manage --chdir DIR dev.ini from elsewhere: want the file looked up here and not found (status 1), got %d\n%s", r.status, r.stderr)
	}
	if r := djRun(t, dir, "", nil, "manage"); r.status != 2 {
		t.Fatalf("manage without CONFIG_URI: want usage status 2, got %d", r.status)
	}
}

func TestDjangoTestExitsZeroOnlyWhenTestsPass(t *testing.T) {
	dir := djProject(t)
	r := djRun(t, dir, "", nil, "test", "dev.ini", "test_djpass")
	if r.status != 0 || !strings.Contains(r.stderr, "Ran 1 test") || !strings.Contains(r.stderr, "OK") {
		t.Fatalf("test test_djpass: want status 0 and one passing test, got %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	r = djRun(t, dir, "", nil, "test", "dev.ini", "test_djfail")
	if r.status != 1 || !strings.Contains(r.stderr, "FAILED (failures=1)") {
		t.Fatalf("test test_djfail: want status 1 and one failure, got %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	hooks, _ := os.ReadFile(filepath.Join(dir, "hooks.log"))
	if got := strings.Count(string(hooks), "hook ran"); got != 2 {
		t.Fatalf("start-up hook: want one run per `wsgate test`, got %d", got)
	}
}

func TestDjangoConfigurationMistakeIsOneLineWithFileAndLine(t *testing.T) {
	dir := djProject(t)
	ini := strings.Replace(djINI, `FROM_INI = "yes, from the INI file"`, `FROM_INI = not json`, 1)
	if err := os.WriteFile(filepath.Join(dir, "bad.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"manage", "test"} {
		r := djRun(t, dir, "", nil, sub, "bad.ini", "check")
		line := 1 + strings.Count(ini[:strings.Index(ini, "FROM_INI")], "\n")
		want := fmt.Sprintf("bad.ini:%d [app:main] FROM_INI: invalid JSON 'not json'", line)
		if r.status != 1 || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "Traceback") {
			t.Fatalf("%s with invalid JSON: want status 1 and %q without a traceback, got %d\n%s", sub, want, r.status, r.stderr)
		}
		if lines := strings.Count(strings.TrimSpace(r.stderr), "\n"); lines != 0 {
			t.Fatalf("%s with invalid JSON: want one line, got\n%s", sub, r.stderr)
		}
	}
}

// `wsgate serve` of the same project: the start-up hook runs once in each
// worker before the server says it is ready, and the INI settings are what
// the served Django sees.
func TestDjangoServeRunsStartupHooksOncePerWorker(t *testing.T) {
	dir := djProject(t)
	urls := "from django.conf import settings\nfrom django.http import HttpResponse\nfrom django.urls import path\n" +
		"urlpatterns = [path('from-ini', lambda request: HttpResponse(settings.FROM_INI))]\n"
	if err := os.WriteFile(filepath.Join(dir, "djsite_urls.py"), []byte(urls), 0o644); err != nil {
		t.Fatal(err)
	}
	ini := djINI + "ROOT_URLCONF = \"djsite_urls\"\nALLOWED_HOSTS = [\"127.0.0.1\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "serve.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := harness.Start(t, harness.Options{Args: []string{"serve.ini", "--workers", "2"}, Dir: dir})
	hooks, err := os.ReadFile(filepath.Join(dir, "hooks.log"))
	if err != nil || string(hooks) != "hook ran\nhook ran\n" {
		t.Fatalf("start-up hook with 2 workers: want 2 runs before readiness, got %q (%v)", hooks, err)
	}
	resp, err := http.Get(srv.URL + "/from-ini")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "yes, from the INI file" {
		t.Fatalf("GET /from-ini: %d %q", resp.StatusCode, body)
	}
	srv.Stop()
}

func TestDjangoServeRefusesABadSettingInOneLine(t *testing.T) {
	dir := djProject(t)
	ini := strings.Replace(djINI, `FROM_INI = "yes, from the INI file"`, `FROM_INI = not json`, 1)
	if err := os.WriteFile(filepath.Join(dir, "bad.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	r := harness.Run(t, harness.Options{Args: []string{"bad.ini"}, Dir: dir})
	line := 1 + strings.Count(ini[:strings.Index(ini, "FROM_INI")], "\n")
	want := fmt.Sprintf("bad.ini:%d [app:main] FROM_INI: invalid JSON 'not json'", line)
	if r.ExitCode != 1 || !strings.Contains(r.Output, want) || strings.Contains(r.Output, "Traceback") {
		t.Fatalf("serve with invalid JSON: want exit 1 and %q without a traceback, got %d\n%s", want, r.ExitCode, r.Output)
	}
}

const djStreamURLs = `
import os
import time

from django.urls import re_path
from wsgate.django import make_wsgi_view

RELEASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "release")


def two_parts(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first part\n"
    deadline = time.monotonic() + 60
    while not os.path.exists(RELEASE) and time.monotonic() < deadline:
        time.sleep(0.01)  # the app waits for the client's signal, a file
    yield b"second part\n" if os.path.exists(RELEASE) else b"the client never read the first part\n"


urlpatterns = [re_path(r"^stream(/.*)$", make_wsgi_view(two_parts))]
`

// An application embedded with make_wsgi_view streams through Django and
// the gateway: the client reads the first part while the application is
// still waiting to produce the second (it waits for a file the test creates
// only after reading the first part, so a buffered response never arrives).
func TestDjangoEmbeddedAppStreamsThroughServe(t *testing.T) {
	dir := djProject(t)
	if err := os.WriteFile(filepath.Join(dir, "djstream_urls.py"), []byte(djStreamURLs), 0o644); err != nil {
		t.Fatal(err)
	}
	ini := djINI + "ROOT_URLCONF = \"djstream_urls\"\nALLOWED_HOSTS = [\"127.0.0.1\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "stream.ini"), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := harness.Start(t, harness.Options{Args: []string{"--workers", "1", "stream.ini"}, Dir: dir})
	resp, err := http.Get(srv.URL + "/stream/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	first, err := body.ReadString('\n')
	if err != nil || first != "first part\n" {
		t.Fatalf("first part: %q, %v", first, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(body)
	if err != nil || string(rest) != "second part\n" {
		t.Fatalf("second part: %q, %v", rest, err)
	}
	srv.Stop()
}

// manage and test run the Django application of a composed site: the one
// Django application mounted by a urlmap beside another Python one; with two
// Django applications they refuse, naming both and how to pick one, and
// CONFIG_URI#name picks it.
func TestDjangoManagePicksTheDjangoApplication(t *testing.T) {
	dir := djProject(t)
	site := djINI + "\n[composite:site]\nuse = egg:Paste#urlmap\n/ = main\n/other = other\n" +
		"[app:other]\nuse = call:djsite_hooks:make_other\n"
	two := djINI + "\n[composite:site]\nuse = egg:Paste#urlmap\n/ = main\n/second = second\n" +
		"[app:second]\nuse = egg:wsgate#django\nFROM_INI = \"the second one\"\n"
	hooks := djHooks + "\n\ndef make_other(global_conf, **local):\n    return lambda environ, start_response: []\n"
	for name, text := range map[string]string{"site.ini": site, "two.ini": two, "djsite_hooks.py": hooks} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	show := []string{"shell", "-c", "from django.conf import settings; print('seen:', settings.FROM_INI)"}
	r := djRun(t, dir, "", nil, append([]string{"manage", "site.ini#site"}, show...)...)
	if r.status != 0 || !strings.Contains(r.stdout, "seen: yes, from the INI file") {
		t.Fatalf("manage site.ini#site: status %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	r = djRun(t, dir, "", nil, append([]string{"manage", "two.ini#site"}, show...)...)
	for _, want := range []string{"two.ini#site mounts 2 Django applications", "two.ini:5 [app:main] at /", "two.ini:16 [app:second] at /second (two.ini#second)"} {
		if r.status != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("manage two.ini#site: status %d, stderr %q; want status 1 and %q", r.status, r.stderr, want)
		}
	}
	r = djRun(t, dir, "", nil, append([]string{"manage", "two.ini#second"}, show...)...)
	if r.status != 0 || !strings.Contains(r.stdout, "seen: the second one") {
		t.Fatalf("manage two.ini#second: status %d\n%s%s", r.status, r.stdout, r.stderr)
	}
}
