package e2e

// HTTPS end to end: certificates from files (re-read on SIGHUP), HTTP/2
// over TLS with curl, client certificates, the redirect listener, HTTP/3.
// Every identifier here starts with "tls".

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/wsgate/wsgate/test/e2e/harness"
)

// tlsCert is a certificate and key written as PEM files.
type tlsCert struct {
	cert            *x509.Certificate
	key             *ecdsa.PrivateKey
	certPEM, keyPEM string // file paths
}

// tlsIssue makes a certificate for cn, signed by ca (self-signed when ca is
// nil, and then a CA itself), valid for localhost and 127.0.0.1.
func tlsIssue(t *testing.T, dir, cn string, serial int64, ca *tlsCert, client bool) *tlsCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"wsgate tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames, tmpl.IPAddresses = nil, nil
	}
	parent, signer := tmpl, key
	if ca == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth) // it signs client certificates too
	} else {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	c := &tlsCert{cert: cert, key: key,
		certPEM: filepath.Join(dir, fmt.Sprintf("%s-%d.pem", cn, serial)),
		keyPEM:  filepath.Join(dir, fmt.Sprintf("%s-%d.key", cn, serial))}
	tlsWrite(t, c.certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	tlsWrite(t, c.keyPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return c
}

func tlsWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsCopy puts src's files where the server reads its certificate.
func tlsCopy(t *testing.T, src *tlsCert, certPath, keyPath string) {
	t.Helper()
	for from, to := range map[string]string{src.certPEM: certPath, src.keyPEM: keyPath} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		// Written aside and renamed, as a certificate renewal tool does.
		tlsWrite(t, to+".new", b)
		if err := os.Rename(to+".new", to); err != nil {
			t.Fatal(err)
		}
	}
}

// tlsStart serves pep3333:app with extra flags and environment.
func tlsStart(t *testing.T, env []string, args ...string) *gwServer {
	t.Helper()
	rec := t.TempDir()
	srv := harness.Start(t, harness.Options{
		Args: append([]string{"--app", "pep3333:app", "--pythonpath", gwAppsDir()}, args...),
		Env:  append([]string{"E2E_RECORD_DIR=" + rec}, env...),
	})
	t.Cleanup(srv.Stop)
	return &gwServer{Server: srv, rec: rec, addr: strings.TrimPrefix(srv.URL, "https://")}
}

// tlsStartINI serves a configuration file whose applications are in
// test/e2e/apps.
func tlsStartINI(t *testing.T, ini string, args ...string) *gwServer {
	t.Helper()
	srv := harness.Start(t, harness.Options{Args: append([]string{ini, "--pythonpath", gwAppsDir(), "--workers", "1"}, args...)})
	t.Cleanup(srv.Stop)
	return &gwServer{Server: srv, addr: strings.TrimPrefix(srv.URL, "https://")}
}

// tlsClient trusts roots and presents cert (when not nil).
func tlsClient(roots []*tlsCert, cert *tlsCert, h2 bool) *http.Client {
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r.cert)
	}
	conf := &tls.Config{RootCAs: pool}
	if cert != nil {
		// Sent whatever CAs the server names (Go's client would otherwise
		// keep a certificate of another CA to itself).
		c := &tls.Certificate{Certificate: [][]byte{cert.cert.Raw}, PrivateKey: cert.key}
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c, nil }
	}
	tr := &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Timeout: gwIOGuard, Transport: tr}
}

// tlsEnviron GETs /environ and decodes it.
func tlsEnviron(t *testing.T, c *http.Client, url string) (map[string]any, *http.Response) {
	t.Helper()
	resp, err := c.Get(url + "/environ")
	if err != nil {
		t.Fatalf("GET %s/environ: %v", url, err)
	}
	defer resp.Body.Close()
	var env map[string]any
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(body, &env) != nil {
		t.Fatalf("GET %s/environ: %d %s", url, resp.StatusCode, body)
	}
	return env, resp
}

