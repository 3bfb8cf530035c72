package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/protocol"
)

// Lent connections (docs/architecture.md, "Lent connections"; on by
// default, --lend=false turns them off).
//
// The master serves a plain HTTP/1.1 keep-alive connection's first request
// as always, except that it takes the connection from net/http (Hijack) and
// sends the client's socket along with the REQUEST. The worker answers LENT
// on its stream socket at once, serves that request writing the HTTP
// response itself, and then keeps the connection: it reads the following
// requests (python/wsgate/http11.py), serves them and answers them, and the
// master is out of the loop. The worker hands the connection back (RETURN,
// on a socket of its own, the lend socket) with whatever bytes it read and
// did not serve when anything is unusual (a request it does not parse
// itself, a client that reads slowly, an idle connection, its own drain);
// the master gives it back to the HTTP server (component.GiveBack), which
// serves it as a new connection.
//
// The worker records in a shared page which connection it is serving,
// since when, and how many response bytes it wrote: if it dies, the master
// answers that request 502 (504 past the timeout) when nothing was sent, or
// closes its connection, and gives every other connection it held back
// untouched (the worker reads a connection only while serving it).

// Offsets of the shared page's fields (native-endian uint64s); the worker
// writes them (lend.py, Page), the master only reads.
const (
	pageServing = 0 // id of the connection being served, 0 for none
	pageSince   = 1 // when that request began, unix ns
	pageWritten = 2 // response bytes the worker has begun to write for it (counted before each write)
	pageServed  = 3 // requests the worker read from lent connections itself (not the ones the master sent)
	pageAverage = 4 // moving average of a request's time there, ns
	pageIdle    = 5 // 1 while the worker waits in epoll for something to do
	pageLineLen = 8 // length of the request line below
	// The request being served, "METHOD URI" (latin-1, cut at
	// pageLineMax), at this byte offset: status, stack dumps and log lines
	// name it.
	pageLineAt     = 128
	pageLineMax    = 1024
	sharedPageSize = 4096
)

// lender keeps a pool's lent connections.
type lender struct {
	mu    sync.Mutex
	conns map[uint32]*lentConn
	next  atomic.Uint32
}

// lentConn is one connection taken from net/http. Once the worker has it,
// the master keeps a bare descriptor of it (fd) instead of a net.Conn: the Go
// runtime's poller would otherwise wake the master for every request the
// worker reads there, which is what lending saves.
type lentConn struct {
	id   uint32
	conn net.Conn // until LENT; nil after, unless the descriptor could not be set apart
	fd   int      // after LENT: the master's own descriptor of the socket, out of the poller
	give component.GiveBack
	w    *worker // the worker it was sent to
	lent bool    // the worker answered LENT: it has the connection
	out  *output // the rest of a response the client could not take at once
	owed bool    // the worker is writing the rest of a response as the client reads (OWED)
	keep bool    // returned with ReturnKeep: the server serves it from now on, not lent again
}

func (l *lender) add(conn net.Conn, give component.GiveBack) *lentConn {
	id := l.next.Add(1)
	if id == 0 {
		id = l.next.Add(1)
	}
	c := &lentConn{id: id, conn: conn, fd: -1, give: give}
	l.mu.Lock()
	if l.conns == nil {
		l.conns = make(map[uint32]*lentConn)
	}
	l.conns[id] = c
	l.mu.Unlock()
	return c
}

// sentTo records which worker the connection's REQUEST went to.
func (l *lender) sentTo(c *lentConn, w *worker) {
	l.mu.Lock()
	c.w = w
	l.mu.Unlock()
}

// drop forgets a connection whose first request failed before the worker
// had it: the exchange answered it, and the caller closes it.
func (l *lender) drop(c *lentConn) {
	l.mu.Lock()
	delete(l.conns, c.id)
	l.mu.Unlock()
}

