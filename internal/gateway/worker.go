package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/wsgate/wsgate/internal/protocol"
	"github.com/wsgate/wsgate/python"
)

// State is a worker's place in its life; every transition is logged with
// these names.
type State int32

// Worker states.
const (
	StateStarting State = iota // spawned, loading the application
	StateReady                 // serving requests
	StateDraining              // takes no new request; exits when its requests are done
	StateStopped               // the process has exited
)

func (s State) String() string {
	switch s {
	case StateStarting:
		return "starting"
	case StateReady:
		return "ready"
	case StateDraining:
		return "draining"
	case StateStopped:
		return "stopped"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// worker is one Python process and its slots.
type worker struct {
	pool        *Pool
	id          int
	gen         int
	proc        *os.Process
	exitOnce    sync.Once
	pid         int
	slots       []*slot
	state       atomic.Int32
	reason      atomic.Value // string: why it is draining
	served      atomic.Int64
	maxRequests int64
	memChecked  atomic.Int64 // when the RSS was last read (unix ns), for MaxWorkerMemory
	open        atomic.Int32 // slots not closed yet
	exited      chan struct{}
	loaded      chan struct{} // closed when awaitReady is done with the sockets
	stacks      *stackPipe    // where its thread stacks arrive (stacks.go)
	exitErr     error

	// Lent connections (lend.go), when the pool lends.
	lendConn     net.Conn      // the master's end of the lend socket (RETURN, OUTPUT)
	page         []byte        // the shared page the worker writes (pageServing…)
	pageMu       sync.RWMutex  // page is unmapped once the worker is gone
	lendGone     bool          // its lend socket ended: connections sent to it are reclaimed (lender.mu)
	lastServing  uint64        // the page's pageServing when lendGone was set (lender.mu)
	lastWritten  uint64        // and its pageWritten
	lendTimedOut atomic.Uint32 // the lent connection whose request passed the timeout
	lentHeld     atomic.Int64  // connections it holds now (lender)
	rescued      int64         // when it was last signalled to rescue its connections, unix ns (watchLent)
	idle         bool          // it waited with nothing to do at watchLent's last look
}

func (w *worker) State() State { return State(w.state.Load()) }

// transition moves the worker from one state to another and logs it; it
// reports false if the worker was not in from.
func (w *worker) transition(from, to State, reason string) bool {
	if !w.state.CompareAndSwap(int32(from), int32(to)) {
		return false
	}
	if reason != "" {
		w.reason.Store(reason)
	}
	w.pool.stats.inState[from].Add(-1)
	w.pool.stats.inState[to].Add(1)
	if from == StateReady {
		w.pool.ready.Add(-1)
	}
	if to == StateReady {
		w.pool.ready.Add(1)
	}
	attrs := []any{"worker", w.id, "pid", w.pid, "from", from.String(), "to", to.String()}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	w.pool.log.Info("worker state", attrs...)
	return true
}

// drain stops giving the worker requests and closes its idle slots; busy
// slots close when their last queued request ends. With every slot closed the worker
// reads EOF and exits.
func (w *worker) drain(reason string) bool {
	if !w.transition(StateReady, StateDraining, reason) && !w.transition(StateStarting, StateDraining, reason) {
		return false
	}
	for _, s := range w.slots {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.closeLocked()
		}
		s.mu.Unlock()
	}
	return true
}

// kill ends the worker at once (timeout, protocol violation, shutdown past
// its grace period).
func (w *worker) kill(reason string) {
	if w.transition(StateReady, StateDraining, reason) || w.transition(StateStarting, StateDraining, reason) {
		w.pool.log.Warn("killing worker", "worker", w.id, "pid", w.pid, "reason", reason)
	}
	if w.proc != nil {
		_ = w.proc.Kill()
	}
}

func (w *worker) slotClosed() {
	if w.open.Add(-1) == 0 && w.State() == StateDraining {
		w.pool.armDrainKill(w)
	}
}

// spawnWorker starts one worker process with one socketpair per thread.
func (p *Pool) spawnWorker(id, gen int, node []byte) (*worker, error) {
	cfg := &p.cfg
	w := &worker{pool: p, id: id, gen: gen, exited: make(chan struct{}), loaded: make(chan struct{})}
	w.state.Store(int32(StateStarting))
	if cfg.MaxRequests > 0 {
		w.maxRequests = int64(cfg.MaxRequests)
		if cfg.MaxRequestsJitter > 0 {
			w.maxRequests += int64(p.rand.IntN(cfg.MaxRequestsJitter + 1))
		}
	}
	var childFiles []*os.File
	defer func() {
		for _, f := range childFiles {
			f.Close()
		}
	}()
	fds := make([]string, 0, cfg.Threads)
	for i := 0; i < cfg.Threads; i++ {
		s, child, err := newSlot(w)
		if err != nil {
			w.closeSlots()
			return nil, err
		}
		childFiles = append(childFiles, child...)
		fds = append(fds, strconv.Itoa(3+2*i)+":"+strconv.Itoa(4+2*i))
		w.slots = append(w.slots, s)
	}
	w.open.Store(int32(len(w.slots)))
	sp, stacksW, err := newStackPipe()
	if err != nil {
		w.closeSlots()
		return nil, fmt.Errorf("creating a worker's stacks pipe: %w", err)
	}
	w.stacks = sp
	childFiles = append(childFiles, stacksW)
	lendArg := ""
	if p.lending() {
		child, err := w.openLend()
		if err != nil {
			w.closeSlots()
			sp.r.Close()
			return nil, err
		}
		n := 3 + 2*cfg.Threads + 1
		lendArg = strconv.Itoa(n) + ":" + strconv.Itoa(n+1)
		childFiles = append(childFiles, child...)
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		w.closeSlots()
		sp.r.Close()
		return nil, fmt.Errorf("creating a worker's stderr pipe: %w", err)
	}
	childFiles = append(childFiles, stderrW) // the last; closed once started, as the others
	if pre := p.preloaders[gen]; p.cfg.Preload && pre != nil {
		err = pre.fork(w, childFiles)
	} else {
		err = p.execWorker(w, node, fds, lendArg, childFiles)
	}
	if err != nil {
		w.closeSlots()
		w.closeLend()
		sp.r.Close()
		stderrR.Close()
		return nil, err
	}
	if w.lendConn != nil {
		go p.lender.readReturns(w)
	}
	p.log.Info("worker state", "worker", w.id, "pid", w.pid, "to", StateStarting.String())
	go w.awaitReady()
	go sp.read(w)
	go w.logStderr(stderrR)
	return w, nil
}

// execWorker starts w as a Python process of its own: files are the
// worker's ends of its sockets and pipes, its stderr last.
func (p *Pool) execWorker(w *worker, node []byte, fds []string, lendArg string, files []*os.File) error {
	cfg := &p.cfg
	args := []string{"--fds", strings.Join(fds, ","), "--workers", strconv.Itoa(cfg.Workers),
		"--stacks-fd", strconv.Itoa(3 + 2*cfg.Threads)}
	if lendArg != "" {
		args = append(args, "--lend-fds", lendArg)
		if cfg.MaxHeaderBytes > 0 {
			args = append(args, "--max-head", strconv.Itoa(cfg.MaxHeaderBytes))
		}
		if w.maxRequests > 0 {
			// Lent requests never pass the master: the worker counts them
			// and hands its connections back once it has served its share.
			args = append(args, "--max-requests", strconv.FormatInt(w.maxRequests, 10))
		}
	}
	if cfg.ResetWorkerSched {
		args = append(args, "--normal-sched")
	}
	cmd, err := python.Command(cfg.Python, cfg.PythonPath, "wsgate.worker", args...)
	if err != nil {
		return fmt.Errorf("preparing the Python runtime: %w", err)
	}
	cmd.Dir = cfg.Dir
	cmd.Stdin = bytes.NewReader(node)
	cmd.Env = append(cmd.Env, cfg.Env...)
	cmd.Stdout = os.Stdout
	cmd.Stderr = files[len(files)-1]
	cmd.ExtraFiles = files[:len(files)-1]
	// Own process group: a terminal's Ctrl-C reaches the master only, which
	// then drains the workers. Pdeathsig: no orphan outlives a killed master.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cfg.Python, err)
	}
	w.proc = cmd.Process
	w.pid = cmd.Process.Pid
	go func() {
		w.exitedWith(cmd.Wait())
	}()
	return nil
}

