package gateway

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/protocol"
)

// Handler serves HTTP requests with the pool's Python application: it
// frames each request to a worker and writes the frames that come back to
// the client.
type Handler struct {
	pool     *Pool
	mount    string
	lendable bool // the handler is the whole site: its connections may be lent (lend.go)
}

// SetLendable says the handler serves the whole site (no Go component, no
// other application, mounted at the root), so that with --lend a worker
// may serve a connection's following requests itself.
func (h *Handler) SetLendable() {
	h.lendable = h.mount == "" && h.pool.lending()
}

// NewHandler returns the http.Handler of a pool's application, mounted at
// mount ("" for the root). Under compose, a Go urlmap mounts it through the
// request's component.Facts instead (environ.go, requestPath).
func NewHandler(p *Pool, mount string) *Handler {
	return &Handler{pool: p, mount: strings.TrimSuffix(mount, "/")}
}

// maxDiscard is how much of an unread body is read to keep the connection:
// net/http's own bound (maxPostHandlerReadBytes) and one byte more.
const maxDiscard = 256<<10 + 1

var inlineBodies = sync.Pool{New: func() any { b := make([]byte, protocol.InitialWindow); return &b }}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scriptName, pathInfo, err := requestPath(r, h.mount)
	if err != nil {
		http.Error(w, "400 Bad Request: "+err.Error(), http.StatusBadRequest)
		return
	}
	// A small body is read before a worker is taken, so a slow client
	// costs a goroutine, not a worker.
	var flags byte
	var inline []byte
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		flags |= protocol.FlagHasBody
		if r.ContentLength > 0 && r.ContentLength <= protocol.InitialWindow {
			bp := inlineBodies.Get().(*[]byte)
			defer inlineBodies.Put(bp)
			inline = (*bp)[:r.ContentLength]
			if _, err := io.ReadFull(r.Body, inline); err != nil {
				http.Error(w, "400 Bad Request: incomplete request body", http.StatusBadRequest)
				return
			}
			flags |= protocol.FlagBodyInline
		} else {
			// A larger one too when its client sends it slowly (spool.go).
			body, err := spoolSlowBody(r)
			if err != nil {
				http.Error(w, "400 Bad Request: "+errBodyBrokeOff.Error(), http.StatusBadRequest)
				return
			}
			if body != nil {
				defer body.Close()
				r.Body = body
				h.pool.log.Debug("slow request body read into a file before taking a worker", "uri", r.RequestURI, "bytes", r.ContentLength)
			}
		}
	}
	if directEligible(r) {
		flags |= protocol.FlagDirect
	}
	if h.lendable {
		// A slow view's request is not lent, and in line for a worker it
		// lets quick ones go first (slowpaths.go, line.go).
		if !h.pool.slow.slow(r.URL.Path) && h.lendEligible(r, flags) && h.serveLending(w, r, scriptName, pathInfo, flags, inline) {
			return
		}
		r = r.WithContext(withLinePath(r.Context(), r.URL.Path))
	}
	var sock component.BodySocket
	if flags&(protocol.FlagHasBody|protocol.FlagBodyInline) == protocol.FlagHasBody {
		if sock = loanSocket(r); sock != nil {
			flags |= protocol.FlagBodyLoan
		}
	}
	x, err := h.dispatch(exchange{w: w, r: r, sock: sock}, scriptName, pathInfo, flags, inline, nil)
	switch {
	case errors.Is(err, errNoWorker):
		http.Error(w, "502 Bad Gateway: "+err.Error(), http.StatusBadGateway)
		return
	case errAnswered(err):
		w.Header().Set("Retry-After", "1")
		http.Error(w, "503 Service Unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	case err != nil:
		return // the client went away while queued
	}
	// The rest of a body a slow client could not take from the worker:
	// written now that the worker serves others.
	x.writeHeld()
	if x.duplex && !x.abort && (r.ContentLength < 0 || r.ContentLength-x.bodyRead < maxDiscard) {
		// Full duplex makes net/http leave the unread rest of the body to
		// after the handler, where its discard starts the connection's
		// background read after the point that waits for it: the next
		// request on the connection would then race it ("invalid
		// concurrent Body.Read call"). The rest is discarded here, as
		// net/http does without full duplex (a larger rest closes the
		// connection, as there).
		_, _ = io.CopyN(io.Discard, r.Body, maxDiscard)
	}
	if x.abort {
		// The response started and then failed: cut the connection so the
		// client cannot take a truncated body for a whole one.
		panic(http.ErrAbortHandler)
	}
}

// errNoWorker: the REQUEST never reached a worker, three times running.
var errNoWorker = errors.New("no application worker could take the request")

// errAnswered: acquire failed in a way the client is told (503), not
// because the client went away.
func errAnswered(err error) bool {
	return errors.Is(err, ErrQueueFull) || errors.Is(err, errQueueTimeout)
}

// dispatch runs a request's exchange until a worker has it, for the
// handler's path and the lending one alike: it takes a slot (or parks on a
// busy one), and serves the request elsewhere when it was taken back from
// behind a slow one or never reached its worker. x carries what is the
// request's own (the writer, the body socket, the lent connection); sent, if
// not nil, hears of each slot before its exchange runs. The error is
// acquire's, or errNoWorker; x is the last exchange either way.
func (h *Handler) dispatch(x exchange, scriptName, pathInfo string, flags byte, inline []byte, sent func(*slot)) (exchange, error) {
	p := h.pool
	var next *slot // a free slot a withdrawn request was handed
	for attempt := 0; ; {
		s := next
		lend := flags&protocol.FlagLend != 0
		picked := false
		if s == nil && lend && p.lending() {
			if s = p.pickLending(); s != nil {
				picked = true
				if f := component.FactsOf(x.r); f != nil {
					f.Dispatched = true // (it waited for no token: QueueWait stays 0)
				}
			}
		}
		var err error
		if s == nil {
			s, err = p.acquireFor(x.r)
		}
		parked := notParked
		switch {
		case err != nil:
		case picked:
			parked, err = p.park(s)
		default:
			// (a slot handed to a withdrawn request too: a request lending
			// its connection must not hold a token the others need to see)
			parked, err = p.parkOn(s, lend)
		}
		if err != nil {
			return x, err
		}
		if sent != nil {
			sent(s)
		}
		x = exchange{h: h, s: s, w: x.w, r: x.r, start: &s.start, rescues: x.rescues, sock: x.sock,
			lendConn: x.lendConn, lendBuffered: x.lendBuffered}
		p.stats.busy.Add(1)
		x.run(scriptName, pathInfo, flags, inline)
		p.stats.busy.Add(-1)
		if parked != notParked {
			p.unpark(s, parked)
		}
		switch {
		case x.reason == reasonSlotClosed:
		case parked != notParked:
			p.settle(s, x.healthy, x.reason)
		default:
			p.release(s, x.healthy, x.reason)
		}
		if !x.unsent {
			return x, nil
		}
		next = x.next
		if x.reason == reasonWithdrawn {
			continue // taken back from behind a slow request: not a failure
		}
		// A worker that died while idle is found out when the REQUEST
		// cannot be written: it never saw the request, so another one may
		// serve it.
		if attempt++; attempt == 3 {
			return x, errNoWorker
		}
	}
}
