package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/wsgate/wsgate/test/e2e/harness"
)

// TestGatewayDirectBody: large list bodies, which the worker writes to the
// client's socket itself (docs/protocol.md, DIRECT), arrive whole and in
// order on one keep-alive connection, between small ones that take the
// master's path, and HEAD keeps its Content-Length without a body.
func TestGatewayDirectBody(t *testing.T) {
	s := gwStart(t, "--lend=false", "--workers", "1")
	client := &http.Client{Timeout: gwIOGuard, Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	var conns int
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if !info.Reused {
			conns++
		}
	}}
	get := func(method, url string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: reading the body: %v (%d bytes)", method, url, err, len(body))
		}
		return resp, body
	}
	for i, size := range []int{600 << 10, 1 << 20, 100, 5 << 20, 512 << 10, 200 << 10, 3 << 20} {
		resp, body := get("GET", fmt.Sprintf("%s/big?size=%d&seed=%d", s.URL, size, i))
		sum := sha256.Sum256(body)
		if resp.StatusCode != 200 || len(body) != size || hex.EncodeToString(sum[:]) != resp.Header.Get("X-Sha256") {
			t.Errorf("GET /big?size=%d: status %d, %d bytes, sha256 %x, want 200, %d bytes, %s",
				size, resp.StatusCode, len(body), sum, size, resp.Header.Get("X-Sha256"))
		}
		resp, body = get("GET", s.URL+"/hello")
		if resp.StatusCode != 200 || string(body) != "hello world\n" {
			t.Errorf("GET /hello after a %d-byte body: %d %q", size, resp.StatusCode, body)
		}
	}
	resp, body := get("HEAD", s.URL+"/big?size=1048576")
	if resp.StatusCode != 200 || resp.ContentLength != 1<<20 || len(body) != 0 {
		t.Errorf("HEAD /big: status %d, Content-Length %d, %d body bytes; want 200, 1048576, none", resp.StatusCode, resp.ContentLength, len(body))
	}
	gwOK(t, "a request after HEAD", gwGet(t, s.URL+"/hello"))
	if conns != 1 {
		t.Errorf("%d connections for the requests, want 1 (keep-alive across the worker-written bodies)", conns)
	}
}

// TestGatewayDirectBodyWorkerSegv: a worker killed by SIGSEGV while a large
// response is on its way (the client not reading: the worker wrote what the
// socket took and is handing the rest to the master, more than the master
// keeps in memory for one response, so the worker waits on the client)
// costs that response only: the client gets a truncated body and a closed
// connection, never a hang, and the next request is served by the
// replacement.
func TestGatewayDirectBodyWorkerSegv(t *testing.T) {
	s := gwStart(t, "--lend=false", "--workers", "1")
	c := s.gwDial(t)
	const size = 64 << 20 // above maxHeldOne (internal/gateway/direct.go)
	io.WriteString(c, "GET /big?size="+strconv.Itoa(size)+" HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	req, _ := http.NewRequest("GET", "/", nil)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(resp.Header.Get("X-Pid"))
	if pid <= 0 {
		t.Fatalf("no worker pid in the response headers: %v", resp.Header)
	}
	if err := syscall.Kill(pid, syscall.SIGSEGV); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "the killed worker to be reaped", func() bool { return harness.ProcessReaped(pid) })
	body, err := io.ReadAll(resp.Body)
	if err == nil || len(body) >= size {
		t.Errorf("response of a worker killed mid-body: %d of %d bytes, error %v; want a truncated body and an error", len(body), size, err)
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Errorf("the connection after the failed response: %v, want it closed", err)
	}
	r := gwGet(t, s.URL+"/pid")
	gwOK(t, "a request after the crash", r)
	if string(r.body) == strconv.Itoa(pid) {
		t.Errorf("served by the killed worker %d", pid)
	}
}

// TestGatewayDirectBodySeenByCompress: a route whose Go component reads the
// response body (compress) keeps the body on the master's path, so the
// component compresses it; the same pool on a route without it sends the
// identity bytes; both on one connection.
func TestGatewayDirectBodySeenByCompress(t *testing.T) {
	ini := filepath.Join(t.TempDir(), "site.ini")
	if err := os.WriteFile(ini, []byte(`[composite:main]
use = egg:Paste#urlmap
/ = pep
/z = zipped

[pipeline:zipped]
pipeline = compress pep

[filter:compress]
use = egg:wsgate#compress
types = application/octet-stream

[app:pep]
use = call:pep3333:make_app
`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := gwStartArgs(t, "", ini, "--pythonpath", gwAppsDir(), "--workers", "1")
	c := s.gwDial(t)
	br := bufio.NewReader(c)
	for _, tc := range []struct{ path, coding string }{
		{"/z/big?size=1000000", "gzip"}, {"/big?size=1000000", ""}, {"/z/big?size=2000000&seed=2", "gzip"},
	} {
		io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
		resp, body := gwReadResponse(t, br, "GET")
		if got := resp.Header.Get("Content-Encoding"); got != tc.coding {
			t.Fatalf("GET %s: Content-Encoding %q, want %q", tc.path, got, tc.coding)
		}
		if tc.coding == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("GET %s: %v", tc.path, err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatalf("GET %s: %v", tc.path, err)
			}
		}
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != resp.Header.Get("X-Sha256") {
			t.Errorf("GET %s: %d bytes whose sha256 is not the application's", tc.path, len(body))
		}
	}
}

// TestGatewayDirectBodySlowReader: a client that stops reading a 10 MiB
// response holds no worker: with one worker, other requests are served
// while it waits, and it still gets every byte when it reads on. (Without
// this the requests behind it would wait for --timeout and fail.)
func TestGatewayDirectBodySlowReader(t *testing.T) {
	s := gwStart(t, "--lend=false", "--workers", "1", "--timeout", "10")
	c := s.gwDial(t)
	const size = 10 << 20
	io.WriteString(c, "GET /big?size="+strconv.Itoa(size)+"&seed=slow HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReaderSize(c, 4096)
	req, _ := http.NewRequest("GET", "/", nil)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 10<<10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		gwOK(t, fmt.Sprintf("request %d while a client does not read its 10 MiB", i), gwGet(t, s.URL+"/hello"))
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the rest of the slow response: %v", err)
	}
	sum := sha256.Sum256(append(first, rest...))
	if len(first)+len(rest) != size || hex.EncodeToString(sum[:]) != resp.Header.Get("X-Sha256") {
		t.Errorf("slow response: %d bytes, sha256 %x, want %d bytes, %s", len(first)+len(rest), sum, size, resp.Header.Get("X-Sha256"))
	}
}
