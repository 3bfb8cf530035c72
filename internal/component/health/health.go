// Package health is the `egg:wsgate#health` filter: liveness and readiness
// probes answered by Go, never by a worker.
//
// Liveness (path, default /healthz) is 200 for as long as the process
// serves. Readiness (ready_path, default path + "/ready") is 200 when every
// worker pool has a ready worker and the server is not draining, else 503
// with the reason, so a load balancer stops sending traffic before the
// workers are gone.
package health

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "health",
		Role:    component.Filter,
		Sees:    component.SeesRequest,
		Summary: "Liveness and readiness probes (200 or 503 with the reason), answered by Go.",
		Doc: `Liveness (` + "`path`" + `) answers 200 ` + "`ok`" + ` while the process serves. Readiness (` + "`ready_path`" + `)
answers 200 ` + "`ready`" + ` when every worker pool of the site has at least one ready worker and the server is not
draining, else 503 with the reason (` + "`not ready: draining`" + `, ` + "`not ready: pool … has no ready worker`" + `).
Both answer GET and HEAD, with ` + "`Cache-Control: no-store`" + `.

Put it first in the pipeline, so no other component (an authenticator, a body limit) stands between the
probe and the answer. On SIGTERM the server stops accepting connections on its listeners at once, so a
probe on the site's own listener only sees the listener close; to watch readiness turn false while
requests drain, give ` + "`listen`" + ` an address of its own: that listener stays open until the drain is done.`,
		Options: []component.Option{
			{Name: "path", Type: "string", Default: "/healthz", Help: "The liveness path."},
			{Name: "ready_path", Type: "string", Default: "path + /ready", Help: "The readiness path."},
			{Name: "listen", Type: "address",
				Help: "Serve the probes on this host:port instead of the site's listeners (e.g. `127.0.0.1:8081`); it may be shared with metrics."},
		},
		Build: build,
	})
}

func build(b *component.Builder) (component.Built, error) {
	path := b.String("path", "/healthz")
	if !strings.HasPrefix(path, "/") {
		return component.Built{}, b.Errorf("path", "%q does not start with /", path)
	}
	ready := b.String("ready_path", strings.TrimSuffix(path, "/")+"/ready")
	if !strings.HasPrefix(ready, "/") || ready == path {
		return component.Built{}, b.Errorf("ready_path", "%q must start with / and differ from path", ready)
	}
	h := &probes{live: path, ready: ready, host: b.Host}
	return component.Endpoint(b, []string{path, ready}, h, nil)
}

type probes struct {
	live, ready string
	host        component.Host
}

func (p *probes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == p.live {
		fmt.Fprintln(w, "ok")
		return
	}
	if why := p.notReady(); why != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready: "+why)
		return
	}
	fmt.Fprintln(w, "ready")
}

// notReady is why the site should get no traffic now, or "".
func (p *probes) notReady() string {
	site := p.host.Site()
	if site == nil {
		return ""
	}
	if site.Draining() {
		return "draining"
	}
	for _, pool := range site.Pools() {
		if pool.Ready == 0 {
			return fmt.Sprintf("pool %s has no ready worker", pool.Name)
		}
	}
	return ""
}
