package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/test/e2e/harness"
)

// TestGatewayChdir: --chdir runs the workers in that directory and puts it on
// the Python path, so the app imports with no --pythonpath (as gunicorn does).
func TestGatewayChdir(t *testing.T) {
	srv := harness.Start(t, harness.Options{
		Args: []string{"--app", "pep3333:app", "--chdir", gwAppsDir(), "--workers", "1"},
		Env:  []string{"E2E_RECORD_DIR=" + t.TempDir()},
	})
	var env map[string]any
	gwJSON(t, "environ", gwGet(t, srv.URL+"/environ/"), &env)
	if env["cwd"] != gwAppsDir() {
		t.Errorf("worker cwd %v, want %s", env["cwd"], gwAppsDir())
	}
	srv.Stop()
}

// TestGatewayUnixSocket: a unix socket listener next to a TCP one, each
// announced on its own line; the socket file goes away with the server.
func TestGatewayUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "wsgate.sock")
	srv := harness.Start(t, harness.Options{
		Args: []string{"--app", "pep3333:app", "--pythonpath", gwAppsDir(), "--workers", "1",
			"--bind", "unix:" + sock, "--bind", "127.0.0.1:0"},
		Env: []string{"E2E_RECORD_DIR=" + t.TempDir()},
	})
	if len(srv.Listeners) != 2 || srv.Listeners[0] != "unix:"+sock || !strings.HasPrefix(srv.Listeners[1], "http://127.0.0.1:") {
		t.Fatalf("listening lines %q, want unix:%s then http://127.0.0.1:PORT", srv.Listeners, sock)
	}
	client := &http.Client{Timeout: gwIOGuard, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := client.Get("http://unix.test/hello")
	if err != nil {
		t.Fatalf("GET over %s: %v", sock, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello world\n" {
		t.Errorf("over the unix socket: %d %q", resp.StatusCode, body)
	}
	gwOK(t, "over TCP", gwGet(t, srv.Listeners[1]+"/hello"))
	srv.Stop()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file %s left behind after exit (%v)", sock, err)
	}
}

// TestGatewayStartupLines checks the start-up lines contract of
// docs/architecture.md: one "listening on" line per listener, then one
// "ready, N workers (pid P)" line naming the worker count and the master.
func TestGatewayStartupLines(t *testing.T) {
	s := gwStart(t, "--workers", "2", "--bind", "127.0.0.1:0", "--bind", "127.0.0.1:0")
	var listening, ready []string
	for _, line := range strings.Split(s.Logs(), "\n") {
		if strings.HasPrefix(line, "wsgate: listening on ") {
			if len(ready) > 0 {
				t.Errorf("listening line after the ready line: %q", line)
			}
			listening = append(listening, line)
		}
		if strings.HasPrefix(line, "wsgate: ready") {
			ready = append(ready, line)
		}
	}
	if len(listening) != 2 || listening[0] == listening[1] {
		t.Errorf("listening lines %q, want two different ones for two --bind", listening)
	}
	if want := fmt.Sprintf("wsgate: ready, 2 workers (pid %d)", s.PID); len(ready) != 1 || ready[0] != want {
		t.Errorf("ready lines %q, want exactly %q", ready, want)
	}
	for _, l := range s.Listeners {
		gwOK(t, "GET on "+l, gwGet(t, l+"/hello"))
	}
}

// TestGatewayConfigURI serves the test app from a PasteDeploy file: urlmap
// mounts give SCRIPT_NAME and PATH_INFO their split, a pipeline's filter runs.
func TestGatewayConfigURI(t *testing.T) {
	srv := harness.Start(t, harness.Options{
		Args: []string{filepath.Join(gwAppsDir(), "pep3333.ini"), "--pythonpath", gwAppsDir(), "--workers", "1"},
		Env:  []string{"E2E_RECORD_DIR=" + t.TempDir()},
	})
	for _, tc := range []struct{ path, script, pathInfo, tag string }{
		{"/environ/a%2Fb", "", "/environ/a/b", ""},
		{"/mount/environ/a%2Fb", "/mount", "/environ/a/b", "e2e-filter"},
	} {
		r := gwGet(t, srv.URL+tc.path)
		var env map[string]any
		gwJSON(t, tc.path, r, &env)
		if env["SCRIPT_NAME"] != tc.script || env["PATH_INFO"] != tc.pathInfo {
			t.Errorf("%s: SCRIPT_NAME %q PATH_INFO %q, want %q %q", tc.path, env["SCRIPT_NAME"], env["PATH_INFO"], tc.script, tc.pathInfo)
		}
		if got := r.header.Get("X-Tag"); got != tc.tag {
			t.Errorf("%s: X-Tag %q, want %q (the pipeline's filter)", tc.path, got, tc.tag)
		}
	}
	srv.Stop()
}

// schedPolicy is a thread's or process's scheduling policy, field 41 of
// /proc/…/stat (0 SCHED_OTHER, 3 SCHED_BATCH).
func schedPolicy(t *testing.T, statPath string) string {
	t.Helper()
	b, err := os.ReadFile(statPath)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	return fields[41-3]
}

// TestGatewaySchedBatch: by default every thread of the master runs under
// SCHED_BATCH and the workers under SCHED_OTHER; --sched-batch=false (or
// sched_batch = false) leaves the master alone.
func TestGatewaySchedBatch(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		master string
	}{{nil, "3"}, {[]string{"--sched-batch=false"}, "0"}} {
		t.Run(fmt.Sprintf("%q", tc.args), func(t *testing.T) {
			s := gwStart(t, append([]string{"--workers", "1"}, tc.args...)...)
			r := gwGet(t, s.URL+"/pid")
			gwOK(t, "pid", r)
			tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", s.PID))
			if err != nil || len(tasks) == 0 {
				t.Fatalf("threads of the master: %v %v", tasks, err)
			}
			for _, task := range tasks {
				if p := schedPolicy(t, task); p != tc.master {
					t.Errorf("master thread %s: policy %s, want %s", task, p, tc.master)
				}
			}
			if p := schedPolicy(t, "/proc/"+string(r.body)+"/stat"); p != "0" {
				t.Errorf("worker %s: policy %s, want 0 (SCHED_OTHER)", r.body, p)
			}
		})
	}
}
