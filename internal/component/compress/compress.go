// Package compress is the `egg:wsgate#compress` filter: it compresses the
// responses of the application it wraps with zstd, brotli or gzip, as the
// client's Accept-Encoding allows.
//
// It works with no options. A response is compressed only when all of these
// hold, so that what it does is always safe for the client and for caches:
//
//   - the request is not HEAD and carries no Range header (a range is a
//     slice of the identity body; compressing it would change its meaning);
//   - the status is not 204, 206 or 304 and the response is not already
//     encoded (Content-Encoding set by the application);
//   - the response has no `Cache-Control: no-transform`;
//   - its media type is on the allow-list (`types`) and it is not a stream
//     the application marks as such: `text/event-stream`, or the header
//     `X-Accel-Buffering: no` (nginx's signal for "deliver as written");
//   - its body reaches `min_size` bytes: the start of a body of unknown
//     length is held back until it does, the response ends, or the
//     application flushes (a flush means "stream this", so compression
//     starts there).
//
// A compressed response loses Content-Length and Accept-Ranges, gains
// `Content-Encoding` and its strong ETag becomes weak (`W/"…"`): the bytes
// differ but the content is the same, which is what a weak validator says,
// and Django's conditional views compare If-None-Match weakly. Every
// response of an allow-listed type gets `Vary: Accept-Encoding`, compressed
// or not, so a cache never hands a compressed body to a client that cannot
// read it. Flushes pass through the encoder: a streamed response stays
// streamed. Encoders are pooled.
package compress

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/wsgate/wsgate/internal/component"
)

// defaultTypes are the media types worth compressing: text, and the
// structured text formats that do not say "text/".
var defaultTypes = []string{
	"text/*",
	"application/json", "application/*+json", "application/x-ndjson",
	"application/javascript", "application/x-javascript", "application/ecmascript",
	"application/xml", "application/*+xml",
	"application/wasm",
	"image/svg+xml", "image/x-icon", "image/bmp",
	"font/ttf", "font/otf", "application/vnd.ms-fontobject",
}

// neverTypes are streams the allow-list's "text/*" would otherwise catch.
var neverTypes = []string{"text/event-stream"}

const defaultMinSize = 1024

func init() {
	component.Register(component.Spec{
		Name:    "compress",
		Role:    component.Filter,
		Sees:    component.SeesResponseBody,
		Summary: "Compresses responses with zstd, brotli or gzip as the client's Accept-Encoding allows.",
		Doc: `Works with no options. A response is compressed when the request is not HEAD and has no Range header; the
status is not 204, 206 or 304; the application did not encode it already (Content-Encoding) nor forbid it
(` + "`Cache-Control: no-transform`" + `); its media type is on the ` + "`types`" + ` list; it is not a stream the application
marks as one (` + "`text/event-stream`" + `, or the response header ` + "`X-Accel-Buffering: no`" + `); and its body
reaches ` + "`min_size`" + ` (the start of a body of unknown length is held back until it does; a flush starts
compression at once, so streamed responses stay streamed: for a Python application, the gateway flushes when the
worker has sent part of a body and nothing more is waiting, as when a generator pauses between pieces).

The coding is chosen by the client's quality values (` + "`*`" + ` and ` + "`q=0`" + ` honoured; identity only when the
client rates it above every coding it accepts), ties broken by the order of ` + "`encodings`" + `. A compressed
response loses Content-Length and Accept-Ranges and its strong ETag becomes weak (` + "`W/\"…\"`" + `); every response
of a listed type gets ` + "`Vary: Accept-Encoding`" + `.`,
		Options: []component.Option{
			{Name: "encodings", Type: "list", Default: "zstd br gzip",
				Help: "The codings offered, in the server's order of preference among equal client qualities: any of zstd, br, gzip."},
			{Name: "types", Type: "list", Default: strings.Join(defaultTypes, " "),
				Help: "Media types compressed (parameters ignored); `*` matches within one part, as in `text/*` or `application/*+json`."},
			{Name: "min_size", Type: "bytes", Default: "1k",
				Help: "Bodies shorter than this are sent as they are."},
			{Name: "gzip_level", Type: "int", Default: "5", Help: "gzip level, 1 (fastest) to 9 (smallest)."},
			{Name: "zstd_level", Type: "int", Default: "3", Help: "zstd level, 1 (fastest) to 22 (smallest); the encoder rounds it to one of its four speeds."},
			{Name: "brotli_level", Type: "int", Default: "4", Help: "brotli level, 0 (fastest) to 11 (smallest); levels above 5 cost much CPU per request."},
		},
		Build: build,
	})
}

// Compress is one configured filter.
type Compress struct {
	codings []*coding // offered, in preference order
	types   []typePattern
	minSize int
}

// typePattern is one entry of the allow-list: a media type, or a pattern
// with one "*" that stands for any run of characters other than "/".
type typePattern struct {
	prefix, suffix string
	wild           bool
}

