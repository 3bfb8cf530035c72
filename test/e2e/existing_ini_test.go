package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// Existing INI files run unchanged (docs/serve.md, "Sections written for
// another server run unchanged" and "Logging"): a Pyramid project's own
// development.ini, a gunicorn-style section, and one precedence for the
// interpreter in every command. Identifiers start with "ini".

const iniPyramidApp = `
import logging

from pyramid.config import Configurator
from pyramid.response import Response

log = logging.getLogger(__name__)


def hello(request):
    log.info("hello view called for %s", request.path)
    return Response("Hello from Pyramid\n")


def main(global_config, **settings):
    with Configurator(settings=settings) as config:
        config.add_route("hello", "/hello")
        config.add_view(hello, route_name="hello")
        return config.make_wsgi_app()
`

// What pserve's cookiecutter writes, but for the package (use = call:, the
// project is not pip-installed here) and a second handler into %(here)s.
const iniPyramidINI = `
[app:main]
use = call:myproject:main
pyramid.reload_templates = true

[server:main]
use = egg:waitress#main
listen = localhost:PORT
trusted_proxy = 127.0.0.1

[loggers]
keys = root, myproject

[handlers]
keys = console, file

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console

[logger_myproject]
level = DEBUG
handlers = file
qualname = myproject

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[handler_file]
class = FileHandler
args = ('%(here)s/myproject.log', 'a')
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s:%(lineno)s][%(threadName)s] %(message)s
`

// iniFreePort is a TCP port free a moment ago, for a file that names its
// own (the server, not the test, binds it).
func iniFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func iniWrite(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(strings.TrimLeft(text, "\n")), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPyramidDevelopmentINIRunsUnchanged(t *testing.T) {
	dir := t.TempDir()
	port := strconv.Itoa(iniFreePort(t))
	iniWrite(t, dir, map[string]string{
		"myproject/__init__.py": iniPyramidApp,
		"development.ini":       strings.Replace(iniPyramidINI, "PORT", port, 1),
	})
	s := harness.Start(t, harness.Options{Dir: dir, FileBinds: true, Args: []string{"development.ini", "--workers", "1"}})
	if want := "http://127.0.0.1:" + port; s.URL != want {
		t.Fatalf("listening on %s, want the file's listen = localhost:%s (%s)\n%s", s.URL, port, want, s.Logs())
	}
	if !strings.Contains(s.Logs(), "wsgate: notice: development.ini:5 [server:main]: not used by wsgate: trusted_proxy\n") {
		t.Errorf("no notice naming the one waitress key that does not map:\n%s", s.Logs())
	}
	resp, err := http.Get("http://localhost:" + port + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Hello from Pyramid\n" {
		t.Fatalf("GET /hello: %d %q", resp.StatusCode, body)
	}
	// The app's log.info line, in the file's format, on stderr (root's
	// console handler; the master logs it as the request's worker stderr)
	// and in %(here)s/myproject.log.
	const format = `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO  \[myproject:\d+\]\[[^\]]+\] hello view called for /hello`
	line := s.WaitLog("hello view called for /hello")
	if !regexp.MustCompile(format).MatchString(line) {
		t.Errorf("the app's log line %q is not in development.ini's format", line)
	}
	s.Stop()
	logged, err := os.ReadFile(filepath.Join(dir, "myproject.log"))
	if err != nil || !regexp.MustCompile("^"+format+"\n$").Match(logged) {
		t.Errorf("%%(here)s/myproject.log: %q (%v)", logged, err)
	}
}

// A section written for gunicorn: what maps is used, the rest named once.
func TestGunicornSectionRunsUnchanged(t *testing.T) {
	dir := t.TempDir()
	port := strconv.Itoa(iniFreePort(t))
	iniWrite(t, dir, map[string]string{"site.ini": `
[app:main]
use = call:pep3333:make_app

[server:main]
use = egg:gunicorn#main
bind = 127.0.0.1:` + port + `
workers = 2
threads = 3
timeout = 45
graceful_timeout = 7
max_requests = 500
max_requests_jitter = 20
keepalive = 5
worker_class = gthread
loglevel = info
`})
	s := harness.Start(t, harness.Options{Dir: dir, FileBinds: true, Args: []string{"site.ini", "--pythonpath", gwAppsDir()}})
	if s.URL != "http://127.0.0.1:"+port {
		t.Fatalf("listening on %s, want gunicorn's bind 127.0.0.1:%s", s.URL, port)
	}
	logs := s.Logs()
	if !strings.Contains(logs, "wsgate: notice: site.ini:4 [server:main]: not used by wsgate: keepalive, worker_class\n") {
		t.Errorf("no notice naming keepalive and worker_class:\n%s", logs)
	}
	for _, want := range []string{"workers=2", "threads=3", "timeout=45s", "graceful_timeout=7s", "max_requests=500"} {
		if !strings.Contains(logs, want) {
			t.Errorf("pool settings lack %s:\n%s", want, logs)
		}
	}
	if !strings.Contains(logs, "wsgate: ready, 2 workers") {
		t.Errorf("not 2 workers:\n%s", logs)
	}
}

// --python > $WSGATE_PYTHON > python = in the server section, the same for
// serve, check, manage and test. Each candidate interpreter is a script
// that notes its name and runs the venv's.
func TestInterpreterPrecedenceForEveryCommand(t *testing.T) {
	dir := djProject(t)
	venv := testutil.VenvPython(t)
	ran := filepath.Join(dir, "ran.log")
	interp := func(name string) string {
		path := filepath.Join(dir, "py-"+name)
		iniWrite(t, dir, map[string]string{"py-" + name: "#!/bin/sh\necho " + name + " >> " + ran + "\nexec " + venv + " \"$@\"\n"})
		return path
	}
	file, flag, env := interp("file"), interp("flag"), interp("env")
	ini, err := os.ReadFile(filepath.Join(dir, "dev.ini"))
	if err != nil {
		t.Fatal(err)
	}
	ini = append(ini, []byte("\n[server:main]\npython = "+file+"\nworkers = 1\n")...)
	if err := os.WriteFile(filepath.Join(dir, "dev.ini"), ini, 0o644); err != nil {
		t.Fatal(err)
	}
	ranOnly := func(what, want string) {
		t.Helper()
		b, _ := os.ReadFile(ran)
		os.Remove(ran)
		got := strings.Fields(string(b))
		if len(got) == 0 {
			t.Errorf("%s: no interpreter ran", what)
		}
		for _, g := range got {
			if g != want {
				t.Errorf("%s: the %s interpreter ran, want only %s (%q)", what, g, want, got)
				break
			}
		}
	}
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"file", nil, nil, "file"},
		{"env over file", []string{"WSGATE_PYTHON=" + env}, nil, "env"},
		{"flag over env", []string{"WSGATE_PYTHON=" + env}, []string{"--python", flag}, "flag"},
	} {
		environ := append([]string{"WSGATE_PYTHON="}, c.env...)
		for _, cmd := range [][]string{{"check"}, {"manage"}, {"test"}} {
			args := append(append(append([]string{}, cmd...), c.args...), "dev.ini")
			switch cmd[0] {
			case "manage":
				args = append(args, "check")
			case "test":
				args = append(args, "test_djpass")
			}
			r := djRun(t, dir, "", environ, args...)
			if r.status != 0 {
				t.Fatalf("%s %v: status %d\n%s%s", c.name, args, r.status, r.stdout, r.stderr)
			}
			ranOnly(c.name+": "+cmd[0], c.want)
		}
		s := harness.Start(t, harness.Options{Dir: dir, Python: "-", Env: environ, Args: append(c.args, "dev.ini")})
		s.Stop()
		ranOnly(c.name+": serve", c.want)
	}
}

