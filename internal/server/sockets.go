package server

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/wsgate/wsgate/internal/systemd"
)

// Sockets are everything the server listens on, bound before the workers
// start and before privileges are dropped.
type Sockets struct {
	Listeners []Listener       // the site: HTTPS on TCP when TLS is set
	Redirect  []Listener       // plain HTTP redirecting to HTTPS
	HTTP3     []net.PacketConn // UDP for HTTP/3
	TLS       *TLS
	// signals are caught from Open on: a SIGHUP or SIGTERM between the
	// ready line and Serve is handled by Serve, not fatal.
	signals chan os.Signal
	// notifier is read from the environment here, before the workers
	// start, so they do not inherit $NOTIFY_SOCKET.
	notifier *systemd.Notifier
}

// RedirectName is the FileDescriptorName= of a passed socket meant for the
// redirect listener.
const RedirectName = "redirect"

// Open binds what c asks for: binds (or the sockets systemd passed, which
// replace them), the redirect listener, and the UDP sockets of HTTP/3. The
// certificates are read first: a bad file is reported before anything
// listens.
func Open(binds []string, c Config, log *slog.Logger) (*Sockets, error) {
	s := &Sockets{signals: make(chan os.Signal, 4), notifier: systemd.NotifierFromEnv()}
	signal.Notify(s.signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if c.TLS() {
		var err error
		if s.TLS, err = NewTLS(c, log); err != nil {
			signal.Stop(s.signals)
			return nil, err
		}
	}
	passed, err := systemd.Sockets()
	if err != nil {
		s.Close()
		return nil, err
	}
	if len(passed) > 0 {
		log.Info("using the sockets passed by the service manager; --bind is not used", "sockets", len(passed))
		for _, p := range passed {
			switch {
			case p.Packet != nil:
				s.HTTP3 = append(s.HTTP3, p.Packet)
			case p.Name == RedirectName:
				s.Redirect = append(s.Redirect, passedListener(p.Listener))
			default:
				s.Listeners = append(s.Listeners, passedListener(p.Listener))
			}
		}
		if len(s.Listeners) == 0 {
			s.Close()
			return nil, fmt.Errorf("the service manager passed no stream socket to serve the site on (only %q ones)", RedirectName)
		}
	} else if s.Listeners, err = Listen(binds); err != nil {
		s.Close()
		return nil, err
	}
	if s.TLS != nil {
		Secure(s.Listeners)
	}
	if c.RedirectHTTP != "" && len(s.Redirect) == 0 {
		l, err := listen(c.RedirectHTTP)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("redirect_http: %w", err)
		}
		s.Redirect = append(s.Redirect, l)
	}
	switch {
	case c.HTTP3 && len(s.HTTP3) == 0:
		if s.HTTP3, err = ListenUDP(s.Listeners); err != nil {
			s.Close()
			return nil, err
		}
	case !c.HTTP3 && len(s.HTTP3) > 0:
		s.Close()
		return nil, fmt.Errorf("the service manager passed UDP sockets but http3 is off")
	}
	return s, nil
}

func passedListener(l net.Listener) Listener {
	if a, ok := l.Addr().(*net.UnixAddr); ok {
		return Listener{Listener: l, URL: "unix:" + a.Name}
	}
	return Listener{Listener: l, URL: "http://" + l.Addr().String()}
}

// Lines say what is served where, a line each: "listening on URL" for
// the site's listeners (what scripts and tests read), then the redirect
// and HTTP/3 sockets.
func (s *Sockets) Lines() []string {
	var out []string
	for _, l := range s.Listeners {
		out = append(out, "listening on "+l.URL)
	}
	for _, l := range s.Redirect {
		out = append(out, "redirecting to https from "+l.URL)
	}
	for _, p := range s.HTTP3 {
		out = append(out, "HTTP/3 on udp://"+p.LocalAddr().String())
	}
	return out
}

// Close closes every socket (start-up failed) and stops catching signals.
func (s *Sockets) Close() {
	signal.Stop(s.signals)
	for _, l := range append(s.Listeners, s.Redirect...) {
		l.Close()
	}
	for _, p := range s.HTTP3 {
		p.Close()
	}
}