// gotLent is the worker's LENT: from now on the connection is the worker's,
// or, if the worker has exited meanwhile, reclaimed at once.
func (l *lender) gotLent(c *lentConn) {
	l.mu.Lock()
	if l.conns[c.id] != c {
		l.mu.Unlock()
		return // handed back already (the RETURN overtook the LENT)
	}
	c.setApart()
	c.lent = true
	c.w.lentHeld.Add(1)
	gone := c.w != nil && c.w.lendGone
	l.mu.Unlock()
	if gone {
		l.reclaim(c.w)
	}
}

// readReturns reads a worker's lend socket until the worker exits, then
// reclaims what it still held.
func (l *lender) readReturns(w *worker) {
	defer w.closeLend()
	defer l.reclaim(w)
	br := bufio.NewReaderSize(w.lendConn, 64<<10)
	var scratch []byte
	for {
		hd, err := protocol.ReadHeader(br)
		if err != nil {
			return
		}
		payload, err := protocol.ReadPayload(br, hd, &scratch)
		if err != nil {
			return
		}
		switch hd.Type {
		case protocol.Return:
			if len(payload) < 1 {
				w.pool.log.Error("worker broke the protocol; killing it", "pid", w.pid, "error", "empty RETURN")
				w.kill("protocol violation")
				return
			}
			w.pool.log.Debug("lent connection returned", "worker", w.id, "conn", hd.Stream, "flags", payload[0],
				"bytes", len(payload)-1)
			l.returned(hd.Stream, payload[0], payload[1:])
		case protocol.Output:
			l.mu.Lock()
			c := l.conns[hd.Stream]
			l.mu.Unlock()
			if c != nil && c.out != nil {
				c.out.push(append([]byte(nil), payload...))
			} else if c == nil {
				w.pool.log.Debug("OUTPUT for a connection not lent", "conn", hd.Stream)
			}
		case protocol.Owed:
			if len(payload) != 1 {
				w.pool.log.Error("worker broke the protocol; killing it", "pid", w.pid, "error", "OWED without its flag")
				w.kill("protocol violation")
				return
			}
			l.mu.Lock()
			if c := l.conns[hd.Stream]; c != nil {
				c.owed = payload[0] == 1
			}
			l.mu.Unlock()
		case protocol.Log, protocol.Stderr, protocol.Error:
			method, uri, text, ok := splitLentText(payload)
			if !ok {
				w.pool.log.Error("worker broke the protocol; killing it", "pid", w.pid,
					"error", fmt.Sprintf("%s frame without its request line", hd.Type))
				w.kill("protocol violation")
				return
			}
			if hd.Type == protocol.Error {
				w.pool.log.Error("application error", "pid", w.pid, "method", method, "uri", uri, "traceback", text)
				continue
			}
			msg := "wsgi.errors"
			if hd.Type == protocol.Stderr {
				msg = "worker stderr"
			}
			w.pool.log.Info(msg, "worker", w.id, "pid", w.pid, "method", method, "uri", uri, "text", text)
		default:
			w.pool.log.Error("worker broke the protocol; killing it", "pid", w.pid,
				"error", fmt.Sprintf("%s frame on the lend socket", hd.Type))
			w.kill("protocol violation")
			return
		}
	}
}

// returned handles a RETURN: the connection goes back to the HTTP server
// (or is closed), after any output still on its way.
func (l *lender) returned(id uint32, flags byte, rest []byte) {
	l.mu.Lock()
	c := l.conns[id]
	if c == nil {
		l.mu.Unlock()
		return
	}
	if flags&protocol.ReturnOutput != 0 {
		if c.out == nil {
			c.out = newOutput(c)
		}
		l.mu.Unlock()
		return
	}
	delete(l.conns, id)
	if c.lent {
		c.w.lentHeld.Add(-1)
	}
	l.mu.Unlock()
	rest = append([]byte(nil), rest...)
	closeAfter := flags&protocol.ReturnClose != 0
	c.keep = flags&protocol.ReturnKeep != 0
	if c.out != nil {
		c.out.end(closeAfter, rest)
		return
	}
	c.finish(closeAfter, rest)
}

