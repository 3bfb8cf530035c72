package e2e

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// TestGatewayPythons serves the validator-wrapped app through the real binary
// with every CPython from 3.9 up that the machine has (testutil.Pythons, no
// virtualenv: the embedded runtime must work with the standard library alone).
// Without a 3.9 and a 3.12+ it fails under `make test`.
func TestGatewayPythons(t *testing.T) {
	for _, py := range testutil.Pythons(t) {
		t.Run(py.Version, func(t *testing.T) {
			gwServeOnPython(t, py.Path)
		})
	}
}

func gwServeOnPython(t *testing.T, python string) {
	s := gwStartApp(t, "pep3333:app", python, "--workers", "1", "--threads", "2")

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
	gwOK(t, "/close", gwGet(t, s.URL+"/close?id=py&n=2"))
	if got := harness.WaitFile(t, s.gwRecord("closed-py")); got != "2" {
		t.Errorf("close() recorded %q", got)
	}
	// wsgi.file_wrapper, validated: a real file, byte for byte.
	path := filepath.Join(gwAppsDir(), "pep3333.py")
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f := gwGet(t, s.URL+"/vfile?path="+url.QueryEscape(path)); f.status != 200 || !bytes.Equal(f.body, want) {
		t.Errorf("/vfile: %d, %d bytes, want 200 and the %d bytes of %s", f.status, len(f.body), len(want), path)
	}
}
