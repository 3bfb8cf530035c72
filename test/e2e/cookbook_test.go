package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/test/e2e/harness"
)

// The recipes of docs/cookbook.md run as printed: their files are taken from
// the page itself, so an edit that breaks a recipe fails here.
// (TestDjangoFullCookbookSite covers the first recipe.)

// cookbookFile returns the block of section whose first line is "# NAME".
func cookbookFile(t *testing.T, section, name string) string {
	t.Helper()
	for _, b := range docBlocks(t, "docs/cookbook.md", section) {
		if strings.HasPrefix(b.text, "# "+name+" ") {
			return b.text
		}
	}
	t.Fatalf("docs/cookbook.md, %q: no block starting with # %s", section, name)
	return ""
}

func TestCookbookOpenStackPipeline(t *testing.T) {
	const section = "An OpenStack-style service: one pipeline, Go filters first"
	dir := t.TempDir()
	for _, name := range []string{"myapi.py", "api.ini"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(cookbookFile(t, section, name)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// check: the four Go filters, then one Python pool for the rest.
	r := djRun(t, dir, "", nil, "check", "api.ini")
	if r.status != 0 {
		t.Fatalf("wsgate check api.ini: %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	for _, want := range []string{"Go requestid", "Go accesslog", "Go bodylimit", "Go ratelimit", "Python"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("wsgate check api.ini does not say %q:\n%s", want, r.stdout)
		}
	}

	srv := harness.Start(t, harness.Options{Args: []string{"--workers", "1", "api.ini"}, Dir: dir})
	defer srv.Stop()

	get := func(token string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/servers", nil)
		if token != "" {
			req.Header.Set("X-Auth-Token", token)
		}
		req.Header.Set("X-Request-ID", "cookbook-42")
		resp, err := gwClient.Do(req)
		if err != nil {
			t.Fatalf("GET /servers: %v", err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			b.WriteString(sc.Text())
		}
		return resp, b.String()
	}
	if resp, body := get(""); resp.StatusCode != 401 || !strings.Contains(body, "X-Auth-Token") {
		t.Errorf("without a token: %s %q, want the Python filter's 401", resp.Status, body)
	}
	resp, body := get("s3cret")
	var seen struct {
		User      string `json:"user"`
		RequestID string `json:"request_id"`
		Path      string `json:"path"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &seen) != nil {
		t.Fatalf("with the token: %s %q", resp.Status, body)
	}
	if seen.User != "alice" || seen.RequestID != "cookbook-42" || seen.Path != "/servers" {
		t.Errorf("the API saw %+v, want alice, the request id and /servers", seen)
	}
	if got := resp.Header.Get("X-Request-ID"); got != "cookbook-42" {
		t.Errorf("X-Request-ID echoed %q", got)
	}

	// 2 MB against max_bytes = 1m: Go answers, no worker reads it.
	big, _ := http.NewRequest("POST", srv.URL+"/servers", strings.NewReader(strings.Repeat("x", 2<<20)))
	big.Header.Set("X-Auth-Token", "s3cret")
	if resp, err := gwClient.Do(big); err != nil || resp.StatusCode != 413 {
		t.Errorf("a 2 MB body: %v %v, want 413", resp, err)
	} else {
		resp.Body.Close()
	}

	// The JSON access line carries the id the application saw.
	line := srv.WaitLog(`"cookbook-42"`)
	var entry map[string]any
	if i := strings.IndexByte(line, '{'); i < 0 || json.Unmarshal([]byte(line[i:]), &entry) != nil {
		t.Fatalf("access log line is not JSON: %q", line)
	}
}

func TestCookbookBehindALoadBalancer(t *testing.T) {
	dir := dfProject(t, "behind-lb.ini", cookbookFile(t, "Moving from nginx + gunicorn", "behind-lb.ini"))
	secret := []string{"--set", "secret_key=cookbook-" + demoRandom(t)}
	if r := djRun(t, dir, "", nil, append(append([]string{"manage"}, secret...), "behind-lb.ini", "collectstatic", "--noinput", "--verbosity", "0")...); r.status != 0 {
		t.Fatalf("wsgate manage behind-lb.ini collectstatic: %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	r := djRun(t, dir, "", nil, append(append([]string{"check"}, secret...), "behind-lb.ini")...)
	if r.status != 0 || !strings.Contains(r.stdout, "Go proxyfix") || !strings.Contains(r.stdout, "Go django_full") {
		t.Fatalf("wsgate check behind-lb.ini: %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	srv := harness.Start(t, harness.Options{Args: append(secret, "--workers", "1", "behind-lb.ini"), Dir: dir})
	defer srv.Stop()
	// From 127.0.0.1, which is not the balancer, forged X-Forwarded-* headers
	// change nothing: the access line names the real peer.
	req, _ := http.NewRequest("GET", srv.URL+"/admin/login/", nil)
	req.Host = "www.example.com"
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	resp, err := gwClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /admin/login/: %s", resp.Status)
	}
	if line := srv.WaitLog(`"GET /admin/login/ HTTP/1.1" 200`); !strings.HasPrefix(line, "127.0.0.1 ") {
		t.Errorf("access line %q: the client is 127.0.0.1, not the forged 203.0.113.9", line)
	}
	if resp, css := dfGet(t, srv.URL+"/static/admin/css/base.css", "www.example.com"); resp.StatusCode != 200 || !strings.Contains(css, "body") {
		t.Errorf("GET /static/admin/css/base.css: %s", resp.Status)
	}
}
