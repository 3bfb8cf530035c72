package e2e

// End-to-end tests of the components that stand at the edge of a site:
// proxyfix, bodylimit, metrics and health, composed from an INI file around
// the pep3333 application served by real workers. Helpers start with "edge".

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsgate/wsgate/internal/component/componenttest"
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// edgeServe writes ini (the sections after [DEFAULT]) to a file and serves
// it with the pep3333 application's directory on the path.
func edgeServe(t *testing.T, ini string, extra ...string) *gwServer {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "site.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := t.TempDir()
	args := append([]string{path, "--pythonpath", gwAppsDir()}, extra...)
	srv := harness.Start(t, harness.Options{Args: args, Env: []string{"E2E_RECORD_DIR=" + rec}})
	t.Cleanup(srv.Stop)
	return &gwServer{Server: srv, rec: rec, addr: strings.TrimPrefix(srv.URL, "http://")}
}

// edgeApp is the Python application every site here ends in.
const edgeApp = `
[app:app]
use = call:pep3333:make_app
`

// edgeEnviron asks the application for its environ, with headers.
func edgeEnviron(t *testing.T, url string, headers ...string) map[string]any {
	t.Helper()
	req, err := http.NewRequest("GET", url+"/environ", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	var env map[string]any
	gwJSON(t, "GET /environ", gwDo(t, req), &env)
	return env
}

// edgeWant fails the test for every key of want that env has otherwise.
func edgeWant(t *testing.T, env map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %v, want %v", k, env[k], v)
		}
	}
}

// edgeSpoofs are headers a client might hope to see as REMOTE_USER.
var edgeSpoofs = []string{"Remote-User", "mallory", "Remote_User", "mallory", "X-Remote-User", "mallory", "REMOTE-USER", "mallory"}

// edgeNoRemoteUser fails the test if a client header became REMOTE_USER.
func edgeNoRemoteUser(t *testing.T, env map[string]any) {
	t.Helper()
	if v, ok := env["REMOTE_USER"]; ok {
		t.Fatalf("a client header became REMOTE_USER=%q", v)
	}
	// Plain client data they may stay, under their HTTP_ names.
	if env["HTTP_X_REMOTE_USER"] != "mallory" {
		t.Fatalf("HTTP_X_REMOTE_USER = %v, want the header passed as client data", env["HTTP_X_REMOTE_USER"])
	}
}

// edgeAllFour is a site with every edge component in front of the app.
func edgeAllFour(trusted string) string {
	return `
[pipeline:main]
pipeline = health metrics proxyfix bodylimit app

[filter:health]
use = egg:wsgate#health

[filter:metrics]
use = egg:wsgate#metrics

[filter:proxyfix]
use = egg:wsgate#proxyfix
trusted = ` + trusted + `
hops = 2
headers = x-forwarded-for x-forwarded-proto x-forwarded-host x-forwarded-port x-forwarded-prefix

[filter:bodylimit]
use = egg:wsgate#bodylimit
max_bytes = 1k
` + edgeApp
}

func TestEdgeProxyfixTrustedPeer(t *testing.T) {
	srv := edgeServe(t, edgeAllFour("127.0.0.1 10.0.0.0/8"))
	env := edgeEnviron(t, srv.URL, append([]string{
		"X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.1.2.3",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "www.example.com",
		"X-Forwarded-Prefix", "/shop",
	}, edgeSpoofs...)...)
	want := map[string]any{
		"REMOTE_ADDR":          "203.0.113.7", // 10.1.2.3 is a trusted hop; 6.6.6.6 was written by the client
		"wsgi.url_scheme":      "https",
		"SERVER_NAME":          "www.example.com",
		"SERVER_PORT":          "443",
		"SCRIPT_NAME":          "/shop",
		"PATH_INFO":            "/environ",
		"HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7, 10.1.2.3",
	}
	edgeWant(t, env, want)
	if _, ok := env["REMOTE_PORT"]; ok {
		t.Errorf("REMOTE_PORT = %v: the proxy's port, not the client's", env["REMOTE_PORT"])
	}
	edgeNoRemoteUser(t, env)
	// A port forwarded alone: the host stays the request's.
	env = edgeEnviron(t, srv.URL, append([]string{"X-Forwarded-Port", "8443"}, edgeSpoofs...)...)
	if env["SERVER_PORT"] != "8443" || env["SERVER_NAME"] != "127.0.0.1" || env["REMOTE_ADDR"] != "127.0.0.1" {
		t.Errorf("X-Forwarded-Port alone: SERVER_NAME %v SERVER_PORT %v REMOTE_ADDR %v", env["SERVER_NAME"], env["SERVER_PORT"], env["REMOTE_ADDR"])
	}
}

