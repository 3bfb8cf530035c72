package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/componenttest"
)

// scrape fetches url and parses it with Prometheus' own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the metrics page: %v", err)
	}
	return fams
}

// find returns the metric of family name with exactly the labels given.
func find(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	fam := fams[name]
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.Metric {
		if len(m.Label) != len(labels)/2 {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

func TestMetricsCountRequestsAndPools(t *testing.T) {
	site := &componenttest.Site{}
	site.SetPools(component.PoolStats{Name: "main", Workers: 2, Ready: 1, Busy: 1, Queued: 3, Restarts: 4,
		States: map[string]int{"ready": 1, "starting": 1, "draining": 0}})
	built := componenttest.Build(t, &componenttest.Host{S: site}, "metrics")
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := component.FactsOf(r)
		switch r.URL.Path {
		case "/blog/x":
			f.Route = "/blog"
			f.Dispatched, f.Pool, f.QueueWait = true, "main", 30*time.Millisecond
			io.WriteString(w, "post")
		case "/missing":
			http.NotFound(w, r)
		case "/cut":
			panic(http.ErrAbortHandler)
		}
	})
	srv := httptest.NewServer(built.Wrap(app))
	defer srv.Close()
	for _, p := range []string{"/blog/x", "/blog/x", "/missing", "/", "/cut"} {
		// POST: the client would retry a GET cut off before its answer
		if resp, err := http.Post(srv.URL+p, "text/plain", nil); err == nil {
			resp.Body.Close()
		}
	}
	fams := scrape(t, srv.URL+"/metrics")
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"route", "/blog", "code", "200"}, 2},
		{[]string{"route", "/", "code", "404"}, 1},
		{[]string{"route", "/", "code", "200"}, 1},
		{[]string{"route", "/", "code", "aborted"}, 1},
	} {
		m := find(fams, "wsgate_requests_total", c.labels...)
		if m == nil || m.GetCounter().GetValue() != c.want {
			t.Errorf("wsgate_requests_total%v = %v, want %v", c.labels, m, c.want)
		}
	}
	if n := len(fams["wsgate_requests_total"].Metric); n != 4 {
		t.Errorf("%d request series, want 4 (the scrape itself is not counted)", n)
	}
	if m := find(fams, "wsgate_request_duration_seconds", "route", "/blog"); m.GetHistogram().GetSampleCount() != 2 {
		t.Errorf("duration histogram of /blog: %v", m)
	}
	qw := find(fams, "wsgate_queue_wait_seconds", "pool", "main").GetHistogram()
	if qw.GetSampleCount() != 2 || qw.GetSampleSum() < 0.059 || qw.GetSampleSum() > 0.061 {
		t.Errorf("queue wait of main: %v", qw)
	}
	if n := len(fams["wsgate_queue_wait_seconds"].GetMetric()); n != 1 {
		t.Errorf("queue wait series: %d, want 1 (Go-served requests have none)", n)
	}
	if m := find(fams, "wsgate_requests_in_flight"); m.GetGauge().GetValue() != 0 {
		t.Errorf("in flight after the requests: %v", m)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"wsgate_pool_workers", []string{"pool", "main", "state", "ready"}, 1},
		{"wsgate_pool_workers", []string{"pool", "main", "state", "starting"}, 1},
		{"wsgate_pool_workers_configured", []string{"pool", "main"}, 2},
		{"wsgate_pool_busy", []string{"pool", "main"}, 1},
		{"wsgate_pool_queue_depth", []string{"pool", "main"}, 3},
		{"wsgate_draining", nil, 0},
	} {
		m := find(fams, c.name, c.labels...)
		if m == nil || m.GetGauge().GetValue() != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, m, c.want)
		}
	}
	if m := find(fams, "wsgate_pool_restarts_total", "pool", "main"); m.GetCounter().GetValue() != 4 {
		t.Errorf("restarts: %v", m)
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("no Go runtime or process metrics")
	}
	site.SetDraining(true)
	if m := find(scrape(t, srv.URL+"/metrics"), "wsgate_draining"); m.GetGauge().GetValue() != 1 {
		t.Errorf("draining: %v", m)
	}
}

func TestMetricsInFlight(t *testing.T) {
	built := componenttest.Build(t, &componenttest.Host{}, "metrics", "path", "/-/metrics")
	inside, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(built.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inside)
		<-release
	})))
	defer srv.Close()
	done := make(chan struct{})
	go func() {
		if resp, err := http.Get(srv.URL + "/slow"); err == nil {
			resp.Body.Close()
		}
		close(done)
	}()
	<-inside
	if m := find(scrape(t, srv.URL+"/-/metrics"), "wsgate_requests_in_flight"); m.GetGauge().GetValue() != 1 {
		t.Errorf("in flight during a request: %v", m)
	}
	close(release)
	<-done
}

func TestMetricsOwnListener(t *testing.T) {
	addr := componenttest.FreeAddr(t)
	built := componenttest.Build(t, &componenttest.Host{S: &componenttest.Site{}}, "metrics", "listen", addr)
	srv := httptest.NewServer(built.Wrap(http.NotFoundHandler()))
	defer srv.Close()
	if resp, err := http.Get(srv.URL + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("the page on the site's listener with listen set: %v %v", resp, err)
	}
	m := find(scrape(t, "http://"+addr+"/metrics"), "wsgate_requests_total", "route", "/", "code", "404")
	if m.GetCounter().GetValue() != 1 {
		t.Fatalf("site requests counted on the own listener: %v", m)
	}
}

func TestMetricsConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		want string
	}{
		{[]string{"path", "metrics"}, `path: "metrics" does not start with /`},
		{[]string{"buckets", "0.1 0.05"}, `buckets: "0.05": the bounds must be increasing`},
		{[]string{"listen", "9100"}, `listen: "9100" is not host:port`},
		{[]string{"listen", "192.0.2.1:9100"}, "listen: listen tcp 192.0.2.1:9100"},
	} {
		componenttest.RequireError(t, "metrics", tc.want, tc.opts...)
	}
}
