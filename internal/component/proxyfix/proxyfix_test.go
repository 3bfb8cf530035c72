package proxyfix

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// seen sends a request from peer through proxyfix built with opts and
// returns the Facts the next handler saw.
func seen(t *testing.T, opts []string, peer string, tls bool, headers ...string) component.Facts {
	t.Helper()
	built := componenttest.Build(t, &componenttest.Host{}, "proxyfix", opts...)
	var got component.Facts
	h := built.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := component.FactsOf(r); f != nil {
			got = *f
		}
		for i := 0; i+1 < len(headers); i += 2 {
			if r.Header.Get(headers[i]) == "" {
				t.Errorf("header %s removed from the request", headers[i])
			}
		}
	}))
	target := "http://example.org/p"
	if tls {
		target = "https://example.org/p"
	}
	req := httptest.NewRequest("GET", target, nil)
	req.RemoteAddr = peer
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	h.ServeHTTP(httptest.NewRecorder(), req)
	return got
}

func TestProxyfix(t *testing.T) {
	local := []string{"trusted", "127.0.0.1"}
	all := []string{"trusted", "127.0.0.1 10.0.0.0/8 ::1", "headers", "x-forwarded-for x-forwarded-proto x-forwarded-host x-forwarded-port x-forwarded-prefix"}
	for _, tc := range []struct {
		name    string
		opts    []string
		peer    string
		headers []string
		want    component.Facts
	}{
		{"untrusted peer: nothing believed", local, "203.0.113.9:5000",
			[]string{"X-Forwarded-For", "1.1.1.1", "X-Forwarded-Proto", "https"}, component.Facts{}},
		{"trusted peer, one hop", local, "127.0.0.1:5000",
			[]string{"X-Forwarded-For", "6.6.6.6, 2.2.2.2", "X-Forwarded-Proto", "https"},
			component.Facts{RemoteAddr: "2.2.2.2", Scheme: "https", ServerPort: "443"}},
		{"IPv4-mapped peer", local, "[::ffff:127.0.0.1]:5000",
			[]string{"X-Forwarded-For", "2.2.2.2"}, component.Facts{RemoteAddr: "2.2.2.2"}},
		{"walk stops at the first untrusted writer", append([]string{"hops", "5"}, all...), "127.0.0.1:1",
			[]string{"X-Forwarded-For", "6.6.6.6, 1.1.1.1, 10.0.0.2"}, component.Facts{RemoteAddr: "1.1.1.1"}},
		{"walk stops after hops", append([]string{"hops", "2"}, all...), "127.0.0.1:1",
			[]string{"X-Forwarded-For", "6.6.6.6, 10.0.0.3, 10.0.0.2"}, component.Facts{RemoteAddr: "10.0.0.3"}},
		{"several header lines are one list", append([]string{"hops", "2"}, all...), "127.0.0.1:1",
			[]string{"X-Forwarded-For", "6.6.6.6", "X-Forwarded-For", "10.0.0.3, 1.1.1.1"}, component.Facts{RemoteAddr: "1.1.1.1"}},
		{"entries with ports and brackets", all, "[::1]:1",
			[]string{"X-Forwarded-For", "[2001:db8::7]:4711"}, component.Facts{RemoteAddr: "2001:db8::7"}},
		{"not an address: REMOTE_ADDR stays", all, "127.0.0.1:1",
			[]string{"X-Forwarded-For", "unknown", "X-Forwarded-Proto", "https"}, component.Facts{Scheme: "https", ServerPort: "443"}},
		{"not an address beyond a trusted hop: that hop is the client", append([]string{"hops", "3"}, all...), "127.0.0.1:1",
			[]string{"X-Forwarded-For", "6.6.6.6, unknown, 10.0.0.2"}, component.Facts{RemoteAddr: "10.0.0.2"}},
		{"host, port and prefix", all, "127.0.0.1:1",
			[]string{"X-Forwarded-For", "2.2.2.2", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "www.example.com",
				"X-Forwarded-Port", "8443", "X-Forwarded-Prefix", "/shop/"},
			component.Facts{RemoteAddr: "2.2.2.2", Scheme: "https", ServerName: "www.example.com", ServerPort: "8443", ScriptName: "/shop"}},
		{"host with its port", all, "127.0.0.1:1",
			[]string{"X-Forwarded-Host", "www.example.com:8080"}, component.Facts{ServerName: "www.example.com", ServerPort: "8080"}},
		{"proto read at the depth of the client", append([]string{"hops", "2"}, all...), "127.0.0.1:1",
			[]string{"X-Forwarded-For", "2.2.2.2, 10.0.0.5", "X-Forwarded-Proto", "https, http"},
			component.Facts{RemoteAddr: "2.2.2.2", Scheme: "https", ServerPort: "443"}},
		{"bad values ignored", all, "127.0.0.1:1",
			[]string{"X-Forwarded-Proto", "javascript", "X-Forwarded-Host", "evil.com/x", "X-Forwarded-Port", "99999",
				"X-Forwarded-Prefix", "/a/../b"}, component.Facts{}},
		{"headers not listed are not read", local, "127.0.0.1:1",
			[]string{"X-Forwarded-Host", "evil.example", "X-Forwarded-Prefix", "/x", "Forwarded", "for=9.9.9.9"}, component.Facts{}},
		{"RFC 7239", []string{"trusted", "127.0.0.1", "headers", "forwarded"}, "127.0.0.1:1",
			[]string{"Forwarded", `for=6.6.6.6;proto=http, for="[2001:db8::1]:4711";proto=https;host="example.com:8443"`},
			component.Facts{RemoteAddr: "2001:db8::1", Scheme: "https", ServerName: "example.com", ServerPort: "8443"}},
		{"RFC 7239, two trusted hops", []string{"trusted", "127.0.0.1 10.0.0.0/8", "hops", "3", "headers", "forwarded"}, "127.0.0.1:1",
			[]string{"Forwarded", `for=6.6.6.6, for=192.0.2.43;proto=https`, "Forwarded", `for=10.1.1.1;proto=http`},
			component.Facts{RemoteAddr: "192.0.2.43", Scheme: "https", ServerPort: "443"}},
		{"RFC 7239 obfuscated for", []string{"trusted", "127.0.0.1", "headers", "forwarded"}, "127.0.0.1:1",
			[]string{"Forwarded", `for=_hidden;proto=https`}, component.Facts{Scheme: "https", ServerPort: "443"}},
		{"RFC 7239 quoted separators", []string{"trusted", "127.0.0.1", "headers", "forwarded"}, "127.0.0.1:1",
			[]string{"Forwarded", `for=192.0.2.1;host="a.example,b;c", for=192.0.2.2`}, component.Facts{RemoteAddr: "192.0.2.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := seen(t, tc.opts, tc.peer, false, tc.headers...); got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestProxyfixPortFollowsTheConnectionScheme(t *testing.T) {
	opts := []string{"trusted", "127.0.0.1", "headers", "x-forwarded-host"}
	if got := seen(t, opts, "127.0.0.1:1", true, "X-Forwarded-Host", "example.com"); got.ServerPort != "443" {
		t.Fatalf("over TLS with no forwarded port: %+v", got)
	}
}

func TestProxyfixUnixSocketPeer(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		want string
	}{
		{[]string{"trust_unix", "true"}, "203.0.113.7"},
		{[]string{"trust_unix", "true", "trusted", "10.0.0.0/8"}, "203.0.113.7"},
		{[]string{"trusted", "127.0.0.1"}, ""}, // a unix peer is not 127.0.0.1
	} {
		built := componenttest.Build(t, &componenttest.Host{}, "proxyfix", tc.opts...)
		var got component.Facts
		h := built.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if f := component.FactsOf(r); f != nil {
				got = *f
			}
		}))
		req := httptest.NewRequest("GET", "/", nil)
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.UnixAddr{Name: "/run/app.sock", Net: "unix"}))
		req.RemoteAddr = "@"
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		h.ServeHTTP(httptest.NewRecorder(), req)
		if got.RemoteAddr != tc.want {
			t.Errorf("options %q: REMOTE_ADDR %q, want %q", tc.opts, got.RemoteAddr, tc.want)
		}
	}
}

func TestProxyfixConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		want string
	}{
		{nil, "test.ini:1 [filter:proxyfix]: option trusted is required"},
		{[]string{"trusted", "10.0.0.0/33"}, `trusted: "10.0.0.0/33" is not an address or a network`},
		{[]string{"trusted", "localhost"}, `"localhost" is not an address`},
		{[]string{"trusted", "::1", "hops", "0"}, `hops: "0" is not a whole number ≥ 1`},
		{[]string{"trusted", "::1", "headers", "x-real-ip"}, `"x-real-ip" is not one of`},
		{[]string{"trusted", "::1", "headers", "forwarded x-forwarded-for"}, "honour one or the other"},
		{[]string{"trusted", "::1", "header", "forwarded"}, "header: unknown option"},
		{[]string{"trust_unix", "false"}, "option trusted is required"},
		{[]string{"trust_unix", "maybe"}, `trust_unix: "maybe" is not true or false`},
	} {
		componenttest.RequireError(t, "proxyfix", tc.want, tc.opts...)
	}
}

// FuzzProxyfix: whatever the headers say, nothing panics, an untrusted peer
// changes nothing, and with one hop REMOTE_ADDR is the last entry or stays.
func FuzzProxyfix(f *testing.F) {
	for _, seed := range [][2]string{
		{"1.2.3.4, 5.6.7.8", `for=1.2.3.4;proto=https`},
		{"[::1]:80,,", `for="[2001:db8::1]:4711";host="a,b", for=_x`},
		{"", `for=";,"`},
		{" , ", `proto=https;;; ,`},
	} {
		f.Add(seed[0], seed[1], "https", "h.example:8443", "/p")
	}
	x := componenttest.Build(f, &componenttest.Host{}, "proxyfix", "trusted", "127.0.0.1",
		"headers", "x-forwarded-for x-forwarded-proto x-forwarded-host x-forwarded-port x-forwarded-prefix")
	rfc := componenttest.Build(f, &componenttest.Host{}, "proxyfix", "trusted", "127.0.0.1", "headers", "forwarded")
	f.Fuzz(func(t *testing.T, xff, fwd, proto, host, prefix string) {
		for _, peer := range []string{"127.0.0.1:1", "192.0.2.1:1"} {
			for _, built := range []component.Built{x, rfc} {
				var got component.Facts
				h := built.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if f := component.FactsOf(r); f != nil {
						got = *f
					}
				}))
				req := httptest.NewRequest("GET", "/", nil)
				req.RemoteAddr = peer
				for k, v := range map[string]string{"X-Forwarded-For": xff, "Forwarded": fwd, "X-Forwarded-Proto": proto,
					"X-Forwarded-Host": host, "X-Forwarded-Prefix": prefix, "X-Forwarded-Port": host} {
					req.Header.Set(k, v)
				}
				h.ServeHTTP(httptest.NewRecorder(), req)
				if peer != "127.0.0.1:1" && got != (component.Facts{}) {
					t.Fatalf("an untrusted peer changed %+v", got)
				}
				if got.RemoteAddr != "" && net.ParseIP(got.RemoteAddr) == nil {
					t.Fatalf("REMOTE_ADDR %q is not an address", got.RemoteAddr)
				}
				if got.Scheme != "" && got.Scheme != "http" && got.Scheme != "https" {
					t.Fatalf("scheme %q", got.Scheme)
				}
				if strings.ContainsAny(got.ServerName+got.ServerPort, " /\r\n\x00") || strings.ContainsAny(got.ScriptName, "\r\n\x00") {
					t.Fatalf("unsafe value through: %+v", got)
				}
			}
		}
	})
}
