package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"

	"github.com/wsgate/wsgate/internal/component"
)

// net/http follows RFC 9112 §6.3 for a request carrying both Content-Length
// and Transfer-Encoding: it drops Content-Length and reads the body chunked.
// Such a request is the classic smuggling attempt, so wsgate refuses it with
// 400 instead. net/http leaves no trace of the dropped header, so each
// HTTP/1 connection is watched as it is read: framedConn notes a header block
// that names both fields, and rejectConflictingFraming turns the chunked
// request that follows into a 400.

// framedConn scans what the client sends for a header block with both
// Content-Length and Transfer-Encoding.
type framedConn struct {
	net.Conn
	conflict atomic.Bool
	line     []byte // the first bytes of the current line (len(teName) at most)
	sawCL    bool
	sawTE    bool
	received atomic.Int64 // bytes read from the socket
	skip     atomic.Int64 // bytes a worker read from the socket, still to be counted by net/http
	kept     bool         // handed back as component.Kept: served here from now on
}

type framedConnKey struct{}

func (c *framedConn) Read(p []byte) (int, error) {
	if s := c.skip.Load(); s > 0 {
		// A worker read these body bytes (component.BodySocket): net/http
		// counts them, the gateway throws them away.
		n := int(min(int64(len(p)), s))
		c.skip.Add(-int64(n))
		return n, nil
	}
	n, err := c.Conn.Read(p)
	c.received.Add(int64(n))
	if n > 0 && !c.conflict.Load() {
		c.scan(p[:n])
	}
	return n, err
}

// Received, ReadElsewhere and SyscallConn make the connection a component.BodySocket.
func (c *framedConn) Received() int64 { return c.received.Load() }

func (c *framedConn) ReadElsewhere(n int64) { c.skip.Add(n) }

// It is also what the gateway lends to a worker (lend.go in
// internal/gateway), after TakeRest.
func (c *framedConn) SyscallConn() (syscall.RawConn, error) {
	if pc, ok := c.Conn.(*prefixConn); ok && pc.pending() {
		return nil, errBytesInMemory
	}
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errNotSocket
	}
	return sc.SyscallConn()
}

// TakeRest hands over the bytes of a connection given back that net/http
// has not read yet (prefixConn), for whoever reads the socket next.
func (c *framedConn) TakeRest() []byte {
	if pc, ok := c.Conn.(*prefixConn); ok {
		return pc.take()
	}
	return nil
}

// ReadFrom hands net/http's response copy to the connection underneath:
// *net.TCPConn's ReadFrom is what sends a file with sendfile(2) (static
// files, wsgi.file_wrapper). Without it net/http sees a plain net.Conn and
// copies every file through a buffer. A source with WriteToConn has the
// bytes written to the socket by someone else: the gateway's worker writing
// a response body itself (docs/protocol.md, DIRECT).
func (c *framedConn) ReadFrom(r io.Reader) (int64, error) {
	if s, ok := r.(interface {
		WriteToConn(syscall.RawConn) (int64, error)
	}); ok {
		if sc, ok := c.Conn.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				return s.WriteToConn(raw)
			}
		}
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

var _ io.ReaderFrom = (*framedConn)(nil)

var errNotSocket = errors.New("not a socket")

// errBytesInMemory: bytes read from the socket earlier wait in memory
// (prefixConn): whoever would read the socket itself would miss them.
var errBytesInMemory = errors.New("bytes of the connection wait in memory")

var (
	clName = []byte("content-length:")
	teName = []byte("transfer-encoding:")
)

// scan looks at the first bytes of every line: a field name is noted, an
// empty line ends a header block. Body lines may be noted too; they only
// matter to a chunked request on the same connection.
func (c *framedConn) scan(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		part := b
		if i >= 0 {
			part = b[:i]
		}
		if room := len(teName) - len(c.line); room > 0 {
			c.line = append(c.line, part[:min(room, len(part))]...)
		}
		if i < 0 {
			return
		}
		b = b[i+1:]
		line := c.line
		c.line = c.line[:0]
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			if c.sawCL && c.sawTE {
				c.conflict.Store(true)
				return
			}
			c.sawCL, c.sawTE = false, false
			continue
		}
		c.note(line)
	}
}

func (c *framedConn) note(line []byte) {
	if hasPrefixFold(line, clName) {
		c.sawCL = true
	} else if hasPrefixFold(line, teName) {
		c.sawTE = true
	}
}

func hasPrefixFold(s, lowerPrefix []byte) bool {
	if len(s) < len(lowerPrefix) {
		return false
	}
	for i, c := range lowerPrefix {
		b := s[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b != c {
			return false
		}
	}
	return true
}

// framedListener wraps every accepted connection in a framedConn.
type framedListener struct{ net.Listener }

func (l framedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framedConn{Conn: c}, nil
}

func rememberConn(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framedConn); ok {
		// Components reach the socket itself (static corks it).
		ctx = component.WithBodySocket(ctx, fc)
		inner := fc.Conn
		if pc, ok := inner.(*prefixConn); ok {
			inner = pc.Conn // a connection given back (giveback.go)
		}
		return component.WithConn(context.WithValue(ctx, framedConnKey{}, fc), inner)
	}
	return component.WithConn(ctx, c)
}

// rejectConflictingFraming answers 400 to a chunked HTTP/1 request whose
// header block also carried Content-Length, and closes the connection. An
// HTTP/1 request over TLS gets its r.TLS here (net/http sees a framedConn).
func rejectConflictingFraming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 {
			if fc, ok := r.Context().Value(framedConnKey{}).(*framedConn); ok {
				if len(r.TransferEncoding) > 0 && fc.conflict.Load() {
					w.Header().Set("Connection", "close")
					http.Error(w, "400 Bad Request: both Content-Length and Transfer-Encoding", http.StatusBadRequest)
					return
				}
				if r.TLS == nil {
					r.TLS = tlsState(fc)
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
