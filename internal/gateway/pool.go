package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Pool supervises the Python workers, as gunicorn's arbiter does: it
// spawns them, lends their slots to requests, replaces the ones that die,
// recycles them after MaxRequests, reloads them on demand and drains them at
// shutdown. One goroutine (run) owns the set of workers; request goroutines
// touch only the idle channel and atomics.
type Pool struct {
	cfg  Config
	log  *slog.Logger
	rand *rand.Rand // arbiter goroutine only

	idle    chan *slot // tokens of slots with no request in flight
	spare   chan *slot // tokens of slots with requests in flight (pipelining)
	waiting atomic.Int64
	events  chan event
	reload  chan struct{}
	stop    chan stopRequest
	ready   atomic.Int32 // workers in StateReady, for Stats
	stats   poolCounters // for Stats (stats.go)
	service atomic.Int64 // moving average of a request's service time, ns (exchange.rescueDelay)
	reloads atomic.Int64 // reloads completed
	genNow  atomic.Int64 // p.gen, for Status
	// Reloads asked for (Reload) and the count the last finished reload
	// covered: a reload serves every ask made before it started.
	reloadsAsked, reloadsEnded atomic.Uint64

	nodeMu      sync.Mutex
	pendingNode []byte // the node the next reload's workers load (ReloadNode)

	lender   lender        // lent connections (lend.go)
	slow     slowPaths     // paths whose requests are slow (slowpaths.go)
	lendStop chan struct{} // ends watchLent
	lendOff  atomic.Bool   // the server drains: lend no more (StopLending)
	line     line          // requests waiting for a token (acquireLending, line.go)

	rosterMu sync.Mutex
	live     map[*worker]struct{} // the workers not yet exited (inflight.go, roster)

	// owned by the arbiter goroutine
	workers    map[*worker]struct{}
	preloaders map[int]*preloader // by generation (Config.Preload)
	nextID     int
	gen        int    // generation new workers join
	reloadGen  int    // generation being started by a reload; 0 if none
	reloadNode []byte // the node that generation loads
	lastGen    int    // the highest generation number given out
	failures   int    // consecutive load failures, for the respawn backoff
	respawnDue <-chan time.Time
	stopping   bool
	reloadAsks uint64 // reloadsAsked when the running reload started
}

type eventKind int

const (
	evReady      eventKind = iota // all slots of w said READY
	evLoadFailed                  // w could not load the application
	evExited                      // w's process has exited
	evRetired                     // w started draining after MaxRequests
	evPreloaded                   // gen's preloader loaded the application (or failed: err)
)

type event struct {
	kind eventKind
	w    *worker
	gen  int // evPreloaded
	err  error
}

type stopRequest struct {
	ctx  context.Context
	done chan struct{}
}

// NewPool checks the configuration; Start spawns the workers.
func NewPool(cfg Config) *Pool {
	cfg.Defaults()
	slots := cfg.Workers * cfg.Threads
	p := &Pool{
		cfg:     cfg,
		log:     cfg.Logger,
		rand:    rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5eed)),
		idle:    make(chan *slot, 4*slots+16),
		spare:   make(chan *slot, 4*slots*cfg.Pipeline+16),
		events:  make(chan event, 4*cfg.Workers+64),
		reload:  make(chan struct{}, 1),
		stop:    make(chan stopRequest),
		workers: make(map[*worker]struct{}),
		live:    make(map[*worker]struct{}),

		preloaders: make(map[int]*preloader),
		gen:        1,
		lastGen:    1,
	}
	p.genNow.Store(1)
	return p
}

// Config returns the configuration with its defaults filled in.
func (p *Pool) Config() Config { return p.cfg }

