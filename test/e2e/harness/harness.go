// Package harness runs the real `wsgate serve` binary for end-to-end tests.
//
// Start launches `wsgate serve` (testutil.Binary) with the project's .venv
// interpreter, waits for the start-up lines that docs/architecture.md promises
// on stderr ("wsgate: listening on …" per listener, then "wsgate: ready, …"),
// and returns a Server whose URL the test talks to. Nothing sleeps: readiness,
// log lines and process exits are awaited as events, each under a generous
// deadline that only turns a hang into a failure with the server's log.
//
//	srv := harness.Start(t, harness.Options{
//		Args: []string{"--app", "pep3333:app", "--pythonpath", dir, "--workers", "2"},
//	})
//	resp, err := http.Get(srv.URL + "/hello")
//	...
//	srv.Stop() // SIGTERM; fails the test unless the exit status is 0
//
// A server still running when the test ends is stopped by t.Cleanup the same
// way; when the test failed, the server's log is printed with it.
package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/testutil"
)

// Deadline bounds every wait (start-up, a log line, an exit, a file). It is a
// guard against hangs, never a measure of speed: on a loaded 2-core machine a
// worker pool of the 3.9 interpreter can take seconds to come up.
var Deadline = 60 * time.Second

// Options says how to run `wsgate serve`.
type Options struct {
	// Args follow `wsgate serve`: a CONFIG_URI and/or flags such as
	// --app, --bind, --workers. When no --bind is given the server binds
	// 127.0.0.1:0, so tests never fight over a port.
	Args []string
	// FileBinds leaves the listeners to the configuration's server section
	// (bind, listen, host and port): no --bind is added.
	FileBinds bool
	// Dir is the working directory (default: the test's own directory).
	Dir string
	// Env entries (KEY=value) are added to the test process's environment.
	Env []string
	// Python is the interpreter passed as --python; empty means the .venv
	// interpreter (testutil.VenvPython), "-" means no --python flag at all
	// (the config file or WSGATE_PYTHON decides).
	Python string
}

// Server is a running `wsgate serve`.
type Server struct {
	// URL is the first listener as announced on stderr, e.g.
	// "http://127.0.0.1:43127" (or "unix:/path.sock").
	URL string
	// Listeners are all announced listeners, in order.
	Listeners []string
	// PID is the master process's id.
	PID int

	t    testing.TB
	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{} // closed once the master has exited
	// state is the master's exit state, valid after done is closed.
	state   *os.ProcessState
	stopped bool
}

// Start runs `wsgate serve` and returns once it has printed its readiness
// line. It fails the test (with the log) if the server exits or stays silent
// before that.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := launch(t, opts)
	ready := make(chan struct{})
	go func() {
		s.log.waitFor(func(line string) bool { return strings.HasPrefix(line, "wsgate: ready") })
		close(ready)
	}()
	select {
	case <-ready:
	case <-time.After(Deadline):
		s.kill()
		t.Fatalf("wsgate serve %s: no readiness line within %s\n%s", strings.Join(opts.Args, " "), Deadline, s.Logs())
	}
	select {
	case <-s.done:
		t.Fatalf("wsgate serve %s exited before it was ready (%s)\n%s", strings.Join(opts.Args, " "), s.state, s.Logs())
	default:
	}
	for _, line := range s.log.lines() {
		if rest, ok := strings.CutPrefix(line, "wsgate: listening on "); ok {
			s.Listeners = append(s.Listeners, strings.TrimSpace(rest))
		}
		if strings.HasPrefix(line, "wsgate: ready") {
			break
		}
	}
	if len(s.Listeners) == 0 {
		s.kill()
		t.Fatalf("wsgate serve: ready without any \"wsgate: listening on\" line\n%s", s.Logs())
	}
	s.URL = s.Listeners[0]
	return s
}

// Result is how a `wsgate serve` that was expected to stop on its own ended.
type Result struct {
	ExitCode int    // -1 when killed by a signal
	Output   string // stderr and stdout, interleaved by line
}

