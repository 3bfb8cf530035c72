package component

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Endpoint builds a component that answers some paths itself (health,
// metrics): in front of the application on the site's listener, or, when
// its `listen` option names an address, on a listener of its own that the
// site's traffic never reaches. measure, if set, wraps the application
// either way (metrics counts the site's requests wherever its page is
// served). A site built but not served (wsgate check, manage: the Host has
// no Site) has the address checked, not bound, so checking the
// configuration of a running server does not collide with it.
func Endpoint(b *Builder, paths []string, page http.Handler, measure func(http.Handler) http.Handler) (Built, error) {
	if measure == nil {
		measure = func(next http.Handler) http.Handler { return next }
	}
	addr := b.String("listen", "")
	if addr == "" {
		return Built{Wrap: func(next http.Handler) http.Handler {
			next = measure(next)
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if slices.Contains(paths, r.URL.Path) {
					page.ServeHTTP(w, r)
					return
				}
				next.ServeHTTP(w, r)
			})
		}}, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return Built{}, b.Errorf("listen", "%q is not host:port (e.g. 127.0.0.1:9100)", addr)
	}
	if b.Host == nil || b.Host.Site() == nil {
		return Built{Wrap: measure}, nil
	}
	closeFn, err := serveOwn(addr, paths, page)
	if err != nil {
		return Built{}, b.Errorf("listen", "%v", err)
	}
	return Built{Wrap: measure, Close: closeFn}, nil
}

// ownListener is one address listened on by Endpoint components. The
// components of a site built again (SIGHUP) take their paths over on the
// same listener, so a reload never closes the port; it closes with the last
// component using it.
type ownListener struct {
	srv  *http.Server
	regs []*ownPaths // newest last
}

type ownPaths struct {
	paths []string
	h     http.Handler
}

var (
	ownMu     sync.Mutex
	ownByAddr = map[string]*ownListener{}
)

func serveOwn(addr string, paths []string, h http.Handler) (func() error, error) {
	ownMu.Lock()
	defer ownMu.Unlock()
	l := ownByAddr[addr]
	if l == nil {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		l = &ownListener{}
		l.srv = &http.Server{Handler: http.HandlerFunc(l.serve), ReadHeaderTimeout: 10 * time.Second}
		ownByAddr[addr] = l
		go func() {
			if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				// Accept failed for good; the next build binds afresh.
				ownMu.Lock()
				if ownByAddr[addr] == l {
					delete(ownByAddr, addr)
				}
				ownMu.Unlock()
			}
		}()
	}
	reg := &ownPaths{paths: paths, h: h}
	l.regs = append(l.regs, reg)
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			ownMu.Lock()
			defer ownMu.Unlock()
			l.regs = slices.DeleteFunc(l.regs, func(o *ownPaths) bool { return o == reg })
			if len(l.regs) == 0 {
				if ownByAddr[addr] == l {
					delete(ownByAddr, addr)
				}
				err = l.srv.Close()
			}
		})
		return err
	}, nil
}

func (l *ownListener) serve(w http.ResponseWriter, r *http.Request) {
	ownMu.Lock()
	var h http.Handler
	for i := len(l.regs) - 1; i >= 0 && h == nil; i-- {
		if slices.Contains(l.regs[i].paths, r.URL.Path) {
			h = l.regs[i].h
		}
	}
	ownMu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}
