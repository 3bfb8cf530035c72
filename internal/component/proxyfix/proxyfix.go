// Package proxyfix is the `egg:wsgate#proxyfix` filter: behind a reverse
// proxy, it tells the application who the client is and how it reached the
// site, from the proxy's X-Forwarded-* or RFC 7239 Forwarded headers.
//
// Security: the headers are believed only when the connection comes from a
// peer in `trusted`, and only as far as the chain of trusted proxies goes:
// X-Forwarded-For (and Forwarded's for=) is walked from the right, one entry
// per hop, while the proxy that wrote the entry is trusted and at most
// `hops` entries. Anything a client wrote itself stays to the left of the
// walk and never reaches REMOTE_ADDR. Headers from an untrusted peer change
// nothing; the application still sees them as HTTP_X_FORWARDED_* (and
// HTTP_FORWARDED), as plain client data.
//
// What it establishes goes into component.Facts: RemoteAddr (REMOTE_ADDR),
// Scheme (wsgi.url_scheme), ServerName and ServerPort (SERVER_NAME,
// SERVER_PORT) and the ScriptName prefix (SCRIPT_NAME); the request itself
// is left as the connection delivered it.
package proxyfix

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "proxyfix",
		Role:    component.Filter,
		Sees:    component.SeesRequest,
		Summary: "Believe a trusted reverse proxy's X-Forwarded-* or Forwarded headers: REMOTE_ADDR, wsgi.url_scheme, SERVER_NAME, SERVER_PORT and SCRIPT_NAME follow them.",
		Doc: `Put it first in the pipeline, in front of everything that logs or decides by the client's address.

The headers are believed only from a direct peer listed in ` + "`trusted`" + `. X-Forwarded-For (or
Forwarded's ` + "`for=`" + `) is read from the right. The last entry was written by the direct peer, so it is
believed; if it names a trusted proxy, the entry before it (which that proxy wrote) is believed too, and so
on, up to ` + "`hops`" + ` entries. The last entry believed becomes REMOTE_ADDR: the nearest address that is not
a trusted proxy, unless ` + "`hops`" + ` ran out first. Entries further left were written by the client or by
proxies nobody vouches for, and are never used. An entry that is not an IP address (` + "`unknown`" + `, an
obfuscated ` + "`_name`" + `) ends the walk: REMOTE_ADDR is then the last address known, the proxy that wrote
it (the connection's peer if that is the direct peer). The other headers (proto, host, port, prefix) are
read at the same depth: in a comma-separated list, the entry of the outermost proxy believed; a shorter list
(proxies that overwrite rather than append) gives its first entry.

Behind a proxy that connects through a unix socket listener (` + "`--bind unix:…`" + `), such a peer has no
address: ` + "`trust_unix = true`" + ` believes every connection of a unix socket (only processes allowed to open
the socket file can make one), while connections to the server's TCP listeners still need ` + "`trusted`" + `.

Only the headers listed in ` + "`headers`" + ` are read: list exactly those your proxy sets or overwrites, since
any other one passes from the client unchanged. X-Forwarded-* and Forwarded cannot be mixed (they would
describe the same hops twice). X-Forwarded-Proto must be http or https, X-Forwarded-Host a host name or
address with an optional port, X-Forwarded-Port a port number, X-Forwarded-Prefix a path starting with
"/"; a value that is not is ignored. When the scheme or host is forwarded and no port is, SERVER_PORT is the
port of the host, else the scheme's default.

The request headers themselves are left in place: the application still sees HTTP_X_FORWARDED_FOR and
the others, whether or not they were believed, and must never trust them itself. REMOTE_USER is never set
from any header.`,
		Options: []component.Option{
			{Name: "trusted", Type: "networks",
				Help: "Addresses and networks of the proxies whose headers are believed, space-separated (`127.0.0.1 10.0.0.0/8 ::1`). Required unless `trust_unix` is true."},
			{Name: "trust_unix", Type: "bool", Default: "false",
				Help: "Also believe the headers on connections through a unix socket listener (`--bind unix:…`), as from nginx on the same machine; `trusted` may then be left out."},
			{Name: "hops", Type: "int", Default: "1",
				Help: "How many proxies' entries are believed at most, counting from the direct peer."},
			{Name: "headers", Type: "list", Default: "x-forwarded-for x-forwarded-proto",
				Help: "The headers read: any of `x-forwarded-for`, `x-forwarded-proto`, `x-forwarded-host`, `x-forwarded-port`, `x-forwarded-prefix`, or `forwarded` alone."},
		},
		Build: build,
	})
}