const iniLoggingSections = `
[loggers]
keys = root, myproject

[handlers]
keys = file

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers =

[logger_myproject]
level = DEBUG
handlers = file
qualname = myproject

[handler_file]
class = FileHandler
args = ('%(here)s/FILE', 'a')
formatter = generic

[formatter_generic]
format = FMT %(levelname)s [%(name)s] %(message)s
`

// manage and test configure logging from the file as the workers do, and
// --log-config names another file.
func TestManageAndTestLogAsTheINISays(t *testing.T) {
	dir := djProject(t)
	f, err := os.OpenFile(filepath.Join(dir, "dev.ini"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(strings.Replace(iniLoggingSections, "FILE", "own.log", 1))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	iniWrite(t, dir, map[string]string{"other.ini": strings.Replace(iniLoggingSections, "FILE", "other.log", 1)})
	logLine := "import logging; logging.getLogger('myproject.x').info('from %s', 'manage')"
	if r := djRun(t, dir, "", nil, "manage", "dev.ini", "shell", "-c", logLine); r.status != 0 {
		t.Fatalf("manage shell: %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	if r := djRun(t, dir, "", nil, "manage", "--log-config", "other.ini", "dev.ini", "shell", "-c", logLine); r.status != 0 {
		t.Fatalf("manage --log-config shell: %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	for _, name := range []string{"own.log", "other.log"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != "FMT INFO [myproject.x] from manage\n" {
			t.Errorf("%s: %q (%v), want one line in the file's format", name, b, err)
		}
	}
	// test: the sections apply before the tests run.
	iniWrite(t, dir, map[string]string{"test_djlog.py": `
import logging
from django.test import SimpleTestCase


class Logs(SimpleTestCase):
    def test_logs(self):
        logging.getLogger("myproject.tests").warning("from test")
`})
	if r := djRun(t, dir, "", nil, "test", "dev.ini", "test_djlog"); r.status != 0 {
		t.Fatalf("wsgate test: %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "own.log"))
	if !strings.HasSuffix(string(b), "FMT WARNING [myproject.tests] from test\n") {
		t.Errorf("own.log after wsgate test: %q", b)
	}
}
