package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// BenchmarkBasic is the filter's cost per request for a browser that sends
// its credentials with every request: bcrypt once, then the cache.
func BenchmarkBasic(b *testing.B) {
	built, err := componenttest.BuildINI(b, &componenttest.Host{}, fixtureDir(b), basicINI, "auth", true)
	if err != nil {
		b.Fatal(err)
	}
	bare := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	req := httptest.NewRequest("GET", "/", nil)
	for _, user := range []string{"bcrypt", "sha1", "no filter"} {
		h := built.Wrap(bare)
		if user == "no filter" { // the loop's own cost, to subtract
			h = bare
		}
		b.Run(user, func(b *testing.B) {
			for b.Loop() {
				r := req.Clone(req.Context())
				r.SetBasicAuth(user, fixturePassword)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
