package component

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"
)

func TestRequestPath(t *testing.T) {
	cases := []struct {
		target string
		facts  *Facts
		script string
		path   string
	}{
		{"/a/b?x=1", nil, "", "/a/b"},
		{"/caf%C3%A9/%2F?q", nil, "", "/caf\xc3\xa9//"},
		{"/x/y", &Facts{ScriptName: "/proxied"}, "/proxied", "/x/y"},
		{"/mounted/y", &Facts{ScriptName: "/mounted", PathInfo: "/y", PathSet: true}, "/mounted", "/y"},
		{"http://example.org/abs/p?q=1", nil, "", "/abs/p"},
	}
	for _, tc := range cases {
		u, err := url.ParseRequestURI(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		r := &http.Request{RequestURI: tc.target, URL: u}
		if tc.facts != nil {
			var f *Facts
			r, f = Attach(r)
			*f = *tc.facts
		}
		script, path, err := RequestPath(r)
		if err != nil || script != tc.script || path != tc.path {
			t.Errorf("%q with %+v: SCRIPT_NAME %q PATH_INFO %q (%v), want %q %q", tc.target, tc.facts, script, path, err, tc.script, tc.path)
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
		got, err := PercentDecode(s)
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

func TestRootRelative(t *testing.T) {
	for name, want := range map[string]string{
		"/a/b.txt":       "a/b.txt",
		"a//b/":          "a/b",
		"":               ".",
		"/":              ".",
		"/..":            "",
		"/a/../../etc":   "",
		"a/./b":          "",
		"a\\..\\b":       "",
		"a\x00.txt":      "",
		"/..hidden/file": "..hidden/file",
	} {
		got, err := RootRelative(name)
		if want == "" {
			if err == nil {
				t.Errorf("%q: %q accepted, want ErrUnsafeName", name, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", name, got, err, want)
		}
	}
}
