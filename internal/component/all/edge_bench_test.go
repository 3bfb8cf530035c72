package all_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	_ "github.com/wsgate/wsgate/internal/component/all"
	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// BenchmarkEdgeChain is the master CPU the edge components (health,
// metrics, proxyfix, bodylimit) add to a request, against the same request
// with none (go test -bench EdgeChain ./internal/component/all).
func BenchmarkEdgeChain(b *testing.B) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	host := &componenttest.Host{S: &componenttest.Site{}}
	var chain http.Handler = app
	for _, f := range []struct {
		name string
		kv   []string
	}{
		{"bodylimit", []string{"max_bytes", "1m"}},
		{"proxyfix", []string{"trusted", "127.0.0.1", "headers", "x-forwarded-for x-forwarded-proto"}},
		{"metrics", nil},
		{"health", nil},
	} {
		chain = componenttest.Build(b, host, f.name, f.kv...).Wrap(chain)
	}
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"none", app}, {"edge4", chain}} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("POST", "/p", nil)
			req.RemoteAddr = "127.0.0.1:5000"
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			req.Header.Set("X-Forwarded-Proto", "https")
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				r, _ := component.Attach(req) // compose attaches Facts once per request
				bc.h.ServeHTTP(w, r)
			}
		})
	}
}