// Run runs `wsgate serve` to completion, for servers that must refuse to
// start (a bad application path, say). A server that reaches readiness or
// keeps running past Deadline fails the test.
func Run(t testing.TB, opts Options) Result {
	t.Helper()
	s := launch(t, opts)
	select {
	case <-s.done:
	case <-time.After(Deadline):
		s.kill()
		t.Fatalf("wsgate serve %s: still running after %s (expected it to exit)\n%s", strings.Join(opts.Args, " "), Deadline, s.Logs())
	}
	s.stopped = true
	return Result{ExitCode: s.state.ExitCode(), Output: s.Logs()}
}

func launch(t testing.TB, opts Options) *Server {
	t.Helper()
	args := []string{"serve"}
	switch opts.Python {
	case "":
		args = append(args, "--python", testutil.VenvPython(t))
	case "-":
	default:
		args = append(args, "--python", opts.Python)
	}
	if !hasFlag(opts.Args, "--bind") && !opts.FileBinds {
		args = append(args, "--bind", "127.0.0.1:0")
	}
	args = append(args, opts.Args...)

	cmd := exec.Command(testutil.Binary(t), args...)
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), opts.Env...)
	// Its own process group, so workers left behind can be found and
	// reaped; Pdeathsig so a killed `go test` leaves no server running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("wsgate serve: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("wsgate serve: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting wsgate serve: %v", err)
	}
	s := &Server{PID: cmd.Process.Pid, t: t, cmd: cmd, log: newLogBuffer(), done: make(chan struct{})}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); s.log.consume(stderr) }()
	go func() { defer readers.Done(); s.log.consume(stdout) }()
	go func() {
		// Wait must follow the pipe readers (os/exec's rule), so the
		// whole log is in before done closes.
		readers.Wait()
		_ = cmd.Wait()
		s.state = cmd.ProcessState
		close(s.done)
		s.log.closed()
	}()
	t.Cleanup(s.cleanup)
	return s
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// Logs returns everything the server has printed so far (stderr and stdout).
func (s *Server) Logs() string { return strings.Join(s.log.lines(), "\n") }

// WaitLog waits until a line of the server's output contains substr (lines
// printed before the call count) and returns that line. It fails the test if
// the server exits or Deadline passes first.
func (s *Server) WaitLog(substr string) string {
	s.t.Helper()
	found := make(chan string, 1)
	go func() {
		found <- s.log.waitFor(func(line string) bool { return strings.Contains(line, substr) })
	}()
	select {
	case line := <-found:
		if line != "" {
			return line
		}
		s.t.Fatalf("server exited without printing a line containing %q\n%s", substr, s.Logs())
	case <-time.After(Deadline):
		s.t.Fatalf("no server line containing %q within %s\n%s", substr, Deadline, s.Logs())
	}
	return ""
}

// Signal sends sig to the master process.
func (s *Server) Signal(sig syscall.Signal) {
	s.t.Helper()
	if err := syscall.Kill(s.PID, sig); err != nil {
		s.t.Fatalf("signal %v to wsgate (pid %d): %v", sig, s.PID, err)
	}
}

// Wait waits for the master to exit and returns its exit code (-1 when a
// signal killed it). It fails the test if the master outlives Deadline.
func (s *Server) Wait() int {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(Deadline):
		s.kill()
		s.t.Fatalf("wsgate (pid %d) still running %s after it was asked to stop\n%s", s.PID, Deadline, s.Logs())
	}
	s.stopped = true
	return s.state.ExitCode()
}

// Done is closed when the master has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop sends SIGTERM, waits for the exit and fails the test unless the exit
// status is 0 and no worker outlives the master.
func (s *Server) Stop() {
	s.t.Helper()
	if s.stopped {
		return
	}
	select {
	case <-s.done:
		s.stopped = true
		s.t.Errorf("wsgate exited on its own before Stop (%s)\n%s", s.state, s.Logs())
		return
	default:
	}
	// ESRCH: it died just now on its own; Wait reports how.
	if err := syscall.Kill(s.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		s.t.Fatalf("SIGTERM to wsgate (pid %d): %v", s.PID, err)
	}
	if code := s.Wait(); code != 0 {
		s.t.Errorf("wsgate exited with %s after SIGTERM, want exit status 0\n%s", s.state, s.Logs())
	}
	if left := s.waitGroupEmpty(); len(left) > 0 {
		s.t.Errorf("processes of wsgate's group still alive after it exited: %v\n%s", left, s.Logs())
	}
}

