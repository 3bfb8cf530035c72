// Package metrics is the `egg:wsgate#metrics` filter: it counts and times
// the requests that pass through it and serves them, with the worker pools'
// state, in the Prometheus text format (prometheus/client_golang).
//
// It sees the response's status, never its body: the gateway's fast path
// stays open behind it. The pool figures are read from the site at scrape
// time (gateway.Pool.Stats: atomics), so a request pays for a few atomic
// adds and one histogram observation, and takes no lock of the pools.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "metrics",
		Role:    component.Filter,
		Sees:    component.SeesResponseHead,
		Summary: "Prometheus metrics of the requests passing through it and of the worker pools, at a path or on a listener of its own.",
		Doc: `Put it first in the pipeline (before urlmap) so it counts every request of the site. It serves the page
at ` + "`path`" + ` on the site's listeners, or only on ` + "`listen`" + ` when that is set (a port the public never
reaches); requests for the page are not counted.

Metrics (all prefixed ` + "`wsgate_`" + `):

| name | type | labels | what |
|---|---|---|---|
| ` + "`wsgate_requests_total`" + ` | counter | route, code | requests answered; route is the urlmap mount that served it (` + "`/`" + ` at the top), code the status (` + "`aborted`" + ` when the connection was cut before a status) |
| ` + "`wsgate_request_duration_seconds`" + ` | histogram | route | from the request reaching metrics to the handler's return |
| ` + "`wsgate_queue_wait_seconds`" + ` | histogram | pool | how long a request dispatched to Python waited for a worker |
| ` + "`wsgate_requests_in_flight`" + ` | gauge | | requests inside metrics now |
| ` + "`wsgate_pool_workers`" + ` | gauge | pool, state | workers by state (starting, ready, draining) |
| ` + "`wsgate_pool_workers_configured`" + ` | gauge | pool | the pool's configured workers |
| ` + "`wsgate_pool_busy`" + ` | gauge | pool | requests being served by the pool's workers |
| ` + "`wsgate_pool_queue_depth`" + ` | gauge | pool | requests waiting for a worker |
| ` + "`wsgate_pool_restarts_total`" + ` | counter | pool | workers replaced (deaths, timeouts, max-requests recycling) |
| ` + "`wsgate_draining`" + ` | gauge | | 1 while the server drains on SIGTERM |

plus the Go runtime's and the process's own (` + "`go_*`" + `, ` + "`process_*`" + `). Request counters start from
zero each time the site is built (start, reload of the configuration); the pool counters follow the pools.

No label carries the request's path, host or any other client value, only the configured mounts, statuses
and pool names: the number of series stays bounded whatever clients send.`,
		Options: []component.Option{
			{Name: "path", Type: "string", Default: "/metrics", Help: "Where the page is served."},
			{Name: "listen", Type: "address",
				Help: "Serve the page on this host:port instead of the site's listeners (e.g. `127.0.0.1:9100`); it may be shared with health."},
			{Name: "buckets", Type: "list", Default: "0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10",
				Help: "Upper bounds, in seconds, of the request duration histogram's buckets."},
		},
		Build: build,
	})
}

// Metrics is one configured metrics filter and its registry.
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	queueWait *prometheus.HistogramVec
	inFlight  prometheus.Gauge
}

func build(b *component.Builder) (component.Built, error) {
	path := b.String("path", "/metrics")
	if !strings.HasPrefix(path, "/") {
		return component.Built{}, b.Errorf("path", "%q does not start with /", path)
	}
	buckets := prometheus.DefBuckets
	if words := b.List("buckets"); len(words) > 0 {
		buckets = nil
		for _, w := range words {
			f, err := strconv.ParseFloat(w, 64)
			if err != nil || f <= 0 || len(buckets) > 0 && f <= buckets[len(buckets)-1] {
				return component.Built{}, b.Errorf("buckets", "%q: the bounds must be increasing positive numbers of seconds", w)
			}
			buckets = append(buckets, f)
		}
	}
	m, reg := newMetrics(buckets, b.Host.Site())
	page := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: errorLog{b.Host.Logger(), b.Section()}})
	return component.Endpoint(b, []string{path}, page, m.Wrap)
}

