// Package requestid is the `egg:wsgate#requestid` filter: it gives every
// request an id, passes it to the application and echoes it to the client,
// so one request can be followed through the access log, the server's log
// and the application's own logs.
//
// An incoming X-Request-ID (or the header `header` names) is kept when
// `trust_incoming` is on and the value is 1 to 128 characters of
// [A-Za-z0-9] and "-_.:+=/@"; otherwise a fresh id (a random UUID, version
// 4) replaces it. The id is the request's component.Facts.RequestID (which
// the access log and the gateway's log lines of the request print), the
// request's header of that name (so the application reads it as
// HTTP_X_REQUEST_ID), and the response's header.
//
// Security: a client's value never reaches a log line unchecked: the
// charset above holds no quote, space, backslash or control character.
// Turn trust_incoming off where clients must not choose ids (when ids key
// anything but logs), and on behind a proxy that sets its own.
package requestid

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
)

// maxLen bounds an accepted incoming id: enough for any id scheme in use
// (UUIDs, AWS trace ids, W3C trace-parents), too short to flood a log.
const maxLen = 128

func init() {
	component.Register(component.Spec{
		Name:    "requestid",
		Role:    component.Filter,
		Sees:    component.SeesRequest,
		Summary: "Gives every request an id (kept from X-Request-ID or generated), passed to the application as HTTP_X_REQUEST_ID, echoed in the response and printed in every log line of the request.",
		Doc: `An incoming id is kept when ` + "`trust_incoming`" + ` is on and it is 1 to 128 characters of letters, digits and
` + "`-_.:+=/@`" + `; anything else is replaced by a random UUID (version 4). The id becomes the request's header
(the application reads ` + "`HTTP_X_REQUEST_ID`" + `), the response's header, the access log's request id field and
the ` + "`request_id`" + ` attribute of the server's log lines about the request. Place it first in a pipeline so
that everything after it sees the id:

` + "```ini" + `
[pipeline:main]
pipeline = requestid accesslog compress django

[filter:requestid]
use = egg:wsgate#requestid

[filter:accesslog]
use = egg:wsgate#accesslog
file = %(here)s/access.log

[filter:compress]
use = egg:wsgate#compress
` + "```" + `

The response header is set before the application runs: an application that sets it too adds a second value
(the same id, when it echoes HTTP_X_REQUEST_ID).`,
		Options: []component.Option{
			{Name: "trust_incoming", Type: "bool", Default: "true",
				Help: "Keep a well-formed id the client (or a proxy in front) sent; off: always generate one."},
			{Name: "header", Type: "string", Default: "X-Request-ID",
				Help: "The request and response header that carries the id."},
			{Name: "echo", Type: "bool", Default: "true",
				Help: "Set the header on the response too."},
		},
		Build: build,
	})
}

// RequestID is one configured filter.
type RequestID struct {
	header string // canonical form
	trust  bool
	echo   bool
}

func build(b *component.Builder) (component.Built, error) {
	f := &RequestID{}
	var err error
	if f.trust, err = b.Bool("trust_incoming", true); err != nil {
		return component.Built{}, err
	}
	if f.echo, err = b.Bool("echo", true); err != nil {
		return component.Built{}, err
	}
	name := b.String("header", "X-Request-ID")
	if !validHeaderName(name) {
		return component.Built{}, b.Errorf("header", "%q is not a header name", name)
	}
	f.header = textproto.CanonicalMIMEHeaderKey(name)
	return component.Built{Wrap: f.Wrap}, nil
}

// Wrap is the filter.
func (f *RequestID) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, facts := component.Attach(r)
		id := ""
		if f.trust {
			if v := r.Header[f.header]; len(v) == 1 && Valid(v[0]) {
				id = v[0]
			}
		}
		if id == "" {
			id = New()
		}
		facts.RequestID = id
		// One slice for both headers: its capacity is 1, so an append to
		// either makes a copy and cannot reach the other.
		v := []string{id}
		r.Header[f.header] = v[:1:1] // the application sees the id, never a refused value
		if f.echo {
			w.Header()[f.header] = v[:1:1]
		}
		next.ServeHTTP(w, r)
	})
}

// Valid says whether an incoming id may be kept: 1 to maxLen characters,
// none of which needs escaping in a log line or a header.
func Valid(id string) bool {
	if id == "" || len(id) > maxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '=', c == '/', c == '@':
		default:
			return false
		}
	}
	return true
}

// New returns a random UUID (version 4, RFC 9562). The generator is the
// runtime's ChaCha8, seeded from the OS: unpredictable enough for an id that
// keys logs, and cheaper than a system call per request.
func New() string {
	var u [16]byte
	a, b := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		u[i], u[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// validHeaderName says whether s is an HTTP token (RFC 9110 section 5.1).
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}
