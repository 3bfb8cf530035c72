package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// scripts/demo.sh, what `make demo` runs: on a fresh copy it prepares the
// site, serves it and prints a readiness line whose address and credentials
// work; run again on the same copy it finds everything done and serves again;
// Ctrl-C stops it with nothing left running.
func TestDemoScriptFirstAndSecondRun(t *testing.T) {
	dir := demoCopy(t)
	for _, run := range []string{"first run", "second run"} {
		ready := demoRunScript(t, dir)
		c := demoClient(t)
		resp, page := demoGet(t, c, ready.url+"/")
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "wsgate demo (development)") {
			t.Fatalf("%s: GET %s/: %s, want the demo's home page\n%s", run, ready.url, resp.Status, page)
		}
		if to := demoLogin(t, c, ready.url+"/admin/login/?next=/admin/", ready.user, ready.password); to != "/admin/" {
			t.Fatalf("%s: logging in with the credentials the readiness line gave led to %q", run, to)
		}
		ready.interrupt(t)
	}
}

var demoReadyLine = regexp.MustCompile(`^demo: ready at (http://\S+)/ — log in as (\S+) / (\S+) `)

type demoScriptRun struct {
	url, user, password string
	cmd                 *exec.Cmd
	exited              chan struct{}
	log                 *strings.Builder
}

// demoRunScript starts scripts/demo.sh on dir (on a free port) and returns
// once it prints its readiness line.
func demoRunScript(t *testing.T, dir string) *demoScriptRun {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(testutil.RepoRoot(), "scripts", "demo.sh"))
	cmd.Env = append(os.Environ(),
		"WSGATE_BIN="+testutil.Binary(t), "WSGATE_PYTHON="+testutil.VenvPython(t),
		"WSGATE_DEMO_DIR="+dir, "WSGATE_DEMO_BIND=127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting scripts/demo.sh: %v", err)
	}
	r := &demoScriptRun{cmd: cmd, exited: make(chan struct{}), log: &strings.Builder{}}
	go func() {
		cmd.Wait()
		pw.Close()
		close(r.exited)
	}()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-r.exited })

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(harness.Deadline)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("scripts/demo.sh ended without a readiness line:\n%s", r.log)
			}
			r.log.WriteString(line + "\n")
			if m := demoReadyLine.FindStringSubmatch(line); m != nil {
				r.url, r.user, r.password = m[1], m[2], m[3]
				go func() { // keep draining, so the script never blocks on its output
					for range lines {
					}
				}()
				return r
			}
		case <-deadline:
			t.Fatalf("scripts/demo.sh printed no readiness line within %s:\n%s", harness.Deadline, r.log)
		}
	}
}

// interrupt does what Ctrl-C in a terminal does (SIGINT to the foreground
// process group) and waits until no process of the group is left.
func (r *demoScriptRun) interrupt(t *testing.T) {
	t.Helper()
	pgid := r.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatalf("SIGINT to the demo: %v", err)
	}
	select {
	case <-r.exited:
	case <-time.After(harness.Deadline):
		t.Fatalf("scripts/demo.sh still running %s after Ctrl-C:\n%s", harness.Deadline, r.log)
	}
	harness.WaitFor(t, "the demo's processes to exit after Ctrl-C", func() bool {
		return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
	})
	if conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://")); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after Ctrl-C", r.url)
	}
}
