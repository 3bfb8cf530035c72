package component

import (
	"context"
	"net"
	"net/http"
	"syscall"
)

type connKey struct{}

// WithConn records the client connection requests arrive on: internal/server
// calls it from http.Server.ConnContext with the TCP (or unix) connection
// itself, below any wrapper of its own.
func WithConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// Cork holds a response's partial segments back until uncork is called
// (TCP_CORK), so that a header and a file sent by sendfile leave as one
// segment, as nginx's tcp_nopush does: one delivery to the client instead of
// two. Call uncork before returning from the handler; anything written after
// (a body net/http still buffers) goes out at once, as without Cork. Cork
// does nothing on HTTP/2 (streams share the connection) or off TCP.
func Cork(r *http.Request) (uncork func()) {
	c, ok := r.Context().Value(connKey{}).(*net.TCPConn)
	if !ok || r.ProtoMajor != 1 {
		return func() {}
	}
	raw, err := c.SyscallConn()
	if err != nil || setCork(raw, 1) != nil {
		return func() {}
	}
	return func() { _ = setCork(raw, 0) }
}

func setCork(raw syscall.RawConn, on int) error {
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, on)
	}); err != nil {
		return err
	}
	return serr
}
