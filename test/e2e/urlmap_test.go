package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// TestUrlmapAgainstPaste serves apps/urlmap.ini (three levels of urlmaps,
// Paste's name and ours, domain and port keys, trailing and doubled slashes
// in keys) with wsgate's Go urlmap, and the same file with PasteDeploy and
// Paste's own urlmap in Python, and requires for every request the same
// status, and the same application, SCRIPT_NAME and PATH_INFO (or the same
// 404 text).
func TestUrlmapAgainstPaste(t *testing.T) {
	ini := filepath.Join(gwAppsDir(), "urlmap.ini")
	type request struct {
		Path string `json:"path"`
		Host string `json:"host"`
	}
	var reqs []request
	for _, p := range []string{
		"/", "/x", "/a", "/a/", "/a/x", "/ab", "/a/b", "/a/b/", "/a/bc", "/a/b/c", "/a/b/c/", "/a/b/cd", "/a/b/c/d",
		"//a", "/a//b", "///a///b///c", "/a/./b", "/a/../b",
		"/%61/x", "/a%2Fb", "/a%2fb/c", "/caf%C3%A9", "/a/%E9t%E9", "/a%20b", "/%2F%2Fa",
		"/nested", "/nested/", "/nested/x", "/nested/x/", "/nested/xy", "/nested/x/y", "/nested/x/y/z",
		"/nested/z", "/nested/z/", "/nested/zz", "/nested/unknown", "/nested//x",
		"/nested/deeper", "/nested/deeper/", "/nested/deeper/q", "/nested/deeper/q/r", "/nested/deeper/qq",
		"/trail", "/trail/", "/trailer", "/trail/x", "/double", "/double/", "/double/x", "/doublex",
		"/site", "/site/", "/site/x", "/sitex", "/?q=1", "/a/b?x=/y",
	} {
		reqs = append(reqs, request{p, "localhost"})
	}
	for _, h := range []string{"example.com", "EXAMPLE.COM", "example.com:8080", "example.com:80", "example.org", "mixed.case", "Mixed.Case"} {
		for _, p := range []string{"/", "/site", "/site/x", "/sitex", "/a/b"} {
			reqs = append(reqs, request{p, h})
		}
	}

	// Paste's answers.
	in, _ := json.Marshal(reqs)
	cmd := exec.Command(testutil.VenvPython(t), filepath.Join(gwAppsDir(), "paste_urlmap.py"), ini)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+gwAppsDir())
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("paste_urlmap.py: %v\n%s", err, stderr.String())
	}
	var paste []struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &paste); err != nil || len(paste) != len(reqs) {
		t.Fatalf("paste_urlmap.py answered %d results (%v): %s", len(paste), err, stdout.String())
	}

	srv := harness.Start(t, harness.Options{Args: []string{ini, "--pythonpath", gwAppsDir(), "--workers", "1"}})
	// Two Python applications under many prefixes: two pools.
	if ready := srv.WaitLog("wsgate: ready"); !strings.Contains(ready, "ready, 2 pools, ") {
		t.Errorf("ready line %q: want the two applications' pools only", ready)
	}
	gw := &gwServer{Server: srv, addr: strings.TrimPrefix(srv.URL, "http://")}
	found404, foundDomain := false, false
	for i, rq := range reqs {
		raw := gw.gwRawExchange(t, fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/plain\r\nConnection: close\r\n\r\n", rq.Path, rq.Host))
		resp, body := gwReadResponse(t, bufio.NewReader(bytes.NewReader(raw)), "GET")
		want := paste[i]
		what := rq.Host + rq.Path
		if resp.StatusCode != want.Status {
			t.Errorf("%s: status %d, Paste %d (%q)", what, resp.StatusCode, want.Status, want.Body)
			continue
		}
		if want.Status == 404 {
			found404 = true
			if string(body) != want.Body {
				t.Errorf("%s: 404 text %q, Paste %q", what, body, want.Body)
			}
			continue
		}
		var got, exp map[string]string
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("%s: %v: %q", what, err, body)
			continue
		}
		_ = json.Unmarshal([]byte(want.Body), &exp)
		if got["app"] != exp["app"] || got["SCRIPT_NAME"] != exp["SCRIPT_NAME"] || got["PATH_INFO"] != exp["PATH_INFO"] {
			t.Errorf("%s: %s %q %q, Paste %s %q %q", what, got["app"], got["SCRIPT_NAME"], got["PATH_INFO"], exp["app"], exp["SCRIPT_NAME"], exp["PATH_INFO"])
		}
		foundDomain = foundDomain || strings.HasPrefix(rq.Host, "example.com") && exp["SCRIPT_NAME"] == "/site"
	}
	if !found404 || !foundDomain {
		t.Errorf("the corpus no longer reaches a 404 (%v) or a domain mount (%v)", found404, foundDomain)
	}
	srv.Stop()
}
