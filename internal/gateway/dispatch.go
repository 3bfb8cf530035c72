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
	if p.lending() {
		return p.acquireLending(ctx)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
			queueTimers.Put(timer)
		}
	}()
	for {
		var s *slot
		select {
		case s = <-p.idle:
		default:
			select {
			case s = <-p.spare:
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
			return s, nil
		}
		// A token of a draining or dead worker: drop it and take another.
	}
}

// release gives a slot's token back after a request. healthy is false when
// the request left the worker in an unknown state: the worker is killed.
func (p *Pool) release(s *slot, healthy bool, reason string) {
	if !p.settle(s, healthy, reason) {
		return // the slot closes when its last queued request ends
	}
	w := s.w
	idle, closed := s.idleNow()
	if closed {
		return
	}
	ch := p.spare
	if idle || p.lending() {
		// A lending pool takes only idle tokens (acquireLending) and reads
		// the pages and queues to know how busy a slot is.
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

// settle is release without the token (a parked request gave it back at
// once, parkOn): the worker is killed if the request left it in an unknown
// state, the request is counted, the worker recycled past its limits; false
// if the worker no longer takes requests.
func (p *Pool) settle(s *slot, healthy bool, reason string) bool {
	w := s.w
	if !healthy {
		w.kill(reason)
		s.close()
		return false
	}
	if reason == reasonWithdrawn {
		// served elsewhere: not one of this worker's requests
	} else if n := w.served.Add(1) + int64(w.pageLoad(pageServed)); w.maxRequests > 0 && n >= w.maxRequests {
		p.retire(w, "max-requests")
	} else if p.overMemory(w) {
		p.retire(w, "max-worker-memory")
	}
	return w.State() == StateReady
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
	if ch == p.idle && p.lending() {
		defer p.handOff()
	}
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

// acquireLending is acquire for a pool whose workers serve lent
// connections: an idle token only means no request of the master's is in
// flight there, so the shared pages say which workers are free. A free one
// is taken; failing that, the busy one whose request began last: the
// request waits in its dispatch socket for the request running there and
// the quicker connections waiting beside it (lend.py's loop order), and is
// taken back if that one runs long (awaitLentWorker). Such a request counts
// as queued (parked), for --queue-size. Only when every slot has a request
// of the master's does a request wait here, in line (line.go): first come
// first served, requests for quick paths before those for slow ones
// (slowpaths.go; the path comes in ctx, withLinePath), since a quick
// request would otherwise wait for a whole slow one to end on the worker it
// is given to, and another behind it (the mixed case's p99,
// docs/architecture.md "Lent connections").
func (p *Pool) acquireLending(ctx context.Context) (*slot, error) {
	if s := p.takeFree(nil); s != nil {
		return s, nil
	}
	path, _ := ctx.Value(linePathKey{}).(string)
	if p.waiting.Add(1) > int64(p.cfg.QueueSize) {
		p.waiting.Add(-1)
		return nil, ErrQueueFull
	}
	defer p.waiting.Add(-1)
	var expired <-chan time.Time
	if p.cfg.Timeout > 0 {
		t := time.NewTimer(p.cfg.Timeout)
		defer t.Stop()
		expired = t.C
	}
	for {
		w := p.line.join(path)
		p.handOff() // a token may have come back before this request joined
		var err error
		select {
		case first := <-w.ch:
			if s := p.takeFree(first); s != nil {
				return s, nil
			}
			continue // every token was a draining worker's: in line again
		case <-ctx.Done():
			err = ctx.Err()
		case <-expired:
			err = errQueueTimeout
		}
		if !p.line.leave(w) {
			p.pushToken(p.idle, <-w.ch) // handed one meanwhile: to the next
		}
		return nil, err
	}
}

// parkOn counts a request acquire gave a slot whose worker is busy on a
// lent connection as queued (parked: the caller unparks when its exchange
// ends, and settles instead of releasing). The slot's token goes back at
// once, so that more requests may park there; the worker serves them in
// order from its dispatch socket. ErrQueueFull if the queue is full.
func (p *Pool) parkOn(s *slot) (parked bool, err error) {
	if !p.lending() || !s.lentBusy() {
		return false, nil
	}
	p.pushToken(p.idle, s)
	if p.waiting.Add(1) > int64(p.cfg.QueueSize) {
		p.waiting.Add(-1)
		return false, ErrQueueFull
	}
	s.parked.Add(1)
	return true, nil
}

func (p *Pool) unpark(s *slot) {
	s.parked.Add(-1)
	p.waiting.Add(-1)
}

// takeFree takes the token of an idle slot whose worker is ready and not
// busy (requestAge: neither on a lent request nor on one of the master's,
// parked there or not), of the worker holding the fewest lent connections,
// leaving the other tokens in place; failing that, the token of the busy
// one with the fewest requests parked on it, then whose request began last.
// nil only when no slot is idle.
//
// The fewest connections: the request is likely to lend its connection,
// and a worker between two requests is "not busy" for an instant; taking
// the first such one piled the connections of a burst of new clients on one
// worker, to be moved again by rescues.
//
// first, when not nil, is a token the caller took already: it is one of
// those weighed.
func (p *Pool) takeFree(first *slot) (chosen *slot) {
	var taken []*slot
	defer func() {
		for _, s := range taken {
			if s != chosen {
				p.pushToken(p.idle, s)
			}
		}
	}()
	var best *slot
	var bestBusy bool
	var bestAge time.Duration
	var bestParked, bestHeld int64
	now := time.Now()
	for i := range cap(p.idle) + 1 {
		var s *slot
		if i == 0 {
			if s = first; s == nil {
				continue
			}
		} else {
			select {
			case s = <-p.idle:
			default:
				return best
			}
		}
		if s.w.State() != StateReady {
			continue // a draining worker's token: dropped, as acquire does
		}
		taken = append(taken, s)
		age, busy := s.w.requestAge(now) // a lending pool's worker has one slot
		parked, held := s.parked.Load(), s.w.lentHeld.Load()
		better := best == nil
		switch {
		case better:
		case busy != bestBusy:
			better = !busy
		case !busy:
			better = held < bestHeld
		default:
			better = parked < bestParked || (parked == bestParked && age < bestAge)
		}
		if better {
			best, bestBusy, bestAge, bestParked, bestHeld = s, busy, age, parked, held
		}
	}
	return best
}
