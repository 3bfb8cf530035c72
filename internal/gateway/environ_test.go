package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
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
		if tc.ctxMount != "" {
			// a urlmap moved the prefix: the gateway takes its word
			var f *component.Facts
			r, f = component.Attach(r)
			f.ScriptName, f.PathInfo, f.PathSet = tc.ctxMount, strings.TrimPrefix(r.URL.Path, tc.ctxMount), true
		}
		script, path, err := requestPath(r, tc.mount)
		if err != nil || script != tc.script || path != tc.path {
			t.Errorf("%q mounted at %q: SCRIPT_NAME %q PATH_INFO %q (%v), want %q %q", tc.target, tc.mount, script, path, err, tc.script, tc.path)
		}
	}
}