// exitedWith records the worker's end and tells the arbiter (once).
func (w *worker) exitedWith(err error) {
	w.exitOnce.Do(func() {
		w.exitErr = err
		close(w.exited)
		w.pool.events <- event{kind: evExited, w: w}
	})
}

func (w *worker) closeSlots() {
	for _, s := range w.slots {
		s.mu.Lock()
		s.closed = true
		s.once.Do(s.closeSocketsLocked)
		s.mu.Unlock()
	}
}

// awaitReady reads each slot's READY frame (or the load error) and reports
// to the pool.
func (w *worker) awaitReady() {
	ev := w.readReady()
	if ev.kind != evReady {
		w.closeSlots()
	}
	// Until loaded is closed this goroutine owns the sockets: the pool
	// must not close them under it, or a load error the worker wrote just
	// before exiting would be lost.
	close(w.loaded)
	w.pool.events <- ev
}

func (w *worker) readReady() event {
	for _, s := range w.slots {
		h, err := protocol.ReadHeader(s.br)
		if err != nil {
			return event{kind: evLoadFailed, w: w, err: loadExitError(w, err)}
		}
		payload, err := protocol.ReadPayload(s.br, h, &s.rbuf)
		if err != nil {
			return event{kind: evLoadFailed, w: w, err: loadExitError(w, err)}
		}
		switch h.Type {
		case protocol.Error:
			return event{kind: evLoadFailed, w: w, err: &LoadError{Message: string(payload)}}
		case protocol.CtlFromW:
			if _, err := protocol.ParseReady(payload); err != nil {
				return event{kind: evLoadFailed, w: w, err: err}
			}
		default:
			return event{kind: evLoadFailed, w: w,
				err: fmt.Errorf("%w: %s frame before READY", protocol.ErrViolation, h.Type)}
		}
	}
	return event{kind: evReady, w: w}
}

