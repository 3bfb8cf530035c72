package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/protocol"
)

// fakeWorker answers every REQUEST on conn with a hello-world response, as
// fast as Go can: the benchmark then measures the master's own per-request
// path (environ encoding, framing, response parsing, slot hand-off).
func fakeWorker(conn net.Conn) {
	br := bufio.NewReader(conn)
	var scratch []byte
	var out []byte
	start := protocol.AppendStart(nil, "200 OK", [][2]string{{"Content-Type", "text/plain"}, {"Content-Length", "13"}})
	for {
		h, err := protocol.ReadHeader(br)
		if err != nil {
			return
		}
		if _, err := protocol.ReadPayload(br, h, &scratch); err != nil {
			return
		}
		out = protocol.AppendFrame(out[:0], protocol.Start, h.Stream, start)
		out = protocol.AppendFrame(out, protocol.Data, h.Stream, []byte("Hello, World!"))
		out = protocol.AppendFrame(out, protocol.End, h.Stream, nil)
		if _, err := conn.Write(out); err != nil {
			return
		}
	}
}

// discardWriter is a ResponseWriter that keeps nothing, reusing its header.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchPool(b *testing.B) *Pool {
	p := NewPool(Config{Workers: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	w := &worker{pool: p, id: 1, exited: make(chan struct{})}
	w.state.Store(int32(StateReady))
	a, c := net.Pipe()
	if uc, err := unixPair(); err == nil {
		a, c = uc[0], uc[1]
	}
	go fakeWorker(c)
	// The fake worker reads REQUESTs and their frames from one socket: the
	// dispatch socket is the stream socket here.
	s := &slot{w: w, conn: a, disp: a, dispMax: protocol.MaxDispatch, br: bufio.NewReaderSize(a, 64<<10), wbuf: make([]byte, 0, 4096)}
	w.slots = []*slot{s}
	w.open.Store(1)
	p.idle <- s
	b.Cleanup(func() { a.Close(); c.Close() })
	return p
}

func unixPair() ([2]net.Conn, error) {
	l, err := net.Listen("unix", "")
	if err != nil {
		return [2]net.Conn{}, err
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		ch <- c
	}()
	d, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		return [2]net.Conn{}, err
	}
	return [2]net.Conn{d, <-ch}, nil
}

// BenchmarkServeHTTP is one hello-world request through the master's
// gateway handler against an in-process fake worker.
func BenchmarkServeHTTP(b *testing.B) {
	benchServe(b, helloRequest("/hello?x=1"))
}

// BenchmarkServeHTTPComposed is BenchmarkServeHTTP with the Facts the
// compose step attaches to every request, set as a urlmap leaves them.
func BenchmarkServeHTTPComposed(b *testing.B) {
	req, f := component.Attach(helloRequest("/app/hello?x=1"))
	f.ScriptName, f.PathInfo, f.PathSet, f.RequestID = "/app", "/hello", true, "abc"
	benchServe(b, req)
}

func helloRequest(target string) *http.Request {
	req, _ := http.NewRequest("GET", "http://127.0.0.1:8000"+target, nil)
	req.RequestURI = target
	req.RemoteAddr = "127.0.0.1:50000"
	req.Header.Set("User-Agent", "wrk")
	req.Header.Set("Accept", "*/*")
	return req
}

func benchServe(b *testing.B, req *http.Request) {
	h := NewHandler(benchPool(b), "")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	reportCPU(b, cpu)
}

// processCPU is the CPU time the process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op: the CPU time of the whole process (the master's
// side and the fake worker) per request since since. Unlike ns/op it does
// not count the time other processes held the cores, so it stays
// comparable on a busy machine.
func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(processCPU()-since)/float64(b.N), "cpu-ns/op")
}

// BenchmarkEnviron is the environ encoding alone.
func BenchmarkEnviron(b *testing.B) {
	req, _ := http.NewRequest("GET", "http://127.0.0.1:8000/hello?x=1", nil)
	req.RequestURI = "/hello?x=1"
	req.RemoteAddr = "127.0.0.1:50000"
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.Header.Set("Accept-Language", "en-US,en;q=0.5")
	req.Header.Set("Cookie", "sessionid=abc; csrftoken=def")
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEnviron(buf[:0], req, "", "/hello")
	}
}

// BenchmarkServeHTTPOverTCP is one hello-world request from a keep-alive
// client through a real net/http server on loopback to the gateway handler
// and the fake worker: the master's whole per-request path but the worker
// process (net/http's parsing, connection goroutines and response, the
// queue, the slot). Run it with -cpu 1, as the master runs (GOMAXPROCS=1 on
// up to 7 cores). cpu-ns/op and allocs/op count the clients and the fake
// worker too, the same for every variant of the master.
func BenchmarkServeHTTPOverTCP(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: NewHandler(benchPool(b), "")}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	req := []byte("GET /hello?x=1 HTTP/1.1\r\nHost: " + l.Addr().String() + "\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
	b.SetParallelism(8) // keep-alive clients per GOMAXPROCS, so requests queue as under wrk
	b.ReportAllocs()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			if err := skipResponse(br); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportCPU(b, cpu)
}

// skipResponse reads one response with a Content-Length body, allocating
// nothing.
func skipResponse(br *bufio.Reader) error {
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n = 0
			for _, c := range bytes.TrimSpace(k) {
				n = n*10 + int(c-'0')
			}
		}
	}
	if n < 0 {
		return errors.New("response without Content-Length")
	}
	_, err := br.Discard(n)
	return err
}