func tlsCurl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is needed (make test installs it): %v", err)
	}
	out, err := exec.Command(curl, append([]string{"--silent", "--show-error", "--max-time", "60"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestTLSWithCurl: a self-signed certificate from files, curl --http2 and
// --http1.1 over it, and the environ says https in every way it can.
func TestTLSWithCurl(t *testing.T) {
	dir := t.TempDir()
	cert := tlsIssue(t, dir, "localhost", 1, nil, false)
	s := tlsStart(t, nil, "--workers", "1", "--certfile", cert.certPEM, "--keyfile", cert.keyPEM)
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Fatalf("listening line %q, want https://127.0.0.1:PORT", s.URL)
	}
	_, port, _ := net.SplitHostPort(s.addr)
	url := "https://localhost:" + port
	for _, proto := range []struct{ flag, version, server string }{
		{"--http2", "2", "HTTP/2.0"}, {"--http1.1", "1.1", "HTTP/1.1"},
	} {
		out, err := tlsCurl(t, proto.flag, "--fail", "--cacert", cert.certPEM, "--write-out", "\n%{http_version}", url+"/environ")
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", proto.flag, err, out)
		}
		body, version, _ := strings.Cut(out, "\n")
		if version != proto.version {
			t.Errorf("curl %s answered over HTTP/%s", proto.flag, version)
		}
		var env map[string]any
		if err := json.Unmarshal([]byte(body), &env); err != nil {
			t.Fatalf("curl %s: %v\n%s", proto.flag, err, body)
		}
		for k, want := range map[string]any{"wsgi.url_scheme": "https", "HTTPS": "on", "SERVER_PORT": port,
			"SERVER_NAME": "localhost", "SERVER_PROTOCOL": proto.server, "SSL_CLIENT_VERIFY": "NONE"} {
			if env[k] != want {
				t.Errorf("curl %s: environ[%q] = %#v, want %#v", proto.flag, k, env[k], want)
			}
		}
	}
	// A file the master sends itself (wsgi.file_wrapper, sendfile on plain
	// TCP) goes through TLS whole: curl's bytes are the file's.
	data := make([]byte, 3<<20+11)
	rand.Read(data)
	file := filepath.Join(dir, "big.bin")
	tlsWrite(t, file, data)
	for _, flag := range []string{"--http1.1", "--http2"} {
		out, err := tlsCurl(t, flag, "--fail", "--cacert", cert.certPEM, url+"/file?path="+file)
		if err != nil || gwSHA([]byte(out)) != gwSHA(data) {
			t.Errorf("curl %s: the file over TLS differs (%d bytes, want %d): %v", flag, len(out), len(data), err)
		}
	}
	// Cleartext on the HTTPS port is a failed handshake, never a request.
	if out, err := tlsCurl(t, "--fail", "http://"+s.addr+"/environ"); err == nil {
		t.Errorf("plain HTTP on the HTTPS port answered: %s", out)
	}
}

// TestTLSPlainListenerSaysHTTP: without TLS the environ says http, and
// cleartext HTTP/2 is spoken only with --h2c.
func TestTLSPlainListenerSaysHTTP(t *testing.T) {
	s := tlsStart(t, nil, "--workers", "1")
	plainURL := "http://" + strings.TrimPrefix(s.URL, "http://")
	env, _ := tlsEnviron(t, gwClient, plainURL)
	if env["wsgi.url_scheme"] != "http" || env["HTTPS"] != nil || env["SSL_CLIENT_VERIFY"] != nil {
		t.Errorf("plain HTTP: url_scheme %v, HTTPS %v, SSL_CLIENT_VERIFY %v", env["wsgi.url_scheme"], env["HTTPS"], env["SSL_CLIENT_VERIFY"])
	}
	if out, err := tlsCurl(t, "--http2-prior-knowledge", "--fail", plainURL+"/hello"); err == nil {
		t.Errorf("h2c answered without --h2c: %s", out)
	}
	h2c := tlsStart(t, nil, "--workers", "1", "--h2c")
	out, err := tlsCurl(t, "--http2-prior-knowledge", "--fail", "--write-out", "\n%{http_version}", h2c.URL+"/hello")
	if err != nil || !strings.HasSuffix(out, "\n2") {
		t.Errorf("--h2c: curl --http2-prior-knowledge: %v %q", err, out)
	}
}

// TestTLSRedirect: the redirect listener sends GET with 301 and POST with
// 308 to the same path and query on the HTTPS port.
func TestTLSRedirect(t *testing.T) {
	dir := t.TempDir()
	cert := tlsIssue(t, dir, "localhost", 1, nil, false)
	ini := filepath.Join(dir, "site.ini")
	tlsWrite(t, ini, []byte(fmt.Sprintf(`[app:main]
use = call:pep3333:make_app

[server:main]
certfile = %s
keyfile = %s
redirect_http = 127.0.0.1:0
`, cert.certPEM, cert.keyPEM)))
	s := tlsStartINI(t, ini)
	line := s.WaitLog("wsgate: redirecting to https from http://")
	from := line[strings.Index(line, "http://"):]
	_, port, _ := net.SplitHostPort(s.addr)
	noFollow := &http.Client{Timeout: gwIOGuard, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for method, code := range map[string]int{"GET": 301, "POST": 308} {
		req, _ := http.NewRequest(method, from+"/a/b?c=d", strings.NewReader("x"))
		req.Host = "example.test:80"
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := "https://example.test:" + port + "/a/b?c=d"; resp.StatusCode != code || resp.Header.Get("Location") != want {
			t.Errorf("%s: %d Location %q, want %d %q", method, resp.StatusCode, resp.Header.Get("Location"), code, want)
		}
	}
	// Followed, the redirect lands on the application over HTTPS.
	c := tlsClient([]*tlsCert{cert}, nil, true)
	c.CheckRedirect = nil
	req, _ := http.NewRequest("GET", from+"/environ", nil)
	req.Host = "localhost"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("followed redirect: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
}

// TestTLSClientCertificates: with ca_certs, a client certificate signed by
// that CA reaches the app as SSL_CLIENT_S_DN and SSL_CLIENT_VERIFY=SUCCESS;
// none is NONE (optional) or a refused handshake (required); one from
// another CA is refused either way.
func TestTLSClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := tlsIssue(t, dir, "Test CA", 1, nil, false)
	server := tlsIssue(t, dir, "localhost", 2, ca, false)
	alice := tlsIssue(t, dir, "alice", 3, ca, true)
	other := tlsIssue(t, dir, "Other CA", 4, nil, false)
	mallory := tlsIssue(t, dir, "mallory", 5, other, true)

	s := tlsStart(t, nil, "--workers", "1", "--certfile", server.certPEM, "--keyfile", server.keyPEM, "--ca-certs", ca.certPEM)
	url := "https://" + s.addr
	for _, h2 := range []bool{true, false} {
		env, resp := tlsEnviron(t, tlsClient([]*tlsCert{ca}, alice, h2), url)
		for k, want := range map[string]any{"SSL_CLIENT_VERIFY": "SUCCESS",
			"SSL_CLIENT_S_DN": "CN=alice,O=wsgate tests", "SSL_CLIENT_I_DN": "CN=Test CA,O=wsgate tests"} {
			if env[k] != want {
				t.Errorf("%s with alice's certificate: environ[%q] = %#v, want %#v", resp.Proto, k, env[k], want)
			}
		}
		env, resp = tlsEnviron(t, tlsClient([]*tlsCert{ca}, nil, h2), url)
		if env["SSL_CLIENT_VERIFY"] != "NONE" || env["SSL_CLIENT_S_DN"] != nil {
			t.Errorf("%s without a certificate: SSL_CLIENT_VERIFY %v, SSL_CLIENT_S_DN %v", resp.Proto, env["SSL_CLIENT_VERIFY"], env["SSL_CLIENT_S_DN"])
		}
	}
	if resp, err := tlsClient([]*tlsCert{ca}, mallory, true).Get(url + "/hello"); err == nil {
		resp.Body.Close()
		t.Errorf("a certificate of another CA was let in: %d", resp.StatusCode)
	}

	required := tlsStart(t, nil, "--workers", "1", "--certfile", server.certPEM, "--keyfile", server.keyPEM,
		"--ca-certs", ca.certPEM, "--cert-reqs", "required")
	if resp, err := tlsClient([]*tlsCert{ca}, nil, true).Get("https://" + required.addr + "/hello"); err == nil {
		resp.Body.Close()
		t.Errorf("cert_reqs = required let a client without a certificate in: %d", resp.StatusCode)
	}
	if env, _ := tlsEnviron(t, tlsClient([]*tlsCert{ca}, alice, true), "https://"+required.addr); env["SSL_CLIENT_VERIFY"] != "SUCCESS" {
		t.Errorf("cert_reqs = required: alice got SSL_CLIENT_VERIFY %v", env["SSL_CLIENT_VERIFY"])
	}
}

// TestTLSBadSettings: mistakes are reported before anything listens,
// naming where they were written.
func TestTLSBadSettings(t *testing.T) {
	dir := t.TempDir()
	cert := tlsIssue(t, dir, "localhost", 1, nil, false)
	other := tlsIssue(t, dir, "localhost", 2, nil, false)
	ini := filepath.Join(dir, "site.ini")
	tlsWrite(t, ini, []byte("[app:main]\nuse = call:pep3333:make_app\n\n[server:main]\ncert_reqs = sometimes\n"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{ini, "--pythonpath", gwAppsDir()}, `site.ini:5 [server:main] cert_reqs: "sometimes" is not one of none, optional, required`},
		{[]string{"--certfile", cert.certPEM}, "certfile and keyfile go together"},
		{[]string{"--certfile", cert.certPEM, "--keyfile", other.keyPEM}, "private key does not match public key"},
		{[]string{"--certfile", cert.certPEM, "--keyfile", cert.keyPEM, "--ca-certs", cert.keyPEM}, "no PEM certificate in it"},
		{[]string{"--http3"}, "need TLS"},
	} {
		args := tc.args
		if !strings.HasSuffix(args[0], ".ini") {
			args = append([]string{"--app", "pep3333:app", "--pythonpath", gwAppsDir()}, args...)
		}
		r := harness.Run(t, harness.Options{Args: args})
		if r.ExitCode != 1 || !strings.Contains(r.Output, tc.want) || strings.Contains(r.Output, "listening on") {
			t.Errorf("%v: exit %d, want 1 and %q before any listener:\n%s", tc.args, r.ExitCode, tc.want, r.Output)
		}
	}
}

// tlsSerial connects afresh and returns the serial number the server
// presents.
func tlsSerial(t *testing.T, addr string) int64 {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: gwIOGuard}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// tlsWaitCount waits until substr has been logged n times.
func tlsWaitCount(t *testing.T, s *gwServer, substr string, n int) {
	t.Helper()
	harness.WaitFor(t, fmt.Sprintf("%d× %q in the log", n, substr), func() bool {
		return strings.Count(s.Logs(), substr) >= n
	})
}

// TestTLSCertificateReReadOnSIGHUP: the certificate files swapped on disk
// are presented after SIGHUP (a new serial on a new connection), not
// before; a broken file on SIGHUP keeps the last good certificate.
func TestTLSCertificateReReadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key")
	tlsCopy(t, tlsIssue(t, dir, "localhost", 1001, nil, false), certPath, keyPath)
	s := tlsStart(t, nil, "--workers", "1", "--certfile", certPath, "--keyfile", keyPath)
	if got := tlsSerial(t, s.addr); got != 1001 {
		t.Fatalf("serial %d, want 1001", got)
	}
	tlsCopy(t, tlsIssue(t, dir, "localhost", 1002, nil, false), certPath, keyPath)
	if got := tlsSerial(t, s.addr); got != 1001 {
		t.Fatalf("serial %d before SIGHUP, want still 1001", got)
	}
	s.Signal(syscall.SIGHUP)
	tlsWaitCount(t, s, "certificates re-read", 1)
	if got := tlsSerial(t, s.addr); got != 1002 {
		t.Fatalf("serial %d after SIGHUP, want 1002", got)
	}
	tlsWrite(t, keyPath, []byte("not a key"))
	s.Signal(syscall.SIGHUP)
	tlsWaitCount(t, s, "certificates not re-read; the ones in use stay", 1)
	if got := tlsSerial(t, s.addr); got != 1002 {
		t.Fatalf("serial %d after a SIGHUP with a broken key, want 1002 kept", got)
	}
}

// TestTLSReloadUnderLoad: 20 SIGHUPs while clients keep sending requests
// over HTTPS (HTTP/2 and HTTP/1.1): not one fails, and each reload both
// replaces the workers and re-reads a certificate that changed.
func TestTLSReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	ca := tlsIssue(t, dir, "Test CA", 1, nil, false)
	certPath, keyPath := filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key")
	tlsCopy(t, tlsIssue(t, dir, "localhost", 100, ca, false), certPath, keyPath)
	s := tlsStart(t, nil, "--workers", "2", "--certfile", certPath, "--keyfile", keyPath)
	url := "https://" + s.addr + "/hello"

	var ok, failed atomic.Int64
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := tlsClient([]*tlsCert{ca}, nil, i%2 == 0)
			defer c.CloseIdleConnections()
			for n := 0; n < 100000; n++ { // bounded; stop ends it long before
				select {
				case <-stop:
					return
				default:
				}
				if n%50 == 0 {
					c.CloseIdleConnections() // new handshakes see the new certificates
				}
				resp, err := c.Get(url)
				if err == nil {
					var body []byte
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || string(body) != "hello world\n") {
						err = fmt.Errorf("%d %q", resp.StatusCode, body)
					}
				}
				if err != nil {
					failed.Add(1)
					failures.Store(err.Error(), true)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	const reloads = 20
	for i := 1; i <= reloads; i++ {
		tlsCopy(t, tlsIssue(t, dir, "localhost", int64(100+i), ca, false), certPath, keyPath)
		before := ok.Load()
		s.Signal(syscall.SIGHUP)
		tlsWaitCount(t, s, "reload complete", i)
		tlsWaitCount(t, s, "certificates re-read", i)
		if got := tlsSerial(t, s.addr); got != int64(100+i) {
			t.Errorf("reload %d: serial %d, want %d", i, got, 100+i)
		}
		harness.WaitFor(t, "requests served after the reload", func() bool { return ok.Load() > before })
	}
	close(stop)
	wg.Wait()
	t.Logf("%d SIGHUP reloads over TLS: %d requests served, %d failed", reloads, ok.Load(), failed.Load())
	if failed.Load() > 0 {
		failures.Range(func(k, _ any) bool { t.Errorf("failure: %v", k); return true })
		t.Fatalf("%d of %d requests failed during %d reloads", failed.Load(), ok.Load()+failed.Load(), reloads)
	}
}

// TestTLSHTTP3: with --http3, responses over TCP announce HTTP/3 with
// Alt-Svc, and an HTTP/3 client (quic-go's) gets the same environ over
// QUIC on that UDP port.
func TestTLSHTTP3(t *testing.T) {
	dir := t.TempDir()
	cert := tlsIssue(t, dir, "localhost", 1, nil, false)
	s := tlsStart(t, nil, "--workers", "1", "--certfile", cert.certPEM, "--keyfile", cert.keyPEM, "--http3")
	_, port, _ := net.SplitHostPort(s.addr)
	s.WaitLog("wsgate: HTTP/3 on udp://127.0.0.1:" + port)
	_, tcp := tlsEnviron(t, tlsClient([]*tlsCert{cert}, nil, true), "https://"+s.addr)
	if got, want := tcp.Header.Get("Alt-Svc"), `h3=":`+port+`"; ma=86400`; got != want {
		t.Errorf("Alt-Svc %q, want %q", got, want)
	}
	env, _ := tlsHTTP3Environ(t, cert, s.addr)
	for k, want := range map[string]any{"wsgi.url_scheme": "https", "HTTPS": "on", "SERVER_PROTOCOL": "HTTP/3.0",
		"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "9"} {
		if env[k] != want {
			t.Errorf("HTTP/3: environ[%q] = %#v, want %#v", k, env[k], want)
		}
	}
}

// tlsHTTP3Environ POSTs 9 bytes to /environ over HTTP/3 (quic-go's client)
// and decodes the answer.
func tlsHTTP3Environ(t *testing.T, cert *tlsCert, addr string) (map[string]any, *http.Response) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(cert.cert)
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.Close()
	c := &http.Client{Timeout: gwIOGuard, Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), gwIOGuard)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+addr+"/environ", strings.NewReader("over quic"))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("HTTP/3 request: %v", err)
	}
	defer resp.Body.Close()
	var env map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 3 {
		t.Errorf("answered over %s, want HTTP/3", resp.Proto)
	}
	return env, resp
}
