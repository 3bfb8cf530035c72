// Package server owns wsgate's listeners: it binds TCP and unix sockets,
// serves HTTP/1.1 and HTTP/2 (h2c) on them, and turns signals into a
// graceful reload (SIGHUP) or a drain-and-exit (SIGTERM, SIGINT).
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
	"syscall"
	"time"
)

// Listener is a bound socket and the address users reach it at.
type Listener struct {
	net.Listener
	URL string // "http://127.0.0.1:8000" or "unix:/run/app.sock"
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

// Supervisor is what the server drives on signals: the worker pool.
type Supervisor interface {
	Reload()
	Stop(ctx context.Context)
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
}

// Serve serves on the listeners until SIGTERM or SIGINT (or ctx ends), then
// stops accepting, lets in-flight requests finish within GracefulTimeout,
// stops the supervisor and returns nil. SIGHUP reloads the supervisor.
func Serve(ctx context.Context, lns []Listener, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           rejectConflictingFraming(opts.Handler),
		ConnContext:       rememberConn,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		Protocols:         &protocols,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	errs := make(chan error, len(lns))
	for _, l := range lns {
		go func() {
			if err := srv.Serve(framedListener{l}); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("serving on %s: %w", l.URL, err)
			}
		}()
	}
	var serveErr error
loop:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				log.Info("SIGHUP: reloading workers")
				if opts.Supervisor != nil {
					opts.Supervisor.Reload()
				}
				continue
			}
			log.Info("draining", "signal", sig.String(), "graceful_timeout", opts.GracefulTimeout.String())
			break loop
		case <-ctx.Done():
			break loop
		case serveErr = <-errs:
			log.Error("listener failed; shutting down", "error", serveErr.Error())
			break loop
		}
	}
	grace := opts.GracefulTimeout
	if grace <= 0 {
		grace = 30 * time.Second
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// The timeout in force, not the one asked for: tests read it here.
		log.Warn("graceful timeout passed with requests still running; closing them",
			"graceful_timeout", grace.String(), "error", err.Error())
		srv.Close()
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

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