// setApart swaps the connection for a bare descriptor of its socket (dup),
// closing the net.Conn, which takes the socket out of the Go poller; the
// socket stays open through the duplicate and the worker's descriptor.
func (c *lentConn) setApart() {
	sc, ok := c.conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	fd := -1
	if cerr := raw.Control(func(s uintptr) {
		syscall.ForkLock.RLock()
		if d, err := syscall.Dup(int(s)); err == nil {
			syscall.CloseOnExec(d)
			fd = d
		}
		syscall.ForkLock.RUnlock()
	}); cerr != nil || fd < 0 {
		return
	}
	c.conn.Close()
	c.conn, c.fd = nil, fd
}

// netConn is the connection as a net.Conn again (back in the poller).
func (c *lentConn) netConn() (net.Conn, error) {
	if c.conn != nil {
		return c.conn, nil
	}
	f := os.NewFile(uintptr(c.fd), "wsgate-lent-conn")
	conn, err := net.FileConn(f)
	f.Close()
	c.fd = -1
	if err != nil {
		return nil, fmt.Errorf("taking back a lent connection: %w", err)
	}
	c.conn = conn
	return conn, nil
}

// finish gives the connection back to the HTTP server, or closes it.
func (c *lentConn) finish(closeIt bool, rest []byte) {
	if closeIt || c.give == nil {
		c.close()
		return
	}
	conn, err := c.netConn()
	if err == nil && c.keep {
		conn = component.Kept{Conn: conn}
	}
	if err != nil || !c.give(conn, rest) {
		c.close()
	}
}

// close closes the master's descriptor of the connection: the last one
// closed (the worker's went first) ends it.
func (c *lentConn) close() {
	if c.conn != nil {
		c.conn.Close()
	} else if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
}

// reclaim takes back every connection lent to w, which has exited: the one
// it was serving is answered or closed, so are those it still owed part of a
// response (OWED), the others go back untouched.
func (l *lender) reclaim(w *worker) {
	var mine []*lentConn
	l.mu.Lock()
	if !w.lendGone {
		// The page is unmapped once the lend socket is closed: a LENT
		// processed after this (gotLent) is reclaimed with what the page
		// said now.
		w.lendGone = true
		w.lastServing, w.lastWritten = w.pageLoad(pageServing), w.pageLoad(pageWritten)
	}
	serving, written := w.lastServing, w.lastWritten
	for id, c := range l.conns {
		if c.w == w && c.lent {
			delete(l.conns, id)
			w.lentHeld.Add(-1)
			mine = append(mine, c)
		}
	}
	l.mu.Unlock()
	for _, c := range mine {
		switch {
		case c.out != nil:
			c.out.end(true, nil) // cut short: what came is written, then the connection closes
		case uint64(c.id) != serving && c.owed:
			w.pool.log.Error("worker lost while a client was still reading its response; closing the connection", "pid", w.pid, "conn", c.id)
			c.close()
		case uint64(c.id) != serving:
			c.finish(false, nil)
		case written == 0:
			code := http.StatusBadGateway
			msg := "the application worker died"
			if w.lendTimedOut.Load() == c.id {
				code, msg = http.StatusGatewayTimeout, "the application did not answer in time"
			}
			w.pool.log.Error("worker lost during a request on a lent connection", "pid", w.pid, "conn", c.id, "status", code)
			if conn, err := c.netConn(); err == nil {
				writeRawError(conn, code, msg)
			}
			c.close()
		default:
			w.pool.log.Error("worker lost during a response on a lent connection; closing it", "pid", w.pid, "conn", c.id)
			c.close()
		}
	}
}

// output writes the rest of a response the worker could not write without
// blocking: the worker is free at once, the master's goroutine waits on the
// slow client. Up to maxHeldOne bytes wait in memory; past that the
// worker's lend socket is read no further until the client takes some.
type output struct {
	c       *lentConn
	mu      sync.Mutex
	cond    sync.Cond
	q       [][]byte
	held    int
	ended   bool
	closeIt bool
	rest    []byte
	failed  bool // writing to the client failed: the rest is dropped
}

