package bodylimit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// serve runs bodylimit with max_bytes in front of an app that answers the
// CONTENT_LENGTH it was given and the hash of the body it read.
func serve(t *testing.T, max string) (url string, calls *atomic.Int32) {
	t.Helper()
	built := componenttest.Build(t, &componenttest.Host{}, "bodylimit", "max_bytes", max)
	calls = new(atomic.Int32)
	srv := httptest.NewServer(built.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%s %d %x", r.Header.Get("Content-Length"), r.ContentLength, sha256.Sum256(b))
	})))
	t.Cleanup(srv.Close)
	return srv.URL, calls
}

// post sends body; chunked hides its length so the client sends it chunked.
func post(t *testing.T, url string, body []byte, chunked bool) (int, string) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // no Len(): Transfer-Encoding: chunked
	}
	req, _ := http.NewRequest("POST", url, r)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBodylimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     string
		size    int
		chunked bool
		want    int
	}{
		{"declared, at the limit", "1000", 1000, false, 200},
		{"declared, past the limit", "1000", 1001, false, 413},
		{"chunked, small, at the limit", "1000", 1000, true, 200},
		{"chunked, small, past the limit", "1000", 1001, true, 413},
		{"chunked, spilled to a file, at the limit", "200k", 200 << 10, true, 200},
		{"chunked, spilled to a file, past the limit", "200k", 200<<10 + 1, true, 413},
		{"chunked, exactly the memory part", "1m", memoryPart, true, 200},
		{"chunked, empty", "10", 0, true, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, calls := serve(t, tc.max)
			body := bytes.Repeat([]byte("0123456789abcdef"), tc.size/16+1)[:tc.size]
			code, got := post(t, url, body, tc.chunked)
			if code != tc.want {
				t.Fatalf("got %d %q, want %d", code, got, tc.want)
			}
			if tc.want == 413 {
				if calls.Load() != 0 {
					t.Fatal("the application was called for a body past the limit")
				}
				return
			}
			want := fmt.Sprintf("%d %d %x", tc.size, tc.size, sha256.Sum256(body))
			if tc.size == 0 && !tc.chunked {
				want = fmt.Sprintf(" 0 %x", sha256.Sum256(nil))
			}
			if got != want {
				t.Fatalf("the application saw %q, want %q", got, want)
			}
		})
	}
}

// brokenBody ends with an error, as a client that breaks off.
type brokenBody struct{ n int }

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), b.n)
	b.n -= n
	return n, nil
}
func (b *brokenBody) Close() error { return nil }

func TestBodylimitClientBreaksOff(t *testing.T) {
	built := componenttest.Build(t, &componenttest.Host{}, "bodylimit", "max_bytes", "1m")
	h := built.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the application was called with a broken body")
	}))
	for _, size := range []int{10, 100 << 10} {
		req := httptest.NewRequest("POST", "/", nil)
		req.Body, req.ContentLength = &brokenBody{n: size}, -1
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 400 {
			t.Fatalf("body broken after %d bytes: %d", size, rec.Code)
		}
	}
}

// A declared length past the limit is refused without reading the body.
func TestBodylimitDoesNotReadADeclaredTooLargeBody(t *testing.T) {
	built := componenttest.Build(t, &componenttest.Host{}, "bodylimit", "max_bytes", "10")
	h := built.Wrap(http.NotFoundHandler())
	body := &brokenBody{n: 1 << 20}
	req := httptest.NewRequest("POST", "/", nil)
	req.Body, req.ContentLength = body, 1<<20
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 413 || body.n != 1<<20 {
		t.Fatalf("got %d with %d bytes read", rec.Code, 1<<20-body.n)
	}
	if !strings.Contains(rec.Body.String(), "exceeds 10 bytes") {
		t.Fatalf("413 body %q", rec.Body.String())
	}
}

func TestBodylimitConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		want string
	}{
		{nil, "option max_bytes is required"},
		{[]string{"max_bytes", "ten"}, `max_bytes: "ten" is not a size`},
		{[]string{"max_bytes", "-1"}, `max_bytes: "-1" is not a size`},
	} {
		componenttest.RequireError(t, "bodylimit", tc.want, tc.opts...)
	}
}
