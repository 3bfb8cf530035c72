// Package auth is the `egg:wsgate#auth` filter: it decides who the client
// is and is the only place REMOTE_USER comes from.
//
// It knows a user two ways, either or both:
//
//   - HTTP Basic credentials checked against an htpasswd file (htpasswd.go
//     says which hashes are accepted), re-read when the file changes;
//   - a header set by a trusted upstream (an SSO proxy, an ingress doing the
//     login), believed only from the networks in `trusted`.
//
// Security properties, enforced here:
//   - Facts.RemoteUser, which becomes REMOTE_USER, is set only from a
//     verified password or from the trusted header of a trusted peer. The
//     gateway never turns a client header into REMOTE_USER (it drops header
//     names holding "_", so `Remote_User` cannot pose as HTTP_REMOTE_USER).
//   - The trusted header is removed from requests of any other peer, and its
//     spellings with "_" for "-" from every request, so an application or
//     upstream reading it directly cannot be fooled either.
//   - The peer is the connection's address, not Facts.RemoteAddr: a header
//     is only as trustworthy as the hop that sent it.
//   - Verified Basic credentials are removed from the request: the password
//     never reaches the application (as Apache keeps it from CGI).
//   - Passwords are compared in constant time, and an unknown user costs as
//     much as a known one.
package auth

import (
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"path/filepath"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "auth",
		Role:    component.Filter,
		Sees:    component.SeesRequest,
		Summary: "Sets REMOTE_USER from HTTP Basic credentials checked against an htpasswd file, or from a header sent by trusted proxies.",
		Doc: `The only source of REMOTE_USER: no header a client sends becomes REMOTE_USER (the gateway drops header
names holding "_", and auth strips the trusted header from untrusted peers).

With ` + "`htpasswd`" + `, requests need HTTP Basic credentials of a user in the file, else 401 with
` + "`WWW-Authenticate: Basic realm=…`" + `. The file is what Apache's ` + "`htpasswd`" + ` writes: bcrypt (` + "`-B`" + `,
recommended), MD5 (` + "`-m`" + `, ` + "`$apr1$`" + `), SHA-256/512 crypt (` + "`-2`" + `, ` + "`-5`" + `) and SHA-1 (` + "`-s`" + `) are accepted; crypt()
DES (` + "`-d`" + `) and plain text are refused at load with the file and line. The file is re-read when it
changes (checked at most once a second); a version that does not parse is logged and the last good one
stays in force. Verified credentials are removed from the request, so the password never reaches the app.
A password accepted once is remembered (keyed by an HMAC, at most 1024 of them), so a browser resending it
costs no bcrypt; a wrong one, or an unknown user, always costs a full check (a bcrypt in a bcrypt file):
put a ` + "`ratelimit`" + ` before ` + "`auth`" + ` to slow guessing.

With ` + "`trusted_header`" + ` and ` + "`trusted`" + `, a request from one of the trusted networks (the connection's peer,
whatever proxyfix says) carrying the header is that user. From any other peer the header is removed.
Both can be set: the trusted header is looked at first.

With ` + "`optional = true`" + `, requests without credentials pass on without REMOTE_USER (the app decides);
wrong credentials are still refused. Without it, a request nobody vouches for gets 401 (403 when only
` + "`trusted_header`" + ` is set: there is no password to ask for).

    [filter:login]
    use = egg:wsgate#auth
    htpasswd = %(here)s/users.htpasswd
    realm = Staff only`,
		Options: []component.Option{
			{Name: "htpasswd", Type: "path", Help: "An htpasswd file (relative to the INI file's directory). Requests are checked with HTTP Basic against it."},
			{Name: "realm", Type: "string", Default: "wsgate", Help: "The realm in the WWW-Authenticate challenge (browsers show it)."},
			{Name: "trusted_header", Type: "string", Help: "A request header naming the user, set by an upstream proxy that authenticated the client (e.g. Remote-User)."},
			{Name: "trusted", Type: "networks", Help: "Addresses and networks whose trusted_header is believed; needed with trusted_header."},
			{Name: "optional", Type: "bool", Default: "false", Help: "Pass requests without credentials on, without REMOTE_USER, instead of refusing them."},
		},
		Build: build,
	})
}

type filter struct {
	users     *userFile // nil without htpasswd
	challenge string    // the WWW-Authenticate value
	header    string    // canonical trusted header name, "" for none
	trusted   []*net.IPNet
	optional  bool
	log       *slog.Logger
}

