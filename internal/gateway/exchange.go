package gateway

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/protocol"
)

// exchange is one request's conversation with a worker slot.
type exchange struct {
	h          *Handler
	s          *slot
	w          http.ResponseWriter
	r          *http.Request
	stream     uint32
	started    bool // START written to the client
	bodyEnd    bool // BODY_END or BODY_FAIL sent
	bodyFailed bool // BODY_FAIL sent: the client's body broke off
	credited   bool // the worker asked for body bytes
	duplex     bool // net/http's full duplex is on: the unread rest of the body is left to ServeHTTP
	bodyErr    error
	werr       error // first error writing to the client; later writes are skipped
	flusher    http.Flusher
	healthy    bool                   // the worker is in a known state at the end
	unsent     bool                   // the request never reached the application: another worker may take it
	waited     bool                   // another exchange was ahead on the slot
	pinned     bool                   // the REQUEST went on the stream socket: it cannot be withdrawn
	heard      bool                   // a frame of the answer came: the worker has the request
	turn       chan turnKind          // how the exchange ahead ended
	next       *slot                  // a free slot handed to a withdrawn exchange
	rescues    int                    // times the request was taken back after a long wait
	deadline   time.Time              // dispatch + Timeout
	writeDL    bool                   // the write deadline is set
	reason     string                 // why not
	abort      bool                   // cut the client connection
	start      *protocol.StartPayload // the slot's, reused
	held       []byte                 // the rest of a DIRECT body, kept to free the worker (direct.go, holdRest)
	clen       int64                  // the response's Content-Length; -1 if none
	sent       int64                  // body bytes given to the client
	// A request whose connection is lent with it (lend.go): the worker
	// answers LENT and writes the response itself.
	lendConn     *lentConn
	lendBuffered []byte // bytes net/http had read past the request
	gotLent      bool
	// the body loan (loan.go)
	sock       component.BodySocket // the client's socket, when the body may be lent
	bodyRead   int64                // body bytes taken through r.Body (lent ones once returned)
	unbuffered bool                 // net/http's reader holds none of the body: the last read went to the socket
	lending    bool                 // a BODY_LOAN is out
	lent       int64                // the bytes it lent
}

