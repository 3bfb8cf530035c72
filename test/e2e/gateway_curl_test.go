package e2e

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
)

// TestGatewayCurl talks to the gateway with curl, a client written by other
// people: a chunked upload from a file, HEAD, and HTTP/2 without TLS.
func TestGatewayCurl(t *testing.T) {
	run := gwCurl(t)
	s := gwStart(t, "--workers", "1", "--h2c")

	data := make([]byte, 3<<20+17)
	rand.Read(data)
	file := filepath.Join(t.TempDir(), "upload.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var got struct {
		SHA256 string `json:"sha256"`
		Length int    `json:"length"`
	}
	out := run("--fail", "-H", "Transfer-Encoding: chunked", "--data-binary", "@"+file, s.URL+"/read?mode=chunks")
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.SHA256 != gwSHA(data) || got.Length != len(data) {
		t.Errorf("chunked upload by curl: app saw %+v (%v), want %d bytes sha %s", got, err, len(data), gwSHA(data))
	}

	// With a known length above 1 MB curl sends Expect: 100-continue.
	out = run("--fail", "--data-binary", "@"+file, s.URL+"/read?mode=small")
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.SHA256 != gwSHA(data) {
		t.Errorf("upload with Expect: 100-continue: app saw %+v (%v), want sha %s", got, err, gwSHA(data))
	}
	// The same upload over HTTP/2 (h2c), where bodies arrive as DATA frames.
	out = run("--fail", "--http2-prior-knowledge", "--data-binary", "@"+file, s.URL+"/read?mode=chunks")
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.SHA256 != gwSHA(data) || got.Length != len(data) {
		t.Errorf("HTTP/2 upload: app saw %+v (%v), want %d bytes sha %s", got, err, len(data), gwSHA(data))
	}

	head := run("--head", s.URL+"/hello")
	if !strings.HasPrefix(head, "HTTP/1.1 200") || !strings.Contains(strings.ToLower(head), "content-length: 12") {
		t.Errorf("curl --head: %q", head)
	}

	out = run("--fail", "--http2-prior-knowledge", "--write-out", "\n%{http_version}", s.URL+"/hello")
	if out != "hello world\n\n2" {
		t.Errorf("curl --http2-prior-knowledge: %q, want hello world over HTTP/2", out)
	}
}

// gwCurl returns a function that runs curl with args and returns its
// output, failing the test if curl fails; the test is skipped through
// testutil.Skip when curl is missing.
func gwCurl(t *testing.T) func(args ...string) string {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		testutil.Skip(t, "curl missing: run ./scripts/system-deps.sh curl (make test does)")
	}
	return func(args ...string) string {
		t.Helper()
		out, err := exec.Command(curl, append([]string{"--silent", "--show-error", "--max-time", "60"}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
}
