package gateway

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/protocol"
)

// slot is the master's end of one worker thread's two sockets. REQUESTs
// go on the dispatch socket (SOCK_SEQPACKET), one message each; every other
// frame goes on the stream socket (conn). Requests are pipelined on a slot:
// up to Config.Pipeline exchanges may have written their REQUEST; the worker
// serves them in order, so queue[0] alone reads the stream socket, and hands
// the turn to the next when its stream ends. A REQUEST the worker has not
// received yet can be taken back (withdraw) and served by another worker.
type slot struct {
	w     *worker
	conn  net.Conn
	br    *bufio.Reader
	rbuf  []byte // scratch for payloads larger than br's buffer (reader only)
	body  []byte // request body chunk buffer, allocated on first upload (reader only)
	start protocol.StartPayload
	hdr   []byte      // a frame header written apart from its payload
	bufs  net.Buffers // header + payload for one writev
	once  sync.Once
	// parked: requests sent here without the slot's token (the worker was
	// busy on a lent connection, or the request lends its connection), not
	// answered yet (Pool.park)
	parked atomic.Int64
	// readDL is the read deadline set on conn (reader only: armReads).
	readDL time.Time

	mu      sync.Mutex // guards what follows, and every write to conn and disp
	disp    net.Conn   // the dispatch socket, master's end
	dispFD  int        // the worker's end of it, kept to take messages back
	dispMax int        // the largest message sent on disp; larger requests go on conn
	wbuf    []byte     // frames being written; reused across requests
	queue   []*exchange
	// headSince is when queue[0] became the request the worker thread is
	// on (status, stack dumps).
	headSince time.Time
	stream    uint32
	closed    bool
	// unreceived: streams whose REQUEST was still in the dispatch socket
	// when the slot closed; the worker never saw them.
	unreceived []uint32
}

// queued is the number of exchanges on the slot, and whether one of them
// holds the slot's token (a request of the master's that was not parked).
func (s *slot) queued() (n int, tokenHeld bool) {
	s.mu.Lock()
	n = len(s.queue)
	s.mu.Unlock()
	return n, int64(n) > s.parked.Load()
}

// closeLocked closes the sockets (s.mu held): the worker thread reads EOF
// and, once all its sockets are closed, the worker exits.
func (s *slot) closeLocked() {
	s.closed = true
	s.once.Do(func() {
		s.closeSocketsLocked()
		s.w.slotClosed()
	})
}

// closeSocketsLocked closes the slot's sockets (s.mu held), first taking
// back what the worker never received, for reclaim.
func (s *slot) closeSocketsLocked() {
	for {
		stream, ok := s.takeNext()
		if !ok {
			break
		}
		s.unreceived = append(s.unreceived, stream)
	}
	s.conn.Close()
	s.disp.Close()
	syscall.Close(s.dispFD)
}

func (s *slot) close() {
	s.mu.Lock()
	s.closeLocked()
	s.mu.Unlock()
}

// readSlackDiv: a request's reads may time out up to Timeout/readSlackDiv
// late (30 s: under half a second), so that one deadline set on the socket
// serves the requests of that span instead of each setting its own.
const readSlackDiv = 64

// armReads makes the reads on conn time out no earlier than at and no later
// than at+slack (never, for a zero at). A deadline already in that window
// is kept: resetting it costs a runtime timer update on every request.
func (s *slot) armReads(at time.Time, slack time.Duration) {
	if at.IsZero() {
		if !s.readDL.IsZero() {
			s.readDL = time.Time{}
			_ = s.conn.SetReadDeadline(s.readDL)
		}
		return
	}
	if !s.readDL.Before(at) && s.readDL.Sub(at) <= slack {
		return
	}
	s.readDL = at.Add(slack)
	_ = s.conn.SetReadDeadline(s.readDL)
}

// idleNow reports whether no exchange is queued on the slot.
func (s *slot) idleNow() (idle, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) == 0, s.closed
}

// withdrawal is what became of an attempt to take a REQUEST back.
type withdrawal int

const (
	withdrawn withdrawal = iota // taken back: the worker will never see it
	received                    // the worker has it: it will be served here
	notYet                      // the worker has not taken the request ahead of it yet
)

// withdraw takes x's REQUEST back from the dispatch socket if the worker has
// not received it. A SEQPACKET message is delivered whole to exactly one
// reader, so the master reading it from the worker's end is an atomic claim:
// either the worker got it or the master did.
func (s *slot) withdraw(x *exchange) withdrawal {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || x.pinned || len(s.queue) == 0 || s.queue[0] == x {
		return received // closed, sent on the stream socket, or x's turn has come
	}
	for i := len(s.queue) - 1; i > 0 && s.queue[i] != x; i-- {
		if s.queue[i].pinned {
			// Should the worker take x meanwhile, the message received
			// could be this one's marker, whose frames wait on the
			// stream socket: it must not be taken.
			return received
		}
	}
	// Whose message is next? The head of the queue's own means the worker
	// has not started that one yet; x's means x can still be taken.
	next, ok := s.peekNext()
	if !ok {
		return received // nothing waits: the worker has received x already
	}
	if next != x.stream {
		if next == s.queue[0].stream {
			return notYet
		}
		return received
	}
	got, ok := s.takeNext()
	if !ok {
		return received // the worker took it between the peek and now
	}
	for i, y := range s.queue {
		if y.stream != got || i == 0 {
			continue
		}
		s.queue = append(s.queue[:i], s.queue[i+1:]...)
		if y == x {
			return withdrawn
		}
		// The worker took x between the peek and the receive, and this is
		// the message queued after it: that request goes elsewhere instead.
		y.turn <- turnWithdrawn
		break
	}
	return received
}

