package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/protocol"
)

type scriptNameKey struct{}

// WithScriptName returns a context that tells the gateway the request's
// application is mounted at prefix (e.g. by a Go urlmap): SCRIPT_NAME is
// prefix and PATH_INFO the rest of the path. prefix has no trailing slash.
func WithScriptName(ctx context.Context, prefix string) context.Context {
	return context.WithValue(ctx, scriptNameKey{}, prefix)
}

var errBadPath = errors.New("malformed percent-escape in the request path")

// requestPath returns PATH_INFO's source: the raw request path,
// percent-decoded to bytes (which the environ carries as latin-1), and the
// SCRIPT_NAME it falls under.
func requestPath(r *http.Request, mount string) (scriptName, pathInfo string, err error) {
	raw := r.RequestURI
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if !strings.HasPrefix(raw, "/") {
		// absolute-form ("http://host/p") or "*": net/http parsed it.
		raw = r.URL.EscapedPath()
	}
	path, err := percentDecode(raw)
	if err != nil {
		return "", "", err
	}
	if sn, ok := r.Context().Value(scriptNameKey{}).(string); ok {
		mount = sn
	}
	if mount != "" && strings.HasPrefix(path, mount) && (len(path) == len(mount) || path[len(mount)] == '/') {
		return mount, path[len(mount):], nil
	}
	return "", path, nil // not under the mount: the whole path is PATH_INFO
}

// percentDecode decodes %XX escapes to raw bytes, not checking UTF-8 (PEP
// 3333 hands PATH_INFO to the application as latin-1 bytes). It allocates
// only when s holds an escape.
func percentDecode(s string) (string, error) {
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
			return "", errBadPath
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

// appendEnviron encodes the CGI part of the WSGI environ as a marshal dict;
// the worker adds the wsgi.* objects that are the same for every request.
func appendEnviron(b []byte, r *http.Request, scriptName, pathInfo string) []byte {
	b = protocol.BeginDict(b)
	b = protocol.AppendItem(b, "REQUEST_METHOD", r.Method)
	b = protocol.AppendItem(b, "SCRIPT_NAME", scriptName)
	b = protocol.AppendItem(b, "PATH_INFO", pathInfo)
	b = protocol.AppendItem(b, "QUERY_STRING", r.URL.RawQuery)
	b = protocol.AppendItem(b, "REQUEST_URI", r.RequestURI)
	b = protocol.AppendItem(b, "SERVER_PROTOCOL", r.Proto)
	if r.TLS != nil {
		b = protocol.AppendItem(b, "wsgi.url_scheme", "https")
	} else {
		b = protocol.AppendItem(b, "wsgi.url_scheme", "http")
	}
	host, port := splitHostPort(r.Host)
	if host == "" {
		if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host, port = splitHostPort(local.String())
		}
	}
	if port == "" {
		port = "80"
		if r.TLS != nil {
			port = "443"
		}
	}
	b = protocol.AppendItem(b, "SERVER_NAME", host)
	b = protocol.AppendItem(b, "SERVER_PORT", port)
	if addr, rport, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		b = protocol.AppendItem(b, "REMOTE_ADDR", addr)
		b = protocol.AppendItem(b, "REMOTE_PORT", rport)
	}
	if r.Host != "" {
		b = protocol.AppendItem(b, "HTTP_HOST", r.Host)
	}
	if r.ContentLength >= 0 {
		if v, ok := r.Header["Content-Length"]; ok && len(v) > 0 {
			b = protocol.AppendItem(b, "CONTENT_LENGTH", v[0])
		} else if r.ContentLength > 0 {
			b = protocol.AppendItem(b, "CONTENT_LENGTH", strconv.FormatInt(r.ContentLength, 10))
		}
	}
	for name, values := range r.Header {
		switch name {
		case "Content-Length":
			continue
		case "Content-Type":
			b = protocol.AppendLatin1(b, "CONTENT_TYPE")
			b = appendJoined(b, values, ", ")
			continue
		}
		// A name with "_" would collide with the "-" one in the environ
		// (X_Forwarded_For vs X-Forwarded-For): drop it, as nginx does.
		if strings.IndexByte(name, '_') >= 0 {
			continue
		}
		b = appendHTTPKey(b, name)
		sep := ", "
		if name == "Cookie" {
			sep = "; " // HTTP/2 sends each cookie in a header of its own
		}
		b = appendJoined(b, values, sep)
	}
	return protocol.EndDict(b)
}

func splitHostPort(hostport string) (host, port string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
}

// appendHTTPKey appends "HTTP_" + name upper-cased with "-" as "_", as a
// marshal str, without building the string first.
func appendHTTPKey(b []byte, name string) []byte {
	n := len("HTTP_") + len(name)
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			// Not a token: net/http refuses such names, but stay correct.
			return protocol.AppendLatin1(b, "HTTP_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
		}
	}
	if n < 256 {
		b = append(b, 'z', byte(n))
	} else {
		b = append(b, 'a', byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
	}
	b = append(b, "HTTP_"...)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-':
			c = '_'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// appendJoined appends values joined by sep as one latin-1 str.
func appendJoined(b []byte, values []string, sep string) []byte {
	if len(values) == 1 {
		return protocol.AppendLatin1(b, values[0])
	}
	return protocol.AppendLatin1(b, strings.Join(values, sep))
}
