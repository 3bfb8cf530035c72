package e2e

// End-to-end tests of the components that decide who a client is and how
// much it may ask (issue 9: auth, cors, ratelimit), with the real binary,
// real Python workers serving test/e2e/apps/pep3333.py, real HTTP clients
// and headless Chromium. Every identifier here starts with "gk".

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	_ "github.com/wsgate/wsgate/internal/component/all"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// gkFilterOptions are the options each registered Go filter is built with
// in TestGatekeeperRemoteUserSpoofing. A filter that builds with no options
// needs no entry; one that does not makes `wsgate check` refuse the test's
// site, failing the test until it gets one: every new filter is run through
// the spoofing test.
var gkFilterOptions = map[string]string{
	"auth":      "htpasswd = users.htpasswd\noptional = true\n",
	"cors":      "origins = *\n",
	"ratelimit": "rate = 1000\nburst = 1000\n",
	"bodylimit": "max_bytes = 1m\n",
	"proxyfix":  "trusted = 127.0.0.1\n",
	"sendfile":  "roots = %(here)s\n",
}

// gkSpoofHeaders are the spellings a client may try to pass itself off as
// REMOTE_USER with.
var gkSpoofHeaders = []string{"Remote-User", "Remote_User", "X-Remote-User", "REMOTE-USER", "REMOTE_USER", "remote_user"}

// gkUsers is an htpasswd file written by Apache's htpasswd -s for
// alice:wonderland.
const gkUsers = "alice:{SHA}tiY7sUhYKUwI5L3866kDY+ENcrQ=\n"

// gkSpoofSite writes a site that mounts the pep3333 app behind every
// registered Go filter (each at /f/NAME), at the root, and under a nested
// mount, and returns the INI's path and the mounts.
func gkSpoofSite(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "users.htpasswd"), []byte(gkUsers), 0o600); err != nil {
		t.Fatal(err)
	}
	var sections, mounts []string
	urlmap := []string{"[composite:main]", "use = egg:Paste#urlmap", "/ = plain", "/nested = nested"}
	for _, spec := range component.All() {
		if spec.Role != component.Filter {
			continue
		}
		section := fmt.Sprintf("[filter:%s]\nuse = egg:wsgate#%s\n%s", spec.Name, spec.Name, gkFilterOptions[spec.Name])
		sections = append(sections, section, fmt.Sprintf("[pipeline:behind-%s]\npipeline = %s plain\n", spec.Name, spec.Name))
		urlmap = append(urlmap, fmt.Sprintf("/f/%s = behind-%s", spec.Name, spec.Name))
		mounts = append(mounts, "/f/"+spec.Name)
	}
	if len(mounts) == 0 {
		t.Fatal("no Go filter is registered")
	}
	sort.Strings(mounts)
	mounts = append(mounts, "", "/nested/inner")
	ini := strings.Join(urlmap, "\n") + "\n\n" + strings.Join(sections, "\n") + `
[composite:nested]
use = egg:Paste#urlmap
/inner = plain

[app:plain]
use = call:pep3333:make_app
`
	path := filepath.Join(dir, "site.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	check := exec.Command(testutil.Binary(t), "check", path, "--pythonpath", gwAppsDir(), "--python", testutil.VenvPython(t))
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("the spoofing site does not load (a new filter needs options in gkFilterOptions?): %v\n%s", err, out)
	}
	return path, mounts
}

// gkEnviron asks the app at mount for its environ, with header set as
// written (not canonicalised) and, if user is set, alice's credentials.
func gkEnviron(t *testing.T, client *http.Client, base, mount, header, user string) map[string]any {
	t.Helper()
	req, err := http.NewRequest("GET", base+mount+"/environ", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header[header] = []string{"admin"}
	if user != "" {
		req.SetBasicAuth(user, "wonderland")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", header, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", header, req.URL, resp.StatusCode, body)
	}
	var env map[string]any
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("%s: %v: %s", req.URL, err, body)
	}
	return env
}

