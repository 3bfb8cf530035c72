package gateway

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Slow uploads (docs/serve.md, "HTTP"): a request body larger than the
// inline window, from a client that sends it slowly, is read into a file
// before a worker is taken, so the client costs a goroutine and some disk,
// not a worker waiting in wsgi.input for each piece. A fast client's body
// streams to the worker as it comes, or is lent to it (loan.go): spooling
// it would cost two more copies and the disk for nothing.
//
// Fast or slow is decided by watching the body arrive in the kernel's
// receive queue (FIONREAD), which reads nothing: a client that has
// spoolFast bytes (or its whole body) waiting within spoolProbe is fast.

const (
	spoolProbe = 20 * time.Millisecond
	// spoolFast is under the receive window of a new connection (tcp_rmem's
	// 128 KiB default advertises about 64 KiB), which the queue cannot pass
	// until the body is read: 32 KiB in 20 ms is 1.6 MB/s.
	spoolFast = 32 << 10
	// spoolMax: a larger body streams to its worker as it comes, slow or
	// not (the disk is not filled by one client).
	spoolMax = 64 << 20
	// httpBuffered is what net/http may already have read of the body with
	// the headers (its bufio.Reader's size): not in the receive queue.
	httpBuffered = 4 << 10
)

// spooledBody is a whole request body in an unlinked temporary file.
type spooledBody struct{ f *os.File }

func (b spooledBody) Read(p []byte) (int, error) { return b.f.Read(p) }
func (b spooledBody) Close() error               { return b.f.Close() }

// errBodyBrokeOff: the client closed or broke off while its body was spooled.
var errBodyBrokeOff = fmt.Errorf("incomplete request body")

// spoolSlowBody reads the whole body of r into a temporary file when its
// client sends it slowly, and returns it; nil when the client is fast, or
// the body cannot be watched (TLS, HTTP/2, no Content-Length, Expect:
// 100-continue, larger than spoolMax) or spooled (no temporary file).
func spoolSlowBody(r *http.Request) (io.ReadCloser, error) {
	if r.ContentLength > spoolMax {
		return nil, nil
	}
	bs := loanSocket(r)
	if bs == nil || r.Header.Get("Expect") != "" {
		// (A client waiting for 100 Continue sends nothing until the body
		// is read: it would always look slow.)
		return nil, nil
	}
	raw, err := bs.SyscallConn()
	if err != nil {
		return nil, nil
	}
	want := min(r.ContentLength-httpBuffered, spoolFast)
	deadline := time.Now().Add(spoolProbe)
	for {
		n, ok := receiveQueue(raw)
		if !ok || int64(n) >= want {
			return nil, nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond) // the arrival rate is what is watched: there is no event for it
	}
	f, err := os.CreateTemp("", "wsgate-body-")
	if err != nil {
		return nil, nil // streamed as it comes, as without spooling
	}
	os.Remove(f.Name())
	n, err := io.Copy(f, r.Body)
	if err == nil && n != r.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %d of %d bytes: %w", errBodyBrokeOff, n, r.ContentLength, err)
	}
	return spooledBody{f}, nil
}

// receiveQueue is how many bytes wait in the socket's receive queue.
func receiveQueue(raw syscall.RawConn) (int, bool) {
	var n int
	var ierr error
	if err := raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ierr != nil {
		return 0, false
	}
	return n, true
}
