// Package cors is the `egg:wsgate#cors` filter: Cross-Origin Resource
// Sharing decided in Go from the INI file. Preflight requests (OPTIONS with
// Origin and Access-Control-Request-Method) are answered here and never take
// a worker; actual requests from an allowed origin get
// Access-Control-Allow-Origin on their way to the app.
//
// Security properties, enforced here:
//   - `origins = *` together with `credentials = true` is refused at load:
//     it would let every site read responses made with the user's cookies.
//     The same goes for `headers = *`. The origin "null" (sandboxed frames,
//     file: pages) is refused too: any page can claim it.
//   - Origins are compared exactly (scheme, host and port), never by
//     prefix or suffix.
//   - Every response says Vary: Origin, so a cache never hands one origin's
//     answer to another.
package cors

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "cors",
		Role:    component.Filter,
		Sees:    component.SeesRequest,
		Summary: "Answers CORS preflight requests in Go and marks actual requests from allowed origins, from origins listed in the INI file.",
		Doc: `A preflight (` + "`OPTIONS`" + ` with ` + "`Origin`" + ` and ` + "`Access-Control-Request-Method`" + `) is answered by Go: 204 with the
` + "`Access-Control-Allow-*`" + ` headers when the origin, the method and every requested header are allowed, 403
without them otherwise (the browser then refuses the request). It never reaches the application. Other
requests go on to the application; those from an allowed origin carry ` + "`Access-Control-Allow-Origin`" + ` (and
` + "`-Allow-Credentials`" + `, ` + "`-Expose-Headers`" + ` as configured). Every response has ` + "`Vary: Origin`" + `.

Origins are compared exactly: ` + "`https://app.example.com`" + ` allows neither ` + "`http://app.example.com`" + ` nor
` + "`https://app.example.com:8443`" + `. ` + "`*`" + ` allows any origin, and is refused at load with ` + "`credentials = true`" + `
(browsers would refuse it too). The application should not set CORS headers itself (remove
django-cors-headers when this filter is in front): the browser rejects a response that carries two.

    [filter:cors]
    use = egg:wsgate#cors
    origins = https://app.example.com https://admin.example.com
    methods = GET POST PUT DELETE
    headers = Content-Type X-CSRFToken
    credentials = true
    max_age = 600`,
		Options: []component.Option{
			{Name: "origins", Type: "list", Required: true, Help: "Allowed origins (scheme://host[:port]), space-separated, or * for any."},
			{Name: "methods", Type: "list", Default: "GET HEAD POST", Help: "Methods a preflight may ask for."},
			{Name: "headers", Type: "list", Help: "Request headers a preflight may ask for (case-insensitive), or * for any (not with credentials)."},
			{Name: "expose_headers", Type: "list", Help: "Response headers the page's script may read besides the CORS-safelisted ones."},
			{Name: "credentials", Type: "bool", Default: "false", Help: "Allow requests with cookies or HTTP authentication (Access-Control-Allow-Credentials: true)."},
			{Name: "max_age", Type: "duration", Default: "0", Help: "How long a browser may cache a preflight answer (Access-Control-Max-Age); 0 sends none."},
		},
		Build: build,
	})
}

type policy struct {
	anyOrigin   bool
	origins     map[string]bool
	methods     map[string]bool
	allowMethod string // Access-Control-Allow-Methods
	anyHeader   bool
	headers     map[string]bool // lower case
	expose      string          // Access-Control-Expose-Headers
	credentials bool
	maxAge      string // seconds, "" for none
}

