package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/python"
)

// A preloader is one Python process of a pool's generation that loads the
// application once and forks that generation's workers (Config.Preload;
// python/wsgate/preload.py gives the messages, docs/architecture.md
// "Preload" the design). The master sends each fork request with the new
// worker's own sockets and pipes, so a forked worker is supervised exactly
// as an exec'd one: its sockets, its stacks and stderr pipes, its states.
// The preloader reaps its workers and reports their exits; the master
// signals them through pidfds (os.FindProcess), safe from pid reuse.
// pendingFork is a worker asked of the preloader, its pid not known yet.
type pendingFork struct {
	w   *worker
	pid chan int
}

type preloader struct {
	pool  *Pool
	gen   int
	proc  *os.Process
	ctl   *net.UnixConn
	exit  chan struct{} // closed when the process has exited
	ready chan struct{} // closed once loaded, or failed (err)
	err   error
	gone  chan struct{} // closed when its control socket ends (it exited)

	mu      sync.Mutex
	forks   map[int]pendingFork // by worker id
	byPID   map[int]*worker
	ended   bool
	stopped bool
}

// errPreloading: the generation's preloader is still loading the
// application; its workers are spawned once it is ready (evPreloaded).
var errPreloading = errors.New("the preloader is loading the application")

// startPreloader starts gen's preloader on node; it loads in the
// background and sends evPreloaded (err set if it failed) to the arbiter.
func (p *Pool) startPreloader(gen int, node []byte) (*preloader, error) {
	cfg := &p.cfg
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating the preloader's socket: %w", err)
	}
	conn, err := fileConn(pair[0])
	if err != nil {
		syscall.Close(pair[1])
		return nil, err
	}
	child := os.NewFile(uintptr(pair[1]), "wsgate-preloader")
	defer child.Close()
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("creating the preloader's stderr pipe: %w", err)
	}
	defer stderrW.Close()
	args := []string{"--preload-fd", "3", "--workers", strconv.Itoa(cfg.Workers)}
	if cfg.ResetWorkerSched {
		args = append(args, "--normal-sched") // the workers inherit it
	}
	cmd, err := python.Command(cfg.Python, cfg.PythonPath, "wsgate.worker", args...)
	if err != nil {
		conn.Close()
		stderrR.Close()
		return nil, fmt.Errorf("preparing the Python runtime: %w", err)
	}
	cmd.Dir = cfg.Dir
	cmd.Stdin = bytes.NewReader(node)
	cmd.Env = append(cmd.Env, cfg.Env...)
	cmd.Stdout = os.Stdout
	cmd.Stderr = stderrW
	cmd.ExtraFiles = []*os.File{child}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		conn.Close()
		stderrR.Close()
		return nil, fmt.Errorf("starting %s: %w", cfg.Python, err)
	}
	pre := &preloader{pool: p, gen: gen, proc: cmd.Process, ctl: conn.(*net.UnixConn), exit: make(chan struct{}),
		ready: make(chan struct{}), gone: make(chan struct{}), forks: map[int]pendingFork{}, byPID: map[int]*worker{}}
	p.log.Info("preloader started", "pid", cmd.Process.Pid, "generation", gen)
	go func() {
		pre.exitErr(cmd.Wait())
		close(pre.exit)
	}()
	go pre.read()
	// What the application prints at import comes from here, once.
	go eachLine(stderrR, func(line string) {
		p.log.Info("preloader stderr", "pid", cmd.Process.Pid, "generation", gen, "text", line)
	})
	return pre, nil
}

// exitErr notes the preloader's exit (for a load that never said why).
func (pre *preloader) exitErr(err error) {
	pre.mu.Lock()
	defer pre.mu.Unlock()
	if pre.err == nil && err != nil {
		pre.err = fmt.Errorf("the preloader exited before loading the application: %v", err)
	}
}

// read takes the preloader's messages until it exits.
func (pre *preloader) read() {
	buf := make([]byte, 1<<20)
	for {
		n, _, _, _, err := pre.ctl.ReadMsgUnix(buf, nil)
		if err != nil || n == 0 {
			break
		}
		msg := buf[1:n]
		switch buf[0] {
		case 'R':
			pre.pool.log.Info("preloader ready", "pid", pre.proc.Pid, "generation", pre.gen)
			close(pre.ready)
			pre.pool.events <- event{kind: evPreloaded, gen: pre.gen}
		case 'E':
			pre.mu.Lock()
			pre.err = &LoadError{Message: string(msg)}
			pre.mu.Unlock()
		case 'F':
			var m struct{ ID, PID int }
			if json.Unmarshal(msg, &m) == nil {
				pre.mu.Lock()
				if f, ok := pre.forks[m.ID]; ok {
					delete(pre.forks, m.ID)
					// Known before the next message, which may be its exit.
					pre.byPID[m.PID] = f.w
					f.pid <- m.PID
				}
				pre.mu.Unlock()
			}
		case 'X':
			var m struct{ PID, Status int }
			if json.Unmarshal(msg, &m) == nil {
				pre.mu.Lock()
				w := pre.byPID[m.PID]
				delete(pre.byPID, m.PID)
				pre.mu.Unlock()
				if w != nil {
					w.exitedWith(exitStatus(m.Status))
				}
			}
		}
	}
	pre.ctl.Close()
	select { // its exit status says more than a closed socket
	case <-pre.exit:
	case <-time.After(time.Second):
	}
	pre.mu.Lock()
	pre.ended = true
	orphans := pre.byPID
	pre.byPID = map[int]*worker{}
	for _, f := range pre.forks {
		close(f.pid)
	}
	pre.forks = map[int]pendingFork{}
	loaded := true
	select {
	case <-pre.ready:
	default:
		loaded = false
		if pre.err == nil {
			pre.err = errors.New("the preloader exited before loading the application")
		}
	}
	pre.mu.Unlock()
	close(pre.gone)
	if !loaded {
		close(pre.ready)
		pre.pool.events <- event{kind: evPreloaded, gen: pre.gen, err: pre.err}
	}
	// Its workers die with it (PR_SET_PDEATHSIG); none will be reported.
	for _, w := range orphans {
		w.exitedWith(errors.New("its preloader exited"))
	}
}

