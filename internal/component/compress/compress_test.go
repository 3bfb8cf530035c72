package compress

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// wrap builds compress with options kv (alternating keys and values)
// around next.
func wrap(t *testing.T, next http.Handler, kv ...string) http.Handler {
	t.Helper()
	return componenttest.Build(t, &componenttest.Host{}, "compress", kv...).Wrap(next)
}

// page is a body worth compressing, different on every call so that a pooled
// encoder carrying state from the last response would show.
func page(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "<p>line %d of a page of %d bytes</p>\n", i, n)
	}
	return b.Bytes()[:n]
}

func decode(t *testing.T, coding string, body []byte) []byte {
	t.Helper()
	d, err := NewDecoder(coding, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := io.ReadAll(d)
	if err != nil {
		t.Fatalf("decoding %s: %v", coding, err)
	}
	return out
}

// app answers with body in chunks of 1000 bytes, under the given headers.
func app(status int, body []byte, headers ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		for len(body) > 0 {
			n := min(1000, len(body))
			_, _ = w.Write(body[:n])
			body = body[n:]
		}
	})
}

func serve(h http.Handler, method, acceptEncoding string, extra ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/page", nil)
	if acceptEncoding != "" {
		r.Header.Set("Accept-Encoding", acceptEncoding)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		r.Header.Set(extra[i], extra[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestNegotiate(t *testing.T) {
	c := &Compress{}
	for _, name := range []string{"zstd", "br", "gzip"} {
		cd, err := newCoding(name, levels{5, 3, 4})
		if err != nil {
			t.Fatal(err)
		}
		c.codings = append(c.codings, cd)
	}
	for _, tc := range []struct{ header, want string }{
		{"", ""},
		{"gzip", "gzip"},
		{"x-gzip", "gzip"},
		{"GZIP, deflate", "gzip"},
		{"gzip, deflate, br", "br"}, // equal q: the server's order
		{"gzip, deflate, br, zstd", "zstd"},
		{"gzip;q=1.0, br;q=0.8", "gzip"},
		{"br;q=0.5, gzip;q=0.9, zstd;q=0.1", "gzip"},
		{"*", "zstd"},
		{"*;q=0.5, gzip", "gzip"},
		{"*, zstd;q=0", "br"},
		{"gzip;q=0", ""},
		{"identity", ""},
		{"deflate", ""},
		{"gzip;q=0.5, identity", ""},   // identity rated higher
		{"gzip, identity;q=0", "gzip"}, // identity refused, gzip fine
		{"gzip;q=0.5, identity;q=0.5", "gzip"},
		{"gzip;q=2", ""}, // malformed q: the element is ignored
		{"gzip;q=abc, br", "br"},
		{" , ;q=1, br ; q = 0.7 ", "br"},
	} {
		got := ""
		if cd := negotiate(tc.header, c.codings); cd != nil {
			got = cd.name
		}
		if got != tc.want {
			t.Errorf("Accept-Encoding %q: got %q, want %q", tc.header, got, tc.want)
		}
	}
}

func TestRoundTripEachCoding(t *testing.T) {
	for i, coding := range []string{"gzip", "zstd", "br", "gzip", "zstd", "br"} { // twice: pooled encoders reused
		body := page(5000 + 777*i)
		h := wrap(t,
			app(200, body, "Content-Type", "text/html; charset=utf-8", "ETag", `"v1"`,
				"Content-Length", fmt.Sprint(len(body)), "Accept-Ranges", "bytes"))
		w := serve(h, "GET", coding)
		res := w.Result()
		if got := res.Header.Get("Content-Encoding"); got != coding {
			t.Fatalf("%s: Content-Encoding %q", coding, got)
		}
		if res.Header.Get("Content-Length") != "" || res.Header.Get("Accept-Ranges") != "" {
			t.Errorf("%s: Content-Length/Accept-Ranges kept on a compressed body: %v", coding, res.Header)
		}
		if got := res.Header.Get("Vary"); got != "Accept-Encoding" {
			t.Errorf("%s: Vary %q", coding, got)
		}
		if got := res.Header.Get("ETag"); got != `W/"v1"` {
			t.Errorf("%s: ETag %q, want it weak", coding, got)
		}
		if w.Body.Len() >= len(body) {
			t.Errorf("%s: %d bytes compressed to %d", coding, len(body), w.Body.Len())
		}
		if got := decode(t, coding, w.Body.Bytes()); !bytes.Equal(got, body) {
			t.Fatalf("%s: decoded body differs from the identity body (%d vs %d bytes)", coding, len(got), len(body))
		}
	}
}

func TestPooledEncodersAcrossRequests(t *testing.T) {
	// One filter, many responses: a pooled encoder must start clean.
	var body []byte
	h := wrap(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	for i := 0; i < 30; i++ {
		coding := []string{"gzip", "zstd", "br"}[i%3]
		body = page(1024 + 311*i)
		w := serve(h, "GET", coding)
		if got := decode(t, w.Result().Header.Get("Content-Encoding"), w.Body.Bytes()); !bytes.Equal(got, body) {
			t.Fatalf("request %d (%s): decoded body differs", i, coding)
		}
	}
}

func TestLeftAlone(t *testing.T) {
	body := page(4000)
	html := []string{"Content-Type", "text/html"}
	for _, tc := range []struct {
		name   string
		method string
		req    []string
		status int
		resp   []string
		vary   bool
	}{
		{"HEAD", "HEAD", nil, 200, html, false},
		{"Range request", "GET", []string{"Range", "bytes=0-99"}, 200, html, false},
		{"206", "GET", nil, 206, append([]string{"Content-Range", "bytes 0-3999/9000"}, html...), false},
		{"already encoded", "GET", nil, 200, append([]string{"Content-Encoding", "gzip"}, html...), false},
		{"no-transform", "GET", nil, 200, append([]string{"Cache-Control", "public, No-Transform"}, html...), false},
		{"image", "GET", nil, 200, []string{"Content-Type", "image/png"}, false},
		{"no content type", "GET", nil, 200, nil, false},
		{"event stream", "GET", nil, 200, []string{"Content-Type", "text/event-stream"}, false},
		{"X-Accel-Buffering: no", "GET", nil, 200, append([]string{"X-Accel-Buffering", "no"}, html...), false},
		{"small body", "GET", nil, 200, append([]string{"Content-Length", "4000"}, html...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var options []string
			if tc.name == "small body" {
				options = []string{"min_size", "4001"}
			}
			h := wrap(t, app(tc.status, body, tc.resp...), options...)
			w := serve(h, tc.method, "gzip, zstd, br", tc.req...)
			res := w.Result()
			if ce := res.Header.Get("Content-Encoding"); ce != "" && ce != headerOf(tc.resp, "Content-Encoding") {
				t.Fatalf("compressed (%s)", ce)
			}
			if !bytes.Equal(w.Body.Bytes(), body) && tc.method != "HEAD" {
				t.Fatalf("body changed")
			}
			if got := res.Header.Get("Vary") != ""; got != tc.vary {
				t.Errorf("Vary %q, want one: %v", res.Header.Get("Vary"), tc.vary)
			}
		})
	}
}

func headerOf(kv []string, name string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == name {
			return kv[i+1]
		}
	}
	return ""
}

func TestStatusesWithoutBody(t *testing.T) {
	for _, status := range []int{204, 304} {
		h := wrap(t, app(status, nil, "Content-Type", "text/html", "ETag", `"x"`), "min_size", "0")
		res := serve(h, "GET", "gzip").Result()
		if res.Header.Get("Content-Encoding") != "" || res.Header.Get("ETag") != `"x"` || res.StatusCode != status {
			t.Errorf("%d: %d %v", status, res.StatusCode, res.Header)
		}
	}
}

func TestMinSizeHoldsTheStartOfTheBody(t *testing.T) {
	h := wrap(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		n := 0
		_, _ = fmt.Sscan(r.URL.Query().Get("n"), &n)
		for i := 0; i < n; i++ {
			_, _ = w.Write([]byte("0123456789"))
		}
	}), "min_size", "2k")
	for _, tc := range []struct {
		tens       int
		compressed bool
	}{{0, false}, {1, false}, {204, false}, {205, true}, {1000, true}} {
		r := httptest.NewRequest("GET", fmt.Sprintf("/?n=%d", tc.tens), nil)
		r.Header.Set("Accept-Encoding", "gzip")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		res := w.Result()
		ce := res.Header.Get("Content-Encoding")
		if (ce == "gzip") != tc.compressed {
			t.Errorf("%d bytes: Content-Encoding %q, want compressed %v", tc.tens*10, ce, tc.compressed)
		}
		if !tc.compressed && tc.tens > 0 && res.Header.Get("Content-Length") != fmt.Sprint(tc.tens*10) {
			t.Errorf("%d bytes held back and sent without their length: %v", tc.tens*10, res.Header)
		}
		if got := decode(t, ce, w.Body.Bytes()); len(got) != tc.tens*10 {
			t.Errorf("%d bytes: %d decoded", tc.tens*10, len(got))
		}
	}
}

func TestVaryJoinsTheApplicationsVary(t *testing.T) {
	h := wrap(t, app(200, page(3000), "Content-Type", "text/html", "Vary", "Cookie"))
	for _, ae := range []string{"", "br"} { // with and without compression: a cache needs it either way
		res := serve(h, "GET", ae).Result()
		if got := res.Header.Values("Vary"); strings.Join(got, ",") != "Cookie,Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Vary %q", ae, got)
		}
	}
	h = wrap(t, app(200, page(3000), "Content-Type", "text/html", "Vary", "accept-encoding, cookie"))
	if got := serve(h, "GET", "br").Result().Header.Values("Vary"); len(got) != 1 {
		t.Errorf("Vary listed twice: %q", got)
	}
}