// Start spawns the workers and returns once every one has loaded the
// application. If one cannot, Start stops the others and returns the error
// (a *LoadError when the application itself failed): the caller exits
// rather than retrying in a loop.
func (p *Pool) Start() error {
	if p.cfg.Preload {
		if err := p.startPreloaded(); err != nil {
			p.abort()
			return err
		}
	}
	for i := 0; i < p.cfg.Workers; i++ {
		if _, err := p.spawn(p.gen); err != nil {
			p.abort()
			return err
		}
	}
	// An import that hangs (a database that does not answer) would keep
	// start-up silent: say what is awaited every 10 seconds.
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	began := time.Now()
	for ready := 0; ready < p.cfg.Workers; {
		var ev event
		select {
		case ev = <-p.events:
		case <-tick.C:
			p.log.Warn("still waiting for the workers to load the application", "app", p.cfg.AppName,
				"ready", ready, "workers", p.cfg.Workers, "waited", time.Since(began).Round(time.Second).String())
			continue
		}
		switch ev.kind {
		case evReady:
			if p.onReady(ev.w) {
				ready++
			}
		case evLoadFailed:
			p.abort()
			return ev.err
		case evExited:
			p.onExited(ev.w)
		}
	}
	if p.lending() {
		p.lendStop = make(chan struct{})
		go p.watchLent(p.lendStop)
	}
	go p.run()
	return nil
}

// lending reports whether the pool's workers may be lent connections:
// --lend, one thread per worker (the worker's loop serves its connections
// on its one thread), no preloader (the forked workers would need the lend
// sockets passed through it).
func (p *Pool) lending() bool {
	return p.cfg.Lend && p.cfg.Threads == 1 && !p.cfg.Preload
}

// startPreloaded starts the first generation's preloader and waits until
// it has loaded the application (saying what is awaited every 10 s).
func (p *Pool) startPreloaded() error {
	pre, err := p.startPreloader(p.gen, p.cfg.Node)
	if err != nil {
		return err
	}
	p.preloaders[p.gen] = pre
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	began := time.Now()
	for {
		select {
		case <-pre.ready:
			_, err := pre.loaded()
			return err
		case <-tick.C:
			p.log.Warn("still waiting for the preloader to load the application", "app", p.cfg.AppName,
				"waited", time.Since(began).Round(time.Second).String())
		}
	}
}

// abort kills every worker and waits for them (start-up failed).
func (p *Pool) abort() {
	p.stopping = true
	for w := range p.workers {
		w.kill("start-up failed")
	}
	for _, pre := range p.preloaders {
		pre.kill()
	}
	for w := range p.workers {
		<-w.exited
		w.closeSlots()
	}
}

// Reload replaces every worker by a fresh one (SIGHUP): the new ones load
// the application, then the old ones drain. If the new ones cannot load it,
// the old ones keep serving.
func (p *Pool) Reload() {
	p.reloadsAsked.Add(1)
	select {
	case p.reload <- struct{}{}:
	default:
	}
}

// ReloadNode is Reload with a new application tree (worker form) for the
// new workers; it becomes the pool's only once they are all ready, so a
// failed reload leaves the running workers and their replacements on the old
// one. When several come before a reload starts, the last one wins.
func (p *Pool) ReloadNode(node []byte) {
	p.nodeMu.Lock()
	p.pendingNode = node
	p.nodeMu.Unlock()
	p.Reload()
}

// Stop drains the workers: each finishes its requests and exits; past ctx's
// deadline the remaining ones are killed. It returns when all have exited.
func (p *Pool) Stop(ctx context.Context) {
	done := make(chan struct{})
	p.stop <- stopRequest{ctx: ctx, done: done}
	<-done
}

// Reloading reports whether a reload asked for has not ended yet (complete
// or failed): systemd's RELOADING=1 lasts until then.
func (p *Pool) Reloading() bool { return p.reloadsEnded.Load() < p.reloadsAsked.Load() }

// Ready is the number of workers serving now.
func (p *Pool) Ready() int { return int(p.ready.Load()) }

// Queued is the number of requests waiting for a worker now.
func (p *Pool) Queued() int { return int(p.waiting.Load()) }

func (p *Pool) spawn(gen int) (*worker, error) {
	p.nextID++
	node := p.cfg.Node
	if gen == p.reloadGen && p.reloadNode != nil {
		node = p.reloadNode
	}
	if p.cfg.Preload {
		if err := p.preloaded(gen, node); err != nil {
			return nil, err
		}
	}
	w, err := p.spawnWorker(p.nextID, gen, node)
	if err != nil {
		return nil, err
	}
	p.workers[w] = struct{}{}
	p.rosterMu.Lock()
	p.live[w] = struct{}{}
	p.rosterMu.Unlock()
	p.stats.inState[StateStarting].Add(1)
	return w, nil
}

