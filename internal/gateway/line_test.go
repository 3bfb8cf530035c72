package gateway

import (
	"testing"
	"time"
)

// lineTestPool is a pool with the idle channel, line and slow paths of a
// lending pool, and nothing else: handOff only moves tokens. /slow is a
// slow path.
func lineTestPool() *Pool {
	p := &Pool{idle: make(chan *slot, 8), cfg: Config{Lend: true, Threads: 1}}
	p.slow.note("/slow", 100*time.Millisecond)
	return p
}

// got reports which token w has been handed, nil if none.
func got(w *waiter) *slot {
	select {
	case s := <-w.ch:
		return s
	default:
		return nil
	}
}

// handedInOrder pushes one token per waiter of want and checks that each
// goes to that waiter and no other.
func handedInOrder(t *testing.T, p *Pool, all []*waiter, want ...*waiter) {
	t.Helper()
	for i, w := range want {
		token := &slot{}
		p.pushToken(p.idle, token)
		if got(w) != token {
			t.Fatalf("token %d did not go to the waiter expected", i)
		}
		for _, other := range all {
			if other != w && got(other) != nil {
				t.Fatalf("token %d was handed to another waiter too", i)
			}
		}
	}
}

func TestLineQuickRequestsFirstThenArrivalOrder(t *testing.T) {
	p := lineTestPool()
	slowA, slowB := p.line.join("/slow"), p.line.join("/slow")
	quick, lent := p.line.join("/quick"), p.line.join("")
	slowC := p.line.join("/slow")
	all := []*waiter{slowA, slowB, quick, lent, slowC}
	handedInOrder(t, p, all, quick, lent, slowA, slowB)
	if !p.line.leave(slowC) {
		t.Error("a waiter not yet handed a token could not leave")
	}
	p.pushToken(p.idle, &slot{})
	if len(p.idle) != 1 {
		t.Errorf("with no one waiting the token should stay in the idle channel; %d there", len(p.idle))
	}
}

// A path that turns quick takes its waiters with it, in their order: they
// do not wait behind the later requests of their own path.
func TestLineClassIsThePathsWhenTheTokenIsHanded(t *testing.T) {
	p := lineTestPool()
	early := p.line.join("/slow")
	p.slow.note("/slow", 0) // ... until its average is under 5 ms
	for p.slow.slow("/slow") {
		p.slow.note("/slow", 0)
	}
	late := p.line.join("/slow")
	handedInOrder(t, p, []*waiter{early, late}, early, late)
}

func TestLineWaiterHandedATokenCannotLeave(t *testing.T) {
	p := lineTestPool()
	w := p.line.join("/slow")
	p.pushToken(p.idle, &slot{})
	if p.line.leave(w) {
		t.Error("a waiter already handed a token left the line: the token would be lost")
	}
	if got(w) == nil {
		t.Error("the token is not in the waiter's channel")
	}
}

func TestLineSlowRequestPassedOverTooLongGoesFirst(t *testing.T) {
	p := lineTestPool()
	slow := p.line.join("/slow")
	quick := p.line.join("/quick")
	slow.since = slow.since.Add(-maxPassedOver - time.Millisecond)
	handedInOrder(t, p, []*waiter{slow, quick}, slow)
}
