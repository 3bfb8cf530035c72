package compress

import (
	"io"
	"net/http"
	"strconv"
	"strings"
)

// writer decides, once the response's head is known and enough of its body
// has arrived, whether to compress; until then it holds the status and the
// start of the body.
type writer struct {
	http.ResponseWriter
	c      *Compress
	coding *coding // negotiated; nil: identity for this client

	status  int    // held status, 0 until the application sets one
	ok      bool   // the response may be compressed (for some client), known once status is
	decided bool   // the head went out
	held    []byte // the start of the body, while undecided
	enc     encoder
}

func (w *writer) WriteHeader(code int) {
	if w.status != 0 { // a second call, which net/http ignores too
		if w.decided {
			w.ResponseWriter.WriteHeader(code) // let net/http report it
		}
		return
	}
	if code < 200 { // 1xx (103 Early Hints): informational, the real head comes later
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.status = code
	w.ok = w.c.compressible(code, w.Header())
	w.decideFromHead()
}

// decideFromHead decides when the head alone is enough: the response may not
// be compressed, its length is known, or no minimum applies.
func (w *writer) decideFromHead() {
	if !w.ok || w.coding == nil {
		w.start(false)
		return
	}
	if cl := first(w.Header(), "Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		w.start(err == nil && n >= int64(w.c.minSize))
		return
	}
	if w.c.minSize == 0 {
		w.start(true)
	}
}

// start sends the head, compressed or not, and what was held back.
func (w *writer) start(compress bool) {
	w.decided = true
	h := w.Header()
	if w.ok {
		addVary(h)
	}
	if compress {
		delete(h, "Content-Length")
		delete(h, "Accept-Ranges")
		h["Content-Encoding"] = []string{w.coding.name}
		if et := first(h, "Etag"); strings.HasPrefix(et, `"`) {
			h["Etag"] = []string{"W/" + et}
		}
		w.enc = w.coding.get(w.ResponseWriter)
	}
	w.ResponseWriter.WriteHeader(w.status)
	if len(w.held) > 0 {
		held := w.held
		w.held = nil
		_, _ = w.out().Write(held)
	}
}

// out is where body bytes go once decided.
func (w *writer) out() io.Writer {
	if w.enc != nil {
		return w.enc
	}
	return w.ResponseWriter
}

func (w *writer) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.decided {
		return w.out().Write(p)
	}
	if len(w.held)+len(p) < w.c.minSize {
		w.held = append(w.held, p...)
		return len(p), nil
	}
	w.start(true) // writes what was held first
	return w.out().Write(p)
}

// ReadFrom keeps sendfile for what is not compressed (images, archives).
func (w *writer) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.decided && w.enc == nil {
		if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
			return rf.ReadFrom(src)
		}
	}
	return io.Copy(struct{ io.Writer }{w}, src)
}

// Flush is the application asking for what it wrote to reach the client: a
// body still held back starts compressed (a stream), and the encoder flushes
// a block.
func (w *writer) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.decided {
		w.start(true)
	}
	if w.enc != nil {
		_ = w.enc.Flush()
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// finish ends the response once the application returned: a body held back
// is short, so it goes out as it is, with its length; an encoder writes its
// trailer and goes back to the pool.
func (w *writer) finish() {
	if !w.decided {
		if w.status == 0 {
			w.status = http.StatusOK
			w.ok = w.c.compressible(w.status, w.Header())
		}
		if len(w.held) > 0 && first(w.Header(), "Content-Length") == "" {
			w.Header()["Content-Length"] = []string{strconv.Itoa(len(w.held))}
		}
		w.start(false)
	}
	if w.enc != nil {
		_ = w.enc.Close()
		w.coding.put(w.enc)
		w.enc = nil
	}
}

// Unwrap gives http.ResponseController the writer underneath (deadlines,
// Hijack).
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// addVary adds Accept-Encoding to Vary unless it is there (or "*" is).
func addVary(h http.Header) {
	for _, v := range h["Vary"] {
		if containsToken(v, "accept-encoding") || containsToken(v, "*") {
			return
		}
	}
	h["Vary"] = append(h["Vary"], "Accept-Encoding")
}