func TestTypesOption(t *testing.T) {
	h := wrap(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.URL.Query().Get("t"))
		_, _ = w.Write(page(3000))
	}), "types", "application/*+json text/csv")
	for ct, want := range map[string]bool{
		"application/ld+json":   true,
		"TEXT/CSV; charset=x":   true,
		"text/html":             false,
		"application/json":      false,
		"application/ld+jsonx":  false,
		"application/x/ld+json": false,
	} {
		r := httptest.NewRequest("GET", "/?t="+url.QueryEscape(ct), nil)
		r.Header.Set("Accept-Encoding", "zstd")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := w.Result().Header.Get("Content-Encoding") == "zstd"; got != want {
			t.Errorf("%s: compressed %v, want %v", ct, got, want)
		}
	}
}

func TestEncodingsOption(t *testing.T) {
	h := wrap(t, app(200, page(3000), "Content-Type", "text/html"), "encodings", "gzip")
	if got := serve(h, "GET", "zstd, br, gzip;q=0.1").Result().Header.Get("Content-Encoding"); got != "gzip" {
		t.Errorf("only gzip offered: got %q", got)
	}
	if got := serve(h, "GET", "zstd, br").Result().Header.Get("Content-Encoding"); got != "" {
		t.Errorf("nothing the client takes is offered: got %q", got)
	}
}

