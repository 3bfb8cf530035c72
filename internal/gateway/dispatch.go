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
// is taken; failing that, the busy one slotRank puts first: the request
// waits in its dispatch socket for the request running there and the
// quicker connections waiting beside it (lend.py's loop order), and is
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
//
// A request that lends its connection (lend) is parked even on a worker
// that is not busy: its exchange ends as soon as the worker has the
// connection, and a token held until then hides the worker from takeFree.
func (p *Pool) parkOn(s *slot, lend bool) (parking, error) {
	if !p.lending() || !(lend || s.lentBusy()) {
		return notParked, nil
	}
	p.pushToken(p.idle, s)
	return p.park(s)
}

// park counts a request sent to s without its token: queued if the worker
// is busy (on a lent connection, or with requests of the master's queued
// there; ErrQueueFull past --queue-size), not if it only lends its
// connection to a worker that is not.
func (p *Pool) park(s *slot) (parking, error) {
	if n, _ := s.queued(); n == 0 && !s.lentBusy() {
		s.parked.Add(1)
		return parkedLending, nil
	}
	if p.waiting.Add(1) > int64(p.cfg.QueueSize) {
		p.waiting.Add(-1)
		return notParked, ErrQueueFull
	}
	s.parked.Add(1)
	return parkedQueued, nil
}

// parking is how a request was placed on its slot.
type parking uint8

const (
	notParked     parking = iota // the exchange holds the slot's token
	parkedQueued                 // behind the worker's lent request, counted as queued
	parkedLending                // lending its connection to a worker not busy: not queued
)

func (p *Pool) unpark(s *slot, how parking) {
	s.parked.Add(-1)
	if how == parkedQueued {
		p.waiting.Add(-1)
	}
}

// pickLending chooses the worker for a request that lends its connection
// (a new keep-alive connection's first request): the ready worker slotRank
// puts first, weighed from the roster rather than from the idle tokens; the
// request parks there (park) without a token. A token may be out for a
// while, handed to a waiter in line whose goroutine has not run yet, and
// the worker it stands for is then invisible to takeFree: even with
// lending requests giving their token back at once, the 32 connections wrk
// opens at once went 30 to one worker and 2 to the other in one test run of
// twenty (docs/architecture.md, "Lent connections"). A worker running a
// request of the master's that holds its token is passed over: that
// request may be slow, and the line (acquireLending) hands the request the
// first token to come back instead. nil when no worker is ready or each
// runs such a request.
func (p *Pool) pickLending() *slot {
	var best *slot
	var bestRank slotRank
	now := time.Now()
	for _, w := range p.roster() {
		if w.State() != StateReady || len(w.slots) != 1 {
			continue
		}
		s := w.slots[0]
		if _, tokenHeld := s.queued(); tokenHeld {
			continue // a request of the master's runs there, maybe a slow one: the line knows better (acquireLending)
		}
		if r := rankSlot(s, now); best == nil || r.before(bestRank) {
			best, bestRank = s, r
		}
	}
	return best
}

// slotRank is what takeFree and pickLending weigh of a lending pool's slot.
type slotRank struct {
	busy, long   bool // serving a request (requestAge); for slowRequest or more
	age          time.Duration
	parked, held int64 // requests parked on it (a connection being lent among them); connections its worker holds
}

func rankSlot(s *slot, now time.Time) slotRank {
	age, busy := s.w.requestAge(now) // a lending pool's worker has one slot
	return slotRank{busy: busy, long: busy && age >= slowRequest, age: age, parked: s.parked.Load(), held: s.w.lentHeld.Load()}
}

// before reports whether a request should rather go to a than to b: a
// worker not busy, of those the one holding the fewest connections; else
// one whose request has not run long (a slow view: the request would wait
// for all of it), then the one with the least ahead of the request (the
// requests parked on it and the connections it serves in turn), then the
// one whose request began last.
func (a slotRank) before(b slotRank) bool {
	switch {
	case a.busy != b.busy:
		return !a.busy
	case !a.busy:
		return a.held < b.held
	case a.long != b.long:
		return !a.long
	case a.parked+a.held != b.parked+b.held:
		return a.parked+a.held < b.parked+b.held
	default:
		return a.age < b.age
	}
}

// takeFree takes the token of an idle slot of the ready worker slotRank
// puts first, leaving the other tokens in place; nil only when no slot is
// idle.
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
	var bestRank slotRank
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
		if r := rankSlot(s, now); best == nil || r.before(bestRank) {
			best, bestRank = s, r
		}
	}
	return best
}
