package urlmap

import (
	"strings"
	"testing"
)

// Path expressions as Paste's parse_path_expression and normalize_url read
// them (the request side is compared with Paste in test/e2e/urlmap_test.go).
func TestParseKey(t *testing.T) {
	for _, tc := range []struct{ key, domain, prefix, err string }{
		{"/", "", "", ""},
		{"/blog", "", "/blog", ""},
		{"/blog/", "", "/blog", ""},
		{"//a//b//", "", "/a/b", ""},
		{"domain example.com", "example.com", "", ""},
		{"domain example.com /x/", "example.com", "/x", ""},
		{"domain example.com port 8080 /x", "example.com:8080", "/x", ""},
		{"port 8080 domain example.com x", "example.com:8080", "/x", ""},
		{"http://example.com/x", "example.com", "/x", ""},
		{"blog", "", "", "must start with / or http://"},
		{"domain", "", "", `"domain" must be followed with a domain name`},
		{"domain a domain b /", "", "", `"domain" given twice`},
		{"port 80 /", "", "", "if you give a port, you must also give a domain"},
		{"/a /b", "", "", `more than one path given (have "/a", got "/b")`},
	} {
		domain, prefix, err := parseKey(tc.key)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.key, err, tc.err)
			}
			continue
		}
		if err != nil || domain != tc.domain || prefix != tc.prefix {
			t.Errorf("%q: domain %q prefix %q (%v), want %q %q", tc.key, domain, prefix, err, tc.domain, tc.prefix)
		}
	}
}
