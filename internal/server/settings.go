package server

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// Config is how the server listens: TLS, HTTP versions, ACME, the redirect
// listener, and the user it runs as once its sockets are bound. Settings
// fills it from flags and from the [server:…] section.
type Config struct {
	CertFile      string
	KeyFile       string
	CACerts       string
	CertReqs      string // "none", "optional" or "required"; "" is optional with CACerts
	ACMEDomains   []string
	ACMEEmail     string
	ACMECache     string
	ACMEDirectory string
	HTTP3         bool
	H2C           bool
	RedirectHTTP  string
	User          string
	Group         string
}

// Setting is one option of `wsgate serve` that this package owns: its flag,
// its key in the server section, its type, default and help, declared once.
// cmd/wsgate registers the flags and reads the section from this table, and
// docs/serve.md lists the same.
type Setting struct {
	Flag    string // without the dashes
	Key     string // in [server:…]
	Type    string // "path", "string", "bool", "list" (repeatable flag; space- or comma-separated) or a|b|c
	Default string
	Help    string
	set     func(c *Config, v string) error
}

// Set parses v (from the command line or the file) into c.
func (s Setting) Set(c *Config, v string) error { return s.set(c, v) }

// Value is the flag.Value that sets s in c.
func (s Setting) Value(c *Config) flag.Value { return settingValue{s, c} }

type settingValue struct {
	s Setting
	c *Config
}

func (v settingValue) String() string     { return "" }
func (v settingValue) Set(x string) error { return v.s.set(v.c, x) }
func (v settingValue) IsBoolFlag() bool   { return v.s.Type == "bool" }

func text(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		*field(c) = strings.TrimSpace(v)
		return nil
	}
}

func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "yes", "on", "y", "t", "1":
			*field(c) = true
		case "false", "no", "off", "n", "f", "0":
			*field(c) = false
		default:
			return fmt.Errorf("%q is not true or false", v)
		}
		return nil
	}
}

func list(field func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		*field(c) = append(*field(c), strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })...)
		return nil
	}
}

func oneOf(field func(*Config) *string, values ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		for _, ok := range values {
			if v == ok {
				*field(c) = v
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(values, ", "))
	}
}

// Settings are the options of this package, in the order docs/serve.md
// lists them.
var Settings = []Setting{
	{Flag: "certfile", Key: "certfile", Type: "path",
		Help: "serve HTTPS on every TCP --bind with the PEM certificate (chain) in `PATH`; re-read on SIGHUP",
		set:  text(func(c *Config) *string { return &c.CertFile })},
	{Flag: "keyfile", Key: "keyfile", Type: "path",
		Help: "`PATH` of the PEM private key of --certfile; re-read on SIGHUP",
		set:  text(func(c *Config) *string { return &c.KeyFile })},
	{Flag: "ca-certs", Key: "ca_certs", Type: "path",
		Help: "`PATH` of a PEM bundle of the CAs whose client certificates are accepted (mTLS); the subject reaches the app as SSL_CLIENT_S_DN",
		set:  text(func(c *Config) *string { return &c.CACerts })},
	{Flag: "cert-reqs", Key: "cert_reqs", Type: "none|optional|required", Default: "optional with ca_certs",
		Help: "whether a client certificate is asked for (optional) or needed (required): `none|optional|required`",
		set:  oneOf(func(c *Config) *string { return &c.CertReqs }, "none", "optional", "required")},
	{Flag: "acme-domains", Key: "acme_domains", Type: "list",
		Help: "get certificates for these `DOMAINS` over ACME (TLS-ALPN-01, and HTTP-01 on --redirect-http; repeatable)",
		set:  list(func(c *Config) *[]string { return &c.ACMEDomains })},
	{Flag: "acme-email", Key: "acme_email", Type: "string",
		Help: "contact `EMAIL` of the ACME account",
		set:  text(func(c *Config) *string { return &c.ACMEEmail })},
	{Flag: "acme-cache", Key: "acme_cache", Type: "path", Default: "acme-cache",
		Help: "`DIR` keeping the ACME account key and the certificates across restarts",
		set:  text(func(c *Config) *string { return &c.ACMECache })},
	{Flag: "acme-directory", Key: "acme_directory", Type: "string", Default: "Let's Encrypt",
		Help: "ACME directory `URL` (a staging server, Pebble, another CA)",
		set:  text(func(c *Config) *string { return &c.ACMEDirectory })},
	{Flag: "h2c", Key: "h2c", Type: "bool", Default: "false",
		Help: "also speak cleartext HTTP/2 (prior knowledge) on the plain listeners",
		set:  boolean(func(c *Config) *bool { return &c.H2C })},
	{Flag: "http3", Key: "http3", Type: "bool", Default: "false",
		Help: "also serve HTTP/3 (QUIC) on the UDP port of each HTTPS listener, announced by Alt-Svc",
		set:  boolean(func(c *Config) *bool { return &c.HTTP3 })},
	{Flag: "redirect-http", Key: "redirect_http", Type: "string",
		Help: "listen on `HOST:PORT` with plain HTTP that redirects every request to HTTPS (and answers ACME HTTP-01)",
		set:  text(func(c *Config) *string { return &c.RedirectHTTP })},
	{Flag: "user", Key: "user", Type: "string",
		Help: "once the sockets are bound, run as this `USER` (name or uid), workers included",
		set:  text(func(c *Config) *string { return &c.User })},
	{Flag: "group", Key: "group", Type: "string", Default: "the user's group",
		Help: "once the sockets are bound, run as this `GROUP` (name or gid)",
		set:  text(func(c *Config) *string { return &c.Group })},
}

// TLS reports whether the TCP listeners serve HTTPS.
func (c Config) TLS() bool { return c.CertFile != "" || len(c.ACMEDomains) > 0 }

// Check refuses settings that do not go together.
func (c Config) Check() error {
	switch {
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("certfile and keyfile go together: give both")
	case c.CertFile != "" && len(c.ACMEDomains) > 0:
		return errors.New("certfile and acme_domains exclude each other: a certificate is either given or obtained")
	case !c.TLS() && (c.CACerts != "" || c.HTTP3 || c.RedirectHTTP != ""):
		return errors.New("ca_certs, http3 and redirect_http need TLS: give certfile and keyfile, or acme_domains")
	case c.CertReqs != "" && c.CertReqs != "none" && c.CACerts == "":
		return fmt.Errorf("cert_reqs = %s needs ca_certs, the CAs client certificates are checked against", c.CertReqs)
	case c.Group != "" && c.User == "":
		return errors.New("group needs user: wsgate drops to a user and its group, or a user and the group given")
	}
	return nil
}
