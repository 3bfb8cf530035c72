package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// seen is what the upstream was sent.
type seen struct {
	URI    string
	Host   string
	Header http.Header
}

func upstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			// A protocol switch: 101, then every byte sent back.
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			brw.Flush()
			io.Copy(conn, brw)
			return
		}
		json.NewEncoder(w).Encode(seen{URI: r.RequestURI, Host: r.Host, Header: r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// mounted serves the proxy as if a urlmap had mounted it at mount.
func mounted(h http.Handler, mount, user string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, f := component.Attach(r)
		f.ScriptName = mount
		f.PathInfo, _ = component.PercentDecode(strings.TrimPrefix(r.URL.EscapedPath(), mount))
		f.PathSet = true
		f.RemoteUser = user
		h.ServeHTTP(w, r)
	})
}

func TestProxiesBelowTheMount(t *testing.T) {
	up := upstream(t)
	built := componenttest.Build(t, &componenttest.Host{}, "proxy", "upstream", up.URL+"/base/")
	front := httptest.NewServer(mounted(built.Handler, "/api", "alice"))
	defer front.Close()
	req, _ := http.NewRequest("GET", front.URL+"/api/a%2Fb/c%20d?x=1&y=%2F", nil)
	req.Host = "www.example.org"
	for _, h := range []string{"Remote-User", "Remote_User", "X-Remote-User", "X_Remote_User", "X-Forwarded-For", "Forwarded", "X-Forwarded-Prefix"} {
		req.Header[h] = []string{"mallory"}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got seen
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.URI != "/base/a%2Fb/c%20d?x=1&y=%2F" {
		t.Errorf("upstream URI %q", got.URI)
	}
	if got.Host != strings.TrimPrefix(up.URL, "http://") {
		t.Errorf("upstream Host %q", got.Host)
	}
	for k, want := range map[string]string{
		"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "www.example.org",
		"X-Forwarded-Prefix": "/api", "X-Remote-User": "alice", "Remote-User": "", "Forwarded": "",
	} {
		if v := strings.Join(got.Header[k], ","); v != want {
			t.Errorf("upstream's %s: %q, want %q", k, v, want)
		}
	}
	for k := range got.Header {
		if strings.Contains(k, "_") {
			t.Errorf("upstream got %s: %v", k, got.Header[k])
		}
	}
}

// A protocol upgrade (a WebSocket's handshake) passes through both ways.
func TestUpgradePassesThrough(t *testing.T) {
	up := upstream(t)
	built := componenttest.Build(t, &componenttest.Host{}, "proxy", "upstream", up.URL)
	front := httptest.NewServer(built.Handler)
	defer front.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%v %v", resp, err)
	}
	io.WriteString(conn, "ping over the switched connection")
	buf := make([]byte, len("ping over the switched connection"))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping over the switched connection" {
		t.Fatalf("echo %q %v", buf, err)
	}
}

func TestUpstreamFailures(t *testing.T) {
	logs := &componenttest.Logs{}
	host := &componenttest.Host{Log: logs.Logger()}
	// Nothing listens: 502.
	down := componenttest.Build(t, host, "proxy", "upstream", "http://"+componenttest.FreeAddr(t))
	rec := httptest.NewRecorder()
	down.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != http.StatusBadGateway || !strings.Contains(logs.String(), "upstream failed") {
		t.Errorf("down upstream: %d, log %q", rec.Code, logs.String())
	}
	// An upstream that never answers: 504 after response_timeout.
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer hung.Close()
	defer close(release)
	slow := componenttest.Build(t, host, "proxy", "upstream", hung.URL, "response_timeout", "0.2")
	rec = httptest.NewRecorder()
	slow.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != http.StatusGatewayTimeout {
		t.Errorf("hung upstream: %d, want 504", rec.Code)
	}
}

func TestConfigurationErrors(t *testing.T) {
	componenttest.RequireError(t, "proxy", "option upstream is required")
	componenttest.RequireError(t, "proxy", `test.ini:1 [filter:proxy] upstream: "ftp://x" is not http://host:port`, "upstream", "ftp://x")
	componenttest.RequireError(t, "proxy", `upstream: "http:///x" is not`, "upstream", "http:///x")
	componenttest.RequireError(t, "proxy", `user_header: "Remote_User" is not a header name`, "upstream", "http://h:1", "user_header", "Remote_User")
	componenttest.RequireError(t, "proxy", `health_path: "healthz" does not start with /`, "upstream", "http://h:1", "health_path", "healthz")
	componenttest.RequireError(t, "proxy", `connect_timeout: "soon" is not a duration`, "upstream", "http://h:1", "connect_timeout", "soon")
}

// With health_path, a failing upstream is answered 502 at once, and served
// again when it recovers; both turns are logged.
func TestHealthCheck(t *testing.T) {
	var healthy atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && !healthy.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "served")
	}))
	defer up.Close()
	logs := &componenttest.Logs{}
	built := componenttest.Build(t, &componenttest.Host{Log: logs.Logger()}, "proxy", "upstream", up.URL, "health_path", "/healthz", "health_interval", "0.05")
	waitLog := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(logs.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("no log line %q:\n%s", what, logs)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitLog("failed its health check")
	rec := httptest.NewRecorder()
	built.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), "health check") {
		t.Errorf("while unhealthy: %d %q", rec.Code, rec.Body)
	}
	healthy.Store(true)
	waitLog("healthy again")
	rec = httptest.NewRecorder()
	built.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 200 || rec.Body.String() != "served" {
		t.Errorf("recovered: %d %q", rec.Code, rec.Body)
	}
}

// A response streams through as the upstream writes it (a server-sent
// event stream): the client reads the first event while the upstream is
// still waiting to send the second; a request body streams up the same way.
func TestStreamsBothWays(t *testing.T) {
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			// Echo the body as it comes, line by line.
			rc := http.NewResponseController(w)
			rc.EnableFullDuplex()
			w.WriteHeader(200)
			rc.Flush()
			br := bufio.NewReader(r.Body)
			for {
				line, err := br.ReadString('\n')
				if line != "" {
					io.WriteString(w, "got "+line)
					rc.Flush()
				}
				if err != nil {
					return
				}
			}
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		<-next
		io.WriteString(w, "data: two\n\n")
	}))
	defer up.Close()
	built := componenttest.Build(t, &componenttest.Host{}, "proxy", "upstream", up.URL)
	front := httptest.NewServer(built.Handler)
	defer front.Close()
	client := &http.Client{Timeout: 30 * time.Second} // a proxy that buffers fails, not hangs

	resp, err := client.Get(front.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "data: one\n" {
		t.Fatalf("first event %q %v", line, err)
	}
	close(next) // only now may the upstream go on: the first event was not held back
	rest, _ := io.ReadAll(br)
	resp.Body.Close()
	if string(rest) != "\ndata: two\n\n" {
		t.Errorf("the rest: %q", rest)
	}

	pr, pw := io.Pipe()
	resp, err = client.Post(front.URL+"/echo", "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br = bufio.NewReader(resp.Body)
	for _, line := range []string{"first\n", "second\n"} {
		io.WriteString(pw, line)
		// The answer to this line arrives before the next one is sent.
		if got, err := br.ReadString('\n'); err != nil || got != "got "+line {
			t.Fatalf("echo of %q: %q %v", line, got, err)
		}
	}
	pw.Close()
}
