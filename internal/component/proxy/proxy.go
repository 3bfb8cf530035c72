// Package proxy is the `egg:wsgate#proxy` application: a reverse proxy to
// an HTTP upstream (a Go, Node or Rails service mounted beside Django), on
// net/http/httputil.ReverseProxy.
//
// Security: the upstream learns who the client is only from wsgate. The
// X-Forwarded-For/-Proto/-Host/-Prefix and Forwarded headers a client sends
// are replaced by what wsgate knows (proxyfix's Facts, else the connection),
// and the user header (X-Remote-User by default) with every look-alike
// spelling (Remote-User, Remote_User…) is removed from the client's request
// and set only from REMOTE_USER, which only auth (or a delegating app) sets.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "proxy",
		Role:    component.App,
		Sees:    component.SeesRequest,
		Summary: "Reverse proxy to an HTTP upstream: streaming both ways, WebSocket upgrades, X-Forwarded-* set, timeouts, an optional health check.",
		Doc: `Mounted under a urlmap prefix, a request for PREFIX/rest goes to UPSTREAM/base/rest with its query;
bodies stream both ways (server-sent events and long downloads are not buffered) and a WebSocket upgrade
passes through (HTTP/1.1 clients). The upstream gets ` + "`X-Forwarded-For`" + ` (the client's address, as proxyfix
established it), ` + "`X-Forwarded-Proto`" + `, ` + "`X-Forwarded-Host`" + ` (the Host the client asked for) and
` + "`X-Forwarded-Prefix`" + ` (the mount, SCRIPT_NAME); the client's own copies of these, and its ` + "`Forwarded`" + `, are
dropped. The ` + "`Host`" + ` header is the upstream's.

REMOTE_USER, when an auth filter (or a delegating app) set it, goes to the upstream in ` + "`user_header`" + `; that header
and its look-alikes (` + "`Remote-User`" + `, ` + "`X-Remote-User`" + `, any spelling with ` + "`_`" + `) are always removed from what the
client sent, so an upstream trusting it cannot be fooled.

An upstream that refuses the connection or breaks off is a 502; one that does not connect within
` + "`connect_timeout`" + ` or send its response head within ` + "`response_timeout`" + ` is a 504. With ` + "`health_path`" + `, the upstream
is asked for that path every ` + "`health_interval`" + `; while it does not answer 2xx or 3xx, requests get 502 at once.

    [app:api]
    use = egg:wsgate#proxy
    upstream = http://127.0.0.1:9000/api
    health_path = /healthz`,
		Options: []component.Option{
			{Name: "upstream", Type: "url", Required: true, Help: "http://host:port, with an optional base path the mounted paths are appended to."},
			{Name: "connect_timeout", Type: "duration", Default: "5", Help: "Time to connect to the upstream; 504 after it."},
			{Name: "response_timeout", Type: "duration", Default: "60", Help: "Time from the end of the request's head to the upstream's response head; 504 after it. 0: none. The body may then take as long as it needs."},
			{Name: "user_header", Type: "string", Default: "X-Remote-User", Help: "The request header carrying REMOTE_USER to the upstream (removed from clients' requests, with its look-alikes)."},
			{Name: "health_path", Type: "string", Help: "A path of the upstream asked for every health_interval; while it fails, requests get 502 without trying."},
			{Name: "health_interval", Type: "duration", Default: "10", Help: "How often health_path is asked."},
		},
		Build: build,
	})
}

type proxy struct {
	upstream   *url.URL
	userHeader string
	rp         *httputil.ReverseProxy
	log        *slog.Logger
	unhealthy  atomic.Bool
	stop       chan struct{}
	stopOnce   sync.Once
}