// TestEdgeProxyfixBehindAUnixSocket: with trust_unix, a proxy on the
// site's unix socket is believed (curl stands for nginx); on the TCP
// listener of the same server, the same headers are not.
func TestEdgeProxyfixBehindAUnixSocket(t *testing.T) {
	curl := gwCurl(t)
	sock := filepath.Join(t.TempDir(), "site.sock")
	srv := edgeServe(t, `
[pipeline:main]
pipeline = proxyfix app

[filter:proxyfix]
use = egg:wsgate#proxyfix
trust_unix = true
`+edgeApp, "--bind", "unix:"+sock, "--bind", "127.0.0.1:0")
	var env map[string]any
	out := curl("--fail", "--unix-socket", sock, "-H", "X-Forwarded-For: 203.0.113.7", "-H", "X-Forwarded-Proto: https",
		"-H", "Remote-User: mallory", "http://site.example/environ")
	if err := json.Unmarshal([]byte(out), &env); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	edgeWant(t, env, map[string]any{"REMOTE_ADDR": "203.0.113.7", "wsgi.url_scheme": "https", "SERVER_PORT": "443"})
	if _, ok := env["REMOTE_USER"]; ok {
		t.Errorf("Remote-User became REMOTE_USER=%v", env["REMOTE_USER"])
	}
	tcp := edgeEnviron(t, srv.Listeners[1], "X-Forwarded-For", "203.0.113.7", "X-Forwarded-Proto", "https")
	edgeWant(t, tcp, map[string]any{"REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http"})
}

func TestEdgeProxyfixIgnoresAnUntrustedPeer(t *testing.T) {
	// The client is 127.0.0.1; only 192.0.2.1 is trusted.
	srv := edgeServe(t, edgeAllFour("192.0.2.1"))
	env := edgeEnviron(t, srv.URL, append([]string{
		"X-Forwarded-For", "203.0.113.7",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "www.example.com",
		"X-Forwarded-Prefix", "/shop",
	}, edgeSpoofs...)...)
	_, port, _ := strings.Cut(srv.addr, ":")
	want := map[string]any{
		"REMOTE_ADDR":            "127.0.0.1",
		"wsgi.url_scheme":        "http",
		"SERVER_NAME":            "127.0.0.1",
		"SERVER_PORT":            port,
		"SCRIPT_NAME":            "",
		"PATH_INFO":              "/environ",
		"HTTP_X_FORWARDED_FOR":   "203.0.113.7", // left to the application as plain client data
		"HTTP_X_FORWARDED_PROTO": "https",
	}
	edgeWant(t, env, want)
	edgeNoRemoteUser(t, env)
}

func TestEdgeBodylimitAnswersBeforeAWorkerIsTaken(t *testing.T) {
	srv := edgeServe(t, edgeAllFour("127.0.0.1"), "--workers", "1")
	// The only worker is held by a request the test has seen arrive…
	held := make(chan gwResponse, 1)
	go func() { held <- gwTry(t, srv.URL+"/block?id=held") }()
	harness.WaitFile(t, srv.gwRecord("held.started"))
	// …so a request that needed a worker would wait for it; these are
	// answered while it is still held.
	big := bytes.Repeat([]byte("x"), 4096)
	declared := gwDo(t, edgePost(t, srv.URL+"/read?mode=all", big, false))
	chunked := gwDo(t, edgePost(t, srv.URL+"/read?mode=all", big, true))
	for what, r := range map[string]gwResponse{"declared length": declared, "chunked": chunked} {
		if r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s past max_bytes: %d %q, want 413", what, r.status, r.body)
		}
	}
	select {
	case r := <-held:
		t.Fatalf("the held request ended before its release: %d %q", r.status, r.body)
	default:
	}
	srv.gwRelease(t, "held")
	gwOK(t, "the held request", <-held)
	// The server stays healthy: a body within the limit, chunked or not, is
	// read whole by the application.
	small := bytes.Repeat([]byte("y"), 1000)
	for _, chunkedBody := range []bool{false, true} {
		r := gwDo(t, edgePost(t, srv.URL+"/read?mode=all", small, chunkedBody))
		gwOK(t, fmt.Sprintf("a body within the limit (chunked %v)", chunkedBody), r)
		if !bytes.Contains(r.body, []byte(gwSHA(small))) {
			t.Errorf("the application read %q, want the body's hash %s", r.body, gwSHA(small))
		}
	}
	if r := gwGet(t, srv.URL+"/healthz/ready"); r.status != 200 {
		t.Errorf("readiness after the refusals: %d %q", r.status, r.body)
	}
}