func (x *exchange) run(scriptName, pathInfo string, flags byte, inline []byte) {
	s := x.s
	cfg := &x.h.pool.cfg
	if !x.send(scriptName, pathInfo, flags, inline) {
		return
	}
	defer x.passTurn()
	if x.waited {
		// A request ahead of this one on the slot: its worker serves them
		// in order. If that one ends with the worker lost, this one never
		// reached the application and goes to another worker; so does one
		// taken back from behind a slow request.
		switch x.awaitTurn() {
		case turnLost:
			x.unsent, x.reason = true, "lost"
			return
		case turnWithdrawn:
			x.unsent, x.reason, x.healthy = true, reasonWithdrawn, true
			return
		}
	}
	if !x.waited && s.lentBusy() && x.awaitLentWorker() == turnWithdrawn {
		x.unsent, x.reason, x.healthy = true, reasonWithdrawn, true
		return
	}
	began := time.Now()
	if cfg.Timeout > 0 {
		x.deadline = began.Add(cfg.Timeout) // else the zero time: no deadline
	}
	defer func() {
		if x.healthy {
			took := time.Since(began)
			x.h.pool.observe(took)
			if x.h.lendable && x.lendConn == nil {
				// (a lent request's exchange ends at LENT, before the
				// application has run: it says nothing of the path)
				x.h.pool.slow.note(x.r.URL.Path, took)
			}
		}
	}()
	// Reads carry the deadline; writes get it only when they may block
	// (body and file frames), which saves a timer per request.
	s.armReads(x.deadline, cfg.Timeout/readSlackDiv)
	defer func() {
		if x.writeDL {
			s.mu.Lock()
			_ = s.conn.SetWriteDeadline(time.Time{}) // the next request's writes must not inherit it
			s.mu.Unlock()
		}
	}()
	x.flusher, _ = x.w.(http.Flusher)
	for {
		hd, err := protocol.ReadHeader(s.br)
		if err != nil {
			if !x.heard && s.reclaim(x) {
				x.lostBeforeReceiving(err)
				return
			}
			x.lost(err)
			return
		}
		if hd.Stream == x.stream {
			x.heard = true
		}
		// LOG frames may trail a finished stream (an iterable's close()
		// runs after END), so they are accepted from any stream.
		if hd.Stream != x.stream && hd.Type != protocol.Log && hd.Type != protocol.Stderr {
			x.lost(fmt.Errorf("%w: %s frame for stream %d during stream %d", protocol.ErrViolation, hd.Type, hd.Stream, x.stream))
			return
		}
		switch hd.Type {
		case protocol.Data:
			if !x.started {
				x.lost(fmt.Errorf("%w: DATA before START", protocol.ErrViolation))
				return
			}
			if err := x.copyData(int(hd.Len)); err != nil {
				x.lost(err)
				return
			}
			if s.br.Buffered() == 0 && x.flusher != nil && x.werr == nil {
				x.flusher.Flush() // the worker has nothing more yet: let the client see it
			}
		case protocol.End:
			if !x.started {
				x.lost(fmt.Errorf("%w: END before START", protocol.ErrViolation))
				return
			}
			if err := x.awaitBodyRead(); err != nil {
				x.lost(err)
				return
			}
			x.healthy = true
			return
		default:
			payload, err := protocol.ReadPayload(s.br, hd, &s.rbuf)
			if err != nil {
				x.lost(err)
				return
			}
			if hd.Type == protocol.Log || hd.Type == protocol.Stderr {
				msg := "wsgi.errors"
				if hd.Type == protocol.Stderr {
					msg = "worker stderr"
				}
				x.logLine(msg, hd.Stream == x.stream, string(payload))
				continue
			}
			done, err := x.control(hd.Type, payload)
			if err == nil && done {
				err = x.awaitBodyRead()
			}
			if err != nil {
				x.lost(err)
				return
			}
			if done {
				return
			}
		}
	}
}

// reasonSlotClosed: the slot closed (its worker drains) between acquire
// and send; nothing is wrong with the worker.
const reasonSlotClosed = "slot closed"

// reasonWithdrawn: the REQUEST was taken back before its worker received
// it, to be served by another.
const reasonWithdrawn = "withdrawn"

// turnKind is what an exchange waiting on a slot is told.
type turnKind uint8

const (
	turnGo        turnKind = iota // the exchange ahead ended: read on
	turnLost                      // it ended with the worker lost
	turnWithdrawn                 // this exchange's REQUEST was taken back
)

// rescueDelay is how long the exchange waits behind the one ahead before it
// is taken back: four usual service times, so an ordinary wait never
// triggers it, doubled at each rescue, so a request that finds only busy
// workers again and again (one worker, all slow) is not moved about in a loop.
func (x *exchange) rescueDelay() time.Duration {
	d := min(max(4*x.h.pool.serviceTime(), 2*time.Millisecond), time.Second)
	return d << min(x.rescues, 6)
}

var turns = sync.Pool{New: func() any { return make(chan turnKind, 1) }}

// awaitTurn waits for the exchange ahead on the slot to end. Meanwhile, if
// another worker falls idle, or the wait grows well past the usual service
// time (a slow request ahead), the REQUEST is taken back, if the worker has
// not received it yet, and served elsewhere: a request never waits long
// behind a slow one while another worker could serve it.
func (x *exchange) awaitTurn() turnKind {
	select {
	case t := <-x.turn:
		return t
	default:
	}
	if x.pinned {
		return <-x.turn
	}
	p := x.h.pool
	timer := queueTimers.Get().(*time.Timer)
	timer.Reset(x.rescueDelay())
	defer func() {
		timer.Stop()
		queueTimers.Put(timer)
	}()
	idle := p.idle
	for {
		select {
		case t := <-x.turn:
			return t
		case s := <-idle:
			if s.w.State() != StateReady {
				continue // a token of a draining worker: dropped, as acquire does
			}
			if p.lending() && s.w.busy() {
				// Idle to the queue, but busy with a lent connection's
				// request, or with requests parked there (a lending
				// pool's tokens go back at once, parkOn): no better than
				// waiting here.
				p.pushToken(p.idle, s)
				idle = nil // not again this round
				continue
			}
			switch x.s.withdraw(x) {
			case withdrawn:
				x.logger().Debug("pipelined request taken back", "pid", x.s.w.pid, "why", "another worker is idle", "uri", x.r.RequestURI)
				x.next = s
				return turnWithdrawn
			case received:
				p.pushToken(p.idle, s)
				return <-x.turn
			case notYet:
				p.pushToken(p.idle, s)
				idle = nil // not again this round: the same token would come straight back
			}
		case <-timer.C:
			switch x.s.withdraw(x) {
			case withdrawn:
				x.logger().Debug("pipelined request taken back", "pid", x.s.w.pid, "why", "long wait", "waited", x.rescueDelay().String(), "uri", x.r.RequestURI)
				x.rescues++
				return turnWithdrawn
			case received:
				return <-x.turn
			case notYet:
				timer.Reset(x.rescueDelay())
				idle = p.idle
			}
		}
	}
}

// send writes the REQUEST frame (and an inline body) and queues the
// exchange on its slot; false if it could not (the slot closed, the worker
// is gone: x.unsent says another worker may take the request).
func (x *exchange) send(scriptName, pathInfo string, flags byte, inline []byte) bool {
	s := x.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		x.unsent, x.reason = true, reasonSlotClosed
		return false
	}
	s.stream++
	if s.stream == 0 {
		s.stream = 1
	}
	x.stream = s.stream
	b := protocol.AppendHeader(s.wbuf[:0], protocol.Request, x.stream, 0)
	b = append(b, flags)
	b = appendEnviron(b, x.r, scriptName, pathInfo)
	if x.lendConn != nil {
		b = b[:len(b)-1] // reopen the dict for the lending items
		b = protocol.AppendItem(b, "wsgate.lend", strconv.FormatUint(uint64(x.lendConn.id), 10))
		if len(x.lendBuffered) > 0 {
			b = protocol.AppendLatin1(b, "wsgate.buffered")
			b = protocol.AppendLatin1(b, string(x.lendBuffered))
		}
		b = protocol.EndDict(b)
	}
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)-protocol.HeaderSize))
	if flags&protocol.FlagBodyInline != 0 {
		if len(inline) > 0 {
			b = protocol.AppendFrame(b, protocol.Body, x.stream, inline)
		}
		b = protocol.AppendHeader(b, protocol.BodyEnd, x.stream, 0)
		x.bodyEnd = true
	}
	if len(b) > protocol.MaxPayload {
		x.fail(http.StatusRequestHeaderFieldsTooLarge, "request headers too large", true)
		return false
	}
	if cap(b) <= 256<<10 {
		s.wbuf = b[:0]
	}
	var err error
	if len(b) <= s.dispMax {
		if x.lendConn != nil {
			err = s.sendLend(b, x.lendConn.conn)
		} else {
			_, err = s.disp.Write(b)
		}
	} else if x.lendConn != nil {
		x.unsent, x.reason = false, "request too large to lend"
		x.fail(http.StatusRequestHeaderFieldsTooLarge, "request headers too large", true)
		return false
	} else {
		// Too big for one dispatch message: the frames go on the stream
		// socket, and a marker on the dispatch socket says so.
		x.pinned = true
		if _, err = s.conn.Write(b); err == nil {
			var m [protocol.HeaderSize + 1]byte
			protocol.AppendHeader(m[:0], protocol.Request, x.stream, 1)
			m[protocol.HeaderSize] = protocol.FlagOnStream
			_, err = s.disp.Write(m[:])
		}
	}
	if err != nil {
		x.lostBeforeReceiving(err)
		return false
	}
	x.waited = len(s.queue) > 0
	if x.waited {
		x.turn = turns.Get().(chan turnKind)
	} else {
		s.headSince = time.Now()
	}
	s.queue = append(s.queue, x)
	return true
}

// passTurn takes the exchange off its slot's queue and gives the next one
// its turn; a slot of a draining worker closes once its queue is empty. A
// withdrawn exchange has left the queue already and passes nothing on.
func (x *exchange) passTurn() {
	s := x.s
	s.mu.Lock()
	if len(s.queue) > 0 && s.queue[0] == x {
		copy(s.queue, s.queue[1:])
		s.queue[len(s.queue)-1] = nil
		s.queue = s.queue[:len(s.queue)-1]
		if len(s.queue) > 0 {
			s.headSince = time.Now()
			t := turnGo
			if !x.healthy || x.unsent {
				t = turnLost
			}
			s.queue[0].turn <- t
		}
	}
	if len(s.queue) == 0 && s.w.State() != StateReady {
		s.closeLocked()
	}
	s.mu.Unlock()
	if x.turn != nil {
		turns.Put(x.turn)
		x.turn = nil
	}
}

// control handles the frames other than DATA and END; done ends the stream.
func (x *exchange) control(t protocol.Type, payload []byte) (done bool, err error) {
	switch t {
	case protocol.Start:
		if x.started {
			return false, fmt.Errorf("%w: second START", protocol.ErrViolation)
		}
		if err := protocol.ParseStart(payload, x.start); err != nil {
			return false, err
		}
		hdr := x.w.Header()
		// One backing array for every value: a header usually comes once.
		values := make([]string, len(x.start.Headers))
		x.clen = -1
		for i, kv := range x.start.Headers {
			if len(kv[0]) == len("Content-Length") && strings.EqualFold(kv[0], "Content-Length") {
				if n, err := strconv.ParseInt(kv[1], 10, 64); err == nil && n >= 0 && x.clen == -1 {
					x.clen = n
				} else {
					x.clen = -2 // unparsable or repeated: only net/http's own checks apply
				}
			}
			k := textproto.CanonicalMIMEHeaderKey(kv[0])
			values[i] = kv[1]
			if old, ok := hdr[k]; ok {
				hdr[k] = append(old, kv[1])
			} else {
				hdr[k] = values[i : i+1 : i+1]
			}
		}
		if _, ok := hdr["Content-Type"]; !ok {
			// As WSGI servers do, no Content-Type when the application gave
			// none: a nil entry keeps net/http from sniffing one (which can
			// make text HTML). The worker's own writer (http11.py) agrees.
			hdr["Content-Type"] = nil
		}
		if x.credited && !x.bodyEnd {
			// The application streams its response while it still reads
			// the body: without full duplex, net/http would discard the
			// unread body when the headers go out.
			_ = http.NewResponseController(x.w).EnableFullDuplex()
			x.duplex = true
		}
		x.started = true
		x.w.WriteHeader(x.start.Code)
	case protocol.Lent:
		if x.lendConn == nil || x.started {
			return false, fmt.Errorf("%w: LENT for a request not lent", protocol.ErrViolation)
		}
		x.gotLent, x.healthy = true, true
		return true, nil
	case protocol.Direct:
		n, err := protocol.ParseDirect(payload)
		if err != nil {
			return false, err
		}
		return false, x.direct(n)
	case protocol.Credit:
		x.credited = true
		n, err := protocol.ParseCredit(payload)
		if err != nil {
			return false, err
		}
		if x.lending {
			return false, fmt.Errorf("%w: CREDIT while the body is lent", protocol.ErrViolation)
		}
		return false, x.sendBody(int(n))
	case protocol.BodyRead:
		k, err := protocol.ParseBodyRead(payload)
		if err != nil {
			return false, err
		}
		return false, x.bodyReturned(k)
	case protocol.File:
		fp, err := protocol.ParseFile(payload)
		if err != nil {
			return false, err
		}
		if !x.started {
			return false, fmt.Errorf("%w: FILE before START", protocol.ErrViolation)
		}
		return false, x.sendFile(fp)
	case protocol.Error:
		x.healthy = true
		if x.bodyFailed {
			// The app failed because the client's body broke off (a bad
			// chunk, a disconnect): a malformed request, not an app error.
			// The connection cannot be trusted for another request.
			x.logger().Warn("request body broke off", "method", x.r.Method, "uri", x.r.RequestURI,
				"error", x.bodyErr.Error())
			if x.started {
				x.abort = true
			} else {
				x.w.Header().Set("Connection", "close")
				http.Error(x.w, "400 Bad Request: malformed request body", http.StatusBadRequest)
			}
			return true, nil
		}
		x.logger().Error("application error", "pid", x.s.w.pid, "method", x.r.Method,
			"uri", x.r.RequestURI, "traceback", string(payload))
		if x.started {
			x.abort = true
		} else {
			http.Error(x.w, "500 Internal Server Error", http.StatusInternalServerError)
		}
		return true, nil
	default:
		return false, fmt.Errorf("%w: unexpected %s frame during a request", protocol.ErrViolation, t)
	}
	return false, nil
}

