package server

import (
	"errors"

	"fmt"
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
