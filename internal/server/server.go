// Package server owns wsgate's listeners: it binds TCP and unix sockets (or
// takes them from systemd), serves HTTP/1.1 on them, HTTP/2 over TLS (and
// cleartext h2c when asked), HTTP/3 beside HTTPS when asked, redirects
// plain HTTP to HTTPS, and turns signals into a graceful reload (SIGHUP) or
// a drain-and-exit (SIGTERM, SIGINT).
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Listener is a bound socket and the address users reach it at.
type Listener struct {
	net.Listener
	URL string // "http://127.0.0.1:8000", "https://…" or "unix:/run/app.sock"
}

// TCP reports whether l is a TCP socket (unix sockets never serve TLS: a
// local proxy in front terminates it).
func (l Listener) TCP() bool {
	_, ok := l.Addr().(*net.TCPAddr)
	return ok
}

// Secure marks the TCP listeners as HTTPS ones (their URL says so).
func Secure(lns []Listener) {
	for i, l := range lns {
		if l.TCP() {
			lns[i].URL = "https://" + l.Addr().String()
		}
	}
}

// Listen binds every address: "HOST:PORT", ":PORT", "[::1]:PORT" or
// "unix:/path.sock". On error the ones already bound are closed.
func Listen(binds []string) ([]Listener, error) {
	var out []Listener
	for _, b := range binds {
		l, err := listen(b)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

func listen(bind string) (Listener, error) {
	if path, ok := strings.CutPrefix(bind, "unix:"); ok {
		if path == "" {
			return Listener{}, fmt.Errorf("--bind %q: a unix socket needs a path (unix:/path/app.sock)", bind)
		}
		// A socket file left by a previous run that died: remove it, but
		// never a regular file someone put there.
		if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() == fs.ModeSocket {
			if c, err := net.Dial("unix", path); err == nil {
				c.Close()
				return Listener{}, fmt.Errorf("--bind %s: another server is listening there", bind)
			}
			os.Remove(path)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return Listener{}, fmt.Errorf("--bind %s: %w", bind, err)
		}
		return Listener{Listener: l, URL: "unix:" + path}, nil
	}
	if _, _, err := net.SplitHostPort(bind); err != nil {
		return Listener{}, fmt.Errorf("--bind %q: expected HOST:PORT or unix:/path (%v)", bind, err)
	}
	l, err := net.Listen("tcp", bind)
	if err != nil {
		return Listener{}, fmt.Errorf("--bind %s: %w", bind, err)
	}
	return Listener{Listener: l, URL: "http://" + l.Addr().String()}, nil
}

// Supervisor is what the server drives on signals: the worker pools.
type Supervisor interface {
	Reload()
	Stop(ctx context.Context)
}

// drainNotified is a Supervisor told when the drain begins, before the
// listeners close and the in-flight requests finish: a readiness probe
// answered from a listener of its own turns false then, not once the drain
// is over.
type drainNotified interface {
	BeginDrain()
}

// Options configure Serve.
type Options struct {
	Handler http.Handler
	// Supervisor is reloaded on SIGHUP and stopped after the listeners.
	Supervisor Supervisor
	// GracefulTimeout bounds the drain on SIGTERM: in-flight requests
	// get this long to finish.
	GracefulTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers (431 past it).
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds how long a client may take to send its
	// headers (slow clients cost a goroutine, never a worker, but not forever).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout time.Duration
	Logger      *slog.Logger
	// H2C also speaks cleartext HTTP/2 on the plain listeners.
	H2C bool
}

// asteriskToApp hands `OPTIONS *` (RFC 9110 9.3.7: a question about the
// server as a whole) to the application, as gunicorn and waitress do,
// instead of net/http's own empty 200 (DisableGeneralOptionsHandler). It
// is routed as the root path, so the application mounted at / answers it;
// the gateway gives it REQUEST_URI "*" and an empty PATH_INFO (docs/serve.md,
// "OPTIONS *").
func asteriskToApp(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.RequestURI == "*" {
			u := *r.URL
			u.Path, u.RawPath = "/", ""
			r.URL = &u
		}
		h.ServeHTTP(w, r)
	})
}

// lentWaiter is a Supervisor whose workers may hold connections of their
// own (lent connections): the drain waits for them as for net/http's.
type lentWaiter interface {
	AwaitLent(ctx context.Context) bool
}

// Reloader is a Supervisor that can say when the reload it was asked for
// has ended (for RELOADING=1 … READY=1).
type Reloader interface {
	Reloading() bool
}

