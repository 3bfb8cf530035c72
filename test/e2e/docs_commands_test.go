package e2e

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// The pages a newcomer follows first are run as written: every ```sh block of
// the README and of docs/django.md's guide, line by line in one shell session
// (a `cd` or an `export` carries over to the next line), with the ```ini
// blocks whose first line is "# NAME.ini" written as files where the session
// is. A doc edit that breaks a command fails here. Three things are
// substituted: `wsgate` is this checkout's binary (first on PATH), the session
// starts in a temporary directory, and a `wsgate serve` listens on a free
// port instead of the one the page names (tests never compete for a port).

// docBlock is one fenced block of a markdown page.
type docBlock struct {
	lang string
	line int // of the opening fence
	text string
}

// docBlocks returns the fenced blocks of a page of the repository, those
// under the heading `section` ("## …", up to the next "## ") when it is not
// empty.
func docBlocks(t *testing.T, page, section string) []docBlock {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), page))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []docBlock
	var cur *docBlock
	inSection := section == ""
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case strings.HasPrefix(line, "## ") && section != "":
			inSection = line == "## "+section
		case strings.HasPrefix(line, "```") && inSection:
			cur = &docBlock{lang: strings.TrimPrefix(line, "```"), line: i + 1}
		}
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no code block under %q", page, section)
	}
	return blocks
}

// docSession runs the blocks of one page as a reader would, in order.
type docSession struct {
	t    *testing.T
	page string
	dir  string   // where the reader is (`cd` moves it)
	env  []string // the reader's environment (`export` adds to it)
	// served checks a `wsgate serve` the page starts, while it runs.
	served func(t *testing.T, srv *harness.Server, args []string)
}

func newDocSession(t *testing.T, page string, env ...string) *docSession {
	shim := t.TempDir()
	if err := os.Symlink(testutil.Binary(t), filepath.Join(shim, "wsgate")); err != nil {
		t.Fatal(err)
	}
	s := &docSession{t: t, page: page, dir: t.TempDir()}
	for _, kv := range os.Environ() {
		// The page says which interpreter; the caller's choice must not leak in.
		if !strings.HasPrefix(kv, "WSGATE_PYTHON=") && !strings.HasPrefix(kv, "PATH=") {
			s.env = append(s.env, kv)
		}
	}
	s.env = append(append(s.env, "PATH="+shim+string(os.PathListSeparator)+os.Getenv("PATH")), env...)
	return s
}

func (s *docSession) run(blocks []docBlock) {
	for _, b := range blocks {
		switch b.lang {
		case "ini":
			s.writeINI(b)
		case "sh":
			for i, line := range strings.Split(b.text, "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					s.command(b.line+1+i, line)
				}
			}
		}
	}
}

var docININame = regexp.MustCompile(`^# (\S+\.ini)\b`)

