package cgi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// script writes an executable shell script in dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// serve mounts the cgi app at /cgi with user as REMOTE_USER (Facts), as a
// urlmap and auth would.
func serve(t *testing.T, user string, kv ...string) (*httptest.Server, *componenttest.Logs) {
	t.Helper()
	logs := &componenttest.Logs{}
	built := componenttest.Build(t, &componenttest.Host{Log: logs.Logger()}, "cgi", kv...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, f := component.Attach(r)
		if rest, ok := strings.CutPrefix(r.URL.Path, "/cgi"); ok {
			f.ScriptName, f.PathInfo, f.PathSet = "/cgi", rest, true
		}
		f.RemoteUser = user
		built.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, logs
}

func envOf(body string) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestEnvironment(t *testing.T) {
	dir := t.TempDir()
	prog := script(t, dir, "env.cgi", "printf 'Content-Type: text/plain\\r\\nX-From: cgi\\r\\n\\r\\n'\nenv\necho oops >&2\n")
	t.Setenv("WSGATE_CGI_PASSED", "passed on")
	t.Setenv("WSGATE_CGI_SECRET", "kept back")
	srv, logs := serve(t, "alice", "program", prog, "env", "GIT_PROJECT_ROOT=/srv/git WSGATE_CGI_PASSED")
	req, _ := http.NewRequest("GET", srv.URL+"/cgi/repo.git/info/refs?service=git-upload-pack", nil)
	for _, h := range []string{"Remote-User", "Remote_User", "X-Remote-User", "REMOTE_USER", "Proxy"} {
		req.Header[h] = []string{"mallory"}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-From") != "cgi" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	env := envOf(string(body))
	for k, want := range map[string]string{
		"SCRIPT_NAME": "/cgi", "PATH_INFO": "/repo.git/info/refs", "QUERY_STRING": "service=git-upload-pack",
		"REMOTE_USER": "alice", "REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": "GET", "GATEWAY_INTERFACE": "CGI/1.1",
		"GIT_PROJECT_ROOT": "/srv/git", "WSGATE_CGI_PASSED": "passed on", "WSGATE_CGI_SECRET": "",
		"HTTP_REMOTE_USER": "mallory", "HTTP_X_REMOTE_USER": "mallory", "HTTP_PROXY": "", "SCRIPT_FILENAME": prog,
	} {
		if env[k] != want {
			t.Errorf("%s=%q, want %q", k, env[k], want)
		}
	}
	if !strings.Contains(logs.String(), "text=oops") {
		t.Errorf("stderr not logged: %s", logs)
	}
	// Without a user from Facts, there is no REMOTE_USER at all.
	anon, _ := serve(t, "", "program", prog)
	req.URL.Host = strings.TrimPrefix(anon.URL, "http://")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, ok := envOf(string(body))["REMOTE_USER"]; ok {
		t.Errorf("REMOTE_USER set for an anonymous request: %s", body)
	}
}

// The body streams in (chunked, without CONTENT_LENGTH, too) and out; a
// Status header sets the status.
func TestBodyAndStatus(t *testing.T) {
	dir := t.TempDir()
	prog := script(t, dir, "echo.cgi", "printf 'Status: 201 Created\\nContent-Type: application/octet-stream\\n\\n'\necho \"length=${CONTENT_LENGTH:-none}\"\ncat\n")
	srv, _ := serve(t, "", "program", prog)
	payload := bytes.Repeat([]byte("0123456789"), 100_000)
	for name, body := range map[string]io.Reader{"sized": bytes.NewReader(payload), "chunked": io.MultiReader(bytes.NewReader(payload))} {
		resp, err := http.Post(srv.URL+"/cgi/", "application/x-git-receive-pack-request", body)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantLen := "length=1000000\n"
		if name == "chunked" {
			wantLen = "length=none\n"
		}
		if resp.StatusCode != 201 || !bytes.Equal(got, append([]byte(wantLen), payload...)) {
			t.Errorf("%s: %d, %d bytes, starting %q", name, resp.StatusCode, len(got), got[:min(len(got), 20)])
		}
	}
	redirect := script(t, dir, "redirect.cgi", "printf 'Location: /elsewhere\\n\\n'\n")
	srv2, _ := serve(t, "", "program", redirect)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, err := client.Get(srv2.URL + "/cgi/"); err != nil || resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/elsewhere" {
		t.Errorf("Location alone: %v %v", resp, err)
	}
	broken := script(t, dir, "broken.cgi", "echo 'not a header'\n")
	srv3, logs := serve(t, "", "program", broken)
	if resp, err := http.Get(srv3.URL + "/cgi/"); err != nil || resp.StatusCode != http.StatusBadGateway || !strings.Contains(logs.String(), "bad response head") {
		t.Errorf("a broken head: %v %v %s", resp, err, logs)
	}
}

// A program over its time is killed with its children, and the client gets
// a 504.
func TestTimeoutKillsTheProgramGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	prog := script(t, dir, "hang.cgi", "sleep 600 &\necho $! > "+pidFile+".tmp\nmv "+pidFile+".tmp "+pidFile+"\nwait\n")
	srv, logs := serve(t, "", "program", prog, "timeout", "0.5")
	resp, err := http.Get(srv.URL + "/cgi/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(logs.String(), "killed") {
		t.Fatalf("%d, log %s", resp.StatusCode, logs)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	// SIGKILL is delivered at once; the exit itself may take a moment:
	// wait for the pid to be gone (or a zombie), never for a fixed time.
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the program's child %d still runs 10 s after the timeout: %s", pid, stat)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConfigurationErrors(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "plain.txt")
	os.WriteFile(notExec, []byte("x"), 0o644)
	prog := script(t, dir, "ok.cgi", "true\n")
	componenttest.RequireError(t, "cgi", "option program is required")
	componenttest.RequireError(t, "cgi", "test.ini:1 [filter:cgi] program: "+notExec+" is not an executable file", "program", notExec)
	componenttest.RequireError(t, "cgi", "no such file", "program", filepath.Join(dir, "missing"))
	componenttest.RequireError(t, "cgi", "env: REMOTE_USER comes from the request", "program", prog, "env", "REMOTE_USER=admin")
	componenttest.RequireError(t, "cgi", "env: HTTP_X comes from the request", "program", prog, "env", "HTTP_X=1")
	componenttest.RequireError(t, "cgi", `timeout: "long" is not a duration`, "program", prog, "timeout", "long")
}

// The program's output reaches the client as it writes it: the client reads
// the first line while the program waits for the test to say go on.
func TestStreamsOut(t *testing.T) {
	dir := t.TempDir()
	goOn := filepath.Join(dir, "go-on")
	prog := script(t, dir, "stream.cgi", "printf 'Content-Type: text/plain\\n\\nfirst\\n'\nwhile [ ! -e "+goOn+" ]; do sleep 0.01; done\necho second\n")
	srv, _ := serve(t, "", "program", prog, "timeout", "30")
	resp, err := http.Get(srv.URL + "/cgi/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, len("first\n"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first\n" {
		t.Fatalf("first line %q %v", buf, err)
	}
	os.WriteFile(goOn, nil, 0o644)
	if rest, _ := io.ReadAll(resp.Body); string(rest) != "second\n" {
		t.Errorf("the rest %q", rest)
	}
}