// Serve serves on the listeners until SIGTERM or SIGINT (or ctx ends), then
// stops accepting, lets in-flight requests finish within GracefulTimeout,
// stops the supervisor and returns nil. SIGHUP reloads the supervisor.
func Serve(ctx context.Context, socks *Sockets, opts Options) error {
	lns := socks.Listeners
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	handler := rejectConflictingFraming(asteriskToApp(opts.Handler))
	newServer := func(h http.Handler, protocols *http.Protocols) *http.Server {
		return &http.Server{
			Handler:           h,
			ConnContext:       rememberConn,
			MaxHeaderBytes:    opts.MaxHeaderBytes,
			ReadHeaderTimeout: opts.ReadHeaderTimeout,
			IdleTimeout:       opts.IdleTimeout,
			Protocols:         protocols,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			// OPTIONS * is the application's to answer: asteriskToApp.
			DisableGeneralOptionsHandler: true,
		}
	}
	var plainProtocols, tlsProtocols http.Protocols
	plainProtocols.SetHTTP1(true)
	plainProtocols.SetUnencryptedHTTP2(opts.H2C)
	tlsProtocols.SetHTTP1(true)
	tlsProtocols.SetHTTP2(true)
	plain := newServer(handler, &plainProtocols)
	var back *backListener
	if len(lns) > 0 {
		back = newBackListener(lns[0].Addr())
		plain.ConnContext = giveBackContext(back)
	}
	servers := []*http.Server{plain}
	var secure *http.Server
	var h3 *http3Server
	if socks.TLS != nil {
		secureHandler := handler
		if len(socks.HTTP3) > 0 {
			h3 = newHTTP3(socks.HTTP3, socks.TLS, handler, opts.MaxHeaderBytes, log)
			secureHandler = h3.advertise(handler)
		}
		secure = newServer(secureHandler, &tlsProtocols)
		servers = append(servers, secure)
	}
	var redirect *http.Server
	if len(socks.Redirect) > 0 {
		redirect = newServer(redirectHandler(lns, socks.TLS), &plainProtocols)
		servers = append(servers, redirect)
	}
	sigs := socks.signals
	defer signal.Stop(sigs)

	errs := make(chan error, len(lns)+len(socks.Redirect)+1)
	serve := func(srv *http.Server, l net.Listener, url string) {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("serving on %s: %w", url, err)
		}
	}
	for _, l := range lns {
		if secure != nil && l.TCP() {
			go serve(secure, newHandshakeListener(l, socks.TLS.Config(), handshakeTimeout(opts)), l.URL)
		} else {
			go serve(plain, framedListener{l}, l.URL)
		}
	}
	for _, l := range socks.Redirect {
		go serve(redirect, framedListener{l}, l.URL)
	}
	if back != nil {
		go serve(plain, back, "connections given back")
	}
	if h3 != nil {
		go func() {
			if err := h3.serve(); err != nil {
				errs <- err
			}
		}()
	}
	// The service manager (systemd) hears READY=1 now (the workers are
	// ready before Serve is called), RELOADING=1 … READY=1 around a
	// reload, STOPPING=1 and the watchdog's pings from this loop.
	notifier := socks.notifier
	notify := func(state string) {
		if err := notifier.Notify(state); err != nil {
			log.Warn("cannot notify the service manager", "state", state, "error", err.Error())
		}
	}
	notify("READY=1")
	var watchdog <-chan time.Time
	if every := notifier.WatchdogInterval(); every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		watchdog = t.C
	}
	// reloaded is polled while a reload is under way, to say READY=1 when
	// it has ended.
	var reloaded <-chan time.Time
	var serveErr error
	var stopSig os.Signal
loop:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				log.Info("SIGHUP: reloading workers")
				notify(reloadingState())
				if socks.TLS != nil {
					socks.TLS.Reload()
				}
				if opts.Supervisor != nil {
					opts.Supervisor.Reload()
				}
				reloaded = time.After(0)
				continue
			}
			stopSig = sig
			break loop
		case <-reloaded:
			if r, ok := opts.Supervisor.(Reloader); ok && r.Reloading() {
				reloaded = time.After(50 * time.Millisecond)
				continue
			}
			reloaded = nil
			notify("READY=1")
		case <-watchdog:
			notify("WATCHDOG=1")
		case <-ctx.Done():
			break loop
		case serveErr = <-errs:
			log.Error("listener failed; shutting down", "error", serveErr.Error())
			break loop
		}
	}
	notify("STOPPING=1")
	if d, ok := opts.Supervisor.(drainNotified); ok {
		d.BeginDrain()
	}
	if stopSig != nil {
		// logged once readiness is false: tests probe it after this line
		log.Info("draining", "signal", stopSig.String(), "graceful_timeout", opts.GracefulTimeout.String())
	}
	grace := opts.GracefulTimeout
	if grace <= 0 {
		grace = 30 * time.Second
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if h3 != nil {
		h3.shutdown(shutdownCtx)
	}
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(shutdownCtx); err != nil {
				// The timeout in force, not the one asked for: tests read it here.
				log.Warn("graceful timeout passed with requests still running; closing them",
					"graceful_timeout", grace.String(), "error", err.Error())
				srv.Close()
			}
		}()
	}
	wg.Wait()
	// Connections lent to workers (--lend) are not net/http's to wait for:
	// their requests in flight get the same grace.
	if lw, ok := opts.Supervisor.(lentWaiter); ok && shutdownCtx.Err() == nil && !lw.AwaitLent(shutdownCtx) {
		log.Warn("graceful timeout passed with requests still running; closing them",
			"graceful_timeout", grace.String(), "error", "requests on lent connections")
	}
	if opts.Supervisor != nil {
		// The workers get what is left of the grace period, at least a second.
		stopCtx, cancelStop := context.WithTimeout(context.Background(), max(time.Until(deadline(shutdownCtx)), time.Second))
		opts.Supervisor.Stop(stopCtx)
		cancelStop()
	}
	log.Info("stopped")
	return serveErr
}

// reloadingState is systemd's RELOADING=1 with the monotonic time it wants
// beside it (Type=notify-reload).
func reloadingState() string {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000)
}

// handshakeTimeout bounds a TLS handshake as the headers are bounded.
func handshakeTimeout(opts Options) time.Duration {
	if opts.ReadHeaderTimeout > 0 {
		return opts.ReadHeaderTimeout
	}
	return 30 * time.Second
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
