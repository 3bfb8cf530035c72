package server

import "testing"

// Settings that do not go together are refused before anything listens.
func TestConfigCheck(t *testing.T) {
	for _, bad := range []Config{
		{CertFile: "c"},
		{CertFile: "c", KeyFile: "k", ACMEDomains: []string{"a"}},
		{HTTP3: true},
		{RedirectHTTP: ":80"},
		{CertFile: "c", KeyFile: "k", CertReqs: "required"},
		{Group: "nogroup"},
	} {
		if bad.Check() == nil {
			t.Errorf("%+v passed Check", bad)
		}
	}
}
