package e2e

// systemd and containers end to end: socket activation through a parent
// that passes descriptors as systemd does (one written here, and Debian's
// systemd-socket-activate), sd_notify over a real unix datagram socket, and
// the drop to an unprivileged user after binding a privileged port. Every
// identifier here starts with "sd".

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
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
	"github.com/wsgate/wsgate/test/e2e/harness"
)

// sdProcess is a wsgate started by a test's own parent process (not the
// harness, which binds its own sockets), with its output collected.
type sdProcess struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	ready chan struct{}
	done  chan struct{}
}

func sdStart(t *testing.T, cmd *exec.Cmd) *sdProcess {
	t.Helper()
	p := &sdProcess{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		readyOnce := sync.Once{}
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			if strings.HasPrefix(sc.Text(), "wsgate: ready") {
				readyOnce.Do(func() { close(p.ready) })
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(harness.Deadline):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("output:\n%s", p.log())
		}
	})
	return p
}

func (p *sdProcess) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *sdProcess) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-p.ready:
	case <-p.done:
		t.Fatalf("exited before it was ready:\n%s", p.log())
	case <-time.After(harness.Deadline):
		t.Fatalf("not ready within %s:\n%s", harness.Deadline, p.log())
	}
}

func sdServeArgs(t *testing.T) []string {
	return []string{"serve", "--app", "pep3333:app", "--pythonpath", gwAppsDir(), "--python", testutil.VenvPython(t), "--workers", "1"}
}

// sdEnviron is a process's environment (/proc/PID/environ).
func sdEnviron(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\x00", "\n")
}

// TestSystemdSocketActivation: a parent binds a TCP and a unix socket and
// execs wsgate with them as descriptors 3 and 4, LISTEN_PID, LISTEN_FDS
// and LISTEN_FDNAMES as systemd sets them. wsgate serves on both without a
// --bind, and its workers inherit neither the variables nor the sockets.
func TestSystemdSocketActivation(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	sock := filepath.Join(t.TempDir(), "app.sock")
	unix, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()
	tcpFile, _ := tcp.(*net.TCPListener).File()
	unixFile, _ := unix.(*net.UnixListener).File()
	defer tcpFile.Close()
	defer unixFile.Close()
	// sh sets LISTEN_PID to its own pid, which exec hands on to wsgate:
	// what systemd does between fork and exec.
	cmd := exec.Command("sh", append([]string{"-c",
		`LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=web:local exec "$0" "$@"`, testutil.Binary(t)}, sdServeArgs(t)...)...)
	cmd.ExtraFiles = []*os.File{tcpFile, unixFile}
	p := sdStart(t, cmd)
	p.waitReady(t)
	if log := p.log(); !strings.Contains(log, "wsgate: listening on http://"+tcp.Addr().String()) ||
		!strings.Contains(log, "wsgate: listening on unix:"+sock) || !strings.Contains(log, "using the sockets passed by the service manager") {
		t.Errorf("the passed sockets are not the ones announced:\n%s", log)
	}
	env, _ := tlsEnviron(t, gwClient, "http://"+tcp.Addr().String())
	overUnix := &http.Client{Timeout: gwIOGuard, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	if _, resp := tlsEnviron(t, overUnix, "http://local"); resp.StatusCode != 200 {
		t.Errorf("over the passed unix socket: %d", resp.StatusCode)
	}
	worker := int(env["pid"].(float64))
	if e := sdEnviron(t, worker); strings.Contains(e, "LISTEN_") {
		t.Errorf("the worker inherited systemd's variables:\n%s", e)
	}
	// The listening sockets are the test's own (dup'ed): same inodes.
	for _, f := range []*os.File{tcpFile, unixFile} {
		listening, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", worker))
		for _, fd := range fds {
			if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", worker, fd.Name())); target == listening {
				t.Errorf("the worker holds a listening socket (%s) as fd %s", listening, fd.Name())
			}
		}
	}
}

// TestSystemdSocketActivateTool: Debian's systemd-socket-activate binds the
// port and starts wsgate at the first connection, which wsgate answers.
func TestSystemdSocketActivateTool(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		testutil.Skip(t, "systemd-socket-activate not installed (Debian's systemd package; make test installs it)")
	}
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close() // the tool binds it again at once; nothing else here takes ports
	p := sdStart(t, exec.Command(tool, append([]string{"--listen=" + addr, "--fdname=web", testutil.Binary(t)}, sdServeArgs(t)...)...))
	harness.WaitFor(t, "systemd-socket-activate listening", func() bool { return strings.Contains(p.log(), "Listening on") })
	env, resp := tlsEnviron(t, gwClient, "http://"+addr) // the first connection starts wsgate
	if resp.StatusCode != 200 || env["wsgi.url_scheme"] != "http" {
		t.Errorf("through systemd-socket-activate: %d %v", resp.StatusCode, env["wsgi.url_scheme"])
	}
	p.waitReady(t)
	if !strings.Contains(p.log(), "using the sockets passed by the service manager") {
		t.Errorf("wsgate did not take the passed socket:\n%s", p.log())
	}
}

// sdNotifySocket listens where $NOTIFY_SOCKET points and delivers each
// datagram.
func sdNotifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return path, msgs
}

// sdExpect waits for a message starting with want, skipping watchdog pings
// unless they are what is wanted.
func sdExpect(t *testing.T, msgs <-chan string, want string) string {
	t.Helper()
	timeout := time.After(harness.Deadline)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("notify socket closed while waiting for %q", want)
			}
			if strings.HasPrefix(m, want) {
				return m
			}
			if m == "WATCHDOG=1" {
				continue
			}
			t.Fatalf("notified %q while waiting for %q", m, want)
		case <-timeout:
			t.Fatalf("no %q notified within %s", want, harness.Deadline)
		}
	}
}

// TestSystemdNotify: READY=1 once the workers serve, watchdog pings at half
// WATCHDOG_USEC, RELOADING=1 at SIGHUP and READY=1 only once the new
// workers serve, STOPPING=1 at SIGTERM. The workers do not inherit
// NOTIFY_SOCKET.
func TestSystemdNotify(t *testing.T) {
	path, msgs := sdNotifySocket(t)
	s := tlsStart(t, []string{"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=200000"}, "--workers", "1")
	sdExpect(t, msgs, "READY=1")
	sdExpect(t, msgs, "WATCHDOG=1")
	sdExpect(t, msgs, "WATCHDOG=1")
	env, _ := tlsEnviron(t, gwClient, s.URL)
	if e := sdEnviron(t, int(env["pid"].(float64))); strings.Contains(e, "NOTIFY_SOCKET") || strings.Contains(e, "WATCHDOG_USEC") {
		t.Errorf("the worker inherited the notify variables:\n%s", e)
	}
	for i := 1; i <= 3; i++ {
		s.Signal(syscall.SIGHUP)
		m := sdExpect(t, msgs, "RELOADING=1")
		if !strings.Contains(m, "\nMONOTONIC_USEC=") {
			t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", m)
		}
		sdExpect(t, msgs, "READY=1")
		if got := strings.Count(s.Logs(), "reload complete"); got != i {
			t.Fatalf("READY=1 after SIGHUP %d with %d reloads complete in the log", i, got)
		}
	}
	s.Signal(syscall.SIGTERM)
	sdExpect(t, msgs, "STOPPING=1")
	if code := s.Wait(); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

// TestSystemdUserDrop: as root, wsgate binds a privileged port, then runs
// as nobody, master and workers alike, and still serves on that port.
func TestSystemdUserDrop(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.Skip(t, "dropping privileges needs root")
	}
	var addr string
	for port := 990; port > 900 && addr == ""; port-- {
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			addr = l.Addr().String()
			l.Close()
		}
	}
	if addr == "" {
		t.Fatal("no free port under 1024 on 127.0.0.1")
	}
	// The system's interpreter: the venv's lives under /root, out of
	// nobody's reach, as an interpreter must not be in production.
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("Debian's python3 is needed: %v", err)
	}
	s := gwStartArgs(t, python, "--app", "pep3333:app", "--pythonpath", gwAppsDir(), "--workers", "2", "--bind", addr, "--user", "nobody")
	env, _ := tlsEnviron(t, gwClient, "http://"+addr)
	for _, pid := range append([]int{s.PID}, gwChildren(t, s.PID)...) {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") {
				for _, id := range f[1:] {
					if id != "65534" {
						t.Errorf("pid %d: %s, want 65534 (nobody, nogroup) throughout", pid, line)
						break
					}
				}
			}
		}
	}
	if env["pid"] == nil {
		t.Error("no worker answered")
	}
	r := harness.Run(t, harness.Options{Args: []string{"--app", "pep3333:app", "--pythonpath", gwAppsDir(), "--user", "no-such-user-here"}})
	if r.ExitCode != 1 || !strings.Contains(r.Output, "user no-such-user-here") {
		t.Errorf("an unknown user: exit %d\n%s", r.ExitCode, r.Output)
	}
}

