package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// firstFD is SD_LISTEN_FDS_START: passed sockets start at descriptor 3.
const firstFD = 3

// Socket is one socket passed by the service manager, with its name
// (FileDescriptorName= in the socket unit; "unknown" when none was given).
// Exactly one of Listener (a stream socket) and Packet (a datagram one) is
// set.
type Socket struct {
	Name     string
	Listener net.Listener
	Packet   net.PacketConn
}

// Sockets returns the sockets passed to this process ($LISTEN_PID is this
// process, $LISTEN_FDS counts them), nil when none were, and removes the
// variables from the environment so the workers do not take them for
// theirs. The descriptors are made close-on-exec.
func Sockets() ([]Socket, error) {
	pid, fds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	if fds == "" {
		return nil, nil
	}
	if pid != strconv.Itoa(os.Getpid()) {
		return nil, nil // meant for another process (a parent that did not clear them)
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("LISTEN_FDS=%q is not a count of sockets", fds)
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
	}
	var out []Socket
	for i := 0; i < n; i++ {
		fd := firstFD + i
		syscall.CloseOnExec(fd)
		name := "unknown"
		if i < len(nameList) && nameList[i] != "" {
			name = nameList[i]
		}
		f := os.NewFile(uintptr(fd), name)
		s := Socket{Name: name}
		typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("passed descriptor %d (%s): not a socket: %w", fd, name, err)
		}
		if typ == syscall.SOCK_DGRAM {
			s.Packet, err = net.FilePacketConn(f)
		} else {
			s.Listener, err = net.FileListener(f)
		}
		f.Close() // the net package holds a duplicate
		if err != nil {
			return nil, fmt.Errorf("passed descriptor %d (%s): %w", fd, name, err)
		}
		out = append(out, s)
	}
	return out, nil
}
