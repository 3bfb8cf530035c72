package health

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/componenttest"
	_ "github.com/wsgate/wsgate/internal/component/metrics" // shares health's listener
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthFollowsTheSite(t *testing.T) {
	site := &componenttest.Site{}
	built := componenttest.Build(t, &componenttest.Host{S: site}, "health")
	srv := httptest.NewServer(built.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app")
	})))
	defer srv.Close()
	pool := func(ready int) component.PoolStats {
		return component.PoolStats{Name: "main", Workers: 2, Ready: ready}
	}
	for _, tc := range []struct {
		name     string
		pools    []component.PoolStats
		draining bool
		want     int
		body     string
	}{
		{"workers ready", []component.PoolStats{pool(2)}, false, 200, "ready\n"},
		{"no worker ready", []component.PoolStats{pool(0)}, false, 503, "not ready: pool main has no ready worker\n"},
		{"one pool of two without a ready worker", []component.PoolStats{pool(1), {Name: "admin", Workers: 1}}, false, 503, "not ready: pool admin has no ready worker\n"},
		{"draining", []component.PoolStats{pool(2)}, true, 503, "not ready: draining\n"},
		{"no pool (a Go-only site)", nil, false, 200, "ready\n"},
	} {
		site.SetPools(tc.pools...)
		site.SetDraining(tc.draining)
		if code, body := get(t, srv.URL+"/healthz/ready"); code != tc.want || body != tc.body {
			t.Errorf("%s: readiness %d %q, want %d %q", tc.name, code, body, tc.want, tc.body)
		}
		if code, body := get(t, srv.URL+"/healthz"); code != 200 || body != "ok\n" {
			t.Errorf("%s: liveness %d %q", tc.name, code, body)
		}
	}
	if code, body := get(t, srv.URL+"/healthz/other"); code != 200 || body != "app" {
		t.Errorf("another path reached %d %q, want the application", code, body)
	}
	resp, err := http.Post(srv.URL+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST to the probe: %d", resp.StatusCode)
	}
}

func TestHealthOwnListenerSharedAndHandedOver(t *testing.T) {
	addr := componenttest.FreeAddr(t)
	site := &componenttest.Site{}
	host := &componenttest.Host{S: site}
	h, err := componenttest.TryBuild(host, "health", "listen", addr)
	if err != nil {
		t.Fatal(err)
	}
	m, err := componenttest.TryBuild(host, "metrics", "listen", addr)
	if err != nil {
		t.Fatalf("metrics on the listener health opened: %v", err)
	}
	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("liveness on the own listener: %d", code)
	}
	if code, _ := get(t, "http://"+addr+"/metrics"); code != 200 {
		t.Fatalf("metrics on the shared listener: %d", code)
	}
	// The site is built again (a reload): the new health takes the paths
	// over, the old one is closed, the port never closes.
	site2 := &componenttest.Site{}
	site2.SetDraining(true)
	h2, err := componenttest.TryBuild(&componenttest.Host{S: site2}, "health", "listen", addr, "ready_path", "/ready")
	if err != nil {
		t.Fatalf("rebuilding on the same address: %v", err)
	}
	h.Close()
	if code, body := get(t, "http://"+addr+"/ready"); code != 503 || body != "not ready: draining\n" {
		t.Fatalf("the new build's readiness: %d %q", code, body)
	}
	if code, _ := get(t, "http://"+addr+"/healthz/ready"); code != 404 {
		t.Fatalf("the old build's path after it closed: %d", code)
	}
	h2.Close()
	if code, _ := get(t, "http://"+addr+"/metrics"); code != 200 {
		t.Fatalf("metrics once health is gone: %d", code)
	}
	m.Close()
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Fatal("the listener is still open after its last component closed")
	}
}

func TestHealthConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		want string
	}{
		{[]string{"path", "healthz"}, `path: "healthz" does not start with /`},
		{[]string{"ready_path", "/healthz"}, `ready_path: "/healthz" must start with / and differ from path`},
		{[]string{"listen", "localhost"}, `listen: "localhost" is not host:port`},
		{[]string{"paths", "/x"}, "paths: unknown option"},
	} {
		componenttest.RequireError(t, "health", tc.want, tc.opts...)
	}
}

// wsgate check builds the site without serving it: the address of a
// running server's probes must not be bound again.
func TestHealthListenNotBoundWhenNotServed(t *testing.T) {
	running, err := net.Listen("tcp", "127.0.0.1:0") // the running server's probe listener
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	addr := running.Addr().String()
	if _, err := componenttest.TryBuild(&componenttest.Host{}, "health", "listen", addr); err != nil {
		t.Fatalf("checking a configuration whose listener is in use: %v", err)
	}
	componenttest.RequireError(t, "health", "address already in use", "listen", addr)
}