func newOutput(c *lentConn) *output {
	o := &output{c: c}
	o.cond.L = &o.mu
	if _, err := c.netConn(); err != nil {
		o.failed = true
	}
	go o.run()
	return o
}

// push queues bytes for the client, waiting while too many are held.
func (o *output) push(b []byte) {
	o.mu.Lock()
	for o.held > maxHeldOne && !o.failed {
		o.cond.Wait()
	}
	if !o.failed {
		o.q = append(o.q, b)
		o.held += len(b)
	}
	o.cond.Broadcast()
	o.mu.Unlock()
}

// end closes the output: rest are the bytes the worker read beyond the
// response, for the HTTP server.
func (o *output) end(closeIt bool, rest []byte) {
	o.mu.Lock()
	if !o.ended {
		o.ended, o.closeIt, o.rest = true, closeIt, rest
	}
	o.cond.Broadcast()
	o.mu.Unlock()
}

func (o *output) run() {
	o.mu.Lock()
	for {
		for len(o.q) == 0 && !o.ended {
			o.cond.Wait()
		}
		if len(o.q) == 0 {
			break
		}
		b := o.q[0]
		o.q[0] = nil
		o.q = o.q[1:]
		failed := o.failed
		o.mu.Unlock()
		var err error
		if !failed {
			_, err = o.c.conn.Write(b)
		}
		o.mu.Lock()
		o.held -= len(b)
		if err != nil {
			o.failed = true
		}
		o.cond.Broadcast()
	}
	closeIt := o.closeIt || o.failed
	rest := o.rest
	o.mu.Unlock()
	o.c.finish(closeIt, rest)
}

// writeRawError answers a request on a connection taken from net/http, as
// http.Error would, and says the connection closes.
func writeRawError(conn net.Conn, code int, msg string) {
	var extra string
	if code == http.StatusServiceUnavailable {
		extra = "Retry-After: 1\r\n"
	}
	body := strconv.Itoa(code) + " " + http.StatusText(code) + ": " + msg + "\n"
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(conn, "HTTP/1.1 "+strconv.Itoa(code)+" "+http.StatusText(code)+"\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"+extra+
		"Date: "+time.Now().UTC().Format(http.TimeFormat)+"\r\n"+
		"Connection: close\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
}

// rawResponse is the http.ResponseWriter of a lent connection's first
// request until the worker has it: only the master's own answers (503,
// 502, 504) are written through it.
type rawResponse struct {
	conn  net.Conn
	h     http.Header
	code  int
	wrote bool
}

func (r *rawResponse) Header() http.Header {
	if r.h == nil {
		r.h = http.Header{}
	}
	return r.h
}

func (r *rawResponse) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *rawResponse) Write(p []byte) (int, error) {
	if r.wrote {
		return 0, http.ErrBodyNotAllowed
	}
	r.wrote = true
	code := r.code
	if code == 0 {
		code = http.StatusOK
	}
	writeRawError(r.conn, code, string(trimStatus(p, code)))
	return len(p), nil
}

// trimStatus strips the "NNN Text: " http.Error's callers put before their
// message, which writeRawError writes itself.
func trimStatus(p []byte, code int) []byte {
	s := string(p)
	prefix := strconv.Itoa(code) + " " + http.StatusText(code) + ": "
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		s = s[len(prefix):]
	}
	if len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return []byte(s)
}

// lendEligible reports whether a request's connection may be lent: the
// handler is the whole site (Lendable), plain HTTP/1.1 that stays open, and
// a body, if any, that the master has read already.
func (h *Handler) lendEligible(r *http.Request, flags byte) bool {
	if !h.lendable || h.pool.lendOff.Load() || r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.TLS != nil || r.Close {
		return false
	}
	if flags&protocol.FlagHasBody != 0 && flags&protocol.FlagBodyInline == 0 {
		return false
	}
	if r.Header.Get("Upgrade") != "" || r.RequestURI == "*" {
		return false
	}
	return component.GiveBackOf(r.Context()) != nil
}

