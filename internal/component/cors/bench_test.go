package cors

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// BenchmarkCORS is the filter's cost for an actual request from an allowed
// origin and for a preflight it answers.
func BenchmarkCORS(b *testing.B) {
	built, err := componenttest.BuildINI(b, &componenttest.Host{}, b.TempDir(), "[filter:cors]\nuse = egg:wsgate#cors\n"+creds, "cors", true)
	if err != nil {
		b.Fatal(err)
	}
	h := built.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	actual := httptest.NewRequest("GET", "/", nil)
	actual.Header.Set("Origin", "https://app.example.com")
	preflight := httptest.NewRequest("OPTIONS", "/", nil)
	preflight.Header.Set("Origin", "https://app.example.com")
	preflight.Header.Set("Access-Control-Request-Method", "PUT")
	preflight.Header.Set("Access-Control-Request-Headers", "content-type")
	for name, r := range map[string]*http.Request{"actual": actual, "preflight": preflight} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
}
