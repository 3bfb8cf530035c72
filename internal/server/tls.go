package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// TLS is what the HTTPS listeners present: a certificate read from files
// (re-read by Reload, on SIGHUP) or obtained over ACME, and the client
// certificate policy.
type TLS struct {
	cfg     Config
	log     *slog.Logger
	acme    *autocert.Manager
	current atomic.Pointer[tls.Config]
}

// NewTLS reads the certificate files (or sets up ACME): a file that cannot
// be read or does not hold a matching certificate and key is an error now,
// before anything listens.
func NewTLS(cfg Config, log *slog.Logger) (*TLS, error) {
	t := &TLS{cfg: cfg, log: log}
	if len(cfg.ACMEDomains) > 0 {
		cache := cfg.ACMECache
		if cache == "" {
			cache = "acme-cache"
		}
		t.acme = &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			Cache:      autocert.DirCache(cache),
			HostPolicy: autocert.HostWhitelist(cfg.ACMEDomains...),
			Email:      cfg.ACMEEmail,
		}
		if cfg.ACMEDirectory != "" {
			t.acme.Client = &acme.Client{DirectoryURL: cfg.ACMEDirectory}
		}
	}
	c, err := t.build()
	if err != nil {
		return nil, err
	}
	t.current.Store(c)
	return t, nil
}

// build reads the files into a fresh configuration.
func (t *TLS) build() (*tls.Config, error) {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}
	if t.acme != nil {
		c.GetCertificate = t.acmeCertificate
		c.NextProtos = append(c.NextProtos, acme.ALPNProto) // TLS-ALPN-01
	} else {
		cert, err := tls.LoadX509KeyPair(t.cfg.CertFile, t.cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("certfile %s, keyfile %s: %w", t.cfg.CertFile, t.cfg.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if t.cfg.CACerts != "" {
		pem, err := os.ReadFile(t.cfg.CACerts)
		if err != nil {
			return nil, fmt.Errorf("ca_certs: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_certs %s: no PEM certificate in it", t.cfg.CACerts)
		}
		c.ClientCAs = pool
		switch t.cfg.CertReqs {
		case "", "optional":
			c.ClientAuth = tls.VerifyClientCertIfGiven
		case "required":
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return c, nil
}

// acmeCertificate is autocert's certificate for the hello, its failures
// logged (the client only sees a failed handshake).
func (t *TLS) acmeCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := t.acme.GetCertificate(hello)
	if err != nil {
		t.log.Warn("ACME: no certificate", "server_name", hello.ServerName, "error", err.Error())
	}
	return cert, err
}

// Reload re-reads the certificate, key and CA files (SIGHUP) and logs the
// outcome. On an error the certificate in use stays.
func (t *TLS) Reload() {
	if t.acme != nil && t.cfg.CACerts == "" {
		return // no file to read: autocert renews by itself
	}
	c, err := t.build()
	if err != nil {
		t.log.Error("certificates not re-read; the ones in use stay", "error", err.Error())
		return
	}
	t.current.Store(c)
	t.log.Info("certificates re-read")
}

// Config is the configuration the listeners use: each handshake takes the
// one Reload last stored.
func (t *TLS) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: t.current.Load().NextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.current.Load(), nil
		},
	}
}

// handshakeListener accepts TCP connections and completes their TLS
// handshakes off the accept loop. An HTTP/1.1 connection is handed on
// wrapped in a framedConn, so the smuggling check reads its plaintext
// (tlsState gives the request its r.TLS back); an HTTP/2 one as the
// *tls.Conn net/http's HTTP/2 server wants.
type handshakeListener struct {
	net.Listener
	config  *tls.Config
	timeout time.Duration
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	err     atomic.Pointer[error]
}

func newHandshakeListener(l net.Listener, config *tls.Config, timeout time.Duration) *handshakeListener {
	h := &handshakeListener{Listener: l, config: config, timeout: timeout, conns: make(chan net.Conn), done: make(chan struct{})}
	go h.acceptLoop()
	return h
}

func (h *handshakeListener) acceptLoop() {
	var delay time.Duration
	for {
		raw, err := h.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				// Out of file descriptors, say: wait a little, as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			h.err.Store(&err)
			h.Close()
			return
		}
		delay = 0
		go h.handshake(raw)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (h *handshakeListener) handshake(raw net.Conn) {
	tc := tls.Server(raw, h.config)
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		slog.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "error", err.Error())
		raw.Close()
		return
	}
	var c net.Conn = tc
	switch tc.ConnectionState().NegotiatedProtocol {
	case acme.ALPNProto:
		tc.Close() // a TLS-ALPN-01 validation: the handshake was all of it
		return
	case "h2":
	default:
		c = &framedConn{Conn: tc}
	}
	select {
	case h.conns <- c:
	case <-h.done:
		c.Close()
	}
}

func (h *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		if err := h.err.Load(); err != nil {
			return nil, *err
		}
		return nil, net.ErrClosed
	}
}

func (h *handshakeListener) Close() error {
	var err error
	h.once.Do(func() {
		close(h.done)
		err = h.Listener.Close()
	})
	return err
}

// tlsState is the TLS state of an HTTP/1.1 request's connection, which
// net/http cannot see through the framedConn.
func tlsState(fc *framedConn) *tls.ConnectionState {
	if tc, ok := fc.Conn.(*tls.Conn); ok {
		s := tc.ConnectionState()
		return &s
	}
	return nil
}