// copyData streams n bytes of a DATA payload from the worker to the client
// through the reader's own buffer.
func (x *exchange) copyData(n int) error {
	br := x.s.br
	if n > br.Size() {
		return x.copyLargeData(n)
	}
	for n > 0 {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				return unexpectedEOF(err)
			}
		}
		k := min(n, br.Buffered())
		p, _ := br.Peek(k)
		x.write(p)
		_, _ = br.Discard(k)
		n -= k
	}
	return nil
}

var largeBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// copyLargeData moves a big DATA payload in pieces of up to 1 MiB read
// straight from the socket, so each piece costs one read and one write.
func (x *exchange) copyLargeData(n int) error {
	br := x.s.br
	if k := min(n, br.Buffered()); k > 0 {
		p, _ := br.Peek(k)
		x.write(p)
		_, _ = br.Discard(k)
		n -= k
	}
	bp := largeBuffers.Get().(*[]byte)
	defer largeBuffers.Put(bp)
	buf := *bp
	for n > 0 {
		k, err := x.s.conn.Read(buf[:min(n, len(buf))])
		if k > 0 {
			x.write(buf[:k])
			n -= k
		}
		if err != nil && n > 0 {
			return unexpectedEOF(err)
		}
	}
	return nil
}

func (x *exchange) write(p []byte) {
	if x.werr != nil {
		return
	}
	if x.held != nil {
		if len(x.held)+len(p) <= cap(x.held) {
			x.held = append(x.held, p...)
			return
		}
		x.writeHeld() // more than was announced: in order, as it comes
	}
	k, err := x.w.Write(p)
	x.sent += int64(k)
	if err != nil {
		x.clientFailed(err)
	}
}

// clientFailed: the client is gone (or the body is not allowed). The
// worker's frames are still read to stay in step, and the worker is told to
// stop iterating, so the application's close() runs now.
func (x *exchange) clientFailed(err error) {
	x.werr = err
	if err != http.ErrBodyNotAllowed {
		_ = writeFrame(x.s, protocol.CtlToW, x.stream, []byte{protocol.CtlCancel})
	}
}

// fits reports whether n more body bytes stay within the Content-Length the
// application declared. Only then may they bypass net/http's Write, which
// is what refuses bytes past the declared length (ErrContentLength).
func (x *exchange) fits(n int64) bool {
	return x.clen >= 0 && x.sent+n <= x.clen
}

