package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/compose"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
)

// runningSite is a composed site and its worker pools, as `serve` runs it:
// it is the server's handler, and the supervisor that SIGHUP, --reload and
// SIGTERM drive (every pool together).
type runningSite struct {
	base gateway.Config // every pool's settings but its application
	log  *slog.Logger
	// python runs the site's Python outside the workers, for components
	// that read it at load (compose.Options.Python); nil with --app.
	python func(module string, args ...string) (*exec.Cmd, error)

	mu       sync.Mutex
	pools    map[string]*gateway.Pool // by compose.Pool.Name
	order    []string
	composed *compose.Composed
	handler  atomic.Pointer[http.Handler]
	draining atomic.Bool
}

func newRunningSite(base gateway.Config, log *slog.Logger) *runningSite {
	return &runningSite{base: base, log: log, pools: map[string]*gateway.Pool{}}
}

func (s *runningSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.handler.Load()).ServeHTTP(w, r)
}

// compose builds app's handler; the pools it needs are created (not
// started) into fresh or, on a reload, reused by name: reused maps those
// to the application they are to load, which the caller hands them
// (ReloadNode) once the new composition is sure to be served.
func (s *runningSite) compose(app *config.Node, fresh map[string]*gateway.Pool) (c *compose.Composed, reused map[string][]byte, err error) {
	reused = map[string][]byte{}
	c, err = compose.Compose(app, compose.Options{
		Site:   s,
		Logger: s.log,
		Python: s.python,
		Serve: func(p *compose.Pool) (http.Handler, error) {
			if old, ok := s.pools[p.Name]; ok {
				fresh[p.Name] = old
				reused[p.Name] = p.Worker
				return gateway.NewHandler(old, ""), nil
			}
			cfg := s.base
			cfg.Node = p.Worker
			cfg.AppName = fmt.Sprintf("%s (%s)", p.Name, p.Node.Source)
			cfg.Logger = s.log.With("pool", p.Name)
			gp := gateway.NewPool(cfg)
			fresh[p.Name] = gp
			return gateway.NewHandler(gp, ""), nil
		},
	})
	return c, reused, err
}

// prepareSingle makes the one pool of `serve --app` (no configuration).
func (s *runningSite) prepareSingle(cfg gateway.Config) {
	s.pools["app"], s.order = gateway.NewPool(cfg), []string{"app"}
	var h http.Handler = gateway.NewHandler(s.pools["app"], "")
	s.handler.Store(&h)
}

// prepare composes app (building its Go components and creating, not
// starting, its pools): configuration mistakes come out before any
// listener is bound or worker started.
func (s *runningSite) prepare(app *config.Node) error {
	fresh := map[string]*gateway.Pool{}
	c, _, err := s.compose(app, fresh)
	if err != nil {
		return err
	}
	for _, p := range c.Pools {
		s.pools[p.Name] = fresh[p.Name]
		s.order = append(s.order, p.Name)
	}
	s.composed = c
	s.handler.Store(&c.Handler)
	return nil
}

// start starts every pool; on an error the pools already started are
// stopped, and failed names the pool that could not start.
func (s *runningSite) start() (failed string, err error) {
	for i, name := range s.order {
		logSettings(s.log, name, s.pools[name].Config())
		if err := s.pools[name].Start(); err != nil {
			s.stopPools(context.Background(), s.order[:i])
			if s.composed != nil {
				s.composed.Close()
			}
			return name, err
		}
	}
	return "", nil
}

// logSettings says, once per pool, the settings it runs with, zeros and
// defaults spelled out ("none" for no timeout, no queue).
func logSettings(log *slog.Logger, name string, c gateway.Config) {
	timeout, queue := c.Timeout.String(), strconv.Itoa(c.QueueSize)
	if c.Timeout < 0 {
		timeout = "none"
	}
	if c.QueueSize < 0 {
		queue = "none"
	}
	log.Info("pool settings", "pool", name, "workers", c.Workers, "threads", c.Threads, "pipeline", c.Pipeline,
		"timeout", timeout, "queue_size", queue, "graceful_timeout", c.GracefulTimeout.String(),
		"max_requests", c.MaxRequests)
}

// Workers is the number of workers of every pool.
func (s *runningSite) Workers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, name := range s.order {
		n += s.pools[name].Config().Workers
	}
	return n
}

// PoolCount is the number of pools.
func (s *runningSite) PoolCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.order)
}

// Reload replaces every pool's workers gracefully (SIGHUP, --reload).
func (s *runningSite) Reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range s.order {
		s.pools[name].Reload()
	}
}

// ReloadApp composes a changed configuration: new pools start, then pools
// of the same name get the new application (a graceful reload), the new
// handler serves, and the pools no longer mounted stop. Until the new
// composition serves, a failure leaves the running site as it was.
func (s *runningSite) ReloadApp(app *config.Node) error {
	s.mu.Lock()
	fresh := map[string]*gateway.Pool{}
	c, reused, err := s.compose(app, fresh)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	var order, started []string
	for _, p := range c.Pools {
		order = append(order, p.Name)
		if _, running := s.pools[p.Name]; running {
			continue
		}
		if err := fresh[p.Name].Start(); err != nil {
			s.stopPools(context.Background(), started)
			for _, name := range started {
				delete(s.pools, name)
			}
			s.mu.Unlock()
			c.Close()
			return fmt.Errorf("starting pool %s: %w", p.Name, err)
		}
		logSettings(s.log, p.Name, fresh[p.Name].Config())
		s.pools[p.Name] = fresh[p.Name]
		started = append(started, p.Name)
	}
	for name, worker := range reused {
		s.pools[name].ReloadNode(worker)
	}
	old, oldOrder := s.composed, s.order
	s.composed, s.order = c, order
	s.handler.Store(&c.Handler)
	var gone []*gateway.Pool
	for _, name := range oldOrder {
		if _, kept := fresh[name]; !kept {
			gone = append(gone, s.pools[name])
			delete(s.pools, name)
		}
	}
	s.mu.Unlock()
	// Requests already handed to a gone pool finish within the grace.
	ctx, cancel := context.WithTimeout(context.Background(), s.base.GracefulTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range gone {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Stop(ctx)
		}()
	}
	wg.Wait()
	if old != nil {
		old.Close()
	}
	return nil
}

// BeginDrain marks the site draining as soon as the server stops
// accepting (readiness turns false), before the pools stop.
func (s *runningSite) BeginDrain() { s.draining.Store(true) }

// Stop drains every pool at once (SIGTERM).
func (s *runningSite) Stop(ctx context.Context) {
	s.draining.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopPools(ctx, s.order)
	if s.composed != nil {
		s.composed.Close()
	}
}

func (s *runningSite) stopPools(ctx context.Context, names []string) {
	var wg sync.WaitGroup
	for _, name := range names {
		p := s.pools[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Stop(ctx)
		}()
	}
	wg.Wait()
}

// Pools reports every pool (component.Site, for metrics and health).
func (s *runningSite) Pools() []component.PoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]component.PoolStats, 0, len(s.order))
	for _, name := range s.order {
		st := s.pools[name].Stats()
		st.Name = name
		out = append(out, st)
	}
	return out
}

// Draining reports whether the site is shutting down.
func (s *runningSite) Draining() bool { return s.draining.Load() }

// loadErrorOf finds the application's load error in a start failure.
func loadErrorOf(err error) (*gateway.LoadError, bool) {
	var le *gateway.LoadError
	return le, errors.As(err, &le)
}
