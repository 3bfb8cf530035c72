package accesslog

import (
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wsgate/wsgate/internal/component"
)

// entry is what one line says about one exchange.
type entry struct {
	start     time.Time
	duration  time.Duration
	remote    string
	user      string
	method    string
	uri       string
	proto     string
	host      string
	status    int
	bytes     int64
	referer   string
	userAgent string
	requestID string
	aborted   bool // the response was cut off
}

func newEntry(r *http.Request, facts *component.Facts, rec *component.Recorder, start time.Time) entry {
	e := entry{
		start:     start,
		duration:  time.Since(start),
		method:    r.Method,
		uri:       r.RequestURI,
		proto:     r.Proto,
		host:      r.Host,
		status:    rec.Status,
		bytes:     rec.Written,
		referer:   r.Header.Get("Referer"),
		userAgent: r.Header.Get("User-Agent"),
	}
	if e.status == 0 {
		e.status = http.StatusOK // net/http's answer to a handler that wrote nothing
	}
	e.remote = facts.RemoteAddr
	if e.remote == "" {
		e.remote = r.RemoteAddr
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			e.remote = host
		}
	}
	e.user = facts.RemoteUser
	e.requestID = facts.RequestID
	return e
}

// clfTime is the Common Log Format's timestamp layout.
const clfTime = "02/Jan/2006:15:04:05 -0700"

// clfStamp is one second's timestamp, formatted once: every line of that
// second reuses it (formatting is a good part of a line's cost).
type clfStamp struct {
	unix int64
	zone *time.Location
	text string
}

var lastStamp atomic.Pointer[clfStamp]

func appendCLFTime(b []byte, t time.Time) []byte {
	if s := lastStamp.Load(); s != nil && s.unix == t.Unix() && s.zone == t.Location() {
		return append(b, s.text...)
	}
	s := &clfStamp{unix: t.Unix(), zone: t.Location(), text: t.Format(clfTime)}
	lastStamp.Store(s)
	return append(b, s.text...)
}

// appendText writes the Common Log Format line, with the two quoted fields of
// the combined format when combined, then the duration in seconds and the
// request id:
//
//	host - user [time] "request" status bytes ["referer" "agent"] seconds "id"
//
// Every field a client chose is quoted or checked, and escaped: it can never
// end its field or the line.
func (e *entry) appendText(b []byte, combined bool) []byte {
	b = appendBare(b, e.remote)
	b = append(b, " - "...)
	b = appendBare(b, e.user)
	b = append(b, " ["...)
	b = appendCLFTime(b, e.start)
	b = append(b, "] \""...)
	b = appendEscaped(b, e.method)
	b = append(b, ' ')
	b = appendEscaped(b, e.uri)
	b = append(b, ' ')
	b = appendEscaped(b, e.proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, ' ')
	if e.bytes == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, e.bytes, 10)
	}
	if combined {
		b = appendQuoted(b, e.referer)
		b = appendQuoted(b, e.userAgent)
	}
	b = append(b, ' ')
	b = strconv.AppendFloat(b, e.duration.Seconds(), 'f', 6, 64)
	b = appendQuoted(b, e.requestID)
	return append(b, '\n')
}

// appendQuoted writes ` "value"`, or ` "-"` for an empty value.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, " \""...)
	if s == "" {
		b = append(b, '-')
	} else {
		b = appendEscaped(b, s)
	}
	return append(b, '"')
}

// appendBare writes an unquoted field: "-" when empty, and escaped, spaces
// included, so that it stays one field.
func appendBare(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			b = append(b, `\x20`...)
			continue
		}
		b = appendEscapedByte(b, s[i])
	}
	return b
}

// appendEscaped escapes what could end a quoted field or the line, as
// Apache's and nginx's logs do: `"` and `\` get a backslash; control
// characters and bytes outside ASCII become \xHH.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b = appendEscapedByte(b, s[i])
	}
	return b
}

const hexDigits = "0123456789ABCDEF"

func appendEscapedByte(b []byte, c byte) []byte {
	switch {
	case c == '"' || c == '\\':
		return append(b, '\\', c)
	case c < 0x20 || c >= 0x7f:
		return append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
	}
	return append(b, c)
}

// appendJSON writes the entry as one JSON object on one line.
func (e *entry) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = e.start.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendJSONField(b, "remote_addr", e.remote)
	b = appendJSONField(b, "remote_user", e.user)
	b = appendJSONField(b, "method", e.method)
	b = appendJSONField(b, "uri", e.uri)
	b = appendJSONField(b, "proto", e.proto)
	b = appendJSONField(b, "host", e.host)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.bytes, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendFloat(b, e.duration.Seconds(), 'f', 6, 64)
	b = appendJSONField(b, "referer", e.referer)
	b = appendJSONField(b, "user_agent", e.userAgent)
	b = appendJSONField(b, "request_id", e.requestID)
	if e.aborted {
		b = append(b, `,"aborted":true`...)
	}
	return append(b, "}\n"...)
}

func appendJSONField(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, value)
}

// appendJSONString writes s as a JSON string: quotes, backslashes and every
// control character escaped; bytes that are not UTF-8 become U+FFFD, as
// encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
