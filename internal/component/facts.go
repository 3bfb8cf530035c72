package component

import (
	"context"
	"net/http"
	"time"
)

// Facts are what Go components establish about one request and the WSGI
// environ must carry. The compose step attaches one Facts to every request
// before the first component runs (Attach); components fill it in; the
// gateway reads it when it builds the environ. A field left empty means "as
// the connection says" (r.RemoteAddr, r.Host, r.TLS).
//
// Security: REMOTE_USER reaches a Python application only from RemoteUser,
// which only auth components set; client headers never become REMOTE_USER.
type Facts struct {
	// Scheme is wsgi.url_scheme ("http" or "https"), set by proxyfix from a
	// trusted proxy's X-Forwarded-Proto / Forwarded.
	Scheme string
	// RemoteAddr is REMOTE_ADDR (no port), set by proxyfix.
	RemoteAddr string
	// ServerName and ServerPort are SERVER_NAME and SERVER_PORT, set by
	// proxyfix from X-Forwarded-Host / Forwarded: host=.
	ServerName, ServerPort string
	// ScriptName is the part of the path already consumed by mounts
	// (proxyfix's X-Forwarded-Prefix, then each urlmap level): SCRIPT_NAME.
	// It never ends in "/".
	ScriptName string
	// PathInfo is what remains of the percent-decoded path below ScriptName;
	// valid only when PathSet is true (a urlmap set it).
	PathInfo string
	PathSet  bool
	// RemoteUser is REMOTE_USER; set only by auth components.
	RemoteUser string
	// RequestID is the request's id (requestid), for the environ
	// (HTTP_X_REQUEST_ID) and every log line of the request.
	RequestID string
	// Route names the mount that served the request (the urlmap prefix,
	// "/" at the top), a metrics label.
	Route string
	// Pool names the worker pool that served the request ("" for Go apps).
	Pool string
	// BodySeen is set by compose when a Go component on the request's route
	// reads the response body (SeesResponseBody): the gateway then keeps
	// the body on the master's path instead of letting the worker write it
	// to the client itself.
	BodySeen bool
	// QueueWait is how long the request waited for a worker slot, set by
	// the gateway once it has one (zero when a slot was free at once);
	// Dispatched is true once it has (a Python application took the
	// request). metrics reads both.
	QueueWait  time.Duration
	Dispatched bool
}

type factsKey struct{}

// factsContext carries a request's Facts in its context: one allocation for
// both (context.WithValue and a separate Facts would be two).
type factsContext struct {
	context.Context
	facts Facts
}

func (c *factsContext) Value(key any) any {
	if key == (factsKey{}) {
		return &c.facts
	}
	return c.Context.Value(key)
}

// Attach returns r with a fresh Facts in its context, unless it has one.
func Attach(r *http.Request) (*http.Request, *Facts) {
	if f, ok := r.Context().Value(factsKey{}).(*Facts); ok {
		return r, f
	}
	c := &factsContext{Context: r.Context()}
	return r.WithContext(c), &c.facts
}

// FactsOf returns the request's Facts, or nil when none was attached.
func FactsOf(r *http.Request) *Facts {
	f, _ := r.Context().Value(factsKey{}).(*Facts)
	return f
}