// run is the arbiter loop.
func (p *Pool) run() {
	for {
		select {
		case ev := <-p.events:
			p.handle(ev)
		case <-p.reload:
			p.reloadAsks = p.reloadsAsked.Load()
			p.startReload()
		case <-p.respawnDue:
			p.respawnDue = nil
			p.reconcile(true)
		case req := <-p.stop:
			p.reloadsEnded.Store(p.reloadsAsked.Load())
			p.shutdown(req)
			return
		}
	}
}

func (p *Pool) handle(ev event) {
	switch ev.kind {
	case evReady:
		p.onReady(ev.w)
	case evLoadFailed:
		p.onLoadFailed(ev.w, ev.err)
	case evExited:
		p.onExited(ev.w)
		p.reconcile(false)
	case evRetired:
		p.reconcile(false)
	case evPreloaded:
		p.onPreloaded(ev.gen, ev.err)
	}
}

// onReady puts a freshly loaded worker's slots to work.
func (p *Pool) onReady(w *worker) bool {
	if p.superseded(w) {
		w.kill("superseded")
		w.closeSlots()
		return false
	}
	if !w.transition(StateStarting, StateReady, "") {
		w.closeSlots()
		return false
	}
	p.failures = 0
	for _, s := range w.slots {
		// One token per request the slot may carry at once.
		if !p.pushToken(p.idle, s) {
			p.log.Error("idle slot queue full; closing a slot", "worker", w.id)
			s.close()
			continue
		}
		for i := 1; i < p.cfg.Pipeline; i++ {
			p.pushToken(p.spare, s)
		}
	}
	if p.reloadGen != 0 && w.gen == p.reloadGen {
		n := 0
		for o := range p.workers {
			if o.gen == p.reloadGen && o.State() == StateReady {
				n++
			}
		}
		if n == p.cfg.Workers {
			for o := range p.workers {
				if o.gen != p.reloadGen {
					o.drain("reload")
				}
			}
			if p.reloadNode != nil {
				p.cfg.Node = p.reloadNode
			}
			p.gen, p.reloadGen, p.reloadNode = p.reloadGen, 0, nil
			p.genNow.Store(int64(p.gen))
			p.reloads.Add(1)
			p.reloadsEnded.Store(p.reloadAsks)
			p.log.Info("reload complete", "workers", p.cfg.Workers, "generation", p.gen)
		}
	}
	return true
}

func (p *Pool) onLoadFailed(w *worker, err error) {
	attrs := []any{"worker", w.id, "pid", w.pid, "app", p.cfg.AppName, "error", err.Error()}
	var le *LoadError
	if errors.As(err, &le) {
		attrs = append(attrs, "traceback", le.Traceback())
	}
	if p.reloadGen != 0 && w.gen == p.reloadGen {
		p.log.Error("reload failed: the new workers cannot load the application; the running ones keep serving", attrs...)
		p.abandonReload("reload failed")
		p.reloadsEnded.Store(p.reloadAsks)
		return
	}
	if p.superseded(w) {
		w.kill("superseded")
		return
	}
	p.failures++
	p.log.Error("a replacement worker cannot load the application", attrs...)
	w.kill("load failed")
}

// onExited forgets an exited worker; its busy requests see their socket
// close and answer 502.
func (p *Pool) onExited(w *worker) {
	delete(p.workers, w)
	defer p.retirePreloaders()
	p.rosterMu.Lock()
	delete(p.live, w)
	p.rosterMu.Unlock()
	prev := State(w.state.Swap(int32(StateStopped)))
	p.stats.inState[prev].Add(-1)
	if prev == StateReady {
		p.ready.Add(-1)
	}
	select {
	case <-w.loaded:
		w.closeSlots()
	default:
		// still reading its READY or load error: it closes them itself
	}
	status := "exit 0"
	if w.exitErr != nil {
		status = w.exitErr.Error()
	}
	attrs := []any{"worker", w.id, "pid", w.pid, "from", prev.String(), "to", StateStopped.String(), "status", status}
	if prev == StateDraining {
		p.log.Info("worker state", attrs...)
	} else {
		p.log.Warn("worker state", append(attrs, "reason", "died")...)
	}
}