// sendBody answers one CREDIT with one frame: BODY with 1..n bytes, BODY_END
// at the end of the body, or BODY_FAIL if the client's body broke off.
func (x *exchange) sendBody(n int) error {
	s := x.s
	x.armWrites()
	if x.bodyEnd {
		return writeFrame(s, protocol.BodyEnd, x.stream, nil)
	}
	if lent, err := x.lend(); lent || err != nil {
		return err
	}
	n = min(max(n, 1), 1<<20)
	if cap(s.body) < n {
		s.body = make([]byte, max(n, protocol.InitialWindow))
	}
	buf := s.body[:n]
	// Fill up to 256 KiB (or the credit) before answering, so a frame
	// carries a useful amount, without waiting for a whole window from a
	// slow client.
	enough := min(n, 256<<10)
	var got int
	var err error
	for got < enough && err == nil {
		var k int
		k, err = x.readBody(buf[got:])
		got += k
		if x.lendable() {
			break // what net/http had buffered: the rest goes on loan
		}
	}
	if got > 0 {
		// Header and body in one writev: the body is not copied.
		s.hdr = protocol.AppendHeader(s.hdr[:0], protocol.Body, x.stream, got)
		s.bufs = append(s.bufs[:0], s.hdr, buf[:got])
		s.mu.Lock()
		_, err := s.bufs.WriteTo(s.conn)
		s.mu.Unlock()
		return err
	}
	x.bodyEnd = true
	if err == io.EOF {
		return writeFrame(s, protocol.BodyEnd, x.stream, nil)
	}
	x.bodyFailed, x.bodyErr = true, err
	return writeFrame(s, protocol.BodyFail, x.stream, []byte(err.Error()))
}

// armWrites puts the request's deadline on writes to the worker too.
func (x *exchange) armWrites() {
	if !x.writeDL {
		x.writeDL = true
		x.s.mu.Lock()
		_ = x.s.conn.SetWriteDeadline(x.deadline)
		x.s.mu.Unlock()
	}
}

// writeFrame writes one frame; s.mu orders it with the REQUEST frames of
// the exchanges queued behind.
func writeFrame(s *slot, t protocol.Type, stream uint32, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := protocol.AppendFrame(s.wbuf[:0], t, stream, payload)
	if cap(b) <= 256<<10 {
		s.wbuf = b[:0]
	}
	_, err := s.conn.Write(b)
	return err
}

// sendFile sends a wsgi.file_wrapper file from the master's own descriptor
// (sendfile on Linux), opened through /proc before the worker may close it.
func (x *exchange) sendFile(fp protocol.FilePayload) error {
	x.armWrites()
	path := "/proc/" + strconv.Itoa(x.s.w.pid) + "/fd/" + strconv.FormatUint(uint64(fp.FD), 10)
	f, err := os.Open(path)
	ack := []byte{1}
	if err != nil {
		ack[0] = 0 // the worker streams it as DATA instead
	}
	if err := writeFrame(x.s, protocol.FileAck, x.stream, ack); err != nil {
		if f != nil {
			f.Close()
		}
		return err
	}
	if f == nil {
		return nil
	}
	defer f.Close()
	if x.werr != nil {
		return nil
	}
	if _, err := f.Seek(int64(fp.Offset), io.SeekStart); err != nil {
		x.werr = err
		x.abort = true
		return nil
	}
	// sendfile goes past net/http's check of the declared length: only
	// for a file that fits in it.
	var dst io.Writer = x.w
	if !x.fits(int64(fp.Count)) {
		dst = struct{ io.Writer }{x.w}
	}
	n, err := io.Copy(dst, io.LimitReader(f, int64(fp.Count)))
	x.sent += n
	if err != nil || uint64(n) != fp.Count {
		x.werr = fmt.Errorf("sending %s: %d of %d bytes: %v", path, n, fp.Count, err)
		x.abort = true
	}
	return nil
}

// logger is the pool's logger with the request's id, when the requestid
// component gave it one: every line about a request can then be found from
// its access log line, and the access log line from the error.
func (x *exchange) logger() *slog.Logger {
	if f := component.FactsOf(x.r); f != nil && f.RequestID != "" {
		return x.h.pool.log.With("request_id", f.RequestID)
	}
	return x.h.pool.log
}