// TestGatekeeperRemoteUserSpoofing: whatever a client sends, over HTTP/1.1
// or HTTP/2, through every registered Go filter and every mount, the Python
// app never sees REMOTE_USER, except from auth after a valid password.
func TestGatekeeperRemoteUserSpoofing(t *testing.T) {
	ini, mounts := gkSpoofSite(t)
	s := gwStartArgs(t, "", ini, "--pythonpath", gwAppsDir(), "--workers", "1", "--h2c")
	h2 := new(http.Protocols)
	h2.SetUnencryptedHTTP2(true)
	clients := map[string]*http.Client{
		"HTTP/1.1": {Timeout: gwIOGuard},
		"HTTP/2":   {Timeout: gwIOGuard, Transport: &http.Transport{Protocols: h2}},
	}
	for proto, client := range clients {
		t.Cleanup(client.CloseIdleConnections)
		for _, mount := range mounts {
			for _, h := range gkSpoofHeaders {
				env := gkEnviron(t, client, s.URL, mount, h, "")
				if v, ok := env["REMOTE_USER"]; ok {
					t.Errorf("%s %q %s: admin became REMOTE_USER %v", proto, mount, h, v)
				}
				if strings.Contains(h, "_") {
					for k := range env {
						if strings.Contains(strings.ToUpper(k), "REMOTE_USER") {
							t.Errorf("%s %q %s: the app got %s = %v", proto, mount, h, k, env[k])
						}
					}
				}
			}
		}
		// auth's own answer wins over any header.
		for _, h := range gkSpoofHeaders {
			env := gkEnviron(t, client, s.URL, "/f/auth", h, "alice")
			if env["REMOTE_USER"] != "alice" {
				t.Errorf("%s auth with alice's password and %s: REMOTE_USER %v, want alice", proto, h, env["REMOTE_USER"])
			}
			if _, ok := env["HTTP_AUTHORIZATION"]; ok {
				t.Errorf("%s: the app was handed alice's password", proto)
			}
		}
	}
}

// gkServeSite writes ini (with %(here)s pointing at its directory) and
// serves it with one worker.
func gkServeSite(t *testing.T, ini string, files map[string]string) *gwServer {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "site.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	return gwStartArgs(t, "", path, "--pythonpath", gwAppsDir(), "--workers", "1")
}