// TestSystemdSocketActivationTLS: the sockets of docs/operations.md's
// units: a TCP socket and a UDP one named https, and a TCP one named
// redirect. wsgate serves HTTPS on the first, HTTP/3 on the UDP one and
// redirects on the last.
func TestSystemdSocketActivationTLS(t *testing.T) {
	dir := t.TempDir()
	cert := tlsIssue(t, dir, "localhost", 1, nil, false)
	https, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer https.Close()
	quic, err := net.ListenPacket("udp", https.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer quic.Close()
	redirect, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer redirect.Close()
	var files []*os.File
	for _, f := range []interface{ File() (*os.File, error) }{https.(*net.TCPListener), quic.(*net.UDPConn), redirect.(*net.TCPListener)} {
		file, err := f.File()
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		files = append(files, file)
	}
	cmd := exec.Command("sh", append([]string{"-c",
		`LISTEN_PID=$$ LISTEN_FDS=3 LISTEN_FDNAMES=https:https:redirect exec "$0" "$@"`, testutil.Binary(t)},
		append(sdServeArgs(t), "--certfile", cert.certPEM, "--keyfile", cert.keyPEM, "--http3")...)...)
	cmd.ExtraFiles = files
	p := sdStart(t, cmd)
	p.waitReady(t)
	for _, want := range []string{"listening on https://" + https.Addr().String(), "redirecting to https from http://" + redirect.Addr().String(),
		"HTTP/3 on udp://" + quic.LocalAddr().String()} {
		if !strings.Contains(p.log(), want) {
			t.Errorf("no %q line:\n%s", want, p.log())
		}
	}
	env, resp := tlsEnviron(t, tlsClient([]*tlsCert{cert}, nil, true), "https://"+https.Addr().String())
	if env["wsgi.url_scheme"] != "https" || resp.ProtoMajor != 2 {
		t.Errorf("over the passed HTTPS socket: %s, url_scheme %v", resp.Proto, env["wsgi.url_scheme"])
	}
	_, port, _ := net.SplitHostPort(https.Addr().String())
	if got := resp.Header.Get("Alt-Svc"); got != `h3=":`+port+`"; ma=86400` {
		t.Errorf("Alt-Svc %q", got)
	}
	if env, _ := tlsHTTP3Environ(t, cert, https.Addr().String()); env["SERVER_PROTOCOL"] != "HTTP/3.0" {
		t.Errorf("over the passed UDP socket: SERVER_PROTOCOL %v", env["SERVER_PROTOCOL"])
	}
	noFollow := &http.Client{Timeout: gwIOGuard, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := noFollow.Get("http://" + redirect.Addr().String() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if want := "https://127.0.0.1:" + port + "/x"; r.StatusCode != 301 || r.Header.Get("Location") != want {
		t.Errorf("redirect socket: %d %q, want 301 %q", r.StatusCode, r.Header.Get("Location"), want)
	}
}