// TestEdgeBodylimitWithCurl: curl's uploads past the limit are refused
// before curl sends them (Expect: 100-continue), chunked too, and over
// HTTP/2 with or without a length; one within the limit arrives whole.
func TestEdgeBodylimitWithCurl(t *testing.T) {
	curl := gwCurl(t)
	srv := edgeServe(t, `
[pipeline:main]
pipeline = bodylimit app

[filter:bodylimit]
use = egg:wsgate#bodylimit
max_bytes = 1m
`+edgeApp, "--workers", "1", "--h2c")
	dir := t.TempDir()
	big, small := filepath.Join(dir, "big"), filepath.Join(dir, "small")
	if err := os.WriteFile(big, bytes.Repeat([]byte("b"), 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	smallBody := bytes.Repeat([]byte("s"), 700<<10)
	if err := os.WriteFile(small, smallBody, 0o644); err != nil {
		t.Fatal(err)
	}
	out := func(args ...string) string {
		return curl(append([]string{"--output", "/dev/null", "--write-out", "%{http_code} %{size_upload}"}, args...)...)
	}
	// A length above 1 MB makes curl ask Expect: 100-continue: the 413 comes
	// instead of the 100, and curl sends none of the body.
	if got := out("--data-binary", "@"+big, srv.URL+"/read"); got != "413 0" {
		t.Errorf("declared 3 MB with Expect: got %q, want \"413 0\" (refused, nothing uploaded)", got)
	}
	if got := out("-H", "Transfer-Encoding: chunked", "--data-binary", "@"+big, srv.URL+"/read"); !strings.HasPrefix(got, "413 ") {
		t.Errorf("chunked 3 MB: %q, want 413", got)
	}
	// Over HTTP/2 the early 413 ends with RST_STREAM(NO_ERROR), as RFC 9113
	// 8.1 says, which curl 7.88 takes for a failure of the whole exchange:
	// Go's client is the one that reads it as a response.
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Timeout: gwIOGuard, Transport: &http.Transport{Protocols: protocols}}
	for _, chunked := range []bool{false, true} {
		resp, err := h2.Do(edgePost(t, srv.URL+"/read", bytes.Repeat([]byte("b"), 3<<20), chunked))
		if err != nil {
			t.Fatalf("3 MB over HTTP/2 (chunked %v): %v", chunked, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 || resp.ProtoMajor != 2 {
			t.Errorf("3 MB over HTTP/2 (no length: %v): %s %d, want HTTP/2 413", chunked, resp.Proto, resp.StatusCode)
		}
	}
	for _, extra := range [][]string{nil, {"-H", "Transfer-Encoding: chunked"}, {"--http2-prior-knowledge"}} {
		body := curl(append(extra, "--fail", "--data-binary", "@"+small, srv.URL+"/read?mode=chunks")...)
		if !strings.Contains(body, gwSHA(smallBody)) {
			t.Errorf("700 KB within the limit (%v): the application read %q", extra, body)
		}
	}
}

// edgePost is a POST of body, sent chunked (no length) when chunked.
func edgePost(t *testing.T, url string, body []byte, chunked bool) *http.Request {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // hides the length: Transfer-Encoding: chunked
	}
	req, err := http.NewRequest("POST", url, r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// edgeScrape fetches a metrics page and parses it with Prometheus' parser.
func edgeScrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	r := gwGet(t, url)
	gwOK(t, "GET "+url, r)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("parsing the metrics page: %v\n%s", err, r.body)
	}
	return fams
}

// edgeSettled scrapes url once no request is in flight, so that every
// request the test has had answered is counted (a client may have its answer
// a moment before metrics counts it).
func edgeSettled(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	var fams map[string]*dto.MetricFamily
	harness.WaitFor(t, "no request in flight", func() bool {
		fams = edgeScrape(t, url)
		return edgeValue(t, fams, "wsgate_requests_in_flight") == 0
	})
	return fams
}

// edgeValue is the value of the series of family name whose labels include
// the pairs given (a counter's, a gauge's or a histogram's sample count); it
// fails the test when there is none.
func edgeValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	fam := fams[name]
	if fam == nil {
		t.Fatalf("no metric %s", name)
	}
	var got []string
	for _, m := range fam.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		got = append(got, fmt.Sprint(have))
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no %s series with labels %q among %v", name, labels, got)
	return 0
}

func TestEdgeMetricsCountWhatTheTestDid(t *testing.T) {
	addr := componenttest.FreeAddr(t)
	srv := edgeServe(t, `
[pipeline:main]
pipeline = metrics site

[filter:metrics]
use = egg:wsgate#metrics
listen = `+addr+`

[composite:site]
use = egg:Paste#urlmap
/ = app
/mount = app
`+edgeApp, "--workers", "2")
	for _, p := range []string{"/hello", "/hello", "/hello", "/mount/hello", "/nowhere"} {
		gwTry(t, srv.URL+p)
	}
	if r := gwGet(t, srv.URL+"/metrics"); r.status != 404 {
		t.Errorf("the page on the site's listener although listen is set: %d", r.status)
	}
	fams := edgeSettled(t, "http://"+addr+"/metrics")
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"route", "/", "code", "200"}, 3},
		{[]string{"route", "/mount", "code", "200"}, 1},
		{[]string{"route", "/", "code", "404"}, 2}, // /nowhere, and /metrics on the site's listener
	} {
		if got := edgeValue(t, fams, "wsgate_requests_total", c.labels...); got != c.want {
			t.Errorf("wsgate_requests_total%q = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := edgeValue(t, fams, "wsgate_request_duration_seconds", "route", "/"); got != 5 {
		t.Errorf("latency samples of route /: %v, want 5", got)
	}
	var waits float64
	for _, m := range fams["wsgate_queue_wait_seconds"].GetMetric() {
		waits += float64(m.GetHistogram().GetSampleCount())
	}
	if waits != 6 {
		t.Errorf("queue-wait samples: %v, want 6 (every request the workers served)", waits)
	}
	if got := edgeValue(t, fams, "wsgate_pool_workers", "state", "ready"); got != 2 {
		t.Errorf("ready workers: %v, want 2", got)
	}
	if got := edgeValue(t, fams, "wsgate_pool_restarts_total"); got != 0 {
		t.Errorf("restarts before any: %v", got)
	}
	// A worker dies: its replacement is counted once it is spawned. (The
	// master may learn of the death from the exit or from the request's
	// socket first, so the log line differs: the metrics are awaited.)
	gwTry(t, srv.URL+"/crash?how=exit&id=crash")
	harness.WaitFor(t, "a replacement worker, ready", func() bool {
		fams := edgeScrape(t, "http://"+addr+"/metrics")
		return edgeValue(t, fams, "wsgate_pool_restarts_total") > 0 && edgeValue(t, fams, "wsgate_pool_workers", "state", "ready") == 2
	})
	if got := edgeValue(t, edgeScrape(t, "http://"+addr+"/metrics"), "wsgate_pool_restarts_total"); got != 1 {
		t.Errorf("restarts after a worker died: %v, want 1", got)
	}
}

func TestEdgeReadinessFalseWhileDraining(t *testing.T) {
	addr := componenttest.FreeAddr(t)
	srv := edgeServe(t, `
[pipeline:main]
pipeline = health app

[filter:health]
use = egg:wsgate#health
listen = `+addr+`
`+edgeApp, "--workers", "1")
	probe := "http://" + addr + "/healthz/ready"
	if r := gwGet(t, probe); r.status != 200 || string(r.body) != "ready\n" {
		t.Fatalf("readiness while serving: %d %q", r.status, r.body)
	}
	held := make(chan gwResponse, 1)
	go func() { held <- gwTry(t, srv.URL+"/block?id=slow") }()
	harness.WaitFile(t, srv.gwRecord("slow.started"))
	srv.Signal(syscall.SIGTERM)
	srv.WaitLog("draining")
	// The site's listener is closed now; the probe's own listener answers
	// until the drain is done.
	if r := gwGet(t, probe); r.status != 503 || string(r.body) != "not ready: draining\n" {
		t.Errorf("readiness while draining: %d %q", r.status, r.body)
	}
	if r := gwGet(t, "http://"+addr+"/healthz"); r.status != 200 {
		t.Errorf("liveness while draining: %d %q", r.status, r.body)
	}
	srv.gwRelease(t, "slow")
	gwOK(t, "the request in flight at SIGTERM", <-held)
	if code := srv.Wait(); code != 0 {
		t.Fatalf("exit status %d after the drain", code)
	}
	if r := gwTry(t, probe); r.status != -1 {
		t.Errorf("the probe's listener still answers after the exit: %d", r.status)
	}
}

// TestEdgeOwnListenerSurvivesAConfigurationReload: --reload composes the
// site again on an INI change; the new metrics takes the listener over from
// the old one (which still holds it while the new one is built) instead of
// failing to bind it.
func TestEdgeOwnListenerSurvivesAConfigurationReload(t *testing.T) {
	addr := componenttest.FreeAddr(t)
	dir := t.TempDir()
	ini := filepath.Join(dir, "site.ini")
	site := func(path string) string {
		return `
[pipeline:main]
pipeline = metrics app

[filter:metrics]
use = egg:wsgate#metrics
listen = ` + addr + `
path = ` + path + `
` + edgeApp
	}
	if err := os.WriteFile(ini, []byte(site("/metrics")), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := harness.Start(t, harness.Options{Dir: dir,
		Args: []string{"site.ini", "--reload", "--workers", "1", "--pythonpath", gwAppsDir()},
		Env:  []string{"WSGATE_RELOAD_INTERVAL=100ms", "E2E_RECORD_DIR=" + t.TempDir()}})
	t.Cleanup(srv.Stop)
	gwOK(t, "hello", gwGet(t, srv.URL+"/hello"))
	edgeScrape(t, "http://"+addr+"/metrics")
	srv.WaitLog("--reload: watching for changes")
	if err := os.WriteFile(ini, []byte(site("/m2")), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.WaitLog("wsgate: reloading, changed:")
	harness.WaitFor(t, "the new metrics page at /m2", func() bool {
		return gwTry(t, "http://"+addr+"/m2").status == 200
	})
	if r := gwTry(t, "http://"+addr+"/metrics"); r.status != 404 {
		t.Errorf("the old path after the reload: %d", r.status)
	}
	if strings.Contains(srv.Logs(), "reload failed") {
		t.Errorf("the reload failed:\n%s", srv.Logs())
	}
	gwOK(t, "hello after the reload", gwGet(t, srv.URL+"/hello"))
	fams := edgeSettled(t, "http://"+addr+"/m2")
	if got := edgeValue(t, fams, "wsgate_requests_total", "code", "200"); got != 1 {
		t.Errorf("requests counted by the new site: %v, want 1 (counters start again with the new site)", got)
	}
}

// TestEdgeReadinessFalseWithNoWorkerReady: the only worker dies and its
// replacement cannot load the application: readiness is 503 naming the
// pool, liveness stays 200; once the application loads again, ready.
func TestEdgeReadinessFalseWithNoWorkerReady(t *testing.T) {
	srv := edgeServe(t, `
[pipeline:main]
pipeline = health app

[filter:health]
use = egg:wsgate#health

[app:app]
use = call:flaky:make_app
`, "--workers", "1")
	ready := srv.URL + "/healthz/ready"
	if r := gwGet(t, ready); r.status != 200 {
		t.Fatalf("readiness at start: %d %q", r.status, r.body)
	}
	if err := os.WriteFile(srv.gwRecord("fail-import"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	gwTry(t, srv.URL+"/crash?how=exit&id=gone")
	harness.WaitFor(t, "a replacement worker to fail its import", func() bool { return srv.gwImportFailures() > 0 })
	if r := gwGet(t, ready); r.status != 503 || string(r.body) != "not ready: pool app has no ready worker\n" {
		t.Errorf("readiness with no worker able to load: %d %q", r.status, r.body)
	}
	if r := gwGet(t, srv.URL+"/healthz"); r.status != 200 {
		t.Errorf("liveness with no worker ready: %d", r.status)
	}
	if err := os.Remove(srv.gwRecord("fail-import")); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, "readiness once the application loads again", func() bool { return gwTry(t, ready).status == 200 })
	gwOK(t, "a request once ready", gwGet(t, srv.URL+"/hello"))
}
