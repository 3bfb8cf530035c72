package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// BenchmarkRateLimit is the filter's cost per accepted request, for one
// client and for requests spread over 10 000 clients.
func BenchmarkRateLimit(b *testing.B) {
	built, err := componenttest.BuildINI(b, &componenttest.Host{}, b.TempDir(), "[filter:rl]\nuse = egg:wsgate#ratelimit\nrate = 1e9\nburst = 1000000\n", "rl", true)
	if err != nil {
		b.Fatal(err)
	}
	h := built.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, clients := range []int{1, 10000} {
		b.Run(strconv.Itoa(clients)+" clients", func(b *testing.B) {
			reqs := make([]*http.Request, clients)
			for i := range reqs {
				reqs[i] = httptest.NewRequest("GET", "/", nil)
				reqs[i].RemoteAddr = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":1234"
			}
			w := httptest.NewRecorder()
			i := 0
			for b.Loop() {
				h.ServeHTTP(w, reqs[i%clients])
				i++
			}
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		})
	}
}
