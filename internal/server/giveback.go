package server

import (
	"context"
	"io"
	"net"
	"sync"
	"syscall"

	"github.com/wsgate/wsgate/internal/component"
)

// backListener is where the connections the gateway took over come back
// (component.GiveBack: a worker served some of a connection's requests
// itself and hands it back, lend.go in internal/gateway). The plain server
// serves it as a new connection, reading first the bytes the worker had
// read and not served.
type backListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func newBackListener(addr net.Addr) *backListener {
	return &backListener{conns: make(chan net.Conn, 64), done: make(chan struct{}), addr: addr}
}

func (l *backListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *backListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *backListener) Addr() net.Addr { return l.addr }

// give is the server's component.GiveBack.
func (l *backListener) give(c net.Conn, buffered []byte) bool {
	inner := c
	kept, ok := inner.(component.Kept)
	if ok {
		inner = kept.Conn
	}
	if fc, ok := inner.(*framedConn); ok {
		inner = fc.Conn
	}
	if pc, ok := inner.(*prefixConn); ok {
		// Bytes of an earlier give-back net/http had not read yet come
		// after the ones it had.
		buffered = append(buffered[:len(buffered):len(buffered)], pc.take()...)
		inner = pc.Conn
	}
	if len(buffered) > 0 {
		inner = &prefixConn{Conn: inner, rest: buffered}
	}
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.conns <- &framedConn{Conn: inner, kept: ok}:
		return true
	case <-l.done:
		return false
	}
}

// prefixConn reads rest before the connection's own bytes. (net/http's
// background read and a handler may touch it from two goroutines: mu.)
type prefixConn struct {
	net.Conn
	mu   sync.Mutex
	rest []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

func (c *prefixConn) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rest) > 0
}

func (c *prefixConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	rest := c.rest
	c.rest = nil
	return rest
}

// SyscallConn and ReadFrom keep what the socket underneath offers: the
// gateway lends its descriptor again, and sendfile still applies.
func (c *prefixConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNotSocket
}

func (c *prefixConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// giveBackContext is the plain server's ConnContext: rememberConn, and the
// way back for connections the gateway takes over.
func giveBackContext(l *backListener) func(context.Context, net.Conn) context.Context {
	give := component.GiveBack(l.give)
	return func(ctx context.Context, c net.Conn) context.Context {
		if fc, ok := c.(*framedConn); ok && fc.kept {
			return rememberConn(ctx, c) // given back for good (component.Kept): not lent again
		}
		return component.WithGiveBack(rememberConn(ctx, c), give)
	}
}
