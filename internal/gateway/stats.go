package gateway

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/component"
)

// poolCounters are the pool's figures that Stats reports. Every one is an
// atomic updated where the event happens, so a scrape takes no lock and the
// request path pays an atomic add, never a mutex.
type poolCounters struct {
	inState  [StateStopped]atomic.Int32 // live workers by state (stopped ones are forgotten)
	restarts atomic.Uint64              // replacement workers spawned (deaths, timeouts, recycling)
	busy     atomic.Int64               // requests in an exchange with a worker
}

// Stats is the pool's state now, for metrics and health. Figures are read
// one by one, so under load they may disagree by a request or a worker.
func (p *Pool) Stats() component.PoolStats {
	st := component.PoolStats{
		Name:     p.cfg.AppName,
		Workers:  p.cfg.Workers,
		Ready:    p.Ready(),
		States:   make(map[string]int, len(p.stats.inState)),
		Busy:     int(p.stats.busy.Load()),
		Queued:   p.Queued(),
		Restarts: p.stats.restarts.Load(),
		// reloads completed since the first generation
		Generation: 1 + int(p.reloads.Load()),
	}
	for s := range p.stats.inState {
		st.States[State(s).String()] = int(p.stats.inState[s].Load())
	}
	return st
}

// acquireFor is acquire for a request: it records in the request's
// component.Facts (when it has them) how long the request queued.
func (p *Pool) acquireFor(r *http.Request) (*slot, error) {
	f := component.FactsOf(r)
	if f == nil {
		return p.acquire(r.Context())
	}
	began := time.Now()
	s, err := p.acquire(r.Context())
	f.QueueWait += time.Since(began)
	f.Dispatched = err == nil
	return s, err
}