func (s *Server) cleanup() {
	if !s.stopped {
		select {
		case <-s.done:
			s.stopped = true
			s.t.Errorf("wsgate exited unexpectedly during the test (%s)\n%s", s.state, s.Logs())
		default:
			s.Stop()
		}
	}
	// Whatever happened, leave no process of this server behind.
	_ = syscall.Kill(-s.PID, syscall.SIGKILL)
	if s.t.Failed() {
		s.t.Logf("wsgate serve log (pid %d):\n%s", s.PID, s.Logs())
	}
}

func (s *Server) kill() {
	_ = syscall.Kill(-s.PID, syscall.SIGKILL)
	<-s.done
	s.stopped = true
}

// waitGroupEmpty waits (up to Deadline) until no live process is left in the
// server's process group and returns the pids still there at the deadline.
func (s *Server) waitGroupEmpty() []int {
	ctx, cancel := context.WithTimeout(context.Background(), Deadline)
	defer cancel()
	for {
		left := liveGroupMembers(s.PID)
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return left
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// liveGroupMembers lists the processes in group pgid that are not zombies.
func liveGroupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, group, ok := procStat(pid)
		if ok && group == pgid && state != "Z" && state != "X" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat reads a process's state letter and process group from
// /proc/PID/stat (the command name may hold spaces and parentheses, so the
// fields are counted from the last ')').
func procStat(pid int) (state string, pgid int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return "", 0, false
	}
	pgid, err = strconv.Atoi(f[2])
	return f[0], pgid, err == nil
}

// ProcessAlive reports whether pid names a running (not zombie) process. Tests
// use it to check that a worker was killed.
func ProcessAlive(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && state != "Z" && state != "X"
}

// ProcessReaped reports whether pid is gone entirely: dead and waited for by
// its parent (a zombie is dead but not reaped). A supervisor must reap the
// workers it loses, so tests of crashes wait for this.
func ProcessReaped(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return os.IsNotExist(err)
}

// WaitFor polls cond until it holds, failing the test after Deadline with
// what. It is for conditions outside the server's output: a file an app
// writes, a process that must die.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(Deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("waited %s for %s", Deadline, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitFile waits until path exists and returns its content.
func WaitFile(t testing.TB, path string) string {
	t.Helper()
	var b []byte
	WaitFor(t, "file "+path, func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil
	})
	return string(b)
}

// logBuffer collects output lines and wakes those waiting for one.
type logBuffer struct {
	mu     sync.Mutex
	cond   *sync.Cond
	all    []string
	isDone bool // the process has exited and its output is all in
}

func newLogBuffer() *logBuffer {
	b := &logBuffer{}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *logBuffer) consume(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			b.mu.Lock()
			b.all = append(b.all, strings.TrimRight(line, "\r\n"))
			b.cond.Broadcast()
			b.mu.Unlock()
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				b.mu.Lock()
				b.all = append(b.all, fmt.Sprintf("[harness: reading output: %v]", err))
				b.mu.Unlock()
			}
			return
		}
	}
}

func (b *logBuffer) closed() {
	b.mu.Lock()
	b.isDone = true
	b.cond.Broadcast()
	b.mu.Unlock()
}

func (b *logBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.all...)
}

// waitFor blocks until a line satisfies match (returning it) or the process
// has exited with no such line (returning "").
func (b *logBuffer) waitFor(match func(string) bool) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := 0
	for {
		for ; seen < len(b.all); seen++ {
			if match(b.all[seen]) {
				return b.all[seen]
			}
		}
		if b.isDone {
			return ""
		}
		b.cond.Wait()
	}
}