func (s *docSession) writeINI(b docBlock) {
	m := docININame.FindStringSubmatch(b.text)
	if m == nil {
		return // an excerpt, not a file
	}
	if err := os.WriteFile(filepath.Join(s.dir, m[1]), []byte(b.text), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// bash runs a script where the reader is, with the reader's environment.
func (s *docSession) bash(where int, script string) string {
	s.t.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = s.dir
	cmd.Env = append(s.env, "PWD="+s.dir) // Stdin nil: /dev/null
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("%s:%d: %s: %v\n%s%s", s.page, where, script, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String()
}

var (
	docExport = regexp.MustCompile(`^export ([A-Za-z_][A-Za-z0-9_]*)=`)
	docBind   = regexp.MustCompile(`^--bind(=.*)?$`)
)

func (s *docSession) command(where int, line string) {
	s.t.Helper()
	s.t.Logf("%s:%d: $ %s", s.page, where, line)
	switch {
	case strings.HasPrefix(line, "cd "):
		s.dir = strings.TrimSpace(s.bash(where, line+" && pwd"))
	case docExport.MatchString(line):
		name := docExport.FindStringSubmatch(line)[1]
		s.env = append(s.env, name+"="+s.bash(where, line+"\nprintf %s \"$"+name+"\""))
	case strings.HasPrefix(line, "make "):
		// `make test` is this suite and `make demo` serves until stopped
		// (scripts/demo.sh is run by TestDemoMake): the target must exist
		// and its recipe expand.
		cmd := exec.Command("bash", "-c", "make -n "+strings.TrimPrefix(line, "make "))
		cmd.Dir = testutil.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			s.t.Fatalf("%s:%d: %s: no such make target: %v\n%s", s.page, where, line, err, out)
		}
	case strings.HasPrefix(line, "wsgate serve "):
		s.serve(where, line)
	default:
		s.bash(where, line) // stdin is /dev/null: createsuperuser skips its questions
	}
}

// serve starts a `wsgate serve` line with the shell's own reading of its
// words, on a free port, hands it to s.served, and stops it.
func (s *docSession) serve(where int, line string) {
	s.t.Helper()
	words := strings.Split(strings.TrimSuffix(s.bash(where, "set -- "+strings.TrimPrefix(line, "wsgate serve ")+"\nprintf '%s\\0' \"$@\""), "\x00"), "\x00")
	var args []string
	for i := 0; i < len(words); i++ {
		if m := docBind.FindStringSubmatch(words[i]); m != nil {
			if m[1] == "" {
				i++ // the address follows
			}
			continue
		}
		args = append(args, words[i])
	}
	srv := harness.Start(s.t, harness.Options{Args: args, Dir: s.dir, Env: s.env, Python: "-"})
	s.served(s.t, srv, args)
	srv.Stop()
}

// docGet sends one GET with the given Host header (empty: the server's).
func docGet(t *testing.T, srv *harness.Server, host, path string) gwResponse {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	return gwDo(t, req)
}

// docRequireDevelopmentSite checks what a development server of a
// startproject site serves: the admin, and its stylesheet as runserver
// would, byte for byte the file Django ships.
func docRequireDevelopmentSite(t *testing.T, srv *harness.Server, host, python string) {
	t.Helper()
	if r := docGet(t, srv, host, "/admin/login/"); r.status != 200 {
		t.Errorf("GET /admin/login/: %d, want 200", r.status)
	}
	out, err := exec.Command(python, "-c", "import django.contrib.admin as a, os; print(os.path.dirname(a.__file__))").Output()
	if err != nil {
		t.Fatalf("finding Django's admin with %s: %v", python, err)
	}
	want, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "static", "admin", "css", "base.css"))
	if err != nil {
		t.Fatal(err)
	}
	if r := docGet(t, srv, host, "/static/admin/css/base.css"); r.status != 200 || r.bodyErr != nil || !bytes.Equal(r.body, want) {
		t.Errorf("GET /static/admin/css/base.css with debug = true: %d, %d bytes (%v); want 200 and the %d bytes of Django's file", r.status, len(r.body), r.bodyErr, len(want))
	}
}

// TestReadmeCommands follows the README: its "two commands" must be make
// targets, and the thirty-second example, written next to the manage.py of
// a `django-admin startproject mysite`, must check, migrate and serve — with
// /static/… served in development.
func TestReadmeCommands(t *testing.T) {
	py := testutil.VenvPython(t)
	s := newDocSession(t, "README.md", "WSGATE_PYTHON="+py) // the reader's Python with Django
	startproject := exec.Command(py, "-m", "django", "startproject", "mysite")
	startproject.Dir = s.dir
	if out, err := startproject.CombinedOutput(); err != nil {
		t.Fatalf("django-admin startproject: %v\n%s", err, out)
	}
	s.dir = filepath.Join(s.dir, "mysite")
	served := 0
	s.served = func(t *testing.T, srv *harness.Server, args []string) {
		served++
		docRequireDevelopmentSite(t, srv, "", py)
	}
	s.run(docBlocks(t, "README.md", ""))
	if served != 1 {
		t.Errorf("the README started %d servers, want the thirty-second example's one", served)
	}
}

// TestDjangoGuideCommands follows docs/django.md's guide from a fresh
// virtualenv with Django from PyPI to the production server, every command as
// written.
func TestDjangoGuideCommands(t *testing.T) {
	s := newDocSession(t, "docs/django.md", "SECRET=a-secret-the-reader-keeps-elsewhere")
	var servedDev, servedProd bool
	s.served = func(t *testing.T, srv *harness.Server, args []string) {
		switch config := args[len(args)-1]; config {
		case "development.ini":
			servedDev = true
			docRequireDevelopmentSite(t, srv, "localhost", filepath.Join(s.dir, "..", ".venv", "bin", "python"))
		case "production.ini":
			servedProd = true
			if r := docGet(t, srv, "www.example.com", "/admin/login/"); r.status != 200 {
				t.Errorf("GET /admin/login/ on the production server: %d, want 200", r.status)
			}
		default:
			t.Errorf("the guide serves %s, which this test does not know", config)
		}
	}
	s.run(docBlocks(t, "docs/django.md", djGuide))
	if !servedDev || !servedProd {
		t.Errorf("the guide served development %v, production %v; want both", servedDev, servedProd)
	}
	for _, made := range []string{"db.sqlite3", "static/admin/css/base.css"} {
		if _, err := os.Stat(filepath.Join(s.dir, made)); err != nil {
			t.Errorf("after the guide: %v (migrate makes the database, collectstatic fills STATIC_ROOT)", err)
		}
	}
}
