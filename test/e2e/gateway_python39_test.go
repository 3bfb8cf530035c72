package e2e

import (
	"bytes"
	"net/http"
	"os"
	"testing"

	"github.com/wsgate/wsgate/test/e2e/harness"
)

// gwPython39 is the oldest interpreter the runtime supports.
const gwPython39 = "/root/.pyenv/versions/3.9.18/bin/python"

// TestGatewayPython39 serves the validator-wrapped app with CPython 3.9: the
// embedded runtime must work there with the standard library alone.
func TestGatewayPython39(t *testing.T) {
	if _, err := os.Stat(gwPython39); err != nil {
		t.Skipf("CPython 3.9 not installed at %s", gwPython39)
	}
	s := gwStartApp(t, "pep3333:app", gwPython39, "--workers", "1", "--threads", "2")

	var env map[string]any
	gwJSON(t, "environ", gwGet(t, s.URL+"/environ/caf%C3%A9?q=1"), &env)
	if env["PATH_INFO"] != "/environ/"+gwLatin1([]byte("caf\xc3\xa9")) || env["QUERY_STRING"] != "q=1" {
		t.Errorf("PATH_INFO %q QUERY_STRING %q", env["PATH_INFO"], env["QUERY_STRING"])
	}
	if env["wsgi.multithread"] != true {
		t.Errorf("wsgi.multithread = %v with --threads 2", env["wsgi.multithread"])
	}

	body := gwLines()
	for _, chunked := range []bool{false, true} {
		var r = gwHideLength{r: bytes.NewReader(body), n: 8191}
		req, _ := http.NewRequest("POST", s.URL+"/read?mode=readline", r)
		req.ContentLength = int64(len(body))
		if chunked {
			req.ContentLength = -1
		}
		var got struct {
			SHA256    string `json:"sha256"`
			EOFSticky bool   `json:"eof_sticky"`
		}
		gwJSON(t, "read", gwDo(t, req), &got)
		if got.SHA256 != gwSHA(body) || !got.EOFSticky {
			t.Errorf("chunked=%v: body sha %s eof sticky %v, want %s true", chunked, got.SHA256, got.EOFSticky, gwSHA(body))
		}
	}

	w := gwGet(t, s.URL+"/write")
	if w.status != 200 || string(w.body) != "one-two-three" {
		t.Errorf("/write: %d %q", w.status, w.body)
	}
	gwOK(t, "/close", gwGet(t, s.URL+"/close?id=py39&n=2"))
	if got := harness.WaitFile(t, s.gwRecord("closed-py39")); got != "2" {
		t.Errorf("close() recorded %q", got)
	}
}
