package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/compose"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
)

// runningSite is a composed site and its worker pools, as `serve` runs it:
// it is the server's handler, and the supervisor that SIGHUP, --reload and
// SIGTERM drive. Each pool runs with the server's settings, but for what its
// application's wsgate.* options change (compose.PoolSettings).
type runningSite struct {
	base gateway.Config // the server's settings, for every pool
	log  *slog.Logger
	// python runs the site's Python outside the workers, for components
	// that read it at load (compose.Options.Python); nil with --app.
	python func(module string, args ...string) (*exec.Cmd, error)

	mu       sync.Mutex
	pools    map[string]*gateway.Pool // by compose.Pool.Name
	running  map[string]poolState     // what each pool runs, by name
	order    []string
	composed *compose.Composed
	handler  atomic.Pointer[http.Handler]
	draining atomic.Bool
}

// poolState is what a pool was started or last reloaded with: a reload
// of the configuration leaves a pool alone when both are unchanged.
type poolState struct {
	worker   []byte
	settings string
}

func newRunningSite(base gateway.Config, log *slog.Logger) *runningSite {
	return &runningSite{base: base, log: log, pools: map[string]*gateway.Pool{}, running: map[string]poolState{}}
}

// poolConfig is the server's settings with the pool's own applied.
func (s *runningSite) poolConfig(p *compose.Pool) gateway.Config {
	cfg := s.base
	cfg.Node = p.Worker
	cfg.AppName = fmt.Sprintf("%s (%s)", p.Name, p.Node.Source)
	cfg.Logger = s.log.With("pool", p.Name)
	own := p.Settings
	if own.Workers > 0 {
		cfg.Workers = own.Workers
	}
	if own.Threads > 0 {
		cfg.Threads = own.Threads
	}
	if own.Timeout != nil {
		cfg.Timeout = timeoutOrNone(*own.Timeout)
	}
	if own.MaxRequests != nil {
		cfg.MaxRequests = *own.MaxRequests
	}
	if own.Python != "" {
		cfg.Python = own.Python
	}
	return cfg
}

func (s *runningSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.handler.Load()).ServeHTTP(w, r)
}

// compose builds app's handler; the pools it needs are created (not
// started) into fresh or, on a reload, reused: a running pool of the same
// name and settings. reused maps those whose application changed to the
// one they are to load, which the caller hands them (ReloadNode) once the
// new composition is sure to be served; an unchanged pool is left alone.
// states is what every pool of fresh runs.
func (s *runningSite) compose(app *config.Node, fresh map[string]*gateway.Pool) (c *compose.Composed, reused map[string][]byte, states map[string]poolState, err error) {
	reused, states = map[string][]byte{}, map[string]poolState{}
	c, err = compose.Compose(app, compose.Options{
		Site:   s,
		Logger: s.log,
		Python: s.python,
		Serve: func(p *compose.Pool) (http.Handler, error) {
			state := poolState{worker: p.Worker, settings: p.Settings.String()}
			states[p.Name] = state
			if old, ok := s.pools[p.Name]; ok && s.running[p.Name].settings == state.settings {
				fresh[p.Name] = old
				if !bytes.Equal(s.running[p.Name].worker, p.Worker) {
					reused[p.Name] = p.Worker
				}
				return gateway.NewHandler(old, ""), nil
			}
			gp := gateway.NewPool(s.poolConfig(p))
			fresh[p.Name] = gp
			return gateway.NewHandler(gp, ""), nil
		},
	})
	return c, reused, states, err
}

// prepareSingle makes the one pool of `serve --app` (no configuration).
func (s *runningSite) prepareSingle(cfg gateway.Config) {
	s.pools["app"], s.order = gateway.NewPool(cfg), []string{"app"}
	gh := gateway.NewHandler(s.pools["app"], "")
	gh.SetLendable() // the one application is the whole site
	var h http.Handler = gh
	s.handler.Store(&h)
}

// prepare composes app (building its Go components and creating, not
// starting, its pools): configuration mistakes come out before any
// listener is bound or worker started.
func (s *runningSite) prepare(app *config.Node) error {
	fresh := map[string]*gateway.Pool{}
	c, _, states, err := s.compose(app, fresh)
	if err != nil {
		return err
	}
	for _, p := range c.Pools {
		s.pools[p.Name] = fresh[p.Name]
		s.order = append(s.order, p.Name)
	}
	s.running = states
	s.composed = c
	markLendable(c.Handler)
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
		"max_requests", c.MaxRequests, "max_worker_memory", c.MaxWorkerMemory, "preload", c.Preload)
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

// Reloading reports whether a pool's reload has not ended yet (systemd
// hears READY=1 again when none has).
func (s *runningSite) Reloading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range s.order {
		if s.pools[name].Reloading() {
			return true
		}
	}
	return false
}

