// Package systemd speaks systemd's two service protocols: socket activation
// (sd_listen_fds: the sockets passed as LISTEN_FDS, named by
// LISTEN_FDNAMES) and readiness notification (sd_notify: READY=1,
// RELOADING=1, STOPPING=1, WATCHDOG=1 as datagrams to $NOTIFY_SOCKET).
package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notifier sends state changes to the service manager. A nil Notifier
// (no $NOTIFY_SOCKET) sends nothing.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration
}

// NotifierFromEnv reads $NOTIFY_SOCKET and $WATCHDOG_USEC (meant for this
// process when $WATCHDOG_PID is unset or names it), then removes them from
// the environment so the workers do not notify in the master's name.
func NotifierFromEnv() *Notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	usec := os.Getenv("WATCHDOG_USEC")
	pid := os.Getenv("WATCHDOG_PID")
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		os.Unsetenv(k)
	}
	if path == "" {
		return nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:] // an abstract socket
	}
	n := &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
	if us, err := strconv.ParseInt(usec, 10, 64); err == nil && us > 0 && (pid == "" || pid == strconv.Itoa(os.Getpid())) {
		// Ping at half the interval, as sd_watchdog_enabled(3) advises.
		n.watchdog = time.Duration(us) * time.Microsecond / 2
	}
	return n
}

// Notify sends state, newline-separated KEY=VALUE assignments.
func (n *Notifier) Notify(state string) error {
	if n == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", n.addr.Name, err)
	}
	return nil
}

// WatchdogInterval is how often to send WATCHDOG=1; 0 without a watchdog.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}