// gkClientFrom is an HTTP client whose connections leave from source, another
// loopback address: another client as the server sees it.
func gkClientFrom(source string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	return &http.Client{Timeout: gwIOGuard, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// TestGatekeeperRateLimit: a burst past the bucket gets 429 with
// Retry-After, answered while the only worker is held by another client's
// request (so no worker is taken for it); other clients are still served
// and the server stays healthy.
func TestGatekeeperRateLimit(t *testing.T) {
	s := gkServeSite(t, `[pipeline:main]
pipeline = throttle plain

[filter:throttle]
use = egg:wsgate#ratelimit
rate = 0.001
burst = 3

[app:plain]
use = call:pep3333:make_app
`, nil)
	greedy, other := gkClientFrom("127.0.0.1"), gkClientFrom("127.0.0.2")
	// try may run outside the test's goroutine: it reports, never fails.
	try := func(c *http.Client, path string) (int, string, error) {
		resp, err := c.Get(s.URL + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), nil
	}
	get := func(c *http.Client, path string) (int, string) {
		t.Helper()
		code, retry, err := try(c, path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return code, retry
	}
	for i := 0; i < 3; i++ {
		if code, _ := get(greedy, "/environ"); code != 200 {
			t.Fatalf("request %d of the burst: %d", i+1, code)
		}
	}

	// The other client takes the only worker and holds it.
	held := make(chan int, 1)
	go func() {
		code, _, _ := try(other, "/block?id=hold")
		held <- code
	}()
	harness.WaitFile(t, s.gwRecord("hold.started"))

	// A burst from the greedy client: every request answered 429 while the
	// worker is busy (a request that needed a worker would wait for it).
	var wg sync.WaitGroup
	codes := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, retry, err := try(greedy, "/environ")
			codes <- fmt.Sprintf("%d Retry-After:%s %v", code, retry, err)
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		var code, secs int
		if n, _ := fmt.Sscanf(c, "%d Retry-After:%d <nil>", &code, &secs); n != 2 || code != 429 || secs < 1 || secs > 1000 {
			t.Errorf("past the burst: %s, want 429 with Retry-After 1..1000", c)
		}
	}

	s.gwRelease(t, "hold")
	if code := <-held; code != 200 {
		t.Errorf("the held request: %d", code)
	}
	if code, _ := get(other, "/environ"); code != 200 {
		t.Errorf("the other client after the burst: %d, want 200", code)
	}
	if code, _ := get(greedy, "/environ"); code != 429 {
		t.Errorf("the greedy client after the burst: %d, want 429", code)
	}
}

// gkEvalAsync evaluates a JavaScript expression whose value is a promise
// and returns what it resolves to.
func gkEvalAsync(t *testing.T, p *demoPage, expression string) string {
	t.Helper()
	var out struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := p.cdp.Call(p.session, "Runtime.evaluate", map[string]any{"expression": expression, "awaitPromise": true, "returnByValue": true}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if out.ExceptionDetails != nil {
		t.Fatalf("evaluating %s: %s", expression, out.ExceptionDetails.Text)
	}
	return out.Result.Value
}

// TestGatekeeperCORSChromium: headless Chromium on a page of another origin
// (another port of 127.0.0.1) sends a request that needs a preflight; the
// preflight is answered by wsgate's cors filter from the INI's origins, so
// the allowed origin's script reads the answer and the others are blocked by
// the browser itself.
func TestGatekeeperCORSChromium(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!doctype html><title>other origin</title>")
	})
	allowed := &http.Server{Handler: page}
	denied := &http.Server{Handler: page}
	origin := func(srv *http.Server) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return "http://" + ln.Addr().String()
	}
	allowedOrigin, deniedOrigin := origin(allowed), origin(denied)

	s := gkServeSite(t, `[pipeline:main]
pipeline = cors plain

[filter:cors]
use = egg:wsgate#cors
origins = `+allowedOrigin+`
methods = GET PUT
headers = X-Token
credentials = true

[app:plain]
use = call:pep3333:make_app
`, nil)

	browser := demoStartChromium(t)
	fetch := func(from, header string) string {
		t.Helper()
		p := browser.newPage(t)
		p.navigate(t, from+"/")
		js := fmt.Sprintf(`fetch(%q, {method: "PUT", credentials: "include", headers: {%q: "t0ken"}, body: "x"})
			.then(r => r.json()).then(e => e.REQUEST_METHOD + " " + (e.HTTP_X_TOKEN || e.HTTP_X_OTHER))
			.catch(e => "blocked: " + e)`, s.URL+"/environ", header)
		return gkEvalAsync(t, p, js)
	}
	if got := fetch(allowedOrigin, "X-Token"); got != "PUT t0ken" {
		t.Errorf("from the allowed origin: %q, want the app's answer", got)
	}
	if got := fetch(deniedOrigin, "X-Token"); !strings.HasPrefix(got, "blocked: ") {
		t.Errorf("from another origin: %q, want the browser to block it", got)
	}
	if got := fetch(allowedOrigin, "X-Other"); !strings.HasPrefix(got, "blocked: ") {
		t.Errorf("a header the INI does not allow: %q, want the browser to block it", got)
	}
}