// ReloadApp composes a changed configuration, touching only the pools
// the change concerns: new pools start (and a pool whose wsgate.*
// settings changed is replaced by a new one), then pools whose
// application changed get it (a graceful reload), the new handler serves,
// and the pools no longer mounted stop. A pool whose application and
// settings are unchanged keeps its workers, unless codeChanged (a source
// file changed too: every running pool reloads, the new ones have just
// imported it). Until the new composition serves, a failure leaves the
// running site as it was.
func (s *runningSite) ReloadApp(app *config.Node, codeChanged bool) error {
	s.mu.Lock()
	fresh := map[string]*gateway.Pool{}
	c, reused, states, err := s.compose(app, fresh)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	var order []string
	var started []*gateway.Pool
	for _, p := range c.Pools {
		order = append(order, p.Name)
		gp := fresh[p.Name]
		if gp == s.pools[p.Name] {
			continue
		}
		if err := gp.Start(); err != nil {
			eachPool(started, func(p *gateway.Pool) { p.Stop(context.Background()) })
			s.mu.Unlock()
			c.Close()
			return fmt.Errorf("starting pool %s: %w", p.Name, err)
		}
		logSettings(s.log, p.Name, gp.Config())
		started = append(started, gp)
	}
	for _, p := range c.Pools {
		if worker, ok := reused[p.Name]; ok {
			s.pools[p.Name].ReloadNode(worker)
		} else if codeChanged && fresh[p.Name] == s.pools[p.Name] {
			s.pools[p.Name].Reload()
		}
	}
	old := s.composed
	var gone []*gateway.Pool
	for name, p := range s.pools {
		if fresh[name] != p {
			gone = append(gone, p)
		}
	}
	if len(reused) == 0 && len(started) == 0 && len(gone) == 0 && !codeChanged {
		s.log.Info("no pool changed: the configuration's Python applications are as they were")
	}
	s.composed, s.order, s.pools, s.running = c, order, fresh, states
	markLendable(c.Handler)
	s.handler.Store(&c.Handler)
	s.mu.Unlock()
	// Requests already handed to a gone pool finish within the grace.
	ctx, cancel := context.WithTimeout(context.Background(), s.base.GracefulTimeout)
	defer cancel()
	eachPool(gone, func(p *gateway.Pool) { p.Stop(ctx) })
	if old != nil {
		old.Close()
	}
	return nil
}

// BeginDrain marks the site draining as soon as the server stops
// accepting (readiness turns false), before the pools stop.
func (s *runningSite) BeginDrain() {
	s.draining.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pools {
		p.StopLending()
	}
}

// AwaitLent waits until no pool has a connection lent to a worker (their
// requests in flight answered, the connections handed back), or ctx ends.
func (s *runningSite) AwaitLent(ctx context.Context) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		lent := 0
		s.mu.Lock()
		for _, p := range s.pools {
			lent += p.LentConns()
		}
		s.mu.Unlock()
		if lent == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

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
	pools := make([]*gateway.Pool, 0, len(names))
	for _, name := range names {
		pools = append(pools, s.pools[name])
	}
	eachPool(pools, func(p *gateway.Pool) { p.Stop(ctx) })
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

// DumpStacks has every worker of every pool log its Python thread stacks
// (SIGUSR1, `wsgate dump`); it returns once they are logged.
func (s *runningSite) DumpStacks(why string) {
	s.mu.Lock()
	pools := make([]*gateway.Pool, 0, len(s.order))
	for _, name := range s.order {
		pools = append(pools, s.pools[name])
	}
	s.mu.Unlock()
	eachPool(pools, func(p *gateway.Pool) { p.DumpStacks(why) })
}

// eachPool runs f on every pool at once and returns when all are done.
func eachPool(pools []*gateway.Pool, f func(*gateway.Pool)) {
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(p)
		}()
	}
	wg.Wait()
}

// dumpOnSIGUSR1 logs every worker's stacks each time the master gets
// SIGUSR1; the returned function stops listening.
func (s *runningSite) dumpOnSIGUSR1() func() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sigs:
				s.log.Info("SIGUSR1: dumping every worker's stacks")
				s.DumpStacks("SIGUSR1 sent to the master")
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// Draining reports whether the site is shutting down.
func (s *runningSite) Draining() bool { return s.draining.Load() }

// loadErrorOf finds the application's load error in a start failure.
func loadErrorOf(err error) (*gateway.LoadError, bool) {
	var le *gateway.LoadError
	return le, errors.As(err, &le)
}

// markLendable lets a site that is one Python application, with no Go
// component around it, lend its connections to the workers (--lend).
func markLendable(h http.Handler) {
	if gh, ok := h.(*gateway.Handler); ok {
		gh.SetLendable()
	}
}
