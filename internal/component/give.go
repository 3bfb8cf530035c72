package component

import (
	"context"
	"net"
)

// GiveBack hands a client connection the gateway took from the HTTP server
// (http.Hijacker) back to it, with the bytes already read from it, which the
// server reads first: the gateway's lent connections (internal/gateway,
// lend.go) come back this way. It reports false when the server no longer
// takes connections (shutting down); the caller then closes it.
type GiveBack func(c net.Conn, buffered []byte) bool

type giveBackKey struct{}

// WithGiveBack records the server's GiveBack (internal/server calls it from
// http.Server.ConnContext).
func WithGiveBack(ctx context.Context, g GiveBack) context.Context {
	return context.WithValue(ctx, giveBackKey{}, g)
}

// Kept wraps a connection handed back with GiveBack whose requests the
// server should serve itself from now on: its requests carry no GiveBack,
// so the gateway does not lend it again (a connection whose requests are
// slow gains nothing from being lent).
type Kept struct{ net.Conn }

// GiveBackOf is the GiveBack of the server a request came in on, nil when
// none was recorded (tests that serve the gateway alone).
func GiveBackOf(ctx context.Context) GiveBack {
	g, _ := ctx.Value(giveBackKey{}).(GiveBack)
	return g
}