// reconcile spawns workers until the current generation has cfg.Workers
// starting or serving; after load failures it waits with a growing delay
// instead of respawning in a loop.
func (p *Pool) reconcile(backoffOver bool) {
	if p.stopping {
		return
	}
	live := 0
	for w := range p.workers {
		if w.gen == p.gen {
			if s := w.State(); s == StateStarting || s == StateReady {
				live++
			}
		}
	}
	if live >= p.cfg.Workers {
		return
	}
	if p.failures > 0 && !backoffOver {
		if p.respawnDue == nil {
			delay := time.Second << min(p.failures-1, 5)
			p.log.Info("respawning after a delay", "delay", delay.String(), "failures", p.failures)
			p.respawnDue = time.After(delay)
		}
		return
	}
	for ; live < p.cfg.Workers; live++ {
		if _, err := p.spawn(p.gen); errors.Is(err, errPreloading) {
			return // spawned once the preloader is ready (onPreloaded)
		} else if err != nil {
			p.failures++
			p.log.Error("cannot spawn a worker", "error", err.Error())
			p.reconcile(false)
			return
		}
		p.stats.restarts.Add(1)
	}
}

func (p *Pool) startReload() {
	if p.stopping {
		p.reloadsEnded.Store(p.reloadAsks)
		return
	}
	var carried []byte
	if p.reloadGen != 0 {
		// Its code is stale already, and it may be stuck in an import that
		// never returns: replace it rather than wait for it. Its new node,
		// if it had one, passes to the replacement unless a newer one came.
		p.log.Info("reload during a reload: replacing the generation being started", "generation", p.reloadGen)
		carried = p.reloadNode
		p.abandonReload("superseded")
	}
	p.nodeMu.Lock()
	p.reloadNode, p.pendingNode = p.pendingNode, nil
	p.nodeMu.Unlock()
	if p.reloadNode == nil {
		p.reloadNode = carried
	}
	p.lastGen++
	p.reloadGen = p.lastGen
	p.log.Info("reloading workers", "workers", p.cfg.Workers, "generation", p.reloadGen)
	p.spawnReloadGen()
}

// spawnReloadGen spawns the workers of the generation a reload starts;
// with Preload, once its preloader has loaded the application.
func (p *Pool) spawnReloadGen() {
	for i := 0; i < p.cfg.Workers; i++ {
		if _, err := p.spawn(p.reloadGen); errors.Is(err, errPreloading) {
			return
		} else if err != nil {
			p.log.Error("reload failed: cannot spawn a worker", "error", err.Error())
			p.abandonReload("reload failed")
			p.reloadsEnded.Store(p.reloadAsks)
			return
		}
	}
}

// abandonReload stops the generation a reload was starting.
func (p *Pool) abandonReload(reason string) {
	for o := range p.workers {
		if o.gen == p.reloadGen {
			if o.State() == StateReady {
				o.drain(reason)
			} else {
				o.kill(reason)
			}
		}
	}
	p.reloadGen, p.reloadNode = 0, nil
	p.retirePreloaders()
}

// superseded reports whether w belongs to an abandoned reload.
func (p *Pool) superseded(w *worker) bool {
	return w.gen != p.gen && w.gen != p.reloadGen
}

func (p *Pool) shutdown(req stopRequest) {
	p.stopping = true
	for w := range p.workers {
		w.drain("shutdown")
	}
	expired := req.ctx.Done()
	for len(p.workers) > 0 {
		select {
		case ev := <-p.events:
			if ev.kind == evExited {
				p.onExited(ev.w)
			} else if ev.kind == evReady {
				ev.w.kill("shutdown")
			}
		case <-expired:
			expired = nil
			for w := range p.workers {
				p.log.Warn("graceful timeout passed; killing worker", "worker", w.id, "pid", w.pid)
				w.kill("shutdown")
			}
		}
	}
	if p.lendStop != nil {
		close(p.lendStop)
	}
	for _, pre := range p.preloaders {
		pre.stop()
		select {
		case <-pre.gone:
		case <-expired:
			pre.kill()
		}
	}
	close(req.done)
}

// armDrainKill bounds how long a draining worker with no open slot may take
// to exit (a close() hook that hangs, an atexit that never returns).
func (p *Pool) armDrainKill(w *worker) {
	time.AfterFunc(p.cfg.GracefulTimeout, func() {
		select {
		case <-w.exited:
		default:
			p.log.Warn("draining worker did not exit in time; killing it", "worker", w.id, "pid", w.pid)
			w.kill("graceful timeout")
		}
	})
}

// String describes the pool for log lines.
func (p *Pool) String() string {
	return fmt.Sprintf("%d workers × %d threads", p.cfg.Workers, p.cfg.Threads)
}
