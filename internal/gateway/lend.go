package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/protocol"
)

// Lent connections (docs/architecture.md, "Lent connections"; --lend).
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
// writes them (worker.py, Page), the master only reads.
const (
	pageServing    = 0 // id of the connection being served, 0 for none
	pageSince      = 1 // when that request began, unix ns
	pageWritten    = 2 // response bytes written to the client for it
	pageServed     = 3 // requests the worker read from lent connections itself (not the ones the master sent)
	sharedPageSize = 4096
)

// lender keeps a pool's lent connections.
type lender struct {
	mu    sync.Mutex
	conns map[uint32]*lentConn
	next  atomic.Uint32
}

// lentConn is one connection taken from net/http.
type lentConn struct {
	id   uint32
	conn net.Conn
	give component.GiveBack
	w    *worker // the worker it was sent to
	lent bool    // the worker answered LENT: it has the connection
	out  *output // the rest of a response the client could not take at once
}

func (l *lender) add(conn net.Conn, give component.GiveBack) *lentConn {
	id := l.next.Add(1)
	if id == 0 {
		id = l.next.Add(1)
	}
	c := &lentConn{id: id, conn: conn, give: give}
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
	c.lent = true
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
			w.pool.log.Debug("lent connection returned", "conn", hd.Stream, "bytes", len(payload))
			if len(payload) < 1 {
				w.pool.log.Error("worker broke the protocol; killing it", "pid", w.pid, "error", "empty RETURN")
				w.kill("protocol violation")
				return
			}
			l.returned(hd.Stream, payload[0], payload[1:])
		case protocol.Output:
			l.mu.Lock()
			c := l.conns[hd.Stream]
			l.mu.Unlock()
			if c != nil && c.out != nil {
				c.out.push(append([]byte(nil), payload...))
			}
		case protocol.Log, protocol.Stderr:
			msg := "wsgi.errors"
			if hd.Type == protocol.Stderr {
				msg = "worker stderr"
			}
			w.pool.log.Info(msg, "worker", w.id, "pid", w.pid, "conn", hd.Stream, "text", string(payload))
		case protocol.Error:
			w.pool.log.Error("application error", "pid", w.pid, "conn", hd.Stream, "traceback", string(payload))
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
	l.mu.Unlock()
	rest = append([]byte(nil), rest...)
	closeAfter := flags&protocol.ReturnClose != 0
	if c.out != nil {
		c.out.end(closeAfter, rest)
		return
	}
	c.finish(closeAfter, rest)
}

// finish gives the connection back to the HTTP server, or closes it.
func (c *lentConn) finish(closeIt bool, rest []byte) {
	if closeIt || c.give == nil || !c.give(c.conn, rest) {
		c.conn.Close()
	}
}

// reclaim takes back every connection lent to w, which has exited: the one
// it was serving is answered or closed, the others go back untouched.
func (l *lender) reclaim(w *worker) {
	var mine []*lentConn
	l.mu.Lock()
	if !w.lendGone {
		// The page is unmapped once the lend socket is closed: a LENT
		// processed after this (gotLent) is reclaimed with what the
		// page said now.
		w.lendGone = true
		w.lastServing, w.lastWritten = w.pageLoad(pageServing), w.pageLoad(pageWritten)
	}
	serving, written := w.lastServing, w.lastWritten
	for id, c := range l.conns {
		if c.w == w && c.lent {
			delete(l.conns, id)
			mine = append(mine, c)
		}
	}
	l.mu.Unlock()
	for _, c := range mine {
		switch {
		case c.out != nil:
			c.out.end(true, nil) // cut short: what came is written, then the connection closes
		case uint64(c.id) != serving:
			c.finish(false, nil)
		case written == 0:
			code := http.StatusBadGateway
			msg := "the application worker died"
			if w.lendTimedOut.Load() == c.id {
				code, msg = http.StatusGatewayTimeout, "the application did not answer in time"
			}
			w.pool.log.Error("worker lost during a request on a lent connection", "pid", w.pid, "conn", c.id, "status", code)
			writeRawError(c.conn, code, msg)
			c.conn.Close()
		default:
			w.pool.log.Error("worker lost during a response on a lent connection; closing it", "pid", w.pid, "conn", c.id)
			c.conn.Close()
		}
	}
}

// output writes the rest of a response the worker could not write without
// blocking: the worker is free at once, the master's goroutine waits on the
// slow client. At most outputQueue frames (of up to 1 MiB) wait; past that
// the worker's lend socket is read no further until the client takes some.
type output struct {
	c        *lentConn
	q        chan []byte
	done     chan struct{}
	closeIt  bool
	rest     []byte
	failed   bool
	endOnce  sync.Once
	finished chan struct{}
}

const outputQueue = 32

func newOutput(c *lentConn) *output {
	o := &output{c: c, q: make(chan []byte, outputQueue), done: make(chan struct{}), finished: make(chan struct{})}
	go o.run()
	return o
}

func (o *output) push(b []byte) { o.q <- b }

