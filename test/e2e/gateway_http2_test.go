package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestGatewayHTTP2 runs the PEP 3333 essentials over HTTP/2 without TLS
// (prior knowledge, --h2c), which the gateway serves next to HTTP/1.1: the environ
// is built from HTTP/2's pseudo-headers and the body arrives as DATA frames.
func TestGatewayHTTP2(t *testing.T) {
	s := gwStart(t, "--workers", "2", "--threads", "1", "--h2c")
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Timeout: gwIOGuard, Transport: &http.Transport{Protocols: protocols}}
	t.Cleanup(client.CloseIdleConnections) // before the server stops: nothing left to drain
	do := func(t *testing.T, req *http.Request) gwResponse {
		t.Helper()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s over h2c: %v", req.Method, req.URL, err)
		}
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("response over %s, want HTTP/2", resp.Proto)
		}
		body, err := io.ReadAll(resp.Body)
		return gwResponse{status: resp.StatusCode, header: resp.Header, body: body, bodyErr: err, resp: resp}
	}

	t.Run("Environ", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.URL+"/environ/caf%C3%A9%2Fx?q=%FF&r=a+b", nil)
		req.Header.Add("X-Dup", "first")
		req.Header.Add("X-Dup", "second")
		var env map[string]any
		gwJSON(t, "environ over h2", do(t, req), &env)
		want := map[string]any{
			"SERVER_PROTOCOL": "HTTP/2.0",
			"HTTP_HOST":       s.addr,
			"PATH_INFO":       "/environ/" + gwLatin1([]byte("caf\xc3\xa9/x")),
			"QUERY_STRING":    "q=%FF&r=a+b",
			"HTTP_X_DUP":      "first, second",
			"REQUEST_METHOD":  "GET",
			"SCRIPT_NAME":     "",
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("environ[%q] = %#v, want %#v", k, env[k], v)
			}
		}
	})

	t.Run("Upload", func(t *testing.T) {
		data := make([]byte, 3<<20+5)
		rand.Read(data)
		req := gwPost(t, s.URL+"/read?mode=readline", bytes.NewReader(data), 50000)
		var got struct {
			SHA256    string `json:"sha256"`
			Length    int    `json:"length"`
			EOFSticky bool   `json:"eof_sticky"`
		}
		gwJSON(t, "h2 upload", do(t, req), &got)
		if got.SHA256 != gwSHA(data) || got.Length != len(data) || !got.EOFSticky {
			t.Errorf("app saw %+v, want %d bytes sha %s and a sticky EOF", got, len(data), gwSHA(data))
		}
	})

	t.Run("Echo", func(t *testing.T) {
		data := make([]byte, 2<<20)
		rand.Read(data)
		req := gwPost(t, s.URL+"/echo", bytes.NewReader(data), 65536)
		r := do(t, req)
		gwOK(t, "h2 echo", r)
		if gwSHA(r.body) != gwSHA(data) {
			t.Errorf("echoed %d bytes, sent %d, contents differ", len(r.body), len(data))
		}
	})

	t.Run("HeadAndNoBodyStatuses", func(t *testing.T) {
		req, _ := http.NewRequest("HEAD", s.URL+"/hello", nil)
		if r := do(t, req); r.status != 200 || len(r.body) != 0 || r.resp.ContentLength != 12 {
			t.Errorf("HEAD over h2: %d, %d body bytes, Content-Length %d", r.status, len(r.body), r.resp.ContentLength)
		}
		for _, status := range []string{"204+No+Content", "304+Not+Modified"} {
			req, _ := http.NewRequest("GET", s.URL+"/status?status="+status, nil)
			if r := do(t, req); len(r.body) != 0 || r.bodyErr != nil {
				t.Errorf("%s over h2: body %q (%v)", status, r.body, r.bodyErr)
			}
		}
	})

	t.Run("BlocksNotDelayed", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.URL+"/stream?n=3&hold=h2stream", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		if first, err := br.ReadString('\n'); err != nil || first != "piece 0\n" {
			t.Fatalf("first block over h2: %q, %v", first, err)
		}
		s.gwRelease(t, "h2stream")
		if rest, err := io.ReadAll(br); err != nil || string(rest) != "piece 1\npiece 2\n" {
			t.Errorf("rest of the h2 stream: %q, %v", rest, err)
		}
	})

	t.Run("HopByHopRefused", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.URL+"/hop?name=Connection&value=close", nil)
		if r := do(t, req); r.status != 500 || strings.Contains(strings.ToLower(r.header.Get("Connection")), "close") {
			t.Errorf("hop-by-hop header over h2: %d, Connection %q", r.status, r.header.Get("Connection"))
		}
	})
}
