package cors

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// serve builds [filter:cors] from options and serves it in front of an app
// that counts the requests it gets.
func serve(t *testing.T, options string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	built, err := componenttest.BuildINI(t, &componenttest.Host{}, t.TempDir(), "[filter:cors]\nuse = egg:wsgate#cors\n"+options, "cors", true)
	if err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int64
	srv := httptest.NewServer(built.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Write([]byte("app"))
	})))
	t.Cleanup(srv.Close)
	return srv, &reached
}

func do(t *testing.T, method, url string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func hasVaryOrigin(resp *http.Response) bool {
	for _, v := range resp.Header.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.TrimSpace(f) == "Origin" {
				return true
			}
		}
	}
	return false
}

const creds = `origins = https://app.example.com http://localhost:8080
methods = GET POST PUT
headers = Content-Type X-CSRFToken
expose_headers = X-Total
credentials = true
max_age = 10m
`

func TestPreflightAnsweredInGo(t *testing.T) {
	srv, reached := serve(t, creds)
	resp := do(t, "OPTIONS", srv.URL, "Origin", "https://app.example.com",
		"Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "content-type, x-csrftoken")
	want := map[string]string{
		"Access-Control-Allow-Origin":      "https://app.example.com",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "GET, POST, PUT",
		"Access-Control-Allow-Headers":     "content-type, x-csrftoken",
		"Access-Control-Max-Age":           "600",
	}
	if resp.StatusCode != 204 {
		t.Errorf("status %d, want 204", resp.StatusCode)
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if !hasVaryOrigin(resp) {
		t.Errorf("no Vary: Origin: %q", resp.Header.Values("Vary"))
	}

	refused := [][]string{
		{"Origin", "https://evil.example.com", "Access-Control-Request-Method", "GET"},
		{"Origin", "http://app.example.com", "Access-Control-Request-Method", "GET"},       // another scheme
		{"Origin", "https://app.example.com.evil", "Access-Control-Request-Method", "GET"}, // a suffix
		{"Origin", "https://app.example.com", "Access-Control-Request-Method", "DELETE"},
		{"Origin", "https://app.example.com", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "X-Secret"},
	}
	for _, h := range refused {
		resp := do(t, "OPTIONS", srv.URL, h...)
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("%q: status %d, grants %q", h, resp.StatusCode, resp.Header)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d preflights reached the app", n)
	}
	// An OPTIONS that is no preflight is the app's.
	if resp := do(t, "OPTIONS", srv.URL); resp.StatusCode != 200 || reached.Load() != 1 {
		t.Errorf("plain OPTIONS: status %d, app reached %d times", resp.StatusCode, reached.Load())
	}
}

func TestActualRequests(t *testing.T) {
	srv, _ := serve(t, creds)
	resp := do(t, "POST", srv.URL, "Origin", "http://localhost:8080")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:8080" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" || resp.Header.Get("Access-Control-Expose-Headers") != "X-Total" {
		t.Errorf("allowed origin: status %d, headers %q", resp.StatusCode, resp.Header)
	}
	resp = do(t, "GET", srv.URL, "Origin", "https://evil.example.com")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("other origin: status %d, headers %q", resp.StatusCode, resp.Header)
	}
	if resp := do(t, "GET", srv.URL); !hasVaryOrigin(resp) || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no origin: headers %q", resp.Header)
	}
}

func TestAnyOrigin(t *testing.T) {
	srv, _ := serve(t, "origins = *\nheaders = *\n")
	resp := do(t, "OPTIONS", srv.URL, "Origin", "https://anyone.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "X-Anything")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("status %d, headers %q", resp.StatusCode, resp.Header)
	}
	if resp.Header.Get("Access-Control-Max-Age") != "" {
		t.Errorf("max_age 0 sent %q", resp.Header.Get("Access-Control-Max-Age"))
	}
}

func TestRefusedAtLoad(t *testing.T) {
	cases := []struct{ options, want string }{
		{"", "site.ini:1 [filter:cors]: option origins is required"},
		{"origins = *\ncredentials = true\n", "site.ini:3 [filter:cors] origins: * cannot be used with credentials = true"},
		{"origins = https://a.example\nheaders = *\ncredentials = on\n", "site.ini:4 [filter:cors] headers: * cannot be used with credentials = true"},
		{"origins = null\n", `site.ini:3 [filter:cors] origins: "null" is refused`},
		{"origins = app.example.com\n", `"app.example.com" is not an origin`},
		{"origins = https://a.example/path\n", `"https://a.example/path" is not an origin: an origin has no path`},
		{"origins = https://a.example\nmethods = GET PO(ST\n", `site.ini:4 [filter:cors] methods: "PO(ST" is not a method name`},
		{"origins = https://a.example\nmax_age = soon\n", `site.ini:4 [filter:cors] max_age: "soon" is not a duration`},
	}
	for _, c := range cases {
		_, err := componenttest.BuildINI(t, &componenttest.Host{}, t.TempDir(), "[filter:cors]\nuse = egg:wsgate#cors\n"+c.options, "cors", true)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.options, err, c.want)
		}
	}
}

// Origins are written as users like and compared as browsers send them.
func TestNormalOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://App.Example.com":   "https://app.example.com",
		"https://a.example:443":     "https://a.example",
		"http://a.example:8080/":    "http://a.example:8080",
		"http://[::1]:8000":         "http://[::1]:8000",
		"http://127.0.0.1:80":       "http://127.0.0.1",
		"chrome-extension://abcdef": "chrome-extension://abcdef",
	} {
		if got, msg := normalOrigin(in); got != want {
			t.Errorf("%s: %q (%s), want %q", in, got, msg, want)
		}
	}
}
