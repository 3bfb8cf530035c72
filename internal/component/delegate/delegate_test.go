package delegate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// host names the applications of a test site.
type host struct {
	componenttest.Host
	apps map[string]http.Handler
}

func (h *host) App(name string) (http.Handler, error) {
	if a, ok := h.apps[name]; ok {
		return a, nil
	}
	return nil, errors.New("no application " + name)
}

// seen is what a target was handed.
type seen struct {
	Script, Path, User, Auth, BodySHA string
	BodyLen                           int
}

func target(w http.ResponseWriter, r *http.Request) {
	f := component.FactsOf(r)
	body, _ := io.ReadAll(r.Body)
	sum := sha256.Sum256(body)
	s := seen{Script: f.ScriptName, Path: f.PathInfo, User: f.RemoteUser, Auth: r.Header.Get("Authorization"),
		BodySHA: hex.EncodeToString(sum[:]), BodyLen: len(body)}
	w.Header().Set("X-Target", "yes")
	json.NewEncoder(w).Encode(s)
}

// gate is the first application: it reads ?read=N bytes of the body, then
// answers with the headers of its query (?h=Name:value).
type gate struct{ afterWrite error }

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n, _ := strconv.Atoi(r.URL.Query().Get("read")); n > 0 {
		io.CopyN(io.Discard, r.Body, int64(n))
	}
	for _, h := range r.URL.Query()["h"] {
		k, v, _ := strings.Cut(h, ":")
		w.Header().Set(k, v)
	}
	w.Header().Set("Set-Cookie", "sessionid=x")
	_, g.afterWrite = w.Write([]byte("the gate's own page"))
}

func serve(t *testing.T) (*httptest.Server, *gate, *componenttest.Logs) {
	t.Helper()
	logs := &componenttest.Logs{}
	g := &gate{}
	h := &host{Host: componenttest.Host{Log: logs.Logger()},
		apps: map[string]http.Handler{"django": g, "hgweb": http.HandlerFunc(target), "secret": http.HandlerFunc(target)}}
	built := componenttest.Build(t, h, "delegate", "app", "django", "targets", "hgweb", "replay_limit", "64k")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, f := component.Attach(r)
		f.RemoteUser = "from-auth"
		built.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, g, logs
}

func call(t *testing.T, srv *httptest.Server, query string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/hg/demo?"+query, bytes.NewReader(body))
	req.SetBasicAuth("alice", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func TestDelegates(t *testing.T) {
	srv, g, logs := serve(t)
	// Not delegating: the gate's answer, without any X-Wsgate-* header.
	resp, out := call(t, srv, "h=X-Wsgate-Remote-User:bob", nil)
	if string(out) != "the gate's own page" || resp.Header.Get("X-Wsgate-Remote-User") != "" {
		t.Errorf("plain answer: %q %v", out, resp.Header)
	}

	body := bytes.Repeat([]byte("bundle data "), 500_000) // 6 MB: streamed, not kept
	sum := sha256.Sum256(body)
	resp, out = call(t, srv, "read=1000&h=X-Wsgate-Delegate:hgweb&h=X-Wsgate-Remote-User:bob&h=X-Wsgate-Script-Name:/hg&h=X-Wsgate-Path-Info:/d%C3%A9mo/x%2Fy", body)
	var s seen
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("%d %q", resp.StatusCode, out)
	}
	want := seen{Script: "/hg", Path: "/d\xc3\xa9mo/x/y", User: "bob", BodySHA: hex.EncodeToString(sum[:]), BodyLen: len(body)}
	if s != want {
		t.Errorf("the target saw %+v,\nwant %+v", s, want)
	}
	if !errors.Is(g.afterWrite, component.ErrTakenOver) {
		t.Errorf("the gate's write after delegating: %v, want ErrTakenOver", g.afterWrite)
	}
	for k := range resp.Header {
		if strings.HasPrefix(k, "X-Wsgate") || k == "Set-Cookie" {
			t.Errorf("the client got the gate's %s: %v", k, resp.Header[k])
		}
	}
	if resp.Header.Get("X-Target") != "yes" {
		t.Errorf("not the target's answer: %v", resp.Header)
	}

	// Without X-Wsgate-Remote-User, the user is auth's and the
	// credentials stay; without the path headers, the request's own.
	_, out = call(t, srv, "h=X-Wsgate-Delegate:hgweb", []byte("small"))
	json.Unmarshal(out, &s)
	if s.User != "from-auth" || s.Auth == "" || s.Path != "/hg/demo" || s.Script != "" || s.BodyLen != 5 {
		t.Errorf("defaults: %+v", s)
	}

	// Refused: a name not listed (though the site has it), bad paths, a
	// body read past replay_limit.
	for _, q := range []string{
		"h=X-Wsgate-Delegate:secret",
		"h=X-Wsgate-Delegate:hgweb&h=X-Wsgate-Path-Info:relative",
		"h=X-Wsgate-Delegate:hgweb&h=X-Wsgate-Script-Name:/hg/",
		"h=X-Wsgate-Delegate:hgweb&h=X-Wsgate-Path-Info:/bad%25zz",
		"h=X-Wsgate-Delegate:hgweb&read=100000",
	} {
		resp, out := call(t, srv, q, body)
		if resp.StatusCode != 500 || strings.Contains(string(out), "BodySHA") {
			t.Errorf("%s: %d %q, want 500", q, resp.StatusCode, out)
		}
	}
	if !strings.Contains(logs.String(), "value=secret error=\"names no application listed in targets\"") {
		t.Errorf("no log line for the refused target:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "replay_limit") {
		t.Errorf("no log line for the body read past the limit:\n%s", logs)
	}
}

func TestConfigurationErrors(t *testing.T) {
	h := &host{apps: map[string]http.Handler{"django": http.NotFoundHandler(), "hgweb": http.NotFoundHandler()}}
	for _, c := range []struct {
		kv   []string
		want string
	}{
		{[]string{"targets", "hgweb"}, "option app is required"},
		{[]string{"app", "django"}, "option targets is required"},
		{[]string{"app", "django", "targets", "hgweb nowhere"}, "test.ini:1 [filter:delegate] targets: no application nowhere"},
		{[]string{"app", "django", "targets", "django"}, "django is the app itself"},
		{[]string{"app", "django", "targets", "hgweb", "header", "X_Delegate"}, `header: "X_Delegate" is not a header name`},
		{[]string{"app", "django", "targets", "hgweb", "replay_limit", "lots"}, `replay_limit: "lots" is not a size`},
	} {
		_, err := componenttest.TryBuild(h, "delegate", c.kv...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.kv, err, c.want)
		}
	}
}