// which headers a Fixer reads
const (
	xFor = 1 << iota
	xProto
	xHost
	xPort
	xPrefix
	forwarded
)

var headerBits = map[string]int{
	"x-forwarded-for":    xFor,
	"x-forwarded-proto":  xProto,
	"x-forwarded-host":   xHost,
	"x-forwarded-port":   xPort,
	"x-forwarded-prefix": xPrefix,
	"forwarded":          forwarded,
}

// Fixer holds one configured proxyfix.
type Fixer struct {
	trusted   []netip.Prefix
	trustUnix bool // every peer of a unix socket listener is trusted
	hops      int
	headers   int
}

func build(b *component.Builder) (component.Built, error) {
	f := &Fixer{}
	var err error
	if f.trustUnix, err = b.Bool("trust_unix", false); err != nil {
		return component.Built{}, err
	}
	if v, _ := b.Lookup("trusted"); v == "" && !f.trustUnix {
		return component.Built{}, b.Errorf("", "option trusted is required (or trust_unix = true behind a proxy on a unix socket)")
	}
	nets, err := b.Networks("trusted")
	if err != nil {
		return component.Built{}, err
	}
	for _, n := range nets {
		addr, _ := netip.AddrFromSlice(n.IP)
		ones, _ := n.Mask.Size()
		f.trusted = append(f.trusted, netip.PrefixFrom(addr.Unmap(), ones))
	}
	if f.hops, err = b.Int("hops", 1, 1); err != nil {
		return component.Built{}, err
	}
	names := b.List("headers")
	if _, set := b.Lookup("headers"); !set {
		names = []string{"x-forwarded-for", "x-forwarded-proto"}
	}
	for _, name := range names {
		bit, ok := headerBits[strings.ToLower(name)]
		if !ok {
			return component.Built{}, b.Errorf("headers", "%q is not one of x-forwarded-for, x-forwarded-proto, x-forwarded-host, x-forwarded-port, x-forwarded-prefix, forwarded", name)
		}
		f.headers |= bit
	}
	if f.headers&forwarded != 0 && f.headers != forwarded {
		return component.Built{}, b.Errorf("headers", "forwarded and x-forwarded-* describe the same hops: honour one or the other")
	}
	if f.headers == 0 {
		return component.Built{}, b.Errorf("headers", "no header to honour")
	}
	return component.Built{Wrap: f.Wrap}, nil
}