// reclaim reports whether x's REQUEST never reached the worker, found gone
// when x reads its answer: the message (or the marker of one sent on the
// stream socket) was still in the dispatch socket, so another worker may
// serve the request. The master holds the worker's end of that socket, so
// writing to a dead worker does not fail: this is how a worker that died
// while idle is found out.
func (s *slot) reclaim(x *exchange) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return slices.Contains(s.unreceived, x.stream)
	}
	if next, ok := s.peekNext(); !ok || next != x.stream {
		return false
	}
	got, ok := s.takeNext()
	return ok && got == x.stream
}

// peekNext is the stream id of the next message in the dispatch socket,
// left there; takeNext receives it, so the worker never will (s.mu held).
func (s *slot) peekNext() (uint32, bool) { return s.nextMessage(syscall.MSG_PEEK) }

func (s *slot) takeNext() (uint32, bool) { return s.nextMessage(syscall.MSG_TRUNC) }

func (s *slot) nextMessage(flags int) (uint32, bool) {
	var h [protocol.HeaderSize]byte
	n, err := recvDontWait(s.dispFD, h[:], flags)
	if err != nil || n < protocol.HeaderSize {
		return 0, false
	}
	return binary.BigEndian.Uint32(h[5:9]), true
}

func recvDontWait(fd int, p []byte, flags int) (int, error) {
	for {
		n, _, err := syscall.Recvfrom(fd, p, flags|syscall.MSG_DONTWAIT)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// newSlot makes one thread's stream and dispatch socketpairs; child holds
// the worker's ends, in that order, for the worker process to inherit.
func newSlot(w *worker) (s *slot, child []*os.File, err error) {
	stream, err := socketPair(syscall.SOCK_STREAM)
	if err != nil {
		return nil, nil, err
	}
	disp, err := socketPair(syscall.SOCK_SEQPACKET)
	if err != nil {
		closePair(stream)
		return nil, nil, err
	}
	// A dispatch message must never block its writer (it holds s.mu, which
	// the request ahead may need): the messages the pipeline can queue fit
	// in half the send buffer. Read before fileConn closes disp[0].
	sndbuf, err := syscall.GetsockoptInt(disp[0], syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	if err != nil {
		sndbuf = 212992 // Linux's usual default
	}
	dispMax := min(protocol.MaxDispatch, sndbuf/(2*w.pool.cfg.Pipeline))
	conn, err := fileConn(stream[0])
	if err != nil {
		syscall.Close(stream[1])
		closePair(disp)
		return nil, nil, err
	}
	dconn, err := fileConn(disp[0])
	if err != nil {
		conn.Close()
		syscall.Close(stream[1])
		syscall.Close(disp[1])
		return nil, nil, err
	}
	// The master keeps its own descriptor of the worker's dispatch end to
	// take back a REQUEST the worker has not received (withdraw).
	syscall.ForkLock.RLock()
	dispFD, err := syscall.Dup(disp[1])
	if err == nil {
		syscall.CloseOnExec(dispFD)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		conn.Close()
		dconn.Close()
		syscall.Close(stream[1])
		syscall.Close(disp[1])
		return nil, nil, fmt.Errorf("creating a worker socket: %w", err)
	}
	s = &slot{w: w, conn: conn, br: bufio.NewReaderSize(conn, 128<<10), wbuf: make([]byte, 0, 4096),
		disp: dconn, dispFD: dispFD, dispMax: dispMax}
	child = []*os.File{os.NewFile(uintptr(stream[1]), "wsgate-worker-stream"), os.NewFile(uintptr(disp[1]), "wsgate-worker-dispatch")}
	return s, child, nil
}

func socketPair(typ int) ([2]int, error) {
	pair, err := syscall.Socketpair(syscall.AF_UNIX, typ|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return pair, fmt.Errorf("creating a worker socket: %w", err)
	}
	// Larger socket buffers let a big response or body cross in fewer
	// system calls (the kernel caps them at net.core.[rw]mem_max).
	for _, fd := range pair {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1<<20)
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1<<20)
	}
	return pair, nil
}

func closePair(pair [2]int) {
	syscall.Close(pair[0])
	syscall.Close(pair[1])
}

// fileConn makes a net.Conn of the master's end (closing fd either way).
func fileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "wsgate-worker")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("creating a worker socket: %w", err)
	}
	return conn, nil
}