func newMetrics(buckets []float64, site component.Site) (*Metrics, *prometheus.Registry) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsgate_requests_total", Help: "Requests answered, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wsgate_request_duration_seconds", Help: "Time to answer a request, by route.", Buckets: buckets,
		}, []string{"route"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wsgate_queue_wait_seconds", Help: "Time a request waited for a Python worker, by pool.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs to 26s
		}, []string{"pool"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wsgate_requests_in_flight", Help: "Requests being answered now.",
		}),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.requests, m.duration, m.queueWait, m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if site != nil {
		reg.MustRegister(poolCollector{site})
	}
	return m, reg
}

// Wrap measures every request that passes to next.
func (m *Metrics) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, facts := component.Attach(r)
		rec := component.NewRecorder(w)
		m.inFlight.Inc()
		began := time.Now()
		completed := false
		defer func() {
			// Also when the handler panics (a response cut off midway):
			// the request still happened.
			route := facts.Route
			if route == "" {
				route = "/"
			}
			code := "aborted"
			switch {
			case rec.Status >= 100 && rec.Status < len(codes):
				code = codes[rec.Status]
			case rec.Status != 0:
				code = strconv.Itoa(rec.Status)
			case completed:
				code = "200" // nothing written: net/http sends 200
			}
			m.requests.WithLabelValues(route, code).Inc()
			m.duration.WithLabelValues(route).Observe(time.Since(began).Seconds())
			if facts.Dispatched {
				m.queueWait.WithLabelValues(facts.Pool).Observe(facts.QueueWait.Seconds())
			}
			// Last: a scrape that sees no request in flight sees every
			// finished one counted (the client may have its answer a
			// moment before this runs).
			m.inFlight.Dec()
		}()
		next.ServeHTTP(rec, r)
		completed = true
	})
}

// codes are the status labels, made once rather than per request.
var codes = func() (c [600]string) {
	for i := 100; i < len(c); i++ {
		c[i] = strconv.Itoa(i)
	}
	return c
}()

// poolCollector reports the site's worker pools at scrape time.
type poolCollector struct{ site component.Site }

var (
	descWorkers    = prometheus.NewDesc("wsgate_pool_workers", "Workers by state.", []string{"pool", "state"}, nil)
	descConfigured = prometheus.NewDesc("wsgate_pool_workers_configured", "Workers the pool is configured to run.", []string{"pool"}, nil)
	descBusy       = prometheus.NewDesc("wsgate_pool_busy", "Requests being served by the pool's workers.", []string{"pool"}, nil)
	descQueue      = prometheus.NewDesc("wsgate_pool_queue_depth", "Requests waiting for a worker.", []string{"pool"}, nil)
	descRestarts   = prometheus.NewDesc("wsgate_pool_restarts_total", "Workers replaced since start (deaths, timeouts, recycling).", []string{"pool"}, nil)
	descDraining   = prometheus.NewDesc("wsgate_draining", "1 while the server is draining.", nil, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWorkers, descConfigured, descBusy, descQueue, descRestarts, descDraining} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	draining := 0.0
	if c.site.Draining() {
		draining = 1
	}
	ch <- prometheus.MustNewConstMetric(descDraining, prometheus.GaugeValue, draining)
	for _, p := range c.site.Pools() {
		for state, n := range p.States {
			ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(n), p.Name, state)
		}
		ch <- prometheus.MustNewConstMetric(descConfigured, prometheus.GaugeValue, float64(p.Workers), p.Name)
		ch <- prometheus.MustNewConstMetric(descBusy, prometheus.GaugeValue, float64(p.Busy), p.Name)
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(p.Queued), p.Name)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(p.Restarts), p.Name)
	}
}

// errorLog passes promhttp's errors (a failed collection) to the site's log.
type errorLog struct {
	log     *slog.Logger
	section string
}

func (l errorLog) Println(v ...any) {
	l.log.Error("metrics: collecting failed", "section", l.section, "error", strings.TrimSpace(fmt.Sprintln(v...)))
}
