package gateway

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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

// slot is the master's end of one worker thread's two sockets. REQUESTs
// go on the dispatch socket (SOCK_SEQPACKET), one message each; every other
// frame goes on the stream socket (conn). Requests are pipelined on a slot:
// up to Config.Pipeline exchanges may have written their REQUEST; the worker
// serves them in order, so queue[0] alone reads the stream socket, and hands
// the turn to the next when its stream ends. A REQUEST the worker has not
// received yet can be taken back (withdraw) and served by another worker.
type slot struct {
	w     *worker
	conn  net.Conn
	br    *bufio.Reader
	rbuf  []byte // scratch for payloads larger than br's buffer (reader only)
	body  []byte // request body chunk buffer, allocated on first upload (reader only)
	start protocol.StartPayload
	hdr   []byte      // a frame header written apart from its payload
	bufs  net.Buffers // header + payload for one writev
	once  sync.Once

	mu      sync.Mutex // guards what follows, and every write to conn and disp
	disp    net.Conn   // the dispatch socket, master's end
	dispFD  int        // the worker's end of it, kept to take messages back
	dispMax int        // the largest message sent on disp; larger requests go on conn
	wbuf    []byte     // frames being written; reused across requests
	queue   []*exchange
	// headSince is when queue[0] became the request the worker thread is
	// on (status, stack dumps).
	headSince time.Time
	stream    uint32
	closed    bool
	// unreceived: streams whose REQUEST was still in the dispatch socket
	// when the slot closed; the worker never saw them.
	unreceived []uint32
}

// closeLocked closes the sockets (s.mu held): the worker thread reads EOF
// and, once all its sockets are closed, the worker exits.
func (s *slot) closeLocked() {
	s.closed = true
	s.once.Do(func() {
		s.closeSocketsLocked()
		s.w.slotClosed()
	})
}

// closeSocketsLocked closes the slot's sockets (s.mu held), first taking
// back what the worker never received, for reclaim.
func (s *slot) closeSocketsLocked() {
	for {
		stream, ok := s.takeNext()
		if !ok {
			break
		}
		s.unreceived = append(s.unreceived, stream)
	}
	s.conn.Close()
	s.disp.Close()
	syscall.Close(s.dispFD)
}

func (s *slot) close() {
	s.mu.Lock()
	s.closeLocked()
	s.mu.Unlock()
}

// idleNow reports whether no exchange is queued on the slot.
func (s *slot) idleNow() (idle, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) == 0, s.closed
}

// withdrawal is what became of an attempt to take a REQUEST back.
type withdrawal int

const (
	withdrawn withdrawal = iota // taken back: the worker will never see it
	received                    // the worker has it: it will be served here
	notYet                      // the worker has not taken the request ahead of it yet
)

// withdraw takes x's REQUEST back from the dispatch socket if the worker has
// not received it. A SEQPACKET message is delivered whole to exactly one
// reader, so the master reading it from the worker's end is an atomic claim:
// either the worker got it or the master did.
func (s *slot) withdraw(x *exchange) withdrawal {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || x.pinned || len(s.queue) == 0 || s.queue[0] == x {
		return received // closed, sent on the stream socket, or x's turn has come
	}
	for i := len(s.queue) - 1; i > 0 && s.queue[i] != x; i-- {
		if s.queue[i].pinned {
			// Should the worker take x meanwhile, the message received
			// could be this one's marker, whose frames wait on the
			// stream socket: it must not be taken.
			return received
		}
	}
	// Whose message is next? The head of the queue's own means the worker
	// has not started that one yet; x's means x can still be taken.
	next, ok := s.peekNext()
	if !ok {
		return received // nothing waits: the worker has received x already
	}
	if next != x.stream {
		if next == s.queue[0].stream {
			return notYet
		}
		return received
	}
	got, ok := s.takeNext()
	if !ok {
		return received // the worker took it between the peek and now
	}
	for i, y := range s.queue {
		if y.stream != got || i == 0 {
			continue
		}
		s.queue = append(s.queue[:i], s.queue[i+1:]...)
		if y == x {
			return withdrawn
		}
		// The worker took x between the peek and the receive, and this is
		// the message queued after it: that request goes elsewhere instead.
		y.turn <- turnWithdrawn
		break
	}
	return received
}

// reclaim reports whether x's REQUEST never reached the worker, found gone
// when x reads its answer: the message (or the marker of one sent on the
// stream socket) was still in the dispatch socket, so another worker may
// serve the request. The master holds the worker's end of that socket, so
// writing to a dead worker does not fail: this is how a worker that died
// while idle is found out.
func (s *slot) reclaim(x *exchange) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return slices.Contains(s.unreceived, x.stream)
	}
	if next, ok := s.peekNext(); !ok || next != x.stream {
		return false
	}
	got, ok := s.takeNext()
	return ok && got == x.stream
}

