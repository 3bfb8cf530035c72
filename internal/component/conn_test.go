package component

import (
	"net"
	"net/http/httptest"
	"syscall"
	"testing"
)

// Cork sets TCP_CORK on the request's own connection and uncork clears it;
// HTTP/2 requests and connections that are not TCP are left alone.
func TestCork(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	corked := func() int {
		raw, _ := server.(*net.TCPConn).SyscallConn()
		var v int
		raw.Control(func(fd uintptr) { v, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK) })
		return v
	}
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(WithConn(r.Context(), server))
	uncork := Cork(r)
	if corked() != 1 {
		t.Errorf("after Cork: TCP_CORK %d, want 1", corked())
	}
	uncork()
	if corked() != 0 {
		t.Errorf("after uncork: TCP_CORK %d, want 0", corked())
	}
	r.ProtoMajor = 2
	Cork(r)
	if corked() != 0 {
		t.Errorf("an HTTP/2 request corked the shared connection")
	}
	Cork(httptest.NewRequest("GET", "/", nil))() // no connection recorded: nothing to do
}