func parseTypePattern(s string) (typePattern, bool) {
	s = strings.ToLower(s)
	for i := 0; i < len(s); i++ { // RFC 6838 restricted names, "/" and the wildcard
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&-^_.+/*", c) >= 0) {
			return typePattern{}, false
		}
	}
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || typ == "" || sub == "" || strings.Contains(sub, "/") || strings.Count(s, "*") > 1 || strings.Contains(typ, "*") && typ != "*" {
		return typePattern{}, false
	}
	prefix, suffix, wild := strings.Cut(s, "*")
	return typePattern{prefix: prefix, suffix: suffix, wild: wild}, true
}

func (p typePattern) match(mt string) bool {
	if !p.wild {
		return mt == p.prefix
	}
	if len(mt) < len(p.prefix)+len(p.suffix) || !strings.HasPrefix(mt, p.prefix) || !strings.HasSuffix(mt, p.suffix) {
		return false
	}
	return !strings.Contains(mt[len(p.prefix):len(mt)-len(p.suffix)], "/")
}

func build(b *component.Builder) (component.Built, error) {
	c, err := configure(b)
	if err != nil {
		return component.Built{}, err
	}
	return component.Built{Wrap: c.Wrap}, nil
}

func configure(b *component.Builder) (*Compress, error) {
	c := &Compress{}
	var lv levels
	var err error
	if lv.gzip, err = levelOption(b, "gzip_level", 5, 1, 9); err != nil {
		return nil, err
	}
	if lv.zstd, err = levelOption(b, "zstd_level", 3, 1, 22); err != nil {
		return nil, err
	}
	if lv.brotli, err = levelOption(b, "brotli_level", 4, 0, 11); err != nil {
		return nil, err
	}
	names := b.List("encodings")
	if _, set := b.Lookup("encodings"); !set {
		names = []string{"zstd", "br", "gzip"}
	}
	if len(names) == 0 {
		return nil, b.Errorf("encodings", "is empty: name at least one of zstd, br, gzip (or remove the filter)")
	}
	seen := map[string]bool{}
	for _, name := range names {
		name = strings.ToLower(name)
		if seen[name] {
			return nil, b.Errorf("encodings", "%s is listed twice", name)
		}
		seen[name] = true
		cd, err := newCoding(name, lv)
		if err != nil {
			return nil, b.Errorf("encodings", "%v", err)
		}
		c.codings = append(c.codings, cd)
	}
	types := defaultTypes
	if _, set := b.Lookup("types"); set {
		types = b.List("types")
	}
	for _, t := range types {
		p, ok := parseTypePattern(t)
		if !ok {
			return nil, b.Errorf("types", "%q is not a media type or a pattern such as text/* or application/*+json", t)
		}
		c.types = append(c.types, p)
	}
	ms, err := b.Bytes("min_size", defaultMinSize)
	if err != nil {
		return nil, err
	}
	c.minSize = int(ms)
	return c, nil
}

func levelOption(b *component.Builder, key string, def, min, max int) (int, error) {
	n, err := b.Int(key, def, min)
	if err != nil {
		return 0, err
	}
	if n > max {
		return 0, b.Errorf(key, "%d is above %d, the highest level", n, max)
	}
	return n, nil
}

// Wrap is the filter.
func (c *Compress) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead || r.Header.Get("Range") != "" {
			next.ServeHTTP(w, r)
			return
		}
		cw := writers.Get().(*writer)
		*cw = writer{ResponseWriter: w, c: c, coding: negotiate(first(r.Header, "Accept-Encoding"), c.codings)}
		next.ServeHTTP(cw, r)
		cw.finish()
		*cw = writer{}
		writers.Put(cw)
	})
}

// writers are reused from one response to the next (a panic through the
// handler loses one to the garbage collector, which is fine).
var writers = sync.Pool{New: func() any { return new(writer) }}

// compressible says whether a response with these headers may be compressed
// at all (for any client): it decides `Vary` too.
//
// Headers are read by their canonical names straight from the map: this runs
// for every response, and Header.Get would canonicalise each name again.
func (c *Compress) compressible(status int, h http.Header) bool {
	switch status {
	case http.StatusNoContent, http.StatusPartialContent, http.StatusNotModified:
		return false
	}
	if ce := first(h, "Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	if first(h, "Content-Range") != "" || strings.EqualFold(first(h, "X-Accel-Buffering"), "no") {
		return false
	}
	for _, cc := range h["Cache-Control"] {
		if containsToken(cc, "no-transform") {
			return false
		}
	}
	return c.typeAllowed(first(h, "Content-Type"))
}

// first is h.Get for a name already in canonical form.
func first(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c *Compress) typeAllowed(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "" {
		return false
	}
	for _, never := range neverTypes {
		if mt == never {
			return false
		}
	}
	for _, p := range c.types {
		if p.match(mt) {
			return true
		}
	}
	return false
}

// containsToken reports whether the comma-separated list s holds token
// (case-insensitive; parameters such as max-age=0 are other tokens).
func containsToken(s, token string) bool {
	for s != "" {
		var t string
		t, s, _ = strings.Cut(s, ",")
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// String is for tests and messages.
func (c *Compress) String() string {
	names := make([]string, len(c.codings))
	for i, cd := range c.codings {
		names[i] = cd.name
	}
	return fmt.Sprintf("compress(%s, min %d)", strings.Join(names, " "), c.minSize)
}
