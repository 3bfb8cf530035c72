// Package componenttest builds components from INI options in unit tests,
// with a Host and a Site whose state the test sets.
package componenttest

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/config"
)

// Site is a component.Site whose pools and draining flag the test sets.
type Site struct {
	mu       sync.Mutex
	pools    []component.PoolStats
	draining bool
}

func (s *Site) Pools() []component.PoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]component.PoolStats(nil), s.pools...)
}

func (s *Site) Draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// SetPools replaces the pools the site reports.
func (s *Site) SetPools(p ...component.PoolStats) {
	s.mu.Lock()
	s.pools = p
	s.mu.Unlock()
}

// SetDraining sets what Draining reports.
func (s *Site) SetDraining(d bool) {
	s.mu.Lock()
	s.draining = d
	s.mu.Unlock()
}

// Host is a component.Host with a test Site and no applications to name.
type Host struct {
	S   *Site
	Log *slog.Logger
}

func (h *Host) App(name string) (http.Handler, error) {
	return nil, errors.New("componenttest: no application " + name)
}

func (h *Host) Site() component.Site {
	if h.S == nil {
		return nil // a nil *Site would be a non-nil interface
	}
	return h.S
}

func (h *Host) Logger() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

// Node is a section of test.ini using the component, with options kv
// (alternating keys and values).
func Node(name string, kv ...string) *config.Node {
	return &config.Node{
		ObjectType: config.TypeFilter,
		Use:        "egg:wsgate#" + name,
		GlobalConf: config.ConfOf("here", "."),
		LocalConf:  config.ConfOf(kv...),
		Source:     config.Source{File: "test.ini", Line: 1, Section: "filter:" + name},
	}
}

// TryBuild builds the registered component name from options kv, refusing
// options it does not read as compose does.
func TryBuild(h component.Host, name string, kv ...string) (component.Built, error) {
	spec, ok := component.ByName(name)
	if !ok {
		return component.Built{}, errors.New("componenttest: no component " + name)
	}
	b := component.NewBuilder(Node(name, kv...), h)
	built, err := spec.Build(b)
	if err != nil {
		return built, err
	}
	if unread := b.Unread(); len(unread) > 0 {
		return built, b.Errorf(unread[0], "unknown option")
	}
	return built, nil
}

// Build is TryBuild that fails the test on an error and closes what it
// built when the test ends.
func Build(t testing.TB, h component.Host, name string, kv ...string) component.Built {
	t.Helper()
	built, err := TryBuild(h, name, kv...)
	if err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	if built.Close != nil {
		t.Cleanup(func() { _ = built.Close() })
	}
	return built
}

// RequireError fails the test unless building name from options kv, for a
// site that is served, fails with an error containing want.
func RequireError(t testing.TB, name, want string, kv ...string) {
	t.Helper()
	_, err := TryBuild(&Host{S: &Site{}}, name, kv...)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s with options %q: got error %v, want one containing %q", name, kv, err, want)
	}
}

// FreeAddr returns a loopback host:port nothing listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Logs collects what a component logs; handlers may write to it from their
// own goroutines.
type Logs struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Logger is a text logger writing to l.
func (l *Logs) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }
