package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/quic-go/quic-go/http3"
)

// ListenUDP binds, for HTTP/3, a UDP socket on the address of every HTTPS
// listener (before privileges are dropped, as the TCP ones are).
func ListenUDP(lns []Listener) ([]net.PacketConn, error) {
	var out []net.PacketConn
	for _, l := range lns {
		if !l.TCP() {
			continue
		}
		pc, err := net.ListenPacket("udp", l.Addr().String())
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("http3 on %s: %w", l.Addr(), err)
		}
		out = append(out, pc)
	}
	return out, nil
}

// http3Server serves HTTP/3 on UDP sockets, with the HTTPS listeners'
// certificates and handler.
type http3Server struct {
	srv   *http3.Server
	conns []net.PacketConn
}

func newHTTP3(conns []net.PacketConn, t *TLS, h http.Handler, maxHeaderBytes int, log *slog.Logger) *http3Server {
	return &http3Server{
		srv: &http3.Server{
			Handler:        h,
			TLSConfig:      http3.ConfigureTLSConfig(t.Config()),
			MaxHeaderBytes: maxHeaderBytes,
			Logger:         log,
		},
		conns: conns,
	}
}

// advertise adds Alt-Svc to every response over TCP: HTTP/3 is on the UDP
// port of the same number.
func (s *http3Server) advertise(next http.Handler) http.Handler {
	ports := map[int]bool{}
	for _, c := range s.conns {
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
			ports[a.Port] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok && ports[a.Port] {
			w.Header().Set("Alt-Svc", `h3=":`+strconv.Itoa(a.Port)+`"; ma=86400`)
		}
		next.ServeHTTP(w, r)
	})
}

// serve serves every socket until shutdown; the first error is returned.
func (s *http3Server) serve() error {
	errs := make(chan error, len(s.conns))
	for _, c := range s.conns {
		go func() {
			err := s.srv.Serve(c)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			if err != nil {
				err = fmt.Errorf("http3 on %s: %w", c.LocalAddr(), err)
			}
			errs <- err
		}()
	}
	for range s.conns {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

func (s *http3Server) shutdown(ctx context.Context) {
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
}
