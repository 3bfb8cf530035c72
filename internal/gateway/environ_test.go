package gateway

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"testing"
)

func TestRequestPath(t *testing.T) {
	cases := []struct {
		target, mount, ctxMount string
		script, path            string
	}{
		{"/a/b?x=1", "", "", "", "/a/b"},
		{"/caf%C3%A9/%2F?q", "", "", "", "/caf\xc3\xa9//"},
		{"/app/x", "/app", "", "/app", "/x"},
		{"/app", "/app", "", "/app", ""},
		{"/application/x", "/app", "", "", "/application/x"}, // not under the mount
		{"/mounted/y", "", "/mounted", "/mounted", "/y"},
		{"http://example.org/abs/p?q=1", "", "", "", "/abs/p"},
	}
	for _, tc := range cases {
		r := &http.Request{RequestURI: tc.target}
		u, err := url.ParseRequestURI(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		r.URL = u
		ctx := context.Background()
		if tc.ctxMount != "" {
			ctx = WithScriptName(ctx, tc.ctxMount)
		}
		r = r.WithContext(ctx)
		script, path, err := requestPath(r, tc.mount)
		if err != nil || script != tc.script || path != tc.path {
			t.Errorf("%q mounted at %q: SCRIPT_NAME %q PATH_INFO %q (%v), want %q %q", tc.target, tc.mount, script, path, err, tc.script, tc.path)
		}
	}
}

// FuzzPercentDecode: never panics; agrees with net/url where both accept;
// refuses exactly the malformed escapes.
func FuzzPercentDecode(f *testing.F) {
	for _, s := range []string{"/plain", "/a%20b", "/%zz", "/%", "/%4", "/%E9", "/a%2Fb%2f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := percentDecode(s)
		want, werr := url.PathUnescape(s)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: ours %v, net/url %v", s, err, werr)
		}
		if err == nil && got != want {
			t.Fatalf("%q: decoded %q, net/url %q", s, got, want)
		}
		if bytes.IndexByte([]byte(s), '%') < 0 && got != s {
			t.Fatalf("%q without escapes changed to %q", s, got)
		}
	})
}