func exitStatus(status int) error {
	switch {
	case status == 0:
		return nil
	case status < 0:
		return fmt.Errorf("signal: %s", syscall.Signal(-status))
	default:
		return fmt.Errorf("exit status %d", status)
	}
}

// loaded reports whether the application is loaded and the preloader can
// fork; err is its load failure.
func (pre *preloader) loaded() (ok bool, err error) {
	select {
	case <-pre.ready:
		pre.mu.Lock()
		defer pre.mu.Unlock()
		if pre.err == nil && pre.ended {
			return false, errors.New("the preloader exited")
		}
		return pre.err == nil, pre.err
	default:
		return false, nil
	}
}

// fork asks the preloader for worker w, with files (its sockets, stacks
// pipe and stderr pipe, in the order exec'd workers get them); it returns
// once the worker's pid is known.
func (pre *preloader) fork(w *worker, files []*os.File) error {
	c := make(chan int, 1)
	pre.mu.Lock()
	if pre.ended {
		pre.mu.Unlock()
		return errors.New("the preloader has exited")
	}
	pre.forks[w.id] = pendingFork{w: w, pid: c}
	pre.mu.Unlock()
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	msg, _ := json.Marshal(map[string]int{"id": w.id, "threads": len(w.slots)})
	if _, _, err := pre.ctl.WriteMsgUnix(append([]byte{'F'}, msg...), syscall.UnixRights(fds...), nil); err != nil {
		pre.mu.Lock()
		delete(pre.forks, w.id)
		pre.mu.Unlock()
		return fmt.Errorf("asking the preloader for a worker: %w", err)
	}
	var pid int
	select {
	case pid = <-c:
	case <-time.After(10 * time.Second):
	}
	if pid == 0 {
		return errors.New("the preloader did not fork a worker")
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return fmt.Errorf("worker %d: %w", pid, err)
	}
	w.proc, w.pid = proc, pid
	return nil
}

// stop ends the preloader once its generation needs it no more: with its
// control socket closed it exits (it has no worker left to die with it).
func (pre *preloader) stop() {
	pre.mu.Lock()
	if pre.stopped {
		pre.mu.Unlock()
		return
	}
	pre.stopped = true
	pre.mu.Unlock()
	_ = pre.ctl.CloseWrite()
}

// kill ends the preloader at once (start-up failed, shutdown).
func (pre *preloader) kill() { _ = pre.proc.Kill() }

// preloaded makes sure gen's preloader has loaded the application before
// a worker of gen is forked: it starts one if gen has none (or it exited),
// and returns errPreloading while it loads.
func (p *Pool) preloaded(gen int, node []byte) error {
	pre := p.preloaders[gen]
	if pre != nil {
		select {
		case <-pre.gone:
			pre = nil // it died: its workers with it; a new one loads again
		default:
		}
	}
	if pre == nil {
		var err error
		if pre, err = p.startPreloader(gen, node); err != nil {
			return err
		}
		p.preloaders[gen] = pre
		return errPreloading
	}
	ok, err := pre.loaded()
	if err != nil {
		return err
	}
	if !ok {
		return errPreloading
	}
	return nil
}

// onPreloaded: gen's preloader is ready (err nil) or could not load the
// application; the arbiter spawns the workers it was waiting for.
func (p *Pool) onPreloaded(gen int, err error) {
	if p.stopping {
		return
	}
	if err != nil {
		attrs := []any{"app", p.cfg.AppName, "generation", gen, "error", err.Error()}
		var le *LoadError
		if errors.As(err, &le) {
			attrs = append(attrs, "traceback", le.Traceback())
		}
		delete(p.preloaders, gen)
		switch gen {
		case p.reloadGen:
			p.log.Error("reload failed: the new preloader cannot load the application; the running workers keep serving", attrs...)
			p.abandonReload("reload failed")
			p.reloadsEnded.Store(p.reloadAsks)
		case p.gen:
			p.failures++
			p.log.Error("the preloader cannot load the application", attrs...)
			p.reconcile(false)
		}
		return
	}
	switch gen {
	case p.reloadGen:
		p.spawnReloadGen()
	case p.gen:
		p.reconcile(false)
	default:
		p.retirePreloaders()
	}
}

// retirePreloaders stops the preloaders of generations that are neither
// serving nor being started and have no worker left.
func (p *Pool) retirePreloaders() {
	for gen, pre := range p.preloaders {
		if gen == p.gen || gen == p.reloadGen {
			continue
		}
		inUse := false
		for w := range p.workers {
			if w.gen == gen {
				inUse = true
				break
			}
		}
		if !inUse {
			pre.stop()
			delete(p.preloaders, gen)
		}
	}
}