// Wrap returns next behind the fixer.
func (f *Fixer) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.trustUnix && viaUnixSocket(r) || f.isTrustedPeer(r.RemoteAddr) {
			r2, facts := component.Attach(r)
			f.apply(r2, facts)
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// viaUnixSocket reports whether the request came through a unix socket
// listener (a proxy on the same machine: only it can connect).
func viaUnixSocket(r *http.Request) bool {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return local != nil && local.Network() == "unix"
}

func (f *Fixer) isTrustedPeer(remote string) bool {
	peer, ok := peerAddr(remote)
	return ok && f.isTrusted(peer)
}

func (f *Fixer) isTrusted(a netip.Addr) bool {
	for _, p := range f.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forward is what one hop said about the request it passed on.
type forward struct {
	forIP                     netip.Addr // zero when absent or not an address
	forSet                    bool
	proto, host, port, prefix string
}

// hopList is what the proxies said, hop by hop, the nearest (rightmost)
// first.
type hopList interface {
	Len() int
	At(i int) forward
}

// apply reads the honoured headers of a request from a trusted peer.
func (f *Fixer) apply(r *http.Request, facts *component.Facts) {
	if f.headers == forwarded {
		applyHops(f, r, facts, forwardedHops(parseForwarded(r.Header.Values("Forwarded"))))
		return
	}
	applyHops(f, r, facts, f.xForwarded(r.Header))
}

// applyHops is generic so that neither list is boxed: X-Forwarded-* is
// read in place, without an allocation on the way.
func applyHops[L hopList](f *Fixer, r *http.Request, facts *component.Facts, hops L) {
	n := hops.Len()
	if n == 0 {
		return
	}
	// Walk from the direct peer outwards: hop i was written by the proxy
	// that hop i-1 names (hop 0 by the direct peer, already trusted).
	depth := 0
	client := netip.Addr{}
	for i := 0; i < n && i < f.hops; i++ {
		if i > 0 && !(client.IsValid() && f.isTrusted(client)) {
			break
		}
		depth = i + 1
		h := hops.At(i)
		if !h.forSet {
			continue // this hop says nothing about its client: keep walking on the others
		}
		if !h.forIP.IsValid() {
			break // "unknown", "_hidden": the proxy that wrote it is as far as we know
		}
		client = h.forIP
	}
	if depth == 0 {
		return
	}
	if client.IsValid() {
		facts.RemoteAddr = client.String()
	}
	at := hops.At(depth - 1)
	scheme := ""
	switch {
	case strings.EqualFold(at.proto, "http"):
		scheme = "http"
	case strings.EqualFold(at.proto, "https"):
		scheme = "https"
	}
	if scheme != "" {
		facts.Scheme = scheme
	}
	host, hostPort, hostOK := splitHost(at.host)
	port := ""
	if n, err := strconv.Atoi(at.port); err == nil && n > 0 && n < 65536 {
		port = at.port
	}
	if hostOK {
		facts.ServerName = host
	}
	if hostOK || scheme != "" || port != "" {
		if port == "" {
			port = hostPort
		}
		if port == "" && !hostOK {
			_, port, _ = splitHost(r.Host) // the Host the proxy passed on
		}
		if port == "" {
			port = "80"
			if scheme == "https" || scheme == "" && r.TLS != nil {
				port = "443"
			}
		}
		facts.ServerPort = port
	}
	if prefix, ok := cleanPrefix(at.prefix); ok {
		facts.ScriptName = prefix + facts.ScriptName
	}
}

// xForwardedHops are the X-Forwarded-* header lines, read in place. The
// lists need not be equally long: proto, host, port and prefix are aligned
// on the right with For, and a shorter one gives its first entry to the
// hops beyond it.
type xForwardedHops struct {
	fors, protos, hosts, ports, prefixes []string // header lines; nil when not honoured
}

func (f *Fixer) xForwarded(h http.Header) xForwardedHops {
	lines := func(bit int, name string) []string {
		if f.headers&bit == 0 {
			return nil
		}
		return h[name] // canonical names: Header.Values without the lookup's copy
	}
	return xForwardedHops{
		fors:     lines(xFor, "X-Forwarded-For"),
		protos:   lines(xProto, "X-Forwarded-Proto"),
		hosts:    lines(xHost, "X-Forwarded-Host"),
		ports:    lines(xPort, "X-Forwarded-Port"),
		prefixes: lines(xPrefix, "X-Forwarded-Prefix"),
	}
}

func (x xForwardedHops) Len() int {
	return max(entries(x.fors), entries(x.protos), entries(x.hosts), entries(x.ports), entries(x.prefixes))
}

func (x xForwardedHops) At(i int) forward {
	var h forward
	if i < entries(x.fors) {
		h.forSet = true
		h.forIP, _ = parseAddr(entry(x.fors, i))
	}
	h.proto, h.host, h.port, h.prefix = entryOrFirst(x.protos, i), entryOrFirst(x.hosts, i), entryOrFirst(x.ports, i), entryOrFirst(x.prefixes, i)
	return h
}

// entries counts the comma-separated entries of header lines.
func entries(lines []string) int {
	n := len(lines)
	for _, l := range lines {
		n += strings.Count(l, ",")
	}
	return n
}

// entry is the i-th comma-separated entry of header lines counting from
// the right (0 is the last), trimmed; "" past the first.
func entry(lines []string, i int) string {
	for j := len(lines) - 1; j >= 0; j-- {
		l := lines[j]
		for {
			k := strings.LastIndexByte(l, ',')
			if i == 0 {
				return strings.TrimSpace(l[k+1:])
			}
			if k < 0 {
				break
			}
			l, i = l[:k], i-1
		}
		i--
	}
	return ""
}

// entryOrFirst is entry i, or the first entry when there are fewer.
func entryOrFirst(lines []string, i int) string {
	if n := entries(lines); n > 0 {
		return entry(lines, min(i, n-1))
	}
	return ""
}

// forwardedHops are the elements of Forwarded header lines, parsed.
type forwardedHops []forward

func (l forwardedHops) Len() int         { return len(l) }
func (l forwardedHops) At(i int) forward { return l[i] }

// parseForwarded reads RFC 7239 Forwarded header lines into hops, the
// rightmost element first. A malformed element ends the list there (the
// elements to its right, written by nearer proxies, are kept).
func parseForwarded(lines []string) []forward {
	var elems []forward
	for _, line := range lines {
		for _, el := range splitQuoted(line, ',') {
			var h forward
			ok := true
			for _, pair := range splitQuoted(el, ';') {
				k, v, found := strings.Cut(pair, "=")
				if !found {
					if strings.TrimSpace(pair) == "" {
						continue
					}
					ok = false
					break
				}
				v = strings.TrimSpace(v)
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = strings.ReplaceAll(v[1:len(v)-1], `\`, "")
				}
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "for":
					h.forSet = true
					h.forIP, _ = parseAddr(v)
				case "proto":
					h.proto = v
				case "host":
					h.host = v
				}
			}
			if !ok {
				elems = elems[:0] // everything left of a broken element is lost with it
				continue
			}
			elems = append(elems, h)
		}
	}
	for i, j := 0, len(elems)-1; i < j; i, j = i+1, j-1 {
		elems[i], elems[j] = elems[j], elems[i]
	}
	return elems
}

// splitQuoted splits s at sep outside double-quoted strings.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// peerAddr is the direct peer's address ("" for a Unix socket's "@").
func peerAddr(remote string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// parseAddr reads a forwarded address: "192.0.2.1", "192.0.2.1:4711",
// "2001:db8::1", "[2001:db8::1]:4711" or "[2001:db8::1]".
func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// splitHost validates a Host-like value and splits off its port.
func splitHost(v string) (host, port string, ok bool) {
	if v == "" {
		return "", "", false
	}
	host, port = v, ""
	if h, p, err := net.SplitHostPort(v); err == nil {
		host, port = h, p
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return "", "", false
		}
	} else if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		host = v[1 : len(v)-1]
	}
	if host == "" {
		return "", "", false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return host, port, true
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", "", false
		}
	}
	return host, port, true
}

// cleanPrefix validates a forwarded path prefix: percent-decoded, starting
// with "/", no "." or ".." segment, no control byte, no trailing "/".
func cleanPrefix(v string) (string, bool) {
	if v == "" {
		return "", false
	}
	p, err := url.PathUnescape(v)
	if err != nil || !strings.HasPrefix(p, "/") {
		return "", false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return "", false
		}
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return "", false
		}
	}
	p = strings.TrimRight(p, "/")
	return p, p != ""
}