func build(b *component.Builder) (component.Built, error) {
	p := &policy{origins: map[string]bool{}, methods: map[string]bool{}, headers: map[string]bool{}}
	if _, err := b.Required("origins"); err != nil {
		return component.Built{}, err
	}
	for _, o := range b.List("origins") {
		if o == "*" {
			p.anyOrigin = true
			continue
		}
		norm, msg := normalOrigin(o)
		if msg != "" {
			return component.Built{}, b.Errorf("origins", "%q %s", o, msg)
		}
		p.origins[norm] = true
	}
	methods := b.List("methods")
	if _, set := b.Lookup("methods"); !set {
		methods = []string{"GET", "HEAD", "POST"}
	}
	for _, m := range methods {
		if !isToken(m) {
			return component.Built{}, b.Errorf("methods", "%q is not a method name", m)
		}
		p.methods[m] = true
	}
	p.allowMethod = strings.Join(methods, ", ")
	for _, h := range b.List("headers") {
		if h == "*" {
			p.anyHeader = true
			continue
		}
		if !isToken(h) {
			return component.Built{}, b.Errorf("headers", "%q is not a header name", h)
		}
		p.headers[strings.ToLower(h)] = true
	}
	expose := b.List("expose_headers")
	for _, h := range expose {
		if !isToken(h) {
			return component.Built{}, b.Errorf("expose_headers", "%q is not a header name", h)
		}
	}
	p.expose = strings.Join(expose, ", ")
	var err error
	if p.credentials, err = b.Bool("credentials", false); err != nil {
		return component.Built{}, err
	}
	age, err := b.Duration("max_age", 0)
	if err != nil {
		return component.Built{}, err
	}
	if s := int64(age.Seconds()); s > 0 {
		p.maxAge = strconv.FormatInt(s, 10)
	}
	if p.credentials && p.anyOrigin {
		return component.Built{}, b.Errorf("origins", "* cannot be used with credentials = true: any site could read your users' responses; list the origins")
	}
	if p.credentials && p.anyHeader {
		return component.Built{}, b.Errorf("headers", "* cannot be used with credentials = true; list the headers")
	}
	return component.Built{Wrap: p.wrap}, nil
}

// normalOrigin returns the origin as browsers serialise it (lower-case
// scheme and host, no default port), or why it is not one.
func normalOrigin(o string) (string, string) {
	if o == "null" {
		return "", "is refused: any sandboxed page or file: URL sends Origin: null"
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil {
		return "", "is not an origin (scheme://host[:port])"
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", "is not an origin: an origin has no path (scheme://host[:port])"
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		return scheme + "://" + host + ":" + port, ""
	}
	return scheme + "://" + host, ""
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func (p *policy) allowed(origin string) bool {
	return p.anyOrigin || p.origins[origin]
}

// allowOrigin is the Access-Control-Allow-Origin value for an allowed
// origin: "*" only when any origin may read and no credentials are shared.
func (p *policy) allowOrigin(origin string) string {
	if p.anyOrigin && !p.credentials {
		return "*"
	}
	return origin
}

func (p *policy) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			p.preflight(w, r, origin)
			return
		}
		if origin != "" && p.allowed(origin) {
			h.Set("Access-Control-Allow-Origin", p.allowOrigin(origin))
			if p.credentials {
				h.Set("Access-Control-Allow-Credentials", "true")
			}
			if p.expose != "" {
				h.Set("Access-Control-Expose-Headers", p.expose)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// preflight answers a CORS preflight: 204 with the grants when everything
// asked for is allowed, 403 without any otherwise.
func (p *policy) preflight(w http.ResponseWriter, r *http.Request, origin string) {
	h := w.Header()
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	method := r.Header.Get("Access-Control-Request-Method")
	var asked []string
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				asked = append(asked, name)
			}
		}
	}
	refuse := func(why string) {
		http.Error(w, "403 Forbidden: CORS preflight refused: "+why, http.StatusForbidden)
	}
	if !p.allowed(origin) {
		refuse("origin not allowed")
		return
	}
	if !p.methods[method] {
		refuse("method not allowed")
		return
	}
	for _, name := range asked {
		if !p.anyHeader && !p.headers[strings.ToLower(name)] {
			refuse("header " + textproto.CanonicalMIMEHeaderKey(name) + " not allowed")
			return
		}
	}
	h.Set("Access-Control-Allow-Origin", p.allowOrigin(origin))
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Set("Access-Control-Allow-Methods", p.allowMethod)
	if len(asked) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(asked, ", "))
	}
	if p.maxAge != "" {
		h.Set("Access-Control-Max-Age", p.maxAge)
	}
	w.WriteHeader(http.StatusNoContent)
}