// peekNext is the stream id of the next message in the dispatch socket,
// left there; takeNext receives it, so the worker never will (s.mu held).
func (s *slot) peekNext() (uint32, bool) { return s.nextMessage(syscall.MSG_PEEK) }
func (s *slot) takeNext() (uint32, bool) { return s.nextMessage(syscall.MSG_TRUNC) }

func (s *slot) nextMessage(flags int) (uint32, bool) {
	var h [protocol.HeaderSize]byte
	n, err := recvDontWait(s.dispFD, h[:], flags)
	if err != nil || n < protocol.HeaderSize {
		return 0, false
	}
	return binary.BigEndian.Uint32(h[5:9]), true
}

func recvDontWait(fd int, p []byte, flags int) (int, error) {
	for {
		n, _, err := syscall.Recvfrom(fd, p, flags|syscall.MSG_DONTWAIT)
		if err != syscall.EINTR {
			return n, err
		}
	}
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
		err = p.execWorker(w, node, fds, childFiles)
	}
	if err != nil {
		w.closeSlots()
		sp.r.Close()
		stderrR.Close()
		return nil, err
	}
	p.log.Info("worker state", "worker", w.id, "pid", w.pid, "to", StateStarting.String())
	go w.awaitReady()
	go sp.read(w)
	go w.logStderr(stderrR)
	return w, nil
}

// execWorker starts w as a Python process of its own: files are the
// worker's ends of its sockets and pipes, its stderr last.
func (p *Pool) execWorker(w *worker, node []byte, fds []string, files []*os.File) error {
	cfg := &p.cfg
	args := []string{"--fds", strings.Join(fds, ","), "--workers", strconv.Itoa(cfg.Workers),
		"--stacks-fd", strconv.Itoa(3 + 2*cfg.Threads)}
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

// newSlot makes one thread's stream and dispatch socketpairs; child holds
// the worker's ends, in that order, for the worker process to inherit.
func newSlot(w *worker) (s *slot, child []*os.File, err error) {
	stream, err := socketPair(syscall.SOCK_STREAM)
	if err != nil {
		return nil, nil, err
	}
	disp, err := socketPair(syscall.SOCK_SEQPACKET)
	if err != nil {
		closePair(stream)
		return nil, nil, err
	}
	// A dispatch message must never block its writer (it holds s.mu, which
	// the request ahead may need): the messages the pipeline can queue fit
	// in half the send buffer. Read before fileConn closes disp[0].
	sndbuf, err := syscall.GetsockoptInt(disp[0], syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	if err != nil {
		sndbuf = 212992 // Linux's usual default
	}
	dispMax := min(protocol.MaxDispatch, sndbuf/(2*w.pool.cfg.Pipeline))
	conn, err := fileConn(stream[0])
	if err != nil {
		syscall.Close(stream[1])
		closePair(disp)
		return nil, nil, err
	}
	dconn, err := fileConn(disp[0])
	if err != nil {
		conn.Close()
		syscall.Close(stream[1])
		syscall.Close(disp[1])
		return nil, nil, err
	}
	// The master keeps its own descriptor of the worker's dispatch end to
	// take back a REQUEST the worker has not received (withdraw).
	syscall.ForkLock.RLock()
	dispFD, err := syscall.Dup(disp[1])
	if err == nil {
		syscall.CloseOnExec(dispFD)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		conn.Close()
		dconn.Close()
		syscall.Close(stream[1])
		syscall.Close(disp[1])
		return nil, nil, fmt.Errorf("creating a worker socket: %w", err)
	}
	s = &slot{w: w, conn: conn, br: bufio.NewReaderSize(conn, 128<<10), wbuf: make([]byte, 0, 4096),
		disp: dconn, dispFD: dispFD, dispMax: dispMax}
	child = []*os.File{os.NewFile(uintptr(stream[1]), "wsgate-worker-stream"), os.NewFile(uintptr(disp[1]), "wsgate-worker-dispatch")}
	return s, child, nil
}

func socketPair(typ int) ([2]int, error) {
	pair, err := syscall.Socketpair(syscall.AF_UNIX, typ|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return pair, fmt.Errorf("creating a worker socket: %w", err)
	}
	// Larger socket buffers let a big response or body cross in fewer
	// system calls (the kernel caps them at net.core.[rw]mem_max).
	for _, fd := range pair {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1<<20)
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1<<20)
	}
	return pair, nil
}

func closePair(pair [2]int) {
	syscall.Close(pair[0])
	syscall.Close(pair[1])
}

// fileConn makes a net.Conn of the master's end (closing fd either way).
func fileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "wsgate-worker")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("creating a worker socket: %w", err)
	}
	return conn, nil
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