// logLine logs a line the application wrote to wsgi.errors or sys.stderr
// (msg), with the worker, and the request when it is this one's (ours): a
// frame of another stream is the tail of the previous request on the
// worker (an iterable's close() runs after END).
func (x *exchange) logLine(msg string, ours bool, text string) {
	w := x.s.w
	if !ours {
		w.pool.log.Info(msg, "worker", w.id, "pid", w.pid, "text", text)
		return
	}
	x.logger().Info(msg, "worker", w.id, "pid", w.pid, "method", x.r.Method, "uri", x.r.RequestURI, "text", text)
}

// nextFrame reads the worker's next frame of this stream when one answer is
// awaited (WROTE, BODY_READ), logging the LOG and STDERR frames that may
// come first (of any stream: they may trail one that ended).
func (x *exchange) nextFrame() (protocol.Type, []byte, error) {
	s := x.s
	for {
		hd, err := protocol.ReadHeader(s.br)
		if err != nil {
			return 0, nil, err
		}
		if hd.Stream != x.stream && hd.Type != protocol.Log && hd.Type != protocol.Stderr {
			return 0, nil, fmt.Errorf("%w: %s frame for stream %d during stream %d", protocol.ErrViolation, hd.Type, hd.Stream, x.stream)
		}
		payload, err := protocol.ReadPayload(s.br, hd, &s.rbuf)
		if err != nil {
			return 0, nil, err
		}
		switch hd.Type {
		case protocol.Log:
			x.logLine("wsgi.errors", hd.Stream == x.stream, string(payload))
		case protocol.Stderr:
			x.logLine("worker stderr", hd.Stream == x.stream, string(payload))
		default:
			return hd.Type, payload, nil
		}
	}
}

// lostBeforeReceiving: the worker is gone and never received the request,
// so another worker may serve it.
func (x *exchange) lostBeforeReceiving(err error) {
	x.unsent, x.reason = true, "lost"
	x.logger().Warn("worker lost before a request reached it; trying another", "pid", x.s.w.pid, "error", err.Error())
}

// lost ends an exchange whose worker can no longer be trusted: it died, it
// broke the protocol, or it passed the timeout.
func (x *exchange) lost(err error) {
	log := x.logger()
	if x.lending {
		// Where the worker left the client's socket is unknown: no
		// further request may be read from it.
		x.w.Header().Set("Connection", "close")
	}
	pid := x.s.w.pid
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Error("request timed out; killing its worker", "pid", pid, "method", x.r.Method,
			"uri", x.r.RequestURI, "timeout", x.h.pool.cfg.Timeout.String())
		// Where it was stuck is what the operator needs: the stacks are
		// logged before the worker is killed (release).
		awaitStacks(x.s.w.dumpStacks("request timed out: " + x.r.Method + " " + x.r.RequestURI))
		x.fail(http.StatusGatewayTimeout, "the application did not answer in time", false)
		x.reason = "timeout"
	case errors.Is(err, protocol.ErrViolation):
		log.Error("worker broke the protocol; killing it", "pid", pid, "error", err.Error())
		x.fail(http.StatusBadGateway, "the application worker failed", false)
		x.reason = "protocol violation"
	default:
		log.Error("worker lost during a request", "pid", pid, "method", x.r.Method,
			"uri", x.r.RequestURI, "error", err.Error())
		x.fail(http.StatusBadGateway, "the application worker died", false)
		x.reason = "lost"
	}
}

// fail answers the client with an error page, or cuts the response if it
// has started.
func (x *exchange) fail(code int, msg string, healthy bool) {
	x.healthy = healthy
	if x.started {
		x.abort = true
		return
	}
	http.Error(x.w, strconv.Itoa(code)+" "+http.StatusText(code)+": "+msg, code)
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
