package gateway

import (
	"net"
	"testing"
	"time"
)

// deadlineConn counts the read deadlines set on a real connection.
type deadlineConn struct {
	net.Conn
	sets []time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.sets = append(c.sets, t)
	return c.Conn.SetReadDeadline(t)
}

// armReads keeps one deadline for the requests of a slack's span, never
// lets a request's reads time out before its own deadline, and clears it
// for a request without one.
func TestArmReadsKeepsADeadlineWithinTheSlack(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := &deadlineConn{Conn: a}
	s := &slot{conn: c}
	const timeout, slack = 30 * time.Second, 30 * time.Second / readSlackDiv
	t0 := time.Now()
	for i := range 100 {
		at := t0.Add(time.Duration(i) * slack / 50).Add(timeout) // 100 requests over two slacks
		s.armReads(at, slack)
		if s.readDL.Before(at) || s.readDL.After(at.Add(slack)) {
			t.Fatalf("request %d: deadline %v outside [%v, +%v]", i, s.readDL, at, slack)
		}
	}
	if len(c.sets) < 2 || len(c.sets) > 3 {
		t.Errorf("100 requests over two slacks set %d deadlines, want 2 or 3", len(c.sets))
	}
	s.armReads(time.Time{}, 0)
	if last := c.sets[len(c.sets)-1]; !last.IsZero() || !s.readDL.IsZero() {
		t.Errorf("a request without a timeout left the deadline %v", last)
	}
	n := len(c.sets)
	s.armReads(time.Time{}, 0)
	if len(c.sets) != n {
		t.Errorf("clearing a cleared deadline set it again")
	}
}
