package systemd

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// An abstract NOTIFY_SOCKET ("@name", as systemd may give) is reached, and
// the variables are gone from the environment afterwards.
func TestNotifyAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("wsgate-test-%d", os.Getpid())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "\x00" + name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", "@"+name)
	t.Setenv("WATCHDOG_USEC", "3000000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	n := NotifierFromEnv()
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("%s=%s left for the workers", k, v)
		}
	}
	if got := n.WatchdogInterval(); got != 1500*time.Millisecond {
		t.Errorf("watchdog every %s, want half of 3 s", got)
	}
	if err := n.Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // a hang guard, not a timing assertion
	k, err := conn.Read(buf)
	if err != nil || string(buf[:k]) != "READY=1" {
		t.Fatalf("received %q, %v", buf[:k], err)
	}
}

// A watchdog meant for another process is not ours to feed; no socket is
// no notifier, and notifying through it does nothing.
func TestNotifierWithoutSocketOrForAnother(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/does-not-matter")
	t.Setenv("WATCHDOG_USEC", "1000000")
	t.Setenv("WATCHDOG_PID", "1")
	if got := NotifierFromEnv().WatchdogInterval(); got != 0 {
		t.Errorf("a watchdog of pid 1 taken as ours: %s", got)
	}
	os.Unsetenv("NOTIFY_SOCKET")
	n := NotifierFromEnv()
	if n != nil || n.Notify("READY=1") != nil || n.WatchdogInterval() != 0 {
		t.Errorf("without NOTIFY_SOCKET: %+v", n)
	}
}

// Sockets passed to another process (LISTEN_PID is not ours) are not
// taken, and the variables are cleared either way.
func TestSocketsForAnotherProcess(t *testing.T) {
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDS", "2")
	t.Setenv("LISTEN_FDNAMES", "a:b")
	got, err := Sockets()
	if err != nil || got != nil {
		t.Fatalf("took %v, %v", got, err)
	}
	if _, ok := os.LookupEnv("LISTEN_FDS"); ok {
		t.Error("LISTEN_FDS left for the workers")
	}
	t.Setenv("LISTEN_PID", fmt.Sprint(os.Getpid()))
	t.Setenv("LISTEN_FDS", "two")
	if _, err := Sockets(); err == nil {
		t.Error("LISTEN_FDS=two accepted")
	}
}
