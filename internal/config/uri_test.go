package config_test

import (
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

func TestParseURI(t *testing.T) {
	for _, c := range []struct{ uri, path, name, err string }{
		{"site.ini", "site.ini", "main", ""},
		{"site.ini#dev", "site.ini", "dev", ""},
		{"config:site.ini#dev", "site.ini", "dev", ""},
		{"CONFIG:/etc/site.ini", "/etc/site.ini", "main", ""},
		{"  dir/site.ini#x ", "dir/site.ini", "x", ""},
		{"site.ini#", "site.ini", "main", ""},
		{"", "", "", "empty configuration URI"},
		{"config:", "", "", "names no file"},
		{"config:#main", "", "", "names no file"},
		{"egg:MyApp", "", "", "only config: URIs"},
		{"C:site.ini", "C:site.ini", "main", ""},
	} {
		path, name, err := config.ParseURI(c.uri)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseURI(%q) = %q, %q, %v; want error %q", c.uri, path, name, err, c.err)
			}
			continue
		}
		if err != nil || path != c.path || name != c.name {
			t.Errorf("ParseURI(%q) = %q, %q, %v; want %q, %q", c.uri, path, name, err, c.path, c.name)
		}
	}
}
