package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/protocol"
)

// The direct path (docs/protocol.md, DIRECT): a worker with a large
// response body asks to write it to the client's socket itself. The master
// writes the status and headers, hands the worker the client's socket over
// the stream socket (SCM_RIGHTS), and waits for WROTE: how many bytes went
// out before the socket would block. The rest comes back as DATA, so a slow
// reader costs the master a goroutine, as before, and the body crosses no
// process boundary.
//
// The body reaches the socket through net/http's ResponseWriter.ReadFrom,
// which writes the header, counts the bytes for keep-alive and hands the
// source to the connection's ReadFrom; internal/server's connection calls
// directBody.WriteToConn with its socket. Any writer in between that wants
// the bytes itself reads directBody instead, and the worker is told to send
// DATA.

// directEligible reports whether a request's worker may write its
// response body to the client itself: plain HTTP/1 (the bytes are the body
// as they stand), and no Go component on the route that reads the body.
func directEligible(r *http.Request) bool {
	if r.ProtoMajor != 1 || r.TLS != nil {
		return false
	}
	f := component.FactsOf(r)
	return f == nil || !f.BodySeen
}

// errClientWrite: the worker's write to the client's socket failed.
var errClientWrite = errors.New("writing the response to the client failed")

// direct answers a worker's DIRECT for n body bytes.
func (x *exchange) direct(n int64) error {
	if !x.started {
		return fmt.Errorf("%w: DIRECT before START", protocol.ErrViolation)
	}
	rf, ok := x.w.(io.ReaderFrom)
	if !ok || x.flusher == nil || x.werr != nil || !x.fits(n) || !directEligible(x.r) {
		return x.answerDirect(-1)
	}
	// The header first: the worker's bytes follow it on the socket.
	x.flusher.Flush()
	d := &directBody{x: x}
	_, err := rf.ReadFrom(d)
	if !d.answered {
		// Nothing asked for the bytes (a HEAD, a body not allowed).
		return x.answerDirect(-1)
	}
	if d.rerr != nil {
		return d.rerr
	}
	if d.wrote > n {
		return fmt.Errorf("%w: WROTE %d bytes of a DIRECT for %d", protocol.ErrViolation, d.wrote, n)
	}
	x.sent += d.wrote
	if rest := n - d.wrote; rest > 0 && err == nil {
		x.holdRest(rest)
	}
	if err != nil && x.werr == nil {
		// The client's socket failed: the worker knows, and ends the
		// stream without sending the rest.
		x.werr = err
	}
	return nil
}

// The bytes of DIRECT bodies that the client's socket could not take at
// once are read from the worker into the master's memory, so the worker is
// free at once however slowly the client reads; beyond these bounds they
// stream through as DATA, the worker waiting on the client.
const (
	maxHeld    = 256 << 20 // all responses together
	maxHeldOne = 32 << 20  // one response
)

var heldBytes atomic.Int64

// holdRest reserves memory for the rest bytes of a DIRECT body that follow as
// DATA: write keeps them, and ServeHTTP writes them once the slot is
// released.
func (x *exchange) holdRest(rest int64) {
	if rest > maxHeldOne {
		return
	}
	if heldBytes.Add(rest) > maxHeld {
		heldBytes.Add(-rest)
		return
	}
	x.held = make([]byte, 0, rest)
}

// writeHeld writes the held bytes to the client and gives their memory back.
func (x *exchange) writeHeld() {
	held := x.held
	if held == nil {
		return
	}
	x.held = nil
	defer heldBytes.Add(-int64(cap(held)))
	if x.werr != nil || x.abort || len(held) == 0 {
		return
	}
	k, err := x.w.Write(held)
	x.sent += int64(k)
	if err != nil {
		x.werr = err
	}
}

// directBody is the source handed to the ResponseWriter's ReadFrom.
type directBody struct {
	x        *exchange
	answered bool  // the worker has its DIRECT_ACK
	wrote    int64 // bytes the worker wrote to the client
	rerr     error // the worker's side failed: the exchange is lost
}

// Read is a writer between the gateway and the connection wanting the
// bytes: the worker sends them as DATA instead, read by the exchange.
func (d *directBody) Read([]byte) (int, error) {
	if !d.answered {
		d.answered = true
		if err := d.x.answerDirect(-1); err != nil {
			d.rerr = err
			return 0, err
		}
	}
	return 0, io.EOF
}

// WriteToConn lends the client's socket to the worker and returns how many
// bytes it wrote there.
func (d *directBody) WriteToConn(raw syscall.RawConn) (int64, error) {
	if d.answered {
		return 0, nil
	}
	d.answered = true
	var err error
	if cerr := raw.Control(func(fd uintptr) { err = d.x.answerDirect(int(fd)) }); cerr != nil {
		err = d.x.answerDirect(-1)
	}
	if err != nil {
		d.rerr = err
		return 0, err
	}
	n, failed, err := d.x.awaitWrote()
	if err != nil {
		d.rerr = err
		return 0, err
	}
	d.wrote = n
	if failed {
		return n, errClientWrite
	}
	return n, nil
}

// answerDirect sends DIRECT_ACK: with the client's socket fd when fd ≥ 0,
// else a refusal (the worker sends DATA).
func (x *exchange) answerDirect(fd int) error {
	if fd < 0 {
		return writeFrame(x.s, protocol.DirectAck, x.stream, []byte{0})
	}
	uc, ok := x.s.conn.(*net.UnixConn)
	if !ok {
		return writeFrame(x.s, protocol.DirectAck, x.stream, []byte{0})
	}
	b := protocol.AppendFrame(make([]byte, 0, protocol.HeaderSize+1), protocol.DirectAck, x.stream, []byte{1})
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	_, _, err := uc.WriteMsgUnix(b, syscall.UnixRights(fd), nil)
	return err
}

// awaitWrote reads the worker's WROTE (LOG and STDERR frames may come first).
func (x *exchange) awaitWrote() (n int64, clientFailed bool, err error) {
	t, payload, err := x.nextFrame()
	if err != nil {
		return 0, false, err
	}
	if t != protocol.Wrote {
		return 0, false, fmt.Errorf("%w: %s frame while the worker writes to the client", protocol.ErrViolation, t)
	}
	return protocol.ParseWrote(payload)
}
