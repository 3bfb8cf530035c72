package delegate

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// BenchmarkPassThrough is the composite's cost on a response that does not
// delegate (every Django page behind it).
func BenchmarkPassThrough(b *testing.B) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(200)
		w.Write([]byte("page"))
	})
	h := &host{apps: map[string]http.Handler{"django": page, "hgweb": page}}
	built, err := componenttest.TryBuild(h, "delegate", "app", "django", "targets", "hgweb")
	if err != nil {
		b.Fatal(err)
	}
	// compose attaches the Facts before any component runs.
	r, _ := component.Attach(httptest.NewRequest("GET", "/", nil))
	for name, h := range map[string]http.Handler{"bare": page, "delegate": built.Handler} {
		b.Run(name, func(b *testing.B) {
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
