package ratelimit

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/wsgate/wsgate/internal/component"
	_ "github.com/wsgate/wsgate/internal/component/auth"
	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// chain builds the named filters of ini, outermost first, around an app
// that counts the requests it gets.
func chain(t *testing.T, ini string, names ...string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var reached atomic.Int64
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) })
	for i := len(names) - 1; i >= 0; i-- {
		built, err := componenttest.BuildINI(t, &componenttest.Host{}, t.TempDir(), ini, names[i], true)
		if err != nil {
			t.Fatal(err)
		}
		h = built.Wrap(h)
	}
	attach := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, _ = component.Attach(r) // as compose does before the first component
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(attach)
	t.Cleanup(srv.Close)
	return srv, &reached
}

// clientFrom is an HTTP client whose connections come from source, another
// address of the loopback network: another client as the server sees it.
func clientFrom(source string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}}
}

func status(t *testing.T, c *http.Client, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// A burst past the bucket gets 429 with Retry-After and never reaches the
// app; another client is served meanwhile; X-Forwarded-For changes nothing.
func TestBurstPerAddress(t *testing.T) {
	srv, reached := chain(t, "[filter:rl]\nuse = egg:wsgate#ratelimit\nrate = 0.001\nburst = 3\n", "rl")
	one := clientFrom("127.0.0.1")
	for i := 0; i < 3; i++ {
		if code, _ := status(t, one, srv.URL); code != 200 {
			t.Fatalf("request %d of the burst: %d", i+1, code)
		}
	}
	for i := 0; i < 3; i++ {
		code, retry := status(t, one, srv.URL, "X-Forwarded-For", "203.0.113."+strconv.Itoa(i))
		secs, err := strconv.Atoi(retry)
		if code != 429 || err != nil || secs < 1 || secs > 1000 {
			t.Errorf("past the burst: status %d, Retry-After %q (want 429, 1..1000 s)", code, retry)
		}
	}
	if n := reached.Load(); n != 3 {
		t.Errorf("the app saw %d requests, want 3", n)
	}
	if code, _ := status(t, clientFrom("127.0.0.2"), srv.URL); code != 200 {
		t.Errorf("another client: %d, want 200", code)
	}
}

// key = user counts per REMOTE_USER (set by a real auth filter in front),
// and anonymous requests per address.
func TestPerUser(t *testing.T) {
	const ini = `[filter:auth]
use = egg:wsgate#auth
trusted_header = X-User
trusted = 127.0.0.0/8
optional = true

[filter:rl]
use = egg:wsgate#ratelimit
rate = 0.001
burst = 1
key = user
`
	srv, _ := chain(t, ini, "auth", "rl")
	c := clientFrom("127.0.0.1")
	for _, step := range []struct {
		user string
		want int
	}{{"alice", 200}, {"alice", 429}, {"bob", 200}, {"", 200}, {"", 429}, {"bob", 429}} {
		var h []string
		if step.user != "" {
			h = []string{"X-User", step.user}
		}
		if code, _ := status(t, c, srv.URL, h...); code != step.want {
			t.Errorf("%q: %d, want %d", step.user, code, step.want)
		}
	}
	// key = addr: the users of one address share its bucket.
	srv, _ = chain(t, strings.Replace(ini, "key = user", "key = addr", 1), "auth", "rl")
	if code, _ := status(t, c, srv.URL, "X-User", "alice"); code != 200 {
		t.Errorf("key = addr, alice: %d", code)
	}
	if code, _ := status(t, c, srv.URL, "X-User", "bob"); code != 429 {
		t.Errorf("key = addr, bob from alice's address: %d, want 429", code)
	}
}

// The address is Facts.RemoteAddr when proxyfix set it; IPv6 addresses
// count per network.
func TestKey(t *testing.T) {
	l := &limiter{v6mask: net.CIDRMask(64, 128)}
	key := func(remote, factsAddr string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r, f := component.Attach(r)
		f.RemoteAddr = factsAddr
		return l.key(r)
	}
	if got := key("10.0.0.1:5000", "198.51.100.7"); got != "a:198.51.100.7" {
		t.Errorf("with proxyfix's address: %q", got)
	}
	if got := key("10.0.0.1:5000", ""); got != "a:10.0.0.1" {
		t.Errorf("the connection's address: %q", got)
	}
	if a, b := key("[2001:db8:1:2:aaaa::1]:5000", ""), key("[2001:db8:1:2:bbbb::9]:6000", ""); a != b || a != "a:2001:db8:1:2::" {
		t.Errorf("one /64: %q and %q", a, b)
	}
	if a, b := key("[2001:db8:1:2::1]:5000", ""), key("[2001:db8:1:3::1]:5000", ""); a == b {
		t.Errorf("two /64s share %q", a)
	}
}

// Retry-After is the time until a token is back.
func TestRetryAfter(t *testing.T) {
	tb := newTable(rate.Limit(0.25), 1, 10) // a token every 4 s
	now := time.Unix(1000, 0)
	if ok, _, _ := tb.take("k", now); !ok {
		t.Fatal("first request refused")
	}
	ok, wait, _ := tb.take("k", now.Add(time.Second))
	if ok || wait != 3*time.Second {
		t.Fatalf("second request: ok %v, wait %v, want refused and 3s", ok, wait)
	}
	if ok, _, _ := tb.take("k", now.Add(4*time.Second)); !ok {
		t.Fatal("refused once the token was back")
	}
}

// The table never holds more than max buckets: idle (full) ones go first,
// then, if every client is active, a quarter at random.
func TestBounded(t *testing.T) {
	tb := newTable(rate.Limit(1), 2, 8)
	now := time.Unix(1000, 0)
	for i := 0; i < 8; i++ {
		tb.take("idle"+strconv.Itoa(i), now)
	}
	later := now.Add(time.Hour) // every bucket full again
	tb.take("active", later)
	tb.take("active", later)
	if _, _, forced := tb.take("new", later); forced || len(tb.buckets) != 2 {
		t.Fatalf("idle buckets not dropped: forced %v, %d kept", forced, len(tb.buckets))
	}
	if ok, _, _ := tb.take("active", later); ok {
		t.Fatal("the active client's bucket was dropped with the idle ones")
	}
	for i := 0; len(tb.buckets) < 8; i++ {
		tb.take("busy"+strconv.Itoa(i), later)
	}
	_, _, forced := tb.take("one more", later)
	if !forced || len(tb.buckets) > 8 {
		t.Fatalf("full of active clients: forced %v, %d kept (max 8)", forced, len(tb.buckets))
	}
	for i := 0; i < 1000; i++ {
		tb.take("flood"+strconv.Itoa(i), later)
		if len(tb.buckets) > 8 {
			t.Fatalf("%d buckets after %d new clients (max 8)", len(tb.buckets), i+1)
		}
	}
}

func TestRefusedAtLoad(t *testing.T) {
	cases := []struct{ options, want string }{
		{"", "site.ini:1 [filter:rl]: option rate is required"},
		{"rate = fast\n", `site.ini:3 [filter:rl] rate: "fast" is not a number of requests per second above 0`},
		{"rate = 0\n", `rate: "0" is not a number`},
		{"rate = NaN\n", `rate: "NaN" is not a number`},
		{"rate = 5\nburst = 0\n", `site.ini:4 [filter:rl] burst: "0" is not a whole number ≥ 1`},
		{"rate = 5\nkey = cookie\n", `site.ini:4 [filter:rl] key: "cookie" is neither addr nor user`},
		{"rate = 5\nipv6_prefix = 129\n", `site.ini:4 [filter:rl] ipv6_prefix: 129 is more bits`},
		{"rate = 5\nmax_clients = -1\n", `site.ini:4 [filter:rl] max_clients:`},
	}
	for _, c := range cases {
		_, err := componenttest.BuildINI(t, &componenttest.Host{}, t.TempDir(), "[filter:rl]\nuse = egg:wsgate#ratelimit\n"+c.options, "rl", true)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.options, err, c.want)
		}
	}
}
