// Package bodylimit is the `egg:wsgate#bodylimit` filter: a request body
// larger than max_bytes is answered 413 Content Too Large before any worker
// is taken for it.
//
// A body with a Content-Length is judged by its header, without reading it.
// A body without one (chunked, or HTTP/2 without the header) is read whole
// by the filter first, in memory up to 64 KiB and in an unlinked temporary
// file beyond, and refused as soon as it grows past max_bytes: the
// application is never dispatched with half a body, so it never sees a
// truncated read. What passes on carries its real Content-Length.
package bodylimit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "bodylimit",
		Role:    component.Filter,
		Sees:    component.SeesRequest,
		Summary: "Refuse request bodies larger than max_bytes with 413, before a worker is taken.",
		Doc: `A request whose Content-Length exceeds ` + "`max_bytes`" + ` is answered 413 at once; its body is not read
(a client that sent ` + "`Expect: 100-continue`" + ` never gets the 100 and need not send it).

A body of unknown length (chunked transfer coding, or HTTP/2 without a content-length) is read in
full before the application is called: kept in memory up to 64 KiB, then in a temporary file (created in
` + "`$TMPDIR`" + ` and unlinked at once). As soon as it grows past ` + "`max_bytes`" + `, the client gets 413 and no
worker is involved. A body that fits is handed on with its real CONTENT_LENGTH, so the application reads a
complete body of known length. This buffering costs up to ` + "`max_bytes`" + ` of disk per such request and
makes a slow uploader hold a goroutine, never a worker.

Over HTTP/2 the 413 is followed by RST_STREAM(NO_ERROR), which tells the client to stop sending (RFC 9113
section 8.1); some clients, curl 7.88 among them, report that as a failure instead of showing the 413.

A client that breaks off while its body is being read gets 400. Put bodylimit in front of the application
(or of one urlmap mount) in the pipeline.`,
		Options: []component.Option{
			{Name: "max_bytes", Type: "bytes", Required: true,
				Help: "The largest request body accepted, in bytes or with a k, m or g suffix (`10m`)."},
		},
		Build: build,
	})
}

// memoryPart is how much of a body of unknown length stays in memory.
const memoryPart = 64 << 10

// Limit holds one configured bodylimit.
type Limit struct {
	max int64
}

func build(b *component.Builder) (component.Built, error) {
	if _, err := b.Required("max_bytes"); err != nil {
		return component.Built{}, err
	}
	n, err := b.Bytes("max_bytes", 0)
	if err != nil {
		return component.Built{}, err
	}
	return component.Built{Wrap: (&Limit{max: n}).Wrap}, nil
}

// Wrap returns next behind the limit.
func (l *Limit) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.ContentLength > l.max:
			tooLarge(w, r, l.max)
			return
		case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
			body, n, err := l.buffer(r.Body)
			if errors.Is(err, errTooLarge) {
				tooLarge(w, r, l.max)
				return
			}
			if err != nil {
				http.Error(w, "400 Bad Request: incomplete request body", http.StatusBadRequest)
				return
			}
			defer body.Close()
			r = r.Clone(r.Context())
			r.Body = body
			r.ContentLength = n
			r.TransferEncoding = nil
			r.Header.Set("Content-Length", strconv.FormatInt(n, 10))
		}
		next.ServeHTTP(w, r)
	})
}

var errTooLarge = errors.New("request body too large")

func tooLarge(w http.ResponseWriter, r *http.Request, max int64) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close") // the rest of the body is not worth reading
	}
	http.Error(w, fmt.Sprintf("413 Content Too Large: the request body exceeds %d bytes", max), http.StatusRequestEntityTooLarge)
}

// buffer reads a body of unknown length whole, refusing it past the limit.
func (l *Limit) buffer(src io.Reader) (io.ReadCloser, int64, error) {
	var mem bytes.Buffer
	n, err := io.Copy(&mem, io.LimitReader(src, min(memoryPart, l.max+1)))
	if err != nil {
		return nil, 0, err
	}
	if n > l.max {
		return nil, 0, errTooLarge
	}
	if n < memoryPart {
		return io.NopCloser(&mem), n, nil // the whole body: the source is at EOF
	}
	f, err := os.CreateTemp("", "wsgate-body-*")
	if err != nil {
		return nil, 0, fmt.Errorf("buffering a request body: %w", err)
	}
	_ = os.Remove(f.Name()) // gone when closed, whatever happens
	if _, err := f.Write(mem.Bytes()); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("buffering a request body: %w", err)
	}
	more, err := io.Copy(f, io.LimitReader(src, l.max+1-n))
	n += more
	if err == nil && n > l.max {
		err = errTooLarge
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, n, nil
}