// serveLending serves a request whose connection is lent with it; false
// if the connection could not be taken (the caller serves the request as
// usual).
func (h *Handler) serveLending(w http.ResponseWriter, r *http.Request, scriptName, pathInfo string, flags byte, inline []byte) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	if _, ok := w.(interface {
		ReadFrom(io.Reader) (int64, error)
	}); !ok {
		return false
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return false
	}
	if _, ok := conn.(syscall.Conn); !ok {
		writeRawError(conn, http.StatusInternalServerError, "connection cannot be lent")
		conn.Close()
		return true
	}
	var buffered []byte
	if n := brw.Reader.Buffered(); n > 0 {
		p, _ := brw.Reader.Peek(n)
		buffered = append([]byte(nil), p...)
	}
	if tr, ok := conn.(interface{ TakeRest() []byte }); ok {
		// A connection given back before: what net/http had not read of
		// the worker's bytes follows what its reader holds.
		buffered = append(buffered, tr.TakeRest()...)
	}
	p := h.pool
	c := p.lender.add(conn, component.GiveBackOf(r.Context()))
	rw := &rawResponse{conn: conn}
	x, err := h.dispatch(exchange{w: rw, r: r, lendConn: c, lendBuffered: buffered}, scriptName, pathInfo,
		flags|protocol.FlagLend, inline, func(s *slot) { p.lender.sentTo(c, s.w) })
	switch {
	case errors.Is(err, errNoWorker):
		writeRawError(conn, http.StatusBadGateway, err.Error())
	case err != nil:
		p.lender.drop(c)
		if errAnswered(err) {
			writeRawError(conn, http.StatusServiceUnavailable, err.Error())
		}
		conn.Close()
		return true
	}
	if x.gotLent {
		p.lender.gotLent(c)
		return true
	}
	// The worker never had the connection: the exchange answered the
	// request (rw), and the connection ends.
	p.lender.drop(c)
	if !rw.wrote && !x.unsent {
		writeRawError(conn, http.StatusBadGateway, "the application worker failed")
	}
	conn.Close()
	return true
}

// sendLend writes the dispatch message b with the client's socket attached.
func (s *slot) sendLend(b []byte, conn net.Conn) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("lending a connection: %T is not a socket", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("lending a connection: %w", err)
	}
	uc, ok := s.disp.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("lending a connection: the dispatch socket is a %T", s.disp)
	}
	var werr error
	if err := raw.Control(func(fd uintptr) {
		_, _, werr = uc.WriteMsgUnix(b, syscall.UnixRights(int(fd)), nil)
	}); err != nil {
		return fmt.Errorf("lending a connection: %w", err)
	}
	return werr
}

// newPage makes a worker's shared page: a deleted file both map.
func newPage() (page []byte, f *os.File, err error) {
	f, err = os.CreateTemp("", "wsgate-page-")
	if err != nil {
		return nil, nil, fmt.Errorf("creating a worker's shared page: %w", err)
	}
	os.Remove(f.Name())
	if err := f.Truncate(sharedPageSize); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("creating a worker's shared page: %w", err)
	}
	page, err = syscall.Mmap(int(f.Fd()), 0, sharedPageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("mapping a worker's shared page: %w", err)
	}
	return page, f, nil
}

// pageLoad reads field i of the worker's shared page (0 without one).
func (w *worker) pageLoad(i int) uint64 {
	w.pageMu.RLock()
	defer w.pageMu.RUnlock()
	if w.page == nil {
		return 0
	}
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&w.page[i*8])))
}