func build(b *component.Builder) (component.Built, error) {
	f := &filter{log: slog.Default()}
	if b.Host != nil {
		f.log = b.Host.Logger()
	}
	realm := b.String("realm", "wsgate")
	if strings.ContainsFunc(realm, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return component.Built{}, b.Errorf("realm", "%q holds a control character", realm)
	}
	f.challenge = `Basic realm="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(realm) + `", charset="UTF-8"`
	var err error
	if f.optional, err = b.Bool("optional", false); err != nil {
		return component.Built{}, err
	}
	if path, ok := b.Lookup("htpasswd"); ok && path != "" {
		abs := path
		if !filepath.IsAbs(abs) {
			here, _ := b.Node.GlobalConf.Get("here")
			abs = filepath.Join(here, abs)
		}
		if f.users, err = openUserFile(abs, path, f.log); err != nil {
			return component.Built{}, b.Errorf("htpasswd", "%v", err)
		}
	}
	if h, ok := b.Lookup("trusted_header"); ok && h != "" {
		if !component.ValidHeaderName(h) {
			return component.Built{}, b.Errorf("trusted_header", "%q is not a header name (letters, digits and '-')", h)
		}
		f.header = textproto.CanonicalMIMEHeaderKey(h)
	}
	if f.trusted, err = b.Networks("trusted"); err != nil {
		return component.Built{}, err
	}
	switch {
	case f.header != "" && len(f.trusted) == 0:
		return component.Built{}, b.Errorf("trusted_header", "needs trusted: the addresses of the proxies allowed to send it")
	case f.header == "" && len(f.trusted) > 0:
		return component.Built{}, b.Errorf("trusted", "is only used with trusted_header")
	case f.header == "" && f.users == nil:
		return component.Built{}, b.Errorf("", "auth needs htpasswd (a file of users), or trusted_header and trusted")
	}
	return component.Built{Wrap: f.wrap}, nil
}

// verdict is what a request's credentials say.
type verdict int

const (
	anonymous verdict = iota // no credentials of ours
	accepted                 // a user, in Facts.RemoteUser
	refused                  // wrong credentials
	malformed                // Basic credentials that do not decode
)

func (f *filter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, facts := component.Attach(r)
		user, v := f.identify(r)
		switch {
		case v == accepted:
			facts.RemoteUser = user
		case v == malformed:
			http.Error(w, "400 Bad Request: malformed Basic credentials", http.StatusBadRequest)
			return
		case v == refused || !f.optional:
			f.refuse(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *filter) identify(r *http.Request) (string, verdict) {
	if f.header != "" {
		if user, ok := f.fromTrustedHeader(r); ok {
			return user, accepted
		}
	}
	if f.users == nil {
		return "", anonymous
	}
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return "", anonymous
	}
	scheme, creds, _ := strings.Cut(authz, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", anonymous // a token for the application (optional mode), or refused
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(creds))
	if err != nil {
		return "", malformed
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", malformed
	}
	if !f.users.check(user, password) {
		f.log.Info("auth: wrong credentials", "user", user, "remote", r.RemoteAddr)
		return "", refused
	}
	r.Header.Del("Authorization")
	return user, accepted
}

// fromTrustedHeader reads the trusted header if the connection's peer is
// trusted, and removes it otherwise. Spellings with "_" are removed from
// every request: some upstreams (Rack, CGI) read Remote_User as Remote-User.
func (f *filter) fromTrustedHeader(r *http.Request) (string, bool) {
	for name := range r.Header {
		if name != f.header && strings.EqualFold(strings.ReplaceAll(name, "_", "-"), f.header) {
			delete(r.Header, name)
		}
	}
	values, present := r.Header[f.header]
	if !present {
		return "", false
	}
	if !f.peerTrusted(r) {
		delete(r.Header, f.header)
		f.log.Info("auth: trusted header from an untrusted peer removed", "header", f.header, "remote", r.RemoteAddr)
		return "", false
	}
	if len(values) != 1 {
		return "", false // two users is nobody
	}
	user := strings.TrimSpace(values[0])
	if user == "" || strings.ContainsFunc(user, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return "", false
	}
	return user, true
}

func (f *filter) peerTrusted(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	for _, n := range f.trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func (f *filter) refuse(w http.ResponseWriter) {
	if f.users == nil {
		http.Error(w, "403 Forbidden", http.StatusForbidden)
		return
	}
	w.Header().Set("WWW-Authenticate", f.challenge)
	http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
}
