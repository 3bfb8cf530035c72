package gateway

import (
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