// watchLent does for requests served on lent connections, which the master
// does not see, what the exchange does for its own, by reading the workers'
// pages: it kills a worker whose request passed the timeout, recycles one
// past max_requests or max_worker_memory, and rescues the connections
// waiting on a busy worker when another worker idles or the request runs
// long (rescue). It looks every 5 ms while connections are lent, else at the
// pace the limits need.
func (p *Pool) watchLent(stop <-chan struct{}) {
	calm := 500 * time.Millisecond
	if p.cfg.MaxWorkerMemory > 0 || p.cfg.MaxRequests > 0 {
		// A recycled worker should not overshoot by much: the page costs
		// nothing to read, the RSS is read at most every 100 ms (overMemory).
		calm = 20 * time.Millisecond
	}
	if p.cfg.Timeout > 0 {
		calm = min(calm, max(p.cfg.Timeout/5, 20*time.Millisecond))
	}
	const busy = 5 * time.Millisecond
	t := time.NewTimer(calm)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		lent := false
		var ready []*worker
		for _, w := range p.roster() {
			if w.lendConn == nil || w.State() != StateReady {
				continue
			}
			lent = lent || w.lentHeld.Load() > 0
			if p.timedOut(w, now) {
				continue
			}
			if w.maxRequests > 0 && w.served.Load()+int64(w.pageLoad(pageServed)) >= w.maxRequests {
				p.retire(w, "max-requests")
			} else if p.overMemory(w) {
				p.retire(w, "max-worker-memory")
			} else {
				ready = append(ready, w)
			}
		}
		rescue(ready, now)
		if lent {
			t.Reset(busy)
		} else {
			t.Reset(calm)
		}
	}
}

// rescueLong is how long a request may run before the connections waiting
// on its worker go back to the master even though no other worker idles:
// they then wait in the master's queue for whichever worker frees first,
// not behind this request. Not less: with every worker in a slow request,
// moving them only parks them behind another (docs/architecture.md).
const rescueLong = 500 * time.Millisecond

// rescue asks a worker (SIGUSR2; lend.py, _rescue) to hand back the lent
// connections that have a request waiting while it serves another, so that
// the master gives those requests to a free worker:
//   - when another worker idles (it waits with nothing to do, as its page
//     says, and none of the master's requests is queued on it) and this
//     one's request has run past the rescue delay (four of its usual
//     service times, 10 to 100 ms), or it holds more than its share of
//     connections while the idle one holds under half its share (a
//     replacement, a reload or --max-requests starts a worker while the
//     others hold every connection: it would get none);
//   - when its request has run past rescueLong, whether or not a worker idles.
//
// A rescue moves connections through the master's path and lends them
// again, so it is not asked for while every worker is busy and requests are
// short: on a loaded machine a request that waited for a core looks long,
// and moving its neighbours would only queue them elsewhere. At most once
// per rescue delay per worker.
func rescue(ws []*worker, now time.Time) {
	idle := false
	var total int64
	idleHeld := int64(math.MaxInt64) // the fewest connections an idle worker holds
	for _, w := range ws {
		w.idle = w.isIdle()
		held := w.lentHeld.Load()
		total += held
		if w.idle {
			idle = true
			idleHeld = min(idleHeld, held)
		}
	}
	fair := (total + int64(len(ws)) - 1) / max(int64(len(ws)), 1)
	// Uneven enough to move connections for: an idle worker holding under
	// half its share (not 15 against 17: both are busy most of the time).
	starved := idle && idleHeld < fair/2
	for _, w := range ws {
		held := w.lentHeld.Load()
		if held == 0 || w.idle {
			continue
		}
		delay := min(max(4*time.Duration(w.pageLoad(pageAverage)), 10*time.Millisecond), 100*time.Millisecond)
		age, busy := w.requestAge(now)
		var why string
		switch {
		case busy && age >= rescueLong:
			why = "its request runs long"
		case idle && busy && age >= delay:
			why = "another worker idles"
		case starved && held > fair:
			why = "another worker holds too few connections"
		default:
			continue
		}
		if w.askRescue(now, delay) {
			w.pool.log.Debug("rescue asked", "worker", w.id, "why", why, "age", age.Round(time.Millisecond).String(), "held", held)
		}
	}
}

