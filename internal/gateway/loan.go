package gateway

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"syscall"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/protocol"
)

// The body loan (docs/protocol.md, BODY_LOAN): a worker reading a large
// request body of known length is lent the client's socket and reads the
// bytes itself, so they cross no process boundary and cost the master no
// copy. The master waits until the client has sent more before it lends the
// socket, and the worker hands it back (BODY_READ) as soon as a read would
// block: a client sending slowly is waited for by a goroutine, as on the
// regular path, which also keeps the deadlines and the body-broke-off
// answer (BODY_FAIL → 400). net/http still counts every byte: the
// connection (component.BodySocket) makes its next reads return the bytes
// the worker took, which the master reads through r.Body and throws away,
// so keep-alive, the discard of an unread rest and the next request's
// framing stay net/http's.

// loanMin: a body with less left than this goes through the master; the
// loan's round trip (a descriptor passed, BODY_READ) is not worth it.
const loanMin = 128 << 10

// loanSocket is the socket a request's body may be lent from, or nil: plain
// HTTP/1 with a Content-Length, too large to be sent inline, read by
// net/http's own body reader (no Go component put another in between) on a
// connection that can lend it.
func loanSocket(r *http.Request) component.BodySocket {
	if r.ProtoMajor != 1 || r.TLS != nil || r.ContentLength <= protocol.InitialWindow || r.Body == nil {
		return nil
	}
	switch reflect.TypeOf(r.Body).String() {
	case "*http.body", "*http.expectContinueReader":
		return component.BodySocketOf(r)
	}
	return nil
}

// readBody reads the body for the regular path, noting whether net/http's
// buffered reader is left empty. Only then may the socket be lent, or the
// worker would miss bytes buffered in the master. It is empty when every
// byte this read took from the socket was returned, or when the read took
// none and returned less than asked: all that was buffered (bufio.Reader
// copies out as much as it has, and reads the socket straight into a large
// p when it has nothing).
func (x *exchange) readBody(p []byte) (int, error) {
	if x.sock == nil {
		k, err := x.r.Body.Read(p)
		x.bodyRead += int64(k)
		return k, err
	}
	before := x.sock.Received()
	k, err := x.r.Body.Read(p)
	x.bodyRead += int64(k)
	took := x.sock.Received() - before
	x.unbuffered = k > 0 && (took == int64(k) || took == 0 && k < len(p))
	return k, err
}

// lendable reports whether the rest of the body may be lent at the next
// CREDIT.
func (x *exchange) lendable() bool {
	return x.sock != nil && x.unbuffered && x.r.ContentLength-x.bodyRead >= loanMin
}

// lend answers a CREDIT with BODY_LOAN once the client has sent more; false
// when the regular path must answer (the client's end or an error is its to
// read and report, and so is a socket that cannot be lent).
func (x *exchange) lend() (bool, error) {
	if !x.lendable() {
		return false, nil
	}
	left := x.r.ContentLength - x.bodyRead
	raw, err := x.sock.SyscallConn()
	if err != nil {
		return false, nil
	}
	uc, ok := x.s.conn.(*net.UnixConn)
	if !ok {
		return false, nil
	}
	// Wait here for the client's next bytes, not in the worker: a peek
	// leaves them for whoever reads next.
	var peek [1]byte
	var ready bool
	werr := raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			return false
		}
		ready = err == nil && n > 0
		return true
	})
	if werr != nil || !ready {
		return false, nil
	}
	s := x.s
	s.mu.Lock()
	defer s.mu.Unlock()
	b := protocol.AppendHeader(s.wbuf[:0], protocol.BodyLoan, x.stream, 8)
	b = binary.BigEndian.AppendUint64(b, uint64(left))
	var serr error
	if err := raw.Control(func(fd uintptr) { _, _, serr = uc.WriteMsgUnix(b, syscall.UnixRights(int(fd)), nil) }); err != nil {
		return false, nil // closed meanwhile: nothing was sent
	}
	if serr != nil {
		return true, serr
	}
	x.lent, x.lending = left, true
	return true, nil
}

// bodyReturned ends a loan: the worker read k bytes from the socket. They
// are counted through r.Body (the connection skips them) and thrown away.
func (x *exchange) bodyReturned(k int64) error {
	if !x.lending || k > x.lent {
		return fmt.Errorf("%w: BODY_READ of %d bytes (lent: %v, %d)", protocol.ErrViolation, k, x.lending, x.lent)
	}
	x.lending = false
	if k == 0 {
		return nil
	}
	x.sock.ReadElsewhere(k)
	if cap(x.s.body) < protocol.InitialWindow {
		x.s.body = make([]byte, protocol.InitialWindow)
	}
	buf := x.s.body[:cap(x.s.body)]
	for k > 0 {
		n, err := x.r.Body.Read(buf[:min(k, int64(len(buf)))])
		k -= int64(n)
		x.bodyRead += int64(n)
		if err != nil && k > 0 {
			// net/http did not take the skipped bytes as it did up to now:
			// nothing about this connection can be trusted any more.
			x.abort = true
			x.w.Header().Set("Connection", "close")
			x.logger().Error("counting a lent request body", "error", err.Error(), "uri", x.r.RequestURI)
			return nil
		}
	}
	return nil
}

// awaitBodyRead: the response ended while the worker still held the
// socket; its BODY_READ follows (wsgi.input hands the loan back at the end
// of the request) and must be counted before the slot serves another.
func (x *exchange) awaitBodyRead() error {
	for x.lending {
		t, payload, err := x.nextFrame()
		if err != nil {
			return err
		}
		if t != protocol.BodyRead {
			return fmt.Errorf("%w: %s frame after the end of stream %d, its body still lent", protocol.ErrViolation, t, x.stream)
		}
		k, err := protocol.ParseBodyRead(payload)
		if err != nil {
			return err
		}
		if err := x.bodyReturned(k); err != nil {
			return err
		}
	}
	return nil
}
