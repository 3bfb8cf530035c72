package component

import (
	"errors"
	"net/http"
	"strings"
)

// ErrBadPath is a malformed percent-escape in the request path (400).
var ErrBadPath = errors.New("malformed percent-escape in the request path")

// RequestPath returns the request's SCRIPT_NAME and PATH_INFO as the
// components before have left them: Facts.ScriptName and Facts.PathInfo once
// a mount (urlmap) set them; else Facts.ScriptName (a proxy's prefix, or "")
// and the whole percent-decoded request path. It allocates only when the
// path holds an escape.
func RequestPath(r *http.Request) (scriptName, pathInfo string, err error) {
	f := FactsOf(r)
	if f != nil && f.PathSet {
		return f.ScriptName, f.PathInfo, nil
	}
	if f != nil {
		scriptName = f.ScriptName
	}
	raw := r.RequestURI
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if !strings.HasPrefix(raw, "/") {
		// absolute-form ("http://host/p"), "*", or a request built in
		// Go without RequestURI: net/http parsed it.
		raw = r.URL.EscapedPath()
	}
	pathInfo, err = PercentDecode(raw)
	return scriptName, pathInfo, err
}

// PercentDecode decodes %XX escapes to raw bytes, not checking UTF-8 (PEP
// 3333 hands PATH_INFO to the application as latin-1 bytes). It allocates
// only when s holds an escape.
func PercentDecode(s string) (string, error) {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", ErrBadPath
		}
		b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
		i += 2
	}
	return string(b), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// ErrUnsafeName is a file name that could leave the directory it is looked
// up in, or that no file can have: a "." or ".." segment, a backslash, a
// NUL byte.
var ErrUnsafeName = errors.New("unsafe file name (a . or .. segment, a backslash or a NUL byte)")

// RootRelative turns name, a slash-separated path below some directory (a
// request's PATH_INFO, the rest of an app's X-Sendfile path), into the
// relative name to open in an os.Root on that directory: leading, trailing
// and doubled slashes dropped, "." for the directory itself. A segment that
// is "." or "..", or holds a backslash or a NUL byte, is ErrUnsafeName: it
// is refused rather than cleaned, as it is only ever an attack or a bug.
// The os.Root then keeps symbolic links from leading out.
func RootRelative(name string) (string, error) {
	var b strings.Builder
	for rest := name; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		switch {
		case seg == "":
			continue
		case seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00"):
			return "", ErrUnsafeName
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(seg)
	}
	if b.Len() == 0 {
		return ".", nil
	}
	return b.String(), nil
}
