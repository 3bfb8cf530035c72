package gateway

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"
)

// ErrQueueFull is returned by acquire when QueueSize requests already wait.
var ErrQueueFull = errors.New("all workers busy and the queue is full")

// errQueueTimeout: no slot freed up within Timeout.
var errQueueTimeout = errors.New("no worker became free in time")

// queueTimers are reused by queued requests: Reset after Stop is clean
// since Go 1.23.
var queueTimers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// acquire lends the caller a slot: preferably one with no request in
// flight, else one it can pipeline on, else it waits in the bounded queue.
func (p *Pool) acquire(ctx context.Context) (*slot, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
			queueTimers.Put(timer)
		}
	}()
	for {
		var s *slot
		from := p.idle
		select {
		case s = <-p.idle:
		default:
			select {
			case s = <-p.spare:
				from = p.spare
			default:
				if p.waiting.Add(1) > int64(p.cfg.QueueSize) {
					p.waiting.Add(-1)
					return nil, ErrQueueFull
				}
				var expired <-chan time.Time // nil with NoTimeout: wait as long as it takes
				if timer == nil && p.cfg.Timeout > 0 {
					timer = queueTimers.Get().(*time.Timer)
					timer.Reset(p.cfg.Timeout)
				}
				if timer != nil {
					expired = timer.C
				}
				select {
				case s = <-p.idle:
				case s = <-p.spare:
					from = p.spare
				case <-ctx.Done():
					p.waiting.Add(-1)
					return nil, ctx.Err()
				case <-expired:
					p.waiting.Add(-1)
					return nil, errQueueTimeout
				}
				p.waiting.Add(-1)
			}
		}
		if s.w.State() == StateReady {
			if s.w.servingLent() {
				s = p.preferFree(s, from)
			}
			return s, nil
		}
		// A token of a draining or dead worker: drop it and take another.
	}
}

// release gives a slot's token back after a request. healthy is false when
// the request left the worker in an unknown state: the worker is killed.
func (p *Pool) release(s *slot, healthy bool, reason string) {
	w := s.w
	if !healthy {
		w.kill(reason)
		s.close()
		return
	}
	if reason == reasonWithdrawn {
		// served elsewhere: not one of this worker's requests
	} else if n := w.served.Add(1); w.maxRequests > 0 && n >= w.maxRequests {
		p.retire(w, "max-requests")
	} else if p.overMemory(w) {
		p.retire(w, "max-worker-memory")
	}
	if w.State() != StateReady {
		return // the slot closes when its last queued request ends
	}
	idle, closed := s.idleNow()
	if closed {
		return
	}
	ch := p.spare
	if idle {
		ch = p.idle
	}
	if !p.pushToken(ch, s) {
		p.log.Error("slot queue full; dropping a token", "worker", w.id)
		return
	}
	if p.waiting.Load() > 0 {
		// A queued request has just been handed this slot: let it send its
		// REQUEST before this goroutine goes on to flush its own response,
		// so the worker waits as little as possible.
		runtime.Gosched()
	}
}

// retire drains a worker that has done its time (max_requests,
// max_worker_memory); the arbiter spawns its replacement.
func (p *Pool) retire(w *worker, reason string) {
	if w.drain(reason) {
		p.events <- event{kind: evRetired, w: w}
	}
}

// pushToken offers a slot's token without ever blocking. The channel may
// hold tokens of workers that drained while no request came (reloads with
// no traffic): when it is full they are dropped.
func (p *Pool) pushToken(ch chan *slot, s *slot) bool {
	select {
	case ch <- s:
		return true
	default:
	}
	var keep []*slot
	for done := false; !done; {
		select {
		case o := <-ch:
			if o.w.State() == StateReady {
				keep = append(keep, o)
			}
		default:
			done = true
		}
	}
	keep = append(keep, s)
	ok := true
	for _, o := range keep {
		select {
		case ch <- o:
		default:
			ok = ok && o != s
		}
	}
	return ok
}

// observe feeds a served request's time into the moving average (1/8 of
// each new sample; racing updates may lose one, which does not matter).
func (p *Pool) observe(d time.Duration) {
	avg := p.service.Load()
	p.service.Store(avg + (int64(d)-avg)/8)
}

// serviceTime is the moving average of a request's service time.
func (p *Pool) serviceTime() time.Duration { return time.Duration(p.service.Load()) }