// A flush reaches the client through the encoder: the client decodes the
// first part while the application waits for it to do so.
func TestFlushStreams(t *testing.T) {
	for _, coding := range []string{"gzip", "zstd", "br"} {
		t.Run(coding, func(t *testing.T) {
			seen := make(chan struct{})
			h := wrap(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, "first part\n")
				http.NewResponseController(w).Flush()
				select {
				case <-seen:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, "second part\n")
			}))
			srv := httptest.NewServer(h)
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.Header.Set("Accept-Encoding", coding)
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.Header.Get("Content-Encoding") != coding {
				t.Fatalf("Content-Encoding %q", res.Header.Get("Content-Encoding"))
			}
			dec, err := NewDecoder(coding, res.Body)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			first := make([]byte, len("first part\n"))
			if _, err := io.ReadFull(dec, first); err != nil || string(first) != "first part\n" {
				t.Fatalf("first part: %q, %v", first, err)
			}
			close(seen)
			rest, err := io.ReadAll(dec)
			if err != nil || string(rest) != "second part\n" {
				t.Fatalf("rest: %q, %v", rest, err)
			}
		})
	}
}

// overHTTP serves h on a real listener and GETs it with the given
// Accept-Encoding, leaving the body encoded.
func overHTTP(t *testing.T, h http.Handler, acceptEncoding string) (*http.Response, []byte) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept-Encoding", acceptEncoding)
	res, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func TestEarlyHintsPassThrough(t *testing.T) {
	h := wrap(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write(page(4000))
	}))
	res, body := overHTTP(t, h, "gzip")
	if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(decode(t, "gzip", body), page(4000)) {
		t.Fatalf("after 103: %d %v", res.StatusCode, res.Header)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"encodings", "gzip deflate"}, `[filter:compress] encodings: "deflate" is not gzip, zstd or br`},
		{[]string{"encodings", "gzip gzip"}, "[filter:compress] encodings: gzip is listed twice"},
		{[]string{"encodings", ""}, "[filter:compress] encodings: is empty"},
		{[]string{"types", "text/["}, `[filter:compress] types: "text/[" is not a media type`},
		{[]string{"types", "html"}, `[filter:compress] types: "html" is not a media type`},
		{[]string{"min_size", "lots"}, `[filter:compress] min_size: "lots" is not a size`},
		{[]string{"gzip_level", "10"}, "[filter:compress] gzip_level: 10 is above 9"},
		{[]string{"brotli_level", "-1"}, `[filter:compress] brotli_level: "-1" is not a whole number ≥ 0`},
		{[]string{"zstd_level", "0"}, `[filter:compress] zstd_level: "0" is not a whole number ≥ 1`},
		{[]string{"min_sise", "10"}, "[filter:compress] min_sise: unknown option"},
	} {
		componenttest.RequireError(t, "compress", tc.want, tc.kv...)
	}
}

// A second WriteHeader while the body is held back changes nothing: the head
// goes out once, with the coding the body has.
func TestSecondWriteHeaderWhileHeld(t *testing.T) {
	h := wrap(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(200)
		w.WriteHeader(500)
		_, _ = w.Write(page(5000))
	}))
	res, body := overHTTP(t, h, "gzip")
	if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(decode(t, "gzip", body), page(5000)) {
		t.Errorf("%d %v, %d bytes", res.StatusCode, res.Header, len(body))
	}
}