// isIdle reports whether the worker waits with nothing to do: its page
// says so (the flag is set while it waits in epoll), and none of the
// master's requests is queued on it.
func (w *worker) isIdle() bool {
	return w.pageLoad(pageIdle) == 1 && w.pageLoad(pageServing) == 0 && !w.hasQueued()
}

// hasQueued reports whether requests of the master's are queued on the
// worker (parked there or not).
func (w *worker) hasQueued() bool {
	for _, s := range w.slots {
		if n, _ := s.queued(); n > 0 {
			return true
		}
	}
	return false
}

// requestAge is how long the request the worker serves has run, lent or the
// master's (the oldest queued on it), and whether it serves one.
func (w *worker) requestAge(now time.Time) (time.Duration, bool) {
	began := int64(w.pageLoad(pageSince))
	if w.pageLoad(pageServing) == 0 {
		began = 0
	}
	for _, s := range w.slots {
		s.mu.Lock()
		if len(s.queue) > 0 && (began == 0 || s.headSince.UnixNano() < began) {
			began = s.headSince.UnixNano()
		}
		s.mu.Unlock()
	}
	if began == 0 {
		return 0, false
	}
	return time.Duration(now.UnixNano() - began), true
}

// busy reports whether the worker serves a request, lent or the master's
// (requestAge).
func (w *worker) busy() bool {
	_, busy := w.requestAge(time.Now())
	return busy
}

// askRescue sends w SIGUSR2 (lend.py, _rescue: hand back the connections
// with a request waiting), at most once per every; whether it did.
func (w *worker) askRescue(now time.Time, every time.Duration) bool {
	if now.UnixNano()-w.rescued < int64(every) {
		return false
	}
	w.rescued = now.UnixNano()
	return w.proc.Signal(syscall.SIGUSR2) == nil
}

// timedOut kills w if its lent request has passed the timeout.
func (p *Pool) timedOut(w *worker, now time.Time) bool {
	id := w.pageLoad(pageServing)
	if id == 0 || p.cfg.Timeout <= 0 {
		return false
	}
	since := int64(w.pageLoad(pageSince))
	if since <= 0 || now.UnixNano()-since <= int64(p.cfg.Timeout) || w.pageLoad(pageServing) != id {
		return false
	}
	ri, _ := w.lentRequest(now)
	p.log.Error("request timed out; killing its worker", "pid", w.pid, "method", ri.Method,
		"uri", ri.URI, "timeout", p.cfg.Timeout.String(), "lent", true)
	w.lendTimedOut.Store(uint32(id))
	awaitStacks(w.dumpStacks("request timed out: " + ri.Method + " " + ri.URI))
	w.kill("timeout")
	return true
}

// lentRequest is the request the worker is serving on a lent connection,
// from its page.
func (w *worker) lentRequest(now time.Time) (RequestInfo, bool) {
	w.pageMu.RLock()
	defer w.pageMu.RUnlock()
	if w.page == nil || atomic.LoadUint64((*uint64)(unsafe.Pointer(&w.page[pageServing*8]))) == 0 {
		return RequestInfo{}, false
	}
	since := int64(atomic.LoadUint64((*uint64)(unsafe.Pointer(&w.page[pageSince*8]))))
	n := min(int(atomic.LoadUint64((*uint64)(unsafe.Pointer(&w.page[pageLineLen*8])))), pageLineMax)
	line := string(w.page[pageLineAt : pageLineAt+n])
	method, uri, _ := strings.Cut(line, " ")
	ri := RequestInfo{Method: method, URI: uri, Age: now.Sub(time.Unix(0, since))}
	ri.AgeSec, _ = strconv.ParseFloat(strconv.FormatFloat(ri.Age.Seconds(), 'f', 3, 64), 64)
	return ri, true
}

