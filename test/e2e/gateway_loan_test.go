package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lentReport is what test/e2e/apps/pep3333.py's /lent answers.
type lentReport struct {
	SHA256    string `json:"sha256"`
	Length    int    `json:"length"`
	LentReads int    `json:"lent_reads"` // reads during which the worker held the client's socket
	HeldAfter bool   `json:"held_after"` // still held once the app stopped reading
	PID       int    `json:"pid"`
}

// TestGatewayBodyLoan: a large request body of known length is read by the
// worker from the client's own socket (docs/protocol.md, BODY_LOAN) and
// arrives intact; the worker gives the socket back whenever the client has
// nothing more for it, so a stalled client is waited for by the master; a
// body that breaks off during a loan is still a 400; and net/http's count of
// the body stays right, so the next request on the connection is read from
// where the body ends.
func TestGatewayBodyLoan(t *testing.T) {
	// --lend=false: the connection stays the master's between requests. On a
	// lent one the worker defers a large POST with the bytes it read, and
	// the loan can only start once net/http has read those from memory.
	s := gwStart(t, "--lend=false", "--workers", "1", "--threads", "1")
	body := make([]byte, 6<<20+12345)
	rand.Read(body)
	pid, err := strconv.Atoi(string(gwGet(t, s.URL+"/pid").body))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Lent", func(t *testing.T) {
		var got lentReport
		gwJSON(t, "upload", gwDo(t, gwPost(t, s.URL+"/lent", bytes.NewReader(body), 0)), &got)
		if got.Length != len(body) || got.SHA256 != gwSHA(body) {
			t.Fatalf("app read %d bytes (sha %s), want %d (sha %s)", got.Length, got.SHA256, len(body), gwSHA(body))
		}
		if got.LentReads == 0 {
			t.Errorf("the worker never held the client's socket while it read a %d-byte body", len(body))
		}
		if got.HeldAfter {
			t.Errorf("the worker still held the client's socket after the body's end")
		}
	})

	t.Run("ExpectContinue", func(t *testing.T) {
		// curl asks for 100 Continue before a body over 1 MB: net/http
		// wraps the body in its own reader, which may be lent as well.
		req := gwPost(t, s.URL+"/lent", bytes.NewReader(body), 0)
		req.Header.Set("Expect", "100-continue")
		var got lentReport
		gwJSON(t, "upload with Expect", gwDo(t, req), &got)
		if got.Length != len(body) || got.SHA256 != gwSHA(body) {
			t.Fatalf("app read %d bytes (sha %s), want %d (sha %s)", got.Length, got.SHA256, len(body), gwSHA(body))
		}
		if got.LentReads == 0 {
			t.Errorf("a body sent after 100 Continue was never lent")
		}
	})

	t.Run("ChunkedIsNotLent", func(t *testing.T) {
		var got lentReport
		gwJSON(t, "chunked upload", gwDo(t, gwPost(t, s.URL+"/lent", bytes.NewReader(body), 100003)), &got)
		if got.Length != len(body) || got.SHA256 != gwSHA(body) {
			t.Fatalf("app read %d bytes (sha %s), want %d (sha %s)", got.Length, got.SHA256, len(body), gwSHA(body))
		}
		if got.LentReads != 0 {
			t.Errorf("a chunked body was lent (%d reads): the worker would read the chunk framing", got.LentReads)
		}
	})

	t.Run("StalledClient", func(t *testing.T) {
		c := s.gwDial(t)
		fmt.Fprintf(c, "POST /lent HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
		if _, err := c.Write(body[:1<<20]); err != nil {
			t.Fatal(err)
		}
		// The client now sends nothing: once what came has been read (the
		// socket's receive queue is empty), the worker must hand the socket
		// back rather than wait on it.
		deadline := time.Now().Add(gwIOGuard)
		inode, queued := serverSocket(t, c)
		for queued > 0 || holds(t, pid, inode) {
			if time.Now().After(deadline) {
				t.Fatalf("worker %d still holds the socket of a client that sends nothing (%d bytes unread)", pid, queued)
			}
			time.Sleep(10 * time.Millisecond)
			_, queued = serverSocket(t, c)
		}
		if _, err := c.Write(body[1<<20:]); err != nil {
			t.Fatal(err)
		}
		resp, b := gwReadResponse(t, bufio.NewReader(c), "POST")
		var got lentReport
		gwJSON(t, "stalled upload", gwResponse{status: resp.StatusCode, body: b}, &got)
		if got.Length != len(body) || got.SHA256 != gwSHA(body) {
			t.Fatalf("app read %d bytes (sha %s), want %d (sha %s)", got.Length, got.SHA256, len(body), gwSHA(body))
		}
		if got.LentReads == 0 {
			t.Errorf("the body was never lent")
		}
	})

	t.Run("BrokenOff", func(t *testing.T) {
		c := s.gwDial(t)
		fmt.Fprintf(c, "POST /lent HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
		if _, err := c.Write(body[:2<<20]); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		resp, b := gwReadResponse(t, bufio.NewReader(c), "POST")
		if resp.StatusCode != 400 {
			t.Errorf("a body cut off after 2 of %d MB: %d %q, want 400", len(body)>>20, resp.StatusCode, b)
		}
		if r := gwGet(t, s.URL+"/pid"); string(r.body) != strconv.Itoa(pid) {
			t.Errorf("after the broken body: /pid answered %d %q, want worker %d still serving", r.status, r.body, pid)
		}
	})

	t.Run("PartReadThenNextRequest", func(t *testing.T) {
		// The app stops reading while the worker holds the socket; the
		// rest (under net/http's 256 KiB) is discarded by net/http, and the
		// request pipelined behind the body is read from where it starts.
		const read, size = 1 << 20, 1<<20 + 100<<10
		c := s.gwDial(t)
		go func() {
			fmt.Fprintf(c, "POST /lent?limit=%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", read, size)
			c.Write(body[:size])
			fmt.Fprintf(c, "GET /pid HTTP/1.1\r\nHost: x\r\n\r\n")
		}()
		br := bufio.NewReader(c)
		resp, b := gwReadResponse(t, br, "POST")
		var got lentReport
		gwJSON(t, "part read", gwResponse{status: resp.StatusCode, body: b}, &got)
		if got.Length != read || got.SHA256 != gwSHA(body[:read]) {
			t.Fatalf("app read %d bytes (sha %s), want %d (sha %s)", got.Length, got.SHA256, read, gwSHA(body[:read]))
		}
		if got.LentReads == 0 || !got.HeldAfter {
			t.Errorf("lent reads %d, held after the last read %v: want the socket still lent when the app stopped",
				got.LentReads, got.HeldAfter)
		}
		resp, b = gwReadResponse(t, br, "GET")
		if resp.StatusCode != 200 || string(b) != strconv.Itoa(pid) {
			t.Errorf("the request after the body: %d %q, want 200 %d", resp.StatusCode, b, pid)
		}
	})
}

// serverSocket is the inode of the server's side of c and the bytes the
// server has not read from it yet (from /proc/net/tcp: local port the
// server's, remote port c's; rx_queue).
func serverSocket(t *testing.T, c net.Conn) (inode string, unread int64) {
	t.Helper()
	server := c.RemoteAddr().(*net.TCPAddr).Port
	client := c.LocalAddr().(*net.TCPAddr).Port
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			if hexPort(f[1]) == server && hexPort(f[2]) == client {
				unread, _ = strconv.ParseInt(f[4][strings.IndexByte(f[4], ':')+1:], 16, 64)
				return f[9], unread
			}
		}
	}
	t.Fatalf("no server-side socket for the connection from port %d", client)
	return "", 0
}

func hexPort(addr string) int {
	n, _ := strconv.ParseInt(addr[strings.LastIndexByte(addr, ':')+1:], 16, 32)
	return int(n)
}

// holds reports whether process pid has the socket with this inode open.
func holds(t *testing.T, pid int, inode string) bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("worker %d: %v", pid, err)
	}
	for _, e := range entries {
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && target == "socket:["+inode+"]" {
			return true
		}
	}
	return false
}
