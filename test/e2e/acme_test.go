package e2e

// ACME end to end against Pebble, Let's Encrypt's test CA, run in this
// process: wsgate obtains a certificate for a name by TLS-ALPN-01 (on its
// HTTPS port) or HTTP-01 (on its redirect port), serves it, keeps it in its
// cache. Every identifier here starts with "acme".

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"github.com/wsgate/wsgate/test/e2e/harness"
)

// acmeName is the name certificates are asked for: autocert wants a dotted
// one, and Pebble finds its address through acmeDNS.
const acmeName = "site.wsgate.test"

// acmeDNS answers every A question with 127.0.0.1 (and nothing else), so
// Pebble's validations of acmeName reach wsgate on this machine. Pebble
// asks over TCP.
func acmeDNS(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: l, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1)})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return l.Addr().String()
}

// acmePebble runs Pebble validating on httpPort (HTTP-01) and tlsPort
// (TLS-ALPN-01) of the names it is asked for. It returns the directory URL,
// a PEM file that makes wsgate trust the directory (SSL_CERT_FILE), and the
// roots Pebble's certificates chain to.
func acmePebble(t *testing.T, httpPort, tlsPort int) (directory, trustFile string, roots *x509.CertPool) {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")      // validate at once, not after a random pause
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // no deliberately refused nonces
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", log.Lmicroseconds)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, httpPort, tlsPort, false, acmeDNS(t), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(srv.Close)
	trustFile = filepath.Join(t.TempDir(), "pebble-directory.pem")
	tlsWrite(t, trustFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	roots = x509.NewCertPool()
	if !roots.AppendCertsFromPEM(authority.GetRootCert(0).PEM()) {
		t.Fatal("Pebble's root certificate does not parse")
	}
	return srv.URL + wfe.DirectoryPath, trustFile, roots
}

// acmeFreePort is a port nothing listens on now.
func acmeFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// acmeGet makes a TLS request for acmeName to addr, trusting roots only.
func acmeGet(t *testing.T, addr string, roots *x509.CertPool) (map[string]any, *x509.Certificate) {
	t.Helper()
	c := &http.Client{Timeout: gwIOGuard, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr) // acmeName is this machine
		},
	}}
	defer c.CloseIdleConnections()
	_, port, _ := net.SplitHostPort(addr)
	env, resp := tlsEnviron(t, c, "https://"+acmeName+":"+port)
	return env, resp.TLS.PeerCertificates[0]
}

func TestACMEIssuance(t *testing.T) {
	for _, tc := range []struct {
		name      string
		challenge string
	}{{"TLS-ALPN-01", "tls-alpn-01"}, {"HTTP-01", "http-01"}} {
		t.Run(tc.name, func(t *testing.T) {
			httpsPort, redirectPort, closed := acmeFreePort(t), acmeFreePort(t), acmeFreePort(t)
			// Pebble reaches only the port of the challenge under test; the
			// other points where nothing listens, so it must fail.
			pebbleHTTP, pebbleTLS := closed, httpsPort
			if tc.challenge == "http-01" {
				pebbleHTTP, pebbleTLS = redirectPort, closed
			}
			directory, trust, roots := acmePebble(t, pebbleHTTP, pebbleTLS)
			cache := filepath.Join(t.TempDir(), "acme")
			args := func(directory string) []string {
				a := []string{"--app", "pep3333:app", "--pythonpath", gwAppsDir(), "--workers", "1",
					"--bind", "127.0.0.1:" + strconv.Itoa(httpsPort), "--acme-domains", acmeName,
					"--acme-email", "ops@example.org", "--acme-cache", cache, "--acme-directory", directory}
				if tc.challenge == "http-01" {
					a = append(a, "--redirect-http", "127.0.0.1:"+strconv.Itoa(redirectPort))
				}
				return a
			}
			s := harness.Start(t, harness.Options{Args: args(directory), Env: []string{"SSL_CERT_FILE=" + trust}})
			addr := strings.TrimPrefix(s.URL, "https://")
			env, cert := acmeGet(t, addr, roots) // the first handshake obtains the certificate
			if env["wsgi.url_scheme"] != "https" || env["HTTPS"] != "on" {
				t.Errorf("environ over the ACME certificate: url_scheme %v, HTTPS %v", env["wsgi.url_scheme"], env["HTTPS"])
			}
			if len(cert.DNSNames) != 1 || cert.DNSNames[0] != acmeName {
				t.Errorf("certificate for %v, want [%s]", cert.DNSNames, acmeName)
			}
			if _, err := os.Stat(filepath.Join(cache, acmeName)); err != nil {
				t.Errorf("the certificate is not in the cache: %v", err)
			}
			// A name not in acme_domains gets no certificate.
			conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "other.example", InsecureSkipVerify: true})
			if err == nil {
				conn.Close()
				t.Error("a handshake for other.example succeeded")
			}
			s.Stop()

			// Restarted on the same cache, wsgate serves the same
			// certificate without asking the CA (whose address is now dead).
			dead := "https://127.0.0.1:" + strconv.Itoa(closed) + wfe.DirectoryPath
			again := harness.Start(t, harness.Options{Args: args(dead), Env: []string{"SSL_CERT_FILE=" + trust}})
			_, cached := acmeGet(t, strings.TrimPrefix(again.URL, "https://"), roots)
			if cached.SerialNumber.Cmp(cert.SerialNumber) != 0 {
				t.Errorf("after a restart: serial %v, want the cached %v", cached.SerialNumber, cert.SerialNumber)
			}
			again.Stop()
		})
	}
}