// lentBusy reports whether the slot's worker is serving a request on a lent
// connection now.
func (s *slot) lentBusy() bool { return s.w.lentBusy() }

// lentBusy reports whether the worker is serving a request on a lent
// connection now (its page says so).
func (w *worker) lentBusy() bool {
	return w.lendConn != nil && w.pageLoad(pageServing) != 0
}

// awaitLentWorker waits, for an exchange at the head of its slot whose
// worker is busy on a lent connection, until the worker takes the REQUEST;
// if that takes longer than the usual rescue delay, another worker is free
// and the REQUEST is still in the dispatch socket, it is taken back to be
// served there (with every worker busy it waits: the worker reads its
// dispatch socket first when its request ends).
func (x *exchange) awaitLentWorker() turnKind {
	s := x.s
	deadline := time.Now().Add(x.rescueDelay())
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		if s.received(x) {
			return turnGo
		}
		if time.Now().Before(deadline) || !x.h.pool.anyFree() {
			continue // every worker busy: this one reads its dispatch socket first when its request ends
		}
		if s.withdrawHead(x) {
			x.logger().Debug("request taken back", "pid", s.w.pid, "why", "its worker is busy on a lent connection", "uri", x.r.RequestURI)
			x.rescues++
			return turnWithdrawn
		}
		return turnGo
	}
	return turnGo
}

// anyFree reports whether a ready worker is neither serving a lent request
// nor one of the master's.
func (p *Pool) anyFree() bool {
	now := time.Now()
	for _, w := range p.roster() {
		if w.State() != StateReady {
			continue
		}
		if _, busy := w.requestAge(now); !busy {
			return true
		}
	}
	return false
}

// received reports whether the worker has taken x's REQUEST from the
// dispatch socket.
func (s *slot) received(x *exchange) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, ok := s.peekNext()
	return s.closed || !ok || next != x.stream
}

// withdrawHead takes back the REQUEST of the exchange at the head of the
// queue if the worker has not received it (see withdraw).
func (s *slot) withdrawHead(x *exchange) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || x.pinned || len(s.queue) == 0 || s.queue[0] != x {
		return false
	}
	if next, ok := s.peekNext(); !ok || next != x.stream {
		return false
	}
	if got, ok := s.takeNext(); !ok || got != x.stream {
		return false
	}
	copy(s.queue, s.queue[1:])
	s.queue[len(s.queue)-1] = nil
	s.queue = s.queue[:len(s.queue)-1]
	if len(s.queue) > 0 {
		s.headSince = time.Now()
		s.queue[0].turn <- turnGo
	}
	return true
}

// StopLending is the start of the server's drain: no connection is lent from
// now on, and every worker hands back the connections it holds, at once or,
// for the one it is serving, when its response is out.
func (p *Pool) StopLending() {
	if !p.lending() || p.lendOff.Swap(true) {
		return
	}
	msg := protocol.AppendFrame(nil, protocol.CtlToW, 0, []byte{protocol.CtlReturnAll})
	for _, w := range p.roster() {
		for _, s := range w.slots {
			s.mu.Lock()
			if !s.closed {
				_, _ = s.disp.Write(msg)
			}
			s.mu.Unlock()
		}
	}
}

// LentConns is the number of connections lent out now (or whose output the
// master is still writing).
func (p *Pool) LentConns() int {
	p.lender.mu.Lock()
	defer p.lender.mu.Unlock()
	return len(p.lender.conns)
}

// splitLentText splits a LOG, STDERR or ERROR payload of the lend socket:
// u16 length, the request line "METHOD URI", then the text.
func splitLentText(p []byte) (method, uri, text string, ok bool) {
	if len(p) < 2 {
		return "", "", "", false
	}
	n := int(p[0])<<8 | int(p[1])
	if len(p) < 2+n {
		return "", "", "", false
	}
	method, uri, _ = strings.Cut(string(p[2:2+n]), " ")
	return method, uri, string(p[2+n:]), true
}