// gkTool runs a command-line client the test needs, skipping the test when
// it is missing (testutil.Skip: a failure under make test).
func gkTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testutil.Skip(t, "%s missing: run ./scripts/system-deps.sh (make test does)", name)
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestGatekeeperAuthHtpasswd: auth against a file written by Apache's own
// htpasswd, with curl as the client; the file changed by htpasswd is
// re-read without a restart, and a line auth refuses (crypt() DES) is
// logged with its place while the last good file stays in force.
func TestGatekeeperAuthHtpasswd(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.htpasswd")
	gkTool(t, "htpasswd", "-cbB", users, "alice", "wonderland")
	ini := filepath.Join(dir, "site.ini")
	if err := os.WriteFile(ini, []byte(`[pipeline:main]
pipeline = login plain

[filter:login]
use = egg:wsgate#auth
htpasswd = users.htpasswd
realm = Staff

[app:plain]
use = call:pep3333:make_app
`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := gwStartArgs(t, "", ini, "--pythonpath", gwAppsDir(), "--workers", "1")
	// curl prints the status, then the challenge header if any, then the body.
	curl := func(creds string) (status, challenge string, env map[string]any) {
		t.Helper()
		args := []string{"-sS", "-D", "-", "-o", filepath.Join(dir, "body"), s.URL + "/environ"}
		if creds != "" {
			args = append(args, "-u", creds)
		}
		head := gkTool(t, "curl", args...)
		status = strings.Fields(head)[1]
		for _, line := range strings.Split(head, "\r\n") {
			if k, v, ok := strings.Cut(line, ": "); ok && strings.EqualFold(k, "WWW-Authenticate") {
				challenge = v
			}
		}
		if status == "200" {
			body, _ := os.ReadFile(filepath.Join(dir, "body"))
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
		}
		return status, challenge, env
	}

	if status, challenge, _ := curl(""); status != "401" || challenge != `Basic realm="Staff", charset="UTF-8"` {
		t.Errorf("anonymous: %s, WWW-Authenticate %q", status, challenge)
	}
	if status, _, env := curl("alice:wonderland"); status != "200" || env["REMOTE_USER"] != "alice" {
		t.Errorf("alice: %s, REMOTE_USER %v", status, env["REMOTE_USER"])
	}
	if status, _, _ := curl("alice:looking-glass"); status != "401" {
		t.Errorf("alice with a wrong password: %s", status)
	}

	gkTool(t, "htpasswd", "-bB", users, "alice", "looking-glass")
	harness.WaitFor(t, "the new password to be accepted", func() bool {
		status, _, _ := curl("alice:looking-glass")
		return status == "200"
	})
	if status, _, _ := curl("alice:wonderland"); status != "401" {
		t.Errorf("the old password after the change: %s", status)
	}
	if !strings.Contains(s.Logs(), `msg="htpasswd reloaded"`) {
		t.Errorf("no reload logged:\n%s", s.Logs())
	}

	gkTool(t, "htpasswd", "-bd", users, "bob", "builder")
	harness.WaitFor(t, "the refused line to be logged", func() bool {
		if status, _, _ := curl("alice:looking-glass"); status != "200" {
			t.Fatalf("alice refused after a bad line was added: %s", status)
		}
		return strings.Contains(s.Logs(), `users.htpasswd:2: user \"bob\": crypt() DES hash (htpasswd -d) refused`)
	})
	if status, _, _ := curl("bob:builder"); status != "401" {
		t.Errorf("bob, whose line was refused: %s", status)
	}
}

// TestGatekeeperTrustedHeader: auth's trusted_header makes REMOTE_USER only
// for requests whose connection comes from a trusted address; from any
// other, the header is removed before the app sees it (optional = true lets
// the request on, anonymous).
func TestGatekeeperTrustedHeader(t *testing.T) {
	s := gkServeSite(t, `[pipeline:main]
pipeline = sso plain

[filter:sso]
use = egg:wsgate#auth
trusted_header = X-Forwarded-User
trusted = 127.0.0.1
optional = true

[app:plain]
use = call:pep3333:make_app
`, nil)
	environ := func(c *http.Client) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL+"/environ", nil)
		req.Header.Set("X-Forwarded-User", "alice")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
			t.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		return env
	}
	if env := environ(gkClientFrom("127.0.0.1")); env["REMOTE_USER"] != "alice" {
		t.Errorf("from the trusted proxy: REMOTE_USER %v, want alice", env["REMOTE_USER"])
	}
	env := environ(gkClientFrom("127.0.0.2"))
	if v, ok := env["REMOTE_USER"]; ok {
		t.Errorf("from an untrusted peer: REMOTE_USER %v", v)
	}
	if v, ok := env["HTTP_X_FORWARDED_USER"]; ok {
		t.Errorf("from an untrusted peer, the app still got the header: %v", v)
	}
}
