package component

import (
	"context"
	"net"
	"net/http"
	"syscall"
)

type connKey struct{}

// conn is what Cork needs of one client connection, made once per
// connection so that corking a response allocates nothing.
type conn struct {
	raw      syscall.RawConn
	on       int   // the TCP_CORK value setCork sets
	err      error // setCork's result
	uncork   func()
	setCork  func(fd uintptr)
	corkable bool
}

// WithConn records the client connection requests arrive on: internal/server
// calls it from http.Server.ConnContext with the TCP (or unix) connection
// itself, below any wrapper of its own.
func WithConn(ctx context.Context, c net.Conn) context.Context {
	cn := &conn{}
	if tc, ok := c.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			cn.raw, cn.corkable = raw, true
		}
	}
	cn.setCork = func(fd uintptr) {
		cn.err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, cn.on)
	}
	cn.uncork = func() { cn.set(0) }
	return context.WithValue(ctx, connKey{}, cn)
}

func (c *conn) set(on int) error {
	c.on = on
	if err := c.raw.Control(c.setCork); err != nil {
		return err
	}
	return c.err
}

func nothing() {}

// Cork holds a response's partial segments back until uncork is called
// (TCP_CORK), so that a header and a file sent by sendfile leave as one
// segment, as nginx's tcp_nopush does: one delivery to the client instead of
// two. Call uncork before returning from the handler; anything written after
// (a body net/http still buffers) goes out at once, as without Cork. Cork
// does nothing on HTTP/2 (streams share the connection) or off TCP.
func Cork(r *http.Request) (uncork func()) {
	c, ok := r.Context().Value(connKey{}).(*conn)
	if !ok || !c.corkable || r.ProtoMajor != 1 || c.set(1) != nil {
		return nothing
	}
	return c.uncork
}

type bodySocketKey struct{}

// BodySocket is a client connection whose request bodies a worker may read
// itself (the gateway's BODY_LOAN, docs/protocol.md): internal/server's
// HTTP/1 connection wrapper, below net/http's buffered reader.
type BodySocket interface {
	// Received counts the bytes read from the socket so far.
	Received() int64
	// ReadElsewhere says the next n bytes of the socket were read by another
	// process: the next reads return n bytes of undefined content without
	// touching the socket, so net/http's count of the body stays right.
	ReadElsewhere(n int64)
	// SyscallConn is the socket itself, to wait on and to lend.
	SyscallConn() (syscall.RawConn, error)
}

// WithBodySocket records the connection's BodySocket (internal/server, from
// http.Server.ConnContext).
func WithBodySocket(ctx context.Context, s BodySocket) context.Context {
	return context.WithValue(ctx, bodySocketKey{}, s)
}

// BodySocketOf is the request's BodySocket, or nil.
func BodySocketOf(r *http.Request) BodySocket {
	s, _ := r.Context().Value(bodySocketKey{}).(BodySocket)
	return s
}