// end closes the output: rest are the bytes the worker read beyond the
// response, for the HTTP server.
func (o *output) end(closeIt bool, rest []byte) {
	o.endOnce.Do(func() {
		o.closeIt, o.rest = closeIt, rest
		close(o.q)
	})
}

func (o *output) run() {
	defer close(o.finished)
	for b := range o.q {
		if o.failed {
			continue
		}
		if _, err := o.c.conn.Write(b); err != nil {
			o.failed = true
		}
	}
	o.c.finish(o.closeIt || o.failed, o.rest)
}

// writeRawError answers a request on a connection taken from net/http.
func writeRawError(conn net.Conn, code int, msg string) {
	body := strconv.Itoa(code) + " " + http.StatusText(code) + ": " + msg + "\n"
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(conn, "HTTP/1.1 "+strconv.Itoa(code)+" "+http.StatusText(code)+"\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"+
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
	if !h.lendable || r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.TLS != nil || r.Close {
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
	p := h.pool
	c := p.lender.add(conn, component.GiveBackOf(r.Context()))
	rw := &rawResponse{conn: conn}
	var x exchange
	var next *slot
	for attempt := 0; ; {
		s := next
		if s == nil {
			s, err = p.acquireFor(r)
			if err != nil {
				p.lender.drop(c)
				if errAnswered(err) {
					writeRawError(conn, http.StatusServiceUnavailable, err.Error())
				}
				conn.Close()
				return true
			}
		}
		p.lender.sentTo(c, s.w)
		x = exchange{h: h, s: s, w: rw, r: r, start: &s.start, rescues: x.rescues, lend: c, lendBuffered: buffered}
		p.stats.busy.Add(1)
		x.run(scriptName, pathInfo, flags|protocol.FlagLend, inline)
		p.stats.busy.Add(-1)
		if x.reason != reasonSlotClosed {
			p.release(s, x.healthy, x.reason)
		}
		if !x.unsent {
			break
		}
		next = x.next
		if x.reason == reasonWithdrawn {
			continue
		}
		if attempt++; attempt == 3 {
			writeRawError(conn, http.StatusBadGateway, "no application worker could take the request")
			break
		}
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

// errAnswered: acquire failed in a way the client is told (503), not
// because the client went away.
func errAnswered(err error) bool {
	return err == ErrQueueFull || err == errQueueTimeout
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

// servingLent reports whether the worker is serving a request of a lent
// connection, which the master's queue does not see.
func (w *worker) servingLent() bool {
	return w.lendConn != nil && w.pageLoad(pageServing) != 0
}

// preferFree is acquire's choice when the slot it took (s, from the
// channel from) is free but its worker is busy with a request of a lent
// connection, which the master's queue does not see: a slot of a worker
// that is not, idle or to pipeline on, if there is one; else the slot of
// the worker whose lent request began last (the others may be slow ones).
// The tokens not chosen go back; those of workers no longer ready are
// dropped, as acquire does.
func (p *Pool) preferFree(s *slot, from chan *slot) *slot {
	type token struct {
		s  *slot
		ch chan *slot
	}
	all := []token{{s, from}}
	for _, ch := range []chan *slot{p.idle, p.spare} {
		for n := len(ch); n > 0; n-- {
			select {
			case o := <-ch:
				if o.w.State() == StateReady {
					all = append(all, token{o, ch})
				}
			default:
				n = 1 // emptied meanwhile
			}
		}
	}
	best := 0
	for i, t := range all {
		if !t.s.w.servingLent() {
			best = i // idle ones come first
			break
		}
		if t.s.w.pageLoad(pageSince) > all[best].s.w.pageLoad(pageSince) {
			best = i
		}
	}
	for i, t := range all {
		if i != best {
			p.pushToken(t.ch, t.s)
		}
	}
	return all[best].s
}

// watchLent enforces the timeout and max_requests on requests served on
// lent connections, which the master does not see: it reads each worker's
// page a few times per timeout.
func (p *Pool) watchLent(stop <-chan struct{}) {
	every := 500 * time.Millisecond
	if p.cfg.Timeout > 0 {
		every = min(every, max(p.cfg.Timeout/5, 20*time.Millisecond))
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		for _, w := range p.roster() {
			if w.lendConn == nil || w.State() != StateReady {
				continue
			}
			if id := w.pageLoad(pageServing); id != 0 && p.cfg.Timeout > 0 {
				since := int64(w.pageLoad(pageSince))
				if since > 0 && now-since > int64(p.cfg.Timeout) && w.pageLoad(pageServing) == id {
					p.log.Error("request on a lent connection timed out; killing its worker", "pid", w.pid,
						"conn", id, "timeout", p.cfg.Timeout.String())
					w.lendTimedOut.Store(uint32(id))
					awaitStacks(w.dumpStacks("request on a lent connection timed out"))
					w.kill("timeout")
					continue
				}
			}
			if w.maxRequests > 0 && w.served.Load()+int64(w.pageLoad(pageServed)) >= w.maxRequests {
				p.retire(w, "max-requests")
			}
		}
	}
}
