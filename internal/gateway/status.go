package gateway

import (
	"slices"
	"strconv"
	"time"

	"github.com/wsgate/wsgate/internal/component"
)

// RequestInfo is the request a worker thread is on, for `wsgate status`
// and the log lines about a worker.
type RequestInfo struct {
	Method    string        `json:"method"`
	URI       string        `json:"uri"`
	RequestID string        `json:"request_id,omitempty"`
	Age       time.Duration `json:"-"`
	AgeSec    float64       `json:"age_seconds"`
}

func (r RequestInfo) String() string {
	s := r.Method + " " + r.URI
	if r.RequestID != "" {
		s += " id=" + r.RequestID
	}
	return s + " for " + r.Age.Round(time.Millisecond).String()
}

// current is the request the slot's worker thread is on (s.mu held): the
// head of its queue, served since headSince.
func (s *slot) currentLocked(now time.Time) (RequestInfo, bool) {
	if len(s.queue) == 0 {
		return RequestInfo{}, false
	}
	x := s.queue[0]
	ri := RequestInfo{Method: x.r.Method, URI: x.r.RequestURI, Age: now.Sub(s.headSince)}
	ri.AgeSec, _ = strconv.ParseFloat(strconv.FormatFloat(ri.Age.Seconds(), 'f', 3, 64), 64)
	if f := component.FactsOf(x.r); f != nil {
		ri.RequestID = f.RequestID
	}
	return ri, true
}

// inFlight is the request each of the worker's threads is on.
func (w *worker) inFlight() []RequestInfo {
	now := time.Now()
	var out []RequestInfo
	for _, s := range w.slots {
		s.mu.Lock()
		if ri, ok := s.currentLocked(now); ok {
			out = append(out, ri)
		}
		s.mu.Unlock()
	}
	if ri, ok := w.lentRequest(now); ok {
		out = append(out, ri)
	}
	return out
}

// roster is the pool's live workers now, for status and stack dumps (the
// arbiter owns p.workers; this copy is kept beside it under rosterMu).
func (p *Pool) roster() []*worker {
	p.rosterMu.Lock()
	defer p.rosterMu.Unlock()
	out := make([]*worker, 0, len(p.live))
	for w := range p.live {
		out = append(out, w)
	}
	return out
}

// WorkerStatus is one worker as `wsgate status` shows it.
type WorkerStatus struct {
	ID         int           `json:"id"`
	PID        int           `json:"pid"`
	State      string        `json:"state"`
	Reason     string        `json:"reason,omitempty"` // why it drains
	Generation int           `json:"generation"`
	RSS        int64         `json:"rss_bytes"` // 0 when it could not be read
	Served     int64         `json:"requests_served"`
	Lent       int64         `json:"lent_requests"` // of those, read by the worker from its lent connections (--lend)
	Requests   []RequestInfo `json:"requests"`      // what each of its threads is on
}

// PoolStatus is a pool and its workers as `wsgate status` shows them.
type PoolStatus struct {
	Name       string         `json:"name"`
	App        string         `json:"app"`
	Generation int            `json:"generation"` // of the workers serving (or being replaced)
	Workers    int            `json:"workers"`    // configured
	Threads    int            `json:"threads"`
	Ready      int            `json:"ready"`
	Busy       int            `json:"busy"`
	Queued     int            `json:"queued"`
	Restarts   uint64         `json:"restarts"`
	Reloads    int64          `json:"reloads"`
	Live       []WorkerStatus `json:"live_workers"`
}

// Status is the pool and each of its workers now: figures are read one by
// one, so under load they may disagree by a request or a worker.
func (p *Pool) Status() PoolStatus {
	st := PoolStatus{
		Name: p.cfg.AppName, App: p.cfg.AppName, Generation: int(p.genNow.Load()),
		Workers: p.cfg.Workers, Threads: p.cfg.Threads, Ready: p.Ready(), Busy: int(p.stats.busy.Load()),
		Queued: p.Queued(), Restarts: p.stats.restarts.Load(), Reloads: p.reloads.Load(),
	}
	ws := p.roster()
	slices.SortFunc(ws, func(a, b *worker) int { return a.id - b.id })
	for _, w := range ws {
		rss, _ := RSS(w.pid)
		reason, _ := w.reason.Load().(string)
		lent := int64(w.pageLoad(pageServed))
		one := WorkerStatus{ID: w.id, PID: w.pid, State: w.State().String(), Generation: w.gen,
			RSS: rss, Served: w.served.Load() + lent, Lent: lent, Requests: w.inFlight()}
		if one.State == StateDraining.String() {
			one.Reason = reason
		}
		if one.Requests == nil {
			one.Requests = []RequestInfo{}
		}
		st.Live = append(st.Live, one)
	}
	return st
}
