package gateway

import (
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A worker's Python thread stacks reach the master through a pipe of their
// own: the worker registers faulthandler on SIGUSR1 with the pipe's write
// end (python/wsgate/worker.py), so the dump is written by a C signal
// handler, without the GIL, even while the application is stuck in C code
// holding it (docs/architecture.md, "Stacks"). faulthandler marks no end
// of a dump: the master takes the bytes that came until the pipe has been
// quiet for stacksQuiet as one dump and logs it as one line.

// stacksQuiet is how long the pipe must stay quiet after a dump's bytes
// for the dump to be complete. faulthandler writes a dump in one go, in
// microseconds; this leaves room for a worker descheduled in the middle.
const stacksQuiet = 200 * time.Millisecond

// stacksWait bounds how long a request for stacks waits for them (a worker
// stopped, or in uninterruptible sleep, writes nothing).
const stacksWait = 3 * time.Second

// stacksArmed is the line the worker writes once faulthandler is
// registered: before it, SIGUSR1 would kill the worker.
const stacksArmed = "wsgate-stacks-armed\n"

// stackPipe is the master's side of a worker's stacks pipe.
type stackPipe struct {
	r *os.File

	mu      sync.Mutex
	armed   bool
	why     string
	waiters []chan struct{}
}

// newStackPipe makes the pipe; the worker inherits w, which the caller
// closes once the worker has started.
func newStackPipe() (*stackPipe, *os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	return &stackPipe{r: r}, w, nil
}

// read logs each dump the worker writes, until the worker exits.
func (sp *stackPipe) read(w *worker) {
	defer sp.r.Close()
	buf := make([]byte, 64<<10)
	var pending []byte
	for {
		n, err := sp.r.Read(buf)
		pending = append(pending, buf[:n]...)
		if n > 0 {
			if !sp.armed && strings.HasPrefix(string(pending), stacksArmed) {
				sp.mu.Lock()
				sp.armed = true
				sp.mu.Unlock()
				pending = pending[len(stacksArmed):]
			}
			_ = sp.r.SetReadDeadline(time.Now().Add(stacksQuiet))
			continue
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, io.EOF) {
			w.pool.log.Warn("reading a worker's stacks", "worker", w.id, "pid", w.pid, "error", err.Error())
		}
		if len(pending) > 0 {
			sp.logDump(w, string(pending))
			pending = pending[:0]
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			sp.done()
			return
		}
		_ = sp.r.SetReadDeadline(time.Time{})
	}
}

func (sp *stackPipe) logDump(w *worker, text string) {
	sp.mu.Lock()
	why := sp.why
	sp.why = ""
	sp.mu.Unlock()
	if why == "" {
		why = "SIGUSR1 sent to the worker"
	}
	attrs := []any{"worker", w.id, "pid", w.pid, "why", why}
	var reqs []string
	for _, r := range w.inFlight() {
		reqs = append(reqs, r.String())
	}
	if len(reqs) > 0 {
		attrs = append(attrs, "requests", strings.Join(reqs, "; "))
	}
	w.pool.log.Warn("worker stacks", append(attrs, "stacks", text)...)
	sp.done()
}

func (sp *stackPipe) done() {
	sp.mu.Lock()
	ws := sp.waiters
	sp.waiters = nil
	sp.mu.Unlock()
	for _, c := range ws {
		close(c)
	}
}

// DumpStacks has the worker write its Python thread stacks to the log
// (one "worker stacks" line saying why); the channel closes once they are
// logged, or at once when the worker cannot dump yet (its interpreter is
// still starting).
func (w *worker) dumpStacks(why string) <-chan struct{} {
	c := make(chan struct{})
	sp := w.stacks
	sp.mu.Lock()
	if !sp.armed || w.State() == StateStopped {
		sp.mu.Unlock()
		close(c)
		w.pool.log.Info("worker cannot dump its stacks yet (its interpreter is starting)", "worker", w.id, "pid", w.pid)
		return c
	}
	if sp.why == "" {
		sp.why = why
	}
	sp.waiters = append(sp.waiters, c)
	sp.mu.Unlock()
	if err := syscall.Kill(w.pid, syscall.SIGUSR1); err != nil {
		sp.done()
	}
	return c
}

// DumpStacks has every worker of the pool log its Python thread stacks and
// returns once they have (or stacksWait passed).
func (p *Pool) DumpStacks(why string) {
	var waits []<-chan struct{}
	for _, w := range p.roster() {
		waits = append(waits, w.dumpStacks(why))
	}
	deadline := time.After(stacksWait)
	for _, c := range waits {
		select {
		case <-c:
		case <-deadline:
			return
		}
	}
}

// awaitStacks waits for a dump, at most stacksWait.
func awaitStacks(c <-chan struct{}) {
	select {
	case <-c:
	case <-time.After(stacksWait):
	}
}
