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
		}
	}
	if directEligible(r) {
		flags |= protocol.FlagDirect
	}
	if h.lendEligible(r, flags) && h.serveLending(w, r, scriptName, pathInfo, flags, inline) {
		return
	}
	var sock component.BodySocket
	if flags&(protocol.FlagHasBody|protocol.FlagBodyInline) == protocol.FlagHasBody {
		if sock = loanSocket(r); sock != nil {
			flags |= protocol.FlagBodyLoan
		}
	}
	var x exchange
	var next *slot // a free slot a withdrawn request was handed
	for attempt := 0; ; {
		s := next
		parked := false
		if s == nil {
			var err error
			s, err = h.pool.acquireFor(r)
			if err == nil {
				parked, err = h.pool.parkOn(s)
			}
			if err != nil {
				if errors.Is(err, ErrQueueFull) || errors.Is(err, errQueueTimeout) {
					w.Header().Set("Retry-After", "1")
					http.Error(w, "503 Service Unavailable: "+err.Error(), http.StatusServiceUnavailable)
				}
				return // otherwise the client went away while queued
			}
		}
		x = exchange{h: h, s: s, w: w, r: r, start: &s.start, rescues: x.rescues, sock: sock}
		h.pool.stats.busy.Add(1)
		x.run(scriptName, pathInfo, flags, inline)
		h.pool.stats.busy.Add(-1)
		if parked {
			h.pool.unpark(s)
		}
		switch {
		case x.reason == reasonSlotClosed:
		case parked:
			h.pool.settle(s, x.healthy, x.reason)
		default:
			h.pool.release(s, x.healthy, x.reason)
		}
		if !x.unsent {
			break
		}
		next = x.next
		if x.reason == reasonWithdrawn {
			continue // taken back from behind a slow request: not a failure
		}
		// A worker that died while idle is found out when the REQUEST
		// cannot be written: it never saw the request, so another one may
		// serve it.
		if attempt++; attempt == 3 {
			http.Error(w, "502 Bad Gateway: no application worker could take the request", http.StatusBadGateway)
			return
		}
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
