package gateway

import (
	"context"
	"sync"
	"time"
)

// line is where the requests of a lending pool wait for a slot's token
// (acquireLending): first come first served, except that a request for a
// quick path goes before those for slow paths (slowpaths.go) ahead of it.
// A token pushed to the idle channel is handed at once to the chosen waiter
// (handOff), so the order is the line's, not the order in which goroutines
// happen to wake.
//
// A request's class is its path's when the token is handed, not when it
// joined: a path that turns quick takes all its waiters with it, in their
// order. Two first versions taught this. Waiting on the idle channel itself
// kept arrival order (Go queues a channel's receivers in order) but gave no
// way to let quick requests ahead: a slow waiter that stepped out to let one
// pass came back at the end. And with the class fixed when a request
// joined, the requests of a path that changed class waited behind the later
// ones of the same path (the 10 MiB upload case: p99 0.9-3.2 s, against
// 200 ms).
type line struct {
	mu      sync.Mutex
	waiters []*waiter
}

// waiter is one request in the line; ch receives its token.
type waiter struct {
	ch    chan *slot
	path  string // "" for a request that is lent: quick
	since time.Time
}

// maxPassedOver is how long quick requests may go before the slow request
// at the head of the line: past it, that one is served first, so that no
// mix of requests starves the slow ones.
const maxPassedOver = time.Second

// linePathKey carries the path of a request the master serves itself to
// acquireLending (Handler.ServeHTTP): the line's class of the request.
type linePathKey struct{}

func withLinePath(ctx context.Context, path string) context.Context {
	return context.WithValue(ctx, linePathKey{}, path)
}

func (l *line) join(path string) *waiter {
	w := &waiter{ch: make(chan *slot, 1), path: path, since: time.Now()}
	l.mu.Lock()
	l.waiters = append(l.waiters, w)
	l.mu.Unlock()
	return w
}

// leave takes w out of the line; false if it has been handed a token
// already (it is in w.ch, or about to be).
func (l *line) leave(w *waiter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, o := range l.waiters {
		if o == w {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// handOff gives the tokens in the idle channel to the waiters: to the
// first whose path is quick, unless the head of the line is quick itself or
// has been passed over for maxPassedOver; then to the head.
func (p *Pool) handOff() {
	l := &p.line
	for {
		l.mu.Lock()
		if len(l.waiters) == 0 {
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
		i := 0
		if head := l.waiters[0]; p.slow.slow(head.path) && time.Since(head.since) <= maxPassedOver {
			for j, w := range l.waiters {
				if !p.slow.slow(w.path) {
					i = j
					break
				}
			}
		}
		w := l.waiters[i]
		l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
		l.mu.Unlock()
		w.ch <- s // cap 1, and each waiter is handed one token: never blocks
	}
}
