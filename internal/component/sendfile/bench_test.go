package sendfile

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// BenchmarkPassThrough is the filter's cost on a response that names no
// file (every Django page behind it).
func BenchmarkPassThrough(b *testing.B) {
	dir := b.TempDir()
	built, err := componenttest.BuildINI(b, &componenttest.Host{}, dir, "[filter:files]\nuse = egg:wsgate#sendfile\nroots = .\n", "files", true)
	if err != nil {
		b.Fatal(err)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(200)
		w.Write([]byte("page"))
	})
	r := httptest.NewRequest("GET", "/", nil)
	for name, h := range map[string]http.Handler{"bare": page, "sendfile": built.Wrap(page)} {
		b.Run(name, func(b *testing.B) {
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