func loadExitError(w *worker, readErr error) error {
	if errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF) || errors.Is(readErr, net.ErrClosed) {
		<-w.exited
		var le *LoadError
		if errors.As(w.exitErr, &le) {
			return le // its preloader could not load the application
		}
		if w.exitErr != nil {
			return fmt.Errorf("the worker exited before loading the application: %v", w.exitErr)
		}
		return errors.New("the worker exited before loading the application")
	}
	return readErr
}

// LoadError is the application failing to load in a worker: Message's first
// line says what and where, the rest is the Python traceback.
type LoadError struct {
	Message string
}

func (e *LoadError) Error() string {
	line, _, _ := strings.Cut(e.Message, "\n")
	return line
}

// Traceback is the Python traceback that followed the summary line.
func (e *LoadError) Traceback() string {
	_, rest, _ := strings.Cut(e.Message, "\n")
	return rest
}

// openLend makes the worker's lend socket and shared page; child holds the
// worker's ends, for the process to inherit.
func (w *worker) openLend() (child []*os.File, err error) {
	pair, err := socketPair(syscall.SOCK_STREAM)
	if err != nil {
		return nil, err
	}
	page, pf, err := newPage()
	if err != nil {
		closePair(pair)
		return nil, err
	}
	conn, err := fileConn(pair[0])
	if err != nil {
		syscall.Close(pair[1])
		pf.Close()
		_ = syscall.Munmap(page)
		return nil, err
	}
	w.lendConn, w.page = conn, page
	return []*os.File{os.NewFile(uintptr(pair[1]), "wsgate-worker-lend"), pf}, nil
}

// closeLend closes the master's end of the lend socket and unmaps the page.
func (w *worker) closeLend() {
	if w.lendConn != nil {
		w.lendConn.Close()
	}
	w.pageMu.Lock()
	if w.page != nil {
		_ = syscall.Munmap(w.page)
		w.page = nil
	}
	w.pageMu.Unlock()
}
