package e2e

// End-to-end tests of the components that let an application authorise and
// Go serve (issue 9: sendfile, delegate, proxy, cgi), with the real binary,
// real Python workers (test/e2e/apps/gatekeeper.py), and real clients: hg,
// git, a WebSocket client. Every identifier here starts with "gs".

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// gsGitBackend is Debian's git http-backend.
const gsGitBackend = "/usr/lib/git-core/git-http-backend"

// gsSite is a site in which the Python gate (one worker) answers first:
// it serves downloads through sendfile or from Python, and hands /hg and
// /git to hgweb (its own pool) and git http-backend (cgi) after checking the
// login. /private-git is git behind Go's auth; /ws a proxy to upstream.
type gsSite struct {
	*gwServer
	dir string
}

// gsStart serves the site; prepare, if set, fills its directory first
// (hgweb lists its repositories when it starts).
func gsStart(t *testing.T, upstream string, prepare func(dir string)) *gsSite {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"files", "hg", "git", "secret"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "users.htpasswd"), []byte(gkUsers), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret", "key.txt"), []byte("the secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if upstream == "" {
		upstream = "http://" + gsFreeAddr(t)
	}
	ini := `[composite:main]
use = egg:Paste#urlmap
/ = gated
/private-git = git-behind-login
/ws = websocket

[composite:gated]
use = egg:wsgate#delegate
app = gate-with-files
targets = hgweb git

[pipeline:gate-with-files]
pipeline = downloads gateapp

[filter:downloads]
use = egg:wsgate#sendfile
roots = %(here)s/files
accel_map = /protected/ = %(here)s/files

[app:gateapp]
use = call:gatekeeper:make_gate

[app:hgweb]
use = call:gatekeeper:make_hgweb
repos = %(here)s/hg

[app:git]
use = egg:wsgate#cgi
program = ` + gsGitBackend + `
env = GIT_PROJECT_ROOT=%(here)s/git GIT_HTTP_EXPORT_ALL=1
timeout = 120

[pipeline:git-behind-login]
pipeline = login git

[filter:login]
use = egg:wsgate#auth
htpasswd = %(here)s/users.htpasswd
realm = git

[app:websocket]
use = egg:wsgate#proxy
upstream = ` + upstream + `
`
	path := filepath.Join(dir, "site.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(dir)
	}
	s := gwStartArgs(t, "", path, "--pythonpath", gwAppsDir(), "--workers", "1")
	return &gsSite{gwServer: s, dir: dir}
}

func gsFreeAddr(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	return addr
}

