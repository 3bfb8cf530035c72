package gateway

import (
	"testing"
	"time"
)

// lineTestPool is a pool with the idle channel and line of a lending pool,
// and nothing else: handOff only moves tokens.
func lineTestPool() *Pool {
	return &Pool{idle: make(chan *slot, 8), cfg: Config{Lend: true, Threads: 1}}
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

func TestLineQuickRequestsFirstThenArrivalOrder(t *testing.T) {
	p := lineTestPool()
	slowA, slowB := p.line.join(true), p.line.join(true)
	quick := p.line.join(false)
	slowC := p.line.join(true)
	tokens := []*slot{{}, {}, {}}
	for i, want := range []*waiter{quick, slowA, slowB} {
		p.pushToken(p.idle, tokens[i])
		if s := got(want); s != tokens[i] {
			t.Fatalf("token %d went elsewhere (the waiter expected got %p)", i, s)
		}
		for _, other := range []*waiter{quick, slowA, slowB, slowC} {
			if other != want && got(other) != nil {
				t.Fatalf("token %d was handed to two waiters", i)
			}
		}
	}
	if !p.line.leave(slowC) {
		t.Error("a waiter not yet handed a token could not leave")
	}
	p.pushToken(p.idle, tokens[0])
	if len(p.idle) != 1 {
		t.Errorf("with no one waiting the token should stay in the idle channel; %d there", len(p.idle))
	}
}

func TestLineWaiterHandedATokenCannotLeave(t *testing.T) {
	p := lineTestPool()
	w := p.line.join(true)
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
	slow := p.line.join(true)
	quick := p.line.join(false)
	slow.since = slow.since.Add(-maxPassedOver - time.Millisecond)
	token := &slot{}
	p.pushToken(p.idle, token)
	if got(slow) != token || got(quick) != nil {
		t.Error("a slow request passed over for longer than maxPassedOver did not go before a quick one")
	}
}
