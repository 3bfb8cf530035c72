package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// Status names the request a worker is on with the request id a component
// gave it, and so does the log line of what the app wrote to wsgi.errors.
func TestStatusAndLogLinesCarryTheRequestID(t *testing.T) {
	seen := make(chan struct{}, 1)
	var logs componenttest.Logs
	p, _ := startPool(t, "nap", func(c *Config) {
		tw := testWriter{t: t, marker: "napping", seen: seen}
		c.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(tw, &logs), nil))
	})
	h := NewHandler(p, "")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, f := component.Attach(r)
		f.RequestID = "req-42"
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if code, _, _ := get(t, srv.URL+"/nap?2"); code != 200 {
			t.Errorf("the nap: status %d", code)
		}
	}()
	<-seen
	st := p.Status()
	if len(st.Live) != 1 || len(st.Live[0].Requests) != 1 {
		t.Fatalf("want one worker on one request: %+v", st)
	}
	if r := st.Live[0].Requests[0]; r.RequestID != "req-42" || r.URI != "/nap?2" || r.Method != "GET" {
		t.Errorf("the request in flight: %+v", r)
	}
	<-done
	if !strings.Contains(logs.String(), "msg=wsgi.errors request_id=req-42 worker=1") {
		t.Errorf("the wsgi.errors line lacks the worker or the request id:\n%s", logs.String())
	}
	if st := p.Status(); len(st.Live[0].Requests) != 0 {
		t.Errorf("a request is still shown once done: %+v", st)
	}
}