func build(b *component.Builder) (component.Built, error) {
	p := &proxy{log: slog.Default(), stop: make(chan struct{})}
	if b.Host != nil {
		p.log = b.Host.Logger()
	}
	raw, err := b.Required("upstream")
	if err != nil {
		return component.Built{}, err
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return component.Built{}, b.Errorf("upstream", "%q is not http://host:port[/base] (https:// also works)", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	p.upstream = u
	connect, err := b.Duration("connect_timeout", 5*time.Second)
	if err != nil {
		return component.Built{}, err
	}
	respTimeout, err := b.Duration("response_timeout", 60*time.Second)
	if err != nil {
		return component.Built{}, err
	}
	userHeader := b.String("user_header", "X-Remote-User")
	if !component.ValidHeaderName(userHeader) {
		return component.Built{}, b.Errorf("user_header", "%q is not a header name (letters, digits and '-')", userHeader)
	}
	p.userHeader = textproto.CanonicalMIMEHeaderKey(userHeader)
	healthPath := b.String("health_path", "")
	if healthPath != "" && !strings.HasPrefix(healthPath, "/") {
		return component.Built{}, b.Errorf("health_path", "%q does not start with /", healthPath)
	}
	interval, err := b.Duration("health_interval", 10*time.Second)
	if err != nil {
		return component.Built{}, err
	}
	if healthPath != "" && interval <= 0 {
		return component.Built{}, b.Errorf("health_interval", "must be more than 0")
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // the upstream is reached directly, whatever HTTP_PROXY says
	transport.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
	transport.ResponseHeaderTimeout = respTimeout
	transport.MaxIdleConnsPerHost = 64
	p.rp = &httputil.ReverseProxy{
		Rewrite:      p.rewrite,
		Transport:    transport,
		ErrorHandler: p.failed,
		ErrorLog:     slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	built := component.Built{Handler: p, Close: p.close}
	if healthPath != "" {
		go p.watch(healthPath, interval, connect)
	}
	return built, nil
}

func (p *proxy) close() error {
	p.stopOnce.Do(func() { close(p.stop) })
	p.rp.Transport.(*http.Transport).CloseIdleConnections()
	return nil
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.unhealthy.Load() {
		http.Error(w, "502 Bad Gateway: the upstream is failing its health check", http.StatusBadGateway)
		return
	}
	// A request body still streaming while the upstream answers.
	_ = http.NewResponseController(w).EnableFullDuplex()
	p.rp.ServeHTTP(w, r)
}

// rewrite makes the upstream's request: the path below the mount appended
// to the upstream's base, the forwarding headers from what wsgate knows.
func (p *proxy) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	script, rest := mountedPath(in)
	u := *p.upstream
	u.Path = p.upstream.Path + rest.path
	if p.upstream.RawPath != "" || rest.raw != "" {
		u.RawPath = p.upstream.EscapedPath() + rest.raw
	}
	u.RawQuery = in.URL.RawQuery
	out.URL = &u
	out.Host = ""

	// The client's own say about forwarding and users is dropped.
	out.Header.Del("Forwarded")
	out.Header.Del("X-Forwarded-Prefix")
	for name := range out.Header {
		canon := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if canon == "remote-user" || canon == "x-remote-user" || strings.EqualFold(canon, p.userHeader) {
			delete(out.Header, name)
		}
	}
	f := component.FactsOf(in)
	client, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		client = in.RemoteAddr
	}
	scheme := "http"
	if in.TLS != nil {
		scheme = "https"
	}
	if f != nil {
		if f.RemoteAddr != "" {
			client = f.RemoteAddr
		}
		if f.Scheme != "" {
			scheme = f.Scheme
		}
		if f.RemoteUser != "" {
			out.Header.Set(p.userHeader, f.RemoteUser)
		}
	}
	out.Header.Set("X-Forwarded-For", client)
	out.Header.Set("X-Forwarded-Proto", scheme)
	out.Header.Set("X-Forwarded-Host", in.Host)
	if script != "" {
		out.Header.Set("X-Forwarded-Prefix", script)
	}
}

// pathPart is a path both decoded and, when it holds escapes, as the
// client wrote it.
type pathPart struct{ path, raw string }

// mountedPath is SCRIPT_NAME and the path below it, keeping the client's
// escapes (%2F stays %2F): the escaped path without the mount's segments,
// when it decodes to PATH_INFO; else PATH_INFO, escaped anew.
func mountedPath(r *http.Request) (string, pathPart) {
	script, info, err := component.RequestPath(r)
	if err != nil {
		info = r.URL.Path // ReverseProxy's own parse; the upstream judges it
	}
	escaped := r.URL.EscapedPath()
	if !strings.Contains(escaped, "%") {
		return script, pathPart{path: info}
	}
	// SCRIPT_NAME may hold a proxy's prefix the path never had: try
	// dropping fewer segments until the rest is PATH_INFO.
	for k := strings.Count(script, "/"); k >= 0; k-- {
		rest := escaped
		for j := 0; j < k && rest != ""; j++ {
			if i := strings.IndexByte(rest[1:], '/'); i >= 0 {
				rest = rest[1+i:]
			} else {
				rest = ""
			}
		}
		if dec, err := url.PathUnescape(rest); err == nil && dec == info {
			return script, pathPart{path: info, raw: rest}
		}
	}
	return script, pathPart{path: info}
}

// failed answers when the upstream could not: 504 on a timeout, else 502.
func (p *proxy) failed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	code := http.StatusBadGateway
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		code = http.StatusGatewayTimeout
	}
	p.log.Error("proxy: upstream failed", "upstream", p.upstream.Redacted(), "method", r.Method, "uri", r.RequestURI,
		"status", code, "error", err.Error())
	http.Error(w, fmt.Sprintf("%d %s: the upstream did not answer", code, http.StatusText(code)), code)
}

// watch asks the upstream for path every interval and keeps p.unhealthy.
func (p *proxy) watch(path string, interval, timeout time.Duration) {
	client := &http.Client{Transport: p.rp.Transport, Timeout: timeout + interval}
	target := p.upstream.String() + path
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok := false
		resp, err := client.Get(target)
		if err == nil {
			resp.Body.Close()
			ok = resp.StatusCode < 400
		}
		if was := !p.unhealthy.Swap(!ok); was != ok {
			if ok {
				p.log.Info("proxy: upstream healthy again", "upstream", p.upstream.Redacted())
			} else {
				why := fmt.Sprint(err)
				if err == nil {
					why = resp.Status
				}
				p.log.Error("proxy: upstream failed its health check", "upstream", p.upstream.Redacted(), "path", path, "error", why)
			}
		}
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}
