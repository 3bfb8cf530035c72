package gateway

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/protocol"
)

// requestPath returns SCRIPT_NAME and PATH_INFO: as the Go components
// before the gateway left them (component.RequestPath: a urlmap's mount, a
// proxy's prefix), else the percent-decoded request path (latin-1 bytes in
// the environ), under the handler's own mount when it has one.
func requestPath(r *http.Request, mount string) (scriptName, pathInfo string, err error) {
	scriptName, path, err := component.RequestPath(r)
	if err != nil || scriptName != "" || mount == "" {
		return scriptName, path, err
	}
	if strings.HasPrefix(path, mount) && (len(path) == len(mount) || path[len(mount)] == '/') {
		return mount, path[len(mount):], nil
	}
	return "", path, nil // not under the mount: the whole path is PATH_INFO
}

// appendEnviron encodes the CGI part of the WSGI environ as a marshal dict;
// the worker adds the wsgi.* objects that are the same for every request.
// What Go components established (component.Facts: a trusted proxy's
// scheme, client and host, an authenticated user, the request id) wins over
// what the connection says.
func appendEnviron(b []byte, r *http.Request, scriptName, pathInfo string) []byte {
	f := component.FactsOf(r)
	if f == nil {
		f = &noFacts
	}
	b = protocol.BeginDict(b)
	b = protocol.AppendItem(b, "REQUEST_METHOD", r.Method)
	b = protocol.AppendItem(b, "SCRIPT_NAME", scriptName)
	if r.RequestURI == "*" {
		pathInfo = "" // OPTIONS *: the application as a whole, no path in it
	}
	b = protocol.AppendItem(b, "PATH_INFO", pathInfo)
	b = protocol.AppendItem(b, "QUERY_STRING", r.URL.RawQuery)
	b = protocol.AppendItem(b, "REQUEST_URI", r.RequestURI)
	b = protocol.AppendItem(b, "SERVER_PROTOCOL", r.Proto)
	scheme := f.Scheme
	if scheme == "" {
		scheme = "http"
		if r.TLS != nil {
			scheme = "https"
		}
	}
	b = protocol.AppendItem(b, "wsgi.url_scheme", scheme)
	if scheme == "https" {
		b = protocol.AppendItem(b, "HTTPS", "on") // as CGI servers say it
	}
	if r.TLS != nil {
		b = appendClientCert(b, r)
	}
	host, port := f.ServerName, f.ServerPort
	if host == "" {
		host, port = splitHostPort(r.Host)
		if host == "" {
			if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
				host, port = splitHostPort(local.String())
			}
		}
		if f.ServerPort != "" {
			port = f.ServerPort // a proxy forwarded the port, not the host
		}
	}
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	b = protocol.AppendItem(b, "SERVER_NAME", host)
	b = protocol.AppendItem(b, "SERVER_PORT", port)
	if f.RemoteAddr != "" {
		// A trusted proxy's client: the connection's port is the proxy's.
		b = protocol.AppendItem(b, "REMOTE_ADDR", f.RemoteAddr)
	} else if addr, rport, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		b = protocol.AppendItem(b, "REMOTE_ADDR", addr)
		b = protocol.AppendItem(b, "REMOTE_PORT", rport)
	}
	// REMOTE_USER comes from an auth component only, never from a header.
	if f.RemoteUser != "" {
		b = protocol.AppendItem(b, "REMOTE_USER", f.RemoteUser)
	}
	if f.RequestID != "" {
		b = protocol.AppendItem(b, "HTTP_X_REQUEST_ID", f.RequestID)
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
	// net/http moves Transfer-Encoding out of the header; PEP 3333 (every
	// client header) and gunicorn give it to the application.
	if len(r.TransferEncoding) > 0 && len(r.Header["Transfer-Encoding"]) == 0 {
		b = protocol.AppendItem(b, "HTTP_TRANSFER_ENCODING", strings.Join(r.TransferEncoding, ", "))
	}
	for name, values := range r.Header {
		switch name {
		case "Content-Length":
			continue
		case "Content-Type":
			b = protocol.AppendLatin1(b, "CONTENT_TYPE")
			b = appendJoined(b, values, ", ")
			continue
		case "X-Request-Id":
			if f.RequestID != "" {
				continue // the id the requestid component kept or made
			}
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

// appendClientCert passes a TLS client certificate as mod_ssl and nginx
// do: its subject and issuer (RFC 2253) and SSL_CLIENT_VERIFY, SUCCESS for
// a certificate verified against ca_certs, NONE without one (an unverified
// certificate never gets this far: the handshake refuses it).
func appendClientCert(b []byte, r *http.Request) []byte {
	if len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return protocol.AppendItem(b, "SSL_CLIENT_VERIFY", "NONE")
	}
	leaf := r.TLS.VerifiedChains[0][0]
	b = protocol.AppendItem(b, "SSL_CLIENT_VERIFY", "SUCCESS")
	b = protocol.AppendItem(b, "SSL_CLIENT_S_DN", leaf.Subject.String())
	return protocol.AppendItem(b, "SSL_CLIENT_I_DN", leaf.Issuer.String())
}

// noFacts stands for a request no compose step saw (tests, benchmarks).
var noFacts component.Facts

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
