package gateway

import (
	"sync"
	"time"
)

// line is where the requests of a lending pool wait for a slot's token
// (acquireLending): first come first served, except that every quick
// request goes before every slow one (a request for a slow path or from a
// slow connection, slowpaths.go). A token pushed to the idle channel is
// handed at once to the first waiter (handOff), so the order is the
// line's, not the order in which goroutines happen to wake.
//
// Waiting on the idle channel itself kept arrival order (Go queues a
// channel's receivers in order) but gave no way to let quick requests
// ahead: a slow waiter that stepped out to let one pass came back at the
// end, and with quick and slow requests mixed the slow ones were served in
// random order (the 10 MiB upload case, whose path flips between slow and
// quick around 20 ms: p99 0.9-3.2 s against 160 ms).
type line struct {
	mu          sync.Mutex
	quick, slow []*waiter
}

// maxPassedOver is how long quick requests may go before the slow request
// at the head of the line: past it, that one is served first, so that no
// mix of requests starves the slow ones.
const maxPassedOver = time.Second

// waiter is one request in the line; ch receives its token.
type waiter struct {
	ch    chan *slot
	since time.Time
}

func (l *line) join(slow bool) *waiter {
	w := &waiter{ch: make(chan *slot, 1), since: time.Now()}
	l.mu.Lock()
	if slow {
		l.slow = append(l.slow, w)
	} else {
		l.quick = append(l.quick, w)
	}
	l.mu.Unlock()
	return w
}

// quickWaiting reports whether a quick request waits.
func (l *line) quickWaiting() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.quick) > 0
}

// leave takes w out of the line; false if it has been handed a token
// already (it is in w.ch, or about to be).
func (l *line) leave(w *waiter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, q := range []*[]*waiter{&l.quick, &l.slow} {
		for i, o := range *q {
			if o == w {
				*q = append((*q)[:i], (*q)[i+1:]...)
				return true
			}
		}
	}
	return false
}

// handOff gives the tokens in the idle channel to the waiters, in the
// line's order.
func (p *Pool) handOff() {
	l := &p.line
	for {
		l.mu.Lock()
		q := &l.quick
		if len(*q) == 0 || (len(l.slow) > 0 && time.Since(l.slow[0].since) > maxPassedOver) {
			q = &l.slow
		}
		if len(*q) == 0 {
			l.mu.Unlock()
			return
		}
		var s *slot
		select {
		case s = <-p.idle:
		default:
			l.mu.Unlock()
			return
		}
		w := (*q)[0]
		(*q)[0] = nil
		*q = (*q)[1:]
		l.mu.Unlock()
		w.ch <- s // cap 1, and each waiter is handed one token: never blocks
	}
}