// gsDownload reads url to the end, and returns its SHA-256 and length.
func gsDownload(t *testing.T, url string) (string, int64) {
	t.Helper()
	resp, err := gwClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %s", url, resp.StatusCode, body)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("%s: %v after %d bytes", url, err, n)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// TestGatekeeperSendfileFreesTheWorker: a 100 MiB download the Python gate
// authorises with X-Sendfile (and X-Accel-Redirect) arrives whole, and while
// the client still reads it slowly, the server's only worker serves another
// request. The worker time per download is logged for the four ways: the
// Python app reading the file, wsgi.file_wrapper, X-Sendfile, X-Accel-Redirect.
func TestGatekeeperSendfileFreesTheWorker(t *testing.T) {
	s := gsStart(t, "", nil)
	big := filepath.Join(s.dir, "files", "big.bin")
	data := make([]byte, 100<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	data = nil

	q := func(via, id string) string {
		return s.URL + "/download?" + url.Values{"via": {via}, "id": {id}, "path": {big}, "uri": {"/protected/big.bin"}}.Encode()
	}
	for _, via := range []string{"sendfile", "accel"} {
		// The slow client: it reads 1 MiB, then asks the only worker for
		// another page, which must be answered while the download waits.
		resp, err := gwClient.Get(q(via, "slow-"+via))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.ContentLength != 100<<20 || resp.Header.Get("Content-Disposition") != "attachment; filename=big.bin" || resp.Header.Get("X-Sendfile") != "" {
			t.Fatalf("%s: %d length %d %v", via, resp.StatusCode, resp.ContentLength, resp.Header)
		}
		h := sha256.New()
		if _, err := io.CopyN(h, resp.Body, 1<<20); err != nil {
			t.Fatal(err)
		}
		hello := gwGet(t, s.URL+"/hello")
		if hello.status != 200 || string(hello.body) != "hello from the gate\n" {
			t.Fatalf("%s: the only worker did not answer during the download: %d %q", via, hello.status, hello.body)
		}
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || n != 99<<20 || hex.EncodeToString(h.Sum(nil)) != want {
			t.Fatalf("%s: %d more bytes (%v), hash %s, want %s", via, n, err, hex.EncodeToString(h.Sum(nil)), want)
		}
	}

	// Worker time per download, the client reading as fast as it can.
	for _, via := range []string{"python", "file_wrapper", "sendfile", "accel"} {
		id := "fast-" + via
		began := time.Now()
		got, n := gsDownload(t, q(via, id))
		wall := time.Since(began)
		if got != want || n != 100<<20 {
			t.Fatalf("%s: %d bytes, hash %s, want %s", via, n, got, want)
		}
		worker, _ := strconv.ParseFloat(harness.WaitFile(t, s.gwRecord(id+".worker")), 64)
		t.Logf("100 MiB via %-12s worker held %8.2f ms, download %8.1f ms", via, worker*1000, float64(wall.Microseconds())/1000)
	}

	// Outside the roots: a bare 500, a log line naming the header.
	for _, c := range []struct{ via, path, uri, header string }{
		{"sendfile", filepath.Join(s.dir, "secret", "key.txt"), "", "X-Sendfile"},
		{"sendfile", s.dir + "/files/../secret/key.txt", "", "X-Sendfile"},
		{"accel", "", "/protected/../secret/key.txt", "X-Accel-Redirect"},
		{"accel", "", "/other/key.txt", "X-Accel-Redirect"},
	} {
		r := gwGet(t, s.URL+"/download?"+url.Values{"via": {c.via}, "path": {c.path}, "uri": {c.uri}}.Encode())
		if r.status != 500 || bytes.Contains(r.body, []byte("secret")) {
			t.Errorf("%s %s%s: %d %q, want a bare 500", c.via, c.path, c.uri, r.status, r.body)
		}
		s.WaitLog("header=" + c.header + " value=" + c.path + c.uri)
	}
}

// gsGit runs git with its own empty configuration.
func gsGit(t *testing.T, home string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com", "GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// gsGitRepo makes a bare repository demo.git with one commit under root.
func gsGitRepo(t *testing.T, root string) string {
	t.Helper()
	home := t.TempDir()
	bare := filepath.Join(root, "demo.git")
	work := t.TempDir()
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", "--initial-branch=main", bare},
		{"init", "--quiet", "--initial-branch=main", work},
		{"-C", work, "commit", "--quiet", "--allow-empty", "-m", "first"},
		{"-C", work, "push", "--quiet", bare, "main"},
	} {
		if out, err := gsGit(t, home, args...); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return bare
}

// gsGitCloneAndPush clones base/demo.git anonymously, then pushes a commit
// anonymously (refused) and as alice (accepted), checked in the bare repo.
// anonClone false: the anonymous clone itself must be refused.
func gsGitCloneAndPush(t *testing.T, base, bare string, anonClone bool) {
	t.Helper()
	home := t.TempDir()
	u, _ := url.Parse(base)
	anon := base + "/demo.git"
	alice := u.Scheme + "://alice:wonderland@" + u.Host + u.Path + "/demo.git"
	clone := filepath.Join(t.TempDir(), "clone")
	out, err := gsGit(t, home, "clone", anon, clone)
	if !anonClone {
		// git asks for a user at the 401 challenge; it has no terminal.
		if err == nil || !strings.Contains(out, "could not read Username") {
			t.Fatalf("anonymous git clone %s: %v, want refused\n%s", anon, err, out)
		}
		if out, err = gsGit(t, home, "clone", alice, clone); err != nil {
			t.Fatalf("git clone as alice: %v\n%s", err, out)
		}
	} else if err != nil {
		t.Fatalf("anonymous git clone %s: %v\n%s", anon, err, out)
	}
	message := "pushed through wsgate by " + t.Name()
	payload := make([]byte, 3<<20) // over git's 1 MiB postBuffer: a chunked POST
	rand.Read(payload)
	os.WriteFile(filepath.Join(clone, "blob.bin"), payload, 0o644)
	if out, err := gsGit(t, home, "-C", clone, "add", "blob.bin"); err != nil {
		t.Fatal(out)
	}
	if out, err := gsGit(t, home, "-C", clone, "commit", "-q", "-m", message); err != nil {
		t.Fatal(out)
	}
	if out, err := gsGit(t, home, "-C", clone, "push", anon, "main"); err == nil {
		t.Errorf("anonymous git push accepted:\n%s", out)
	}
	if log, _ := gsGit(t, home, "--git-dir", bare, "log", "--format=%s", "main"); strings.Contains(log, message) {
		t.Fatalf("the anonymous push landed: %s", log)
	}
	if out, err := gsGit(t, home, "-C", clone, "push", alice, "main"); err != nil {
		t.Fatalf("git push as alice: %v\n%s", err, out)
	}
	if log, _ := gsGit(t, home, "--git-dir", bare, "log", "--format=%s", "main"); !strings.Contains(log, message) {
		t.Fatalf("alice's push is not in %s: %s", bare, log)
	}
	second := filepath.Join(t.TempDir(), "second")
	if out, err := gsGit(t, home, "clone", alice, second); err != nil {
		t.Fatalf("second clone: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(second, "blob.bin")); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("the pushed 3 MiB blob came back different (%v)", err)
	}
}

// TestGatekeeperGitThroughCGI: the real git client against git http-backend
// run by the cgi component, behind Go's auth (anonymous refused outright)
// and behind the Python gate through delegate (anonymous clones, pushes as
// alice only: REMOTE_USER reaches git from the gate's header).
func TestGatekeeperGitThroughCGI(t *testing.T) {
	if _, err := os.Stat(gsGitBackend); err != nil {
		testutil.Skip(t, "git http-backend missing (%v): apt-get install git", err)
	}
	s := gsStart(t, "", nil)
	bare := gsGitRepo(t, filepath.Join(s.dir, "git"))
	t.Run("auth", func(t *testing.T) { gsGitCloneAndPush(t, s.URL+"/private-git", bare, false) })
	t.Run("delegate", func(t *testing.T) { gsGitCloneAndPush(t, s.URL+"/git", bare, true) })
}

// TestGatekeeperHgThroughDelegate: the real hg client against hgweb in its
// own pool, reached through the Python gate's delegation: anonymous clone,
// anonymous push refused, alice's push accepted (hgweb's allow-push names
// her: REMOTE_USER came from the gate), then a delegation the INI does not
// list refused.
func TestGatekeeperHgThroughDelegate(t *testing.T) {
	hg := demoHgCommand(t)
	s := gsStart(t, "", func(dir string) {
		repo := filepath.Join(dir, "hg", "demo")
		if out, err := hg("init", repo); err != nil {
			t.Fatalf("hg init: %v\n%s", err, out)
		}
		os.WriteFile(filepath.Join(repo, ".hg", "hgrc"), []byte("[web]\npush_ssl = false\nallow-push = alice\n"), 0o644)
	})
	repo := filepath.Join(s.dir, "hg", "demo")
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := hg("clone", s.URL+"/hg/demo", clone); err != nil {
		t.Fatalf("anonymous hg clone: %v\n%s", err, out)
	}
	payload := make([]byte, 3<<20)
	rand.Read(payload)
	os.WriteFile(filepath.Join(clone, "blob.bin"), payload, 0o644)
	message := "pushed through delegate"
	if out, err := hg("--cwd", clone, "commit", "--addremove", "--user", "e2e <e2e@example.com>", "--message", message); err != nil {
		t.Fatalf("hg commit: %v\n%s", err, out)
	}
	if out, err := hg("--cwd", clone, "push", s.URL+"/hg/demo"); err == nil {
		t.Fatalf("anonymous hg push accepted:\n%s", out)
	}
	if log := demoHgLog(t, hg, repo); strings.Contains(log, message) {
		t.Fatal("the anonymous push landed")
	}
	host := strings.TrimPrefix(s.URL, "http://")
	if out, err := hg("--cwd", clone, "push", "http://alice:wonderland@"+host+"/hg/demo"); err != nil || !strings.Contains(out, "added 1 changesets") {
		t.Fatalf("hg push as alice: %v\n%s", err, out)
	}
	if log := demoHgLog(t, hg, repo); !strings.Contains(log, message) {
		t.Fatalf("alice's push is not in the repository: %s", log)
	}
	second := filepath.Join(t.TempDir(), "second")
	if out, err := hg("clone", s.URL+"/hg/demo", second); err != nil {
		t.Fatalf("second clone: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(second, "blob.bin")); !bytes.Equal(got, payload) {
		t.Fatal("the pushed 3 MiB file came back different")
	}

	// Targets outside what the INI lists are refused, with a log line.
	for _, to := range []string{"gateapp", "websocket", "nowhere"} {
		r := gwGet(t, s.URL+"/delegate?to="+to)
		if r.status != 500 || bytes.Contains(r.body, []byte("never sent")) {
			t.Errorf("delegation to %s: %d %q, want 500", to, r.status, r.body)
		}
		s.WaitLog("value=" + to + ` error="names no application listed in targets"`)
	}
}

// TestGatekeeperProxyWebSocket: a WebSocket echo through the proxy (the
// upstream is a Go server of this test), then the upstream dies: 502, and
// the rest of the site is still served.
func TestGatekeeperProxyWebSocket(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/echo" {
			fmt.Fprintf(w, "upstream saw %s for %s", r.URL.Path, r.Header.Get("X-Forwarded-Prefix"))
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	defer upstream.Close()
	s := gsStart(t, upstream.URL, nil)
	if r := gwGet(t, s.URL+"/ws/page"); r.status != 200 || string(r.body) != "upstream saw /page for /ws" {
		t.Fatalf("proxied page: %d %q", r.status, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), gwIOGuard)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+strings.TrimPrefix(s.URL, "http://")+"/ws/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		msg := fmt.Sprintf("message %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "echo: "+msg {
			t.Fatalf("echo %q %v", got, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")

	upstream.CloseClientConnections()
	upstream.Close()
	if r := gwGet(t, s.URL+"/ws/page"); r.status != http.StatusBadGateway {
		t.Errorf("after the upstream died: %d %q, want 502", r.status, r.body)
	}
	s.WaitLog("proxy: upstream failed")
	if r := gwGet(t, s.URL+"/hello"); r.status != 200 {
		t.Errorf("the rest of the site after the upstream died: %d", r.status)
	}
}

// TestGatekeeperGoAppsIgnoreSpoofedUser: the cgi program and the proxy's
// upstream never take a client's header for the user: whatever spelling of
// Remote-User the client sends, the program's REMOTE_USER and the
// upstream's X-Remote-User are alice's only after auth accepted her
// password (through auth, or through the gate's delegation).
func TestGatekeeperGoAppsIgnoreSpoofedUser(t *testing.T) {
	var seenUser = make(chan http.Header, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenUser <- r.Header.Clone()
	}))
	defer upstream.Close()
	dir := t.TempDir()
	env := filepath.Join(dir, "env.cgi")
	os.WriteFile(env, []byte("#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nenv\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "users.htpasswd"), []byte(gkUsers), 0o600)
	ini := `[composite:main]
use = egg:Paste#urlmap
/cgi = cgi-login
/proxy = proxy-login
/gate = gated

[pipeline:cgi-login]
pipeline = login cgi

[pipeline:proxy-login]
pipeline = login proxy

[filter:login]
use = egg:wsgate#auth
htpasswd = %(here)s/users.htpasswd
optional = true

[composite:gated]
use = egg:wsgate#delegate
app = gateapp
targets = cgi

[app:gateapp]
use = call:gatekeeper:make_gate

[app:cgi]
use = egg:wsgate#cgi
program = %(here)s/env.cgi

[app:proxy]
use = egg:wsgate#proxy
upstream = ` + upstream.URL + `
`
	path := filepath.Join(dir, "site.ini")
	os.WriteFile(path, []byte(ini), 0o644)
	s := gwStartArgs(t, "", path, "--pythonpath", gwAppsDir(), "--workers", "1", "--h2c")
	h2 := new(http.Protocols)
	h2.SetUnencryptedHTTP2(true)
	for proto, client := range map[string]*http.Client{
		"HTTP/1.1": {Timeout: gwIOGuard},
		"HTTP/2":   {Timeout: gwIOGuard, Transport: &http.Transport{Protocols: h2}},
	} {
		ask := func(target, header, user string) string {
			req, _ := http.NewRequest("GET", s.URL+target, nil)
			req.Header[header] = []string{"admin"}
			if user != "" {
				req.SetBasicAuth(user, "wonderland")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s %s: %v", proto, target, header, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("%s %s %s: %d %s", proto, target, header, resp.StatusCode, body)
			}
			return string(body)
		}
		for _, h := range gkSpoofHeaders {
			for _, user := range []string{"", "alice"} {
				want := ""
				if user != "" {
					want = "REMOTE_USER=alice\n"
				}
				body := ask("/cgi/x", h, user)
				if got := gsEnvLine(body, "REMOTE_USER"); got != want {
					t.Errorf("%s cgi, %s, user %q: %q, want %q", proto, h, user, got, want)
				}
				if strings.Contains(h, "_") && strings.Contains(body, "admin") {
					t.Errorf("%s cgi, %s: the program was handed the header:\n%s", proto, h, body)
				}
				ask("/proxy/x", h, user)
				got := <-seenUser
				if v := got.Get("X-Remote-User"); v != strings.TrimSuffix(strings.TrimPrefix(want, "REMOTE_USER="), "\n") {
					t.Errorf("%s proxy, %s, user %q: the upstream's X-Remote-User %q", proto, h, user, v)
				}
				for k, v := range got {
					if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "remote-user") || strings.Contains(k, "_") {
						t.Errorf("%s proxy, %s: the upstream got %s: %v", proto, h, k, v)
					}
				}
			}
			// Delegated without a user by the gate: no REMOTE_USER at all.
			body := ask("/gate/delegate?to=cgi&pathinfo=/x", h, "")
			if got := gsEnvLine(body, "REMOTE_USER"); got != "" {
				t.Errorf("%s delegated cgi, %s: %q", proto, h, got)
			}
			if got := gsEnvLine(body, "SCRIPT_NAME"); got != "SCRIPT_NAME=/gate\n" {
				t.Errorf("%s delegated cgi: %q", proto, got)
			}
		}
		client.CloseIdleConnections()
	}
}

// gsEnvLine is the NAME=value line of env output ("" when absent).
func gsEnvLine(env, name string) string {
	for _, line := range strings.Split(env, "\n") {
		if strings.HasPrefix(line, name+"=") {
			return line + "\n"
		}
	}
	return ""
}
