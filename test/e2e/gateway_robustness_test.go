package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGatewayRobustness: big and chunked uploads arrive intact, slow clients
// cost no worker, malformed requests get 400 and the server keeps serving.
// One server (2 workers) for all of it.
func TestGatewayRobustness(t *testing.T) {
	s := gwStart(t, "--workers", "2", "--threads", "1")

	upload := make([]byte, 5<<20)
	rand.Read(upload)
	for _, chunked := range []bool{false, true} {
		name := "Upload5MB"
		if chunked {
			name += "Chunked"
		}
		t.Run(name, func(t *testing.T) {
			piece := 0
			if chunked {
				piece = 100003
			}
			req := gwPost(t, s.URL+"/read?mode=chunks", bytes.NewReader(upload), piece)
			var got struct {
				SHA256 string `json:"sha256"`
				Length int    `json:"length"`
			}
			gwJSON(t, name, gwDo(t, req), &got)
			if got.Length != len(upload) || got.SHA256 != gwSHA(upload) {
				t.Errorf("app received %d bytes (sha %s), want %d (sha %s)", got.Length, got.SHA256, len(upload), gwSHA(upload))
			}
		})
	}

	for _, chunked := range []bool{false, true} {
		name := "Echo5MB"
		if chunked {
			name += "Chunked"
		}
		t.Run(name, func(t *testing.T) {
			piece := 0
			if chunked {
				piece = 65536
			}
			req := gwPost(t, s.URL+"/echo", bytes.NewReader(upload), piece)
			r := gwDo(t, req)
			gwOK(t, name, r)
			if len(r.body) != len(upload) || gwSHA(r.body) != gwSHA(upload) {
				t.Errorf("echoed %d bytes (sha %s), sent %d (sha %s)", len(r.body), gwSHA(r.body), len(upload), gwSHA(upload))
			}
		})
	}

	t.Run("UploadMemoryFlat", func(t *testing.T) {
		// 128 MB through the master: with a credit window its peak RSS
		// barely moves; a master holding the body would grow by 128 MB.
		const size, allowed = 128 << 20, 48 << 20
		before := gwPeakRSS(t, s.PID)
		req := gwPost(t, s.URL+"/read?mode=chunks", io.LimitReader(gwPattern{}, size), 1<<20)
		var got struct {
			Length int `json:"length"`
		}
		gwJSON(t, "128 MB upload", gwDo(t, req), &got)
		if got.Length != size {
			t.Fatalf("app read %d bytes, want %d", got.Length, size)
		}
		if grew := gwPeakRSS(t, s.PID) - before; grew > allowed {
			t.Errorf("master peak RSS grew by %d MB during a 128 MB upload, want < %d MB", grew>>20, allowed>>20)
		}
	})

	t.Run("ConcurrentBurst", func(t *testing.T) {
		// More simultaneous requests than worker threads: they queue and
		// all get served.
		const n = 300
		var wg sync.WaitGroup
		var mu sync.Mutex
		pids := map[string]int{}
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := gwTry(t, s.URL+"/pid")
				mu.Lock()
				defer mu.Unlock()
				if r.status != 200 {
					pids[fmt.Sprintf("status %d %v", r.status, r.bodyErr)]++
					return
				}
				pids[string(r.body)]++
			}()
		}
		wg.Wait()
		if len(pids) != 2 {
			t.Errorf("%d concurrent requests: answers %v, want all 200 from the 2 workers", n, pids)
		}
	})

	t.Run("SlowClients", func(t *testing.T) {
		// 500 clients dribble their request headers one byte per round and
		// 50 more dribble a POST body; between rounds ordinary requests must
		// still be answered, which only holds if a slow client costs no
		// Python worker (there are 2).
		const headerClients, bodyClients, bodyLen = 500, 50, 40
		head := "GET /hello HTTP/1.1\r\nHost: slow.test\r\nConnection: close\r\n"
		post := fmt.Sprintf("POST /read?mode=small HTTP/1.1\r\nHost: slow.test\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", bodyLen)
		payload := strings.Repeat("z", bodyLen)

		slowHead := make([]net.Conn, headerClients)
		for i := range slowHead {
			slowHead[i] = s.gwDial(t)
		}
		slowBody := make([]net.Conn, bodyClients)
		for i := range slowBody {
			slowBody[i] = s.gwDial(t)
			if _, err := io.WriteString(slowBody[i], post); err != nil {
				t.Fatalf("slow body client %d: %v", i, err)
			}
		}
		rounds := max(len(head), bodyLen)
		for round := range rounds {
			for i, c := range slowHead {
				if round < len(head) {
					if _, err := c.Write([]byte{head[round]}); err != nil {
						t.Fatalf("slow header client %d, byte %d: %v", i, round, err)
					}
				}
			}
			for i, c := range slowBody {
				if round < bodyLen {
					if _, err := c.Write([]byte{payload[round]}); err != nil {
						t.Fatalf("slow body client %d, byte %d: %v", i, round, err)
					}
				}
			}
			if round%4 == 0 {
				r := gwGet(t, s.URL+"/hello")
				if r.status != 200 || string(r.body) != "hello world\n" {
					t.Fatalf("ordinary request during round %d of the slow clients: %d %q", round, r.status, r.body)
				}
			}
		}
		// Now every slow client completes and must get its answer.
		for _, c := range slowHead {
			io.WriteString(c, "\r\n")
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		failures := 0
		check := func(i int, c net.Conn, want string) {
			defer wg.Done()
			resp, body := gwReadResponseQuiet(c)
			if resp == nil || resp.StatusCode != 200 || !strings.Contains(string(body), want) {
				mu.Lock()
				defer mu.Unlock()
				if failures++; failures <= 5 {
					t.Errorf("slow client %d: response %v body %.200q, want 200 with %q", i, resp, body, want)
				}
			}
		}
		for i, c := range slowHead {
			wg.Add(1)
			go check(i, c, "hello world")
		}
		for i, c := range slowBody {
			wg.Add(1)
			go check(i, c, `"length": 40`)
		}
		wg.Wait()
		if failures > 0 {
			t.Errorf("%d slow clients did not get their answer", failures)
		}
	})

	for _, m := range gwMalformedRequests {
		t.Run("Malformed/"+m.name, func(t *testing.T) {
			c := s.gwDial(t)
			// The server may answer and close before the whole request is
			// written (oversized headers): write in the background.
			go func() { io.WriteString(c, m.raw) }()
			resp, body := gwReadResponseQuiet(c)
			if resp == nil {
				t.Fatalf("no HTTP response to a malformed request: %.200q", body)
			}
			ok := false
			for _, st := range m.statuses {
				ok = ok || resp.StatusCode == st
			}
			if !ok {
				t.Errorf("status %d, want one of %v; body %.200q", resp.StatusCode, m.statuses, body)
			}
			r := gwGet(t, s.URL+"/hello")
			if r.status != 200 || string(r.body) != "hello world\n" {
				t.Errorf("request after the malformed one: %d %q", r.status, r.body)
			}
		})
	}
	t.Run("MutatedRequests", func(t *testing.T) {
		// 600 seeded mutations of three valid requests. Whatever the
		// bytes, the server answers (or closes) without a 5xx of its own,
		// and no worker dies of it.
		workers := gwChildren(t, s.PID)
		rng := mrand.New(mrand.NewPCG(3333, 7))
		bases := [][]byte{
			[]byte("POST /read?mode=chunks HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world"),
			[]byte("POST /read?mode=readline HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"),
			[]byte("GET /environ/a%2Fb?q=%FF HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"),
		}
		statuses := map[int]int{}
		panics := strings.Count(s.Logs(), "panic")
		for i := range 600 {
			raw := gwMutate(rng, bases[i%len(bases)])
			c := s.gwDial(t)
			go func() {
				c.Write(raw)
				c.(*net.TCPConn).CloseWrite() // EOF: nothing more is coming
			}()
			resp, _ := gwReadResponseQuiet(c)
			c.Close()
			if n := strings.Count(s.Logs(), "panic"); n > panics {
				panics = n
				t.Errorf("mutation %d made the server log a panic: %q", i, raw)
			}
			if resp == nil {
				statuses[0]++
				continue
			}
			statuses[resp.StatusCode]++
			switch resp.StatusCode {
			case 500, 502, 503, 504:
				t.Errorf("mutation %d got %d: %q", i, resp.StatusCode, raw)
			}
		}
		t.Logf("statuses (0: closed without a response): %v", statuses)
		if after := gwChildren(t, s.PID); fmt.Sprint(after) != fmt.Sprint(workers) {
			t.Errorf("workers changed from %v to %v while answering malformed requests", workers, after)
		}
		gwOK(t, "request after the mutations", gwGet(t, s.URL+"/hello"))
	})

	t.Run("NoPanicLogged", func(t *testing.T) {
		if l := s.Logs(); strings.Contains(l, "panic") || strings.Contains(l, "goroutine ") {
			t.Errorf("server log shows a Go panic:\n%s", l)
		}
	})
}

// gwMalformedRequests are raw requests the master answers itself (with one
// of statuses), each on a connection of its own. The worker's HTTP/1.1 parser
// must never accept them either (http11_differential_test.go).
var gwMalformedRequests = []struct {
	name, raw string
	statuses  []int
}{
	// (A request line shorter than 14 bytes is held until the header
	// timeout: net/http waits for enough bytes to rule out the h2c
	// preface. Longer garbage is answered at once.)
	{"BadRequestLine", "NOT-AN-HTTP-REQUEST-LINE\r\n\r\n", []int{400}},
	{"RequestLineExtraField", "GET /hello HTTP/1.1 extra\r\nHost: x\r\n\r\n", []int{400}},
	{"MissingHost", "GET /hello HTTP/1.1\r\n\r\n", []int{400}},
	{"HeaderWithoutColon", "GET /hello HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", []int{400}},
	{"ControlCharInHeader", "GET /hello HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n", []int{400}},
	{"ContentLengthAndTransferEncoding", "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400}},
	{"TwoContentLengths", "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", []int{400}},
	{"ContentLengthNotANumber", "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: five\r\n\r\nhello", []int{400}},
	{"BadChunkSize", "POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", []int{400}},
	// 431 is the status RFC 6585 made for exactly this; both say "your request", not "our fault".
	{"OversizedHeaders", "GET /hello HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Big: "+strings.Repeat("b", 8000)+"\r\n", 160) + "\r\n", []int{400, 431}},
}

// gwReadResponseQuiet reads one response from c; on failure it returns nil and
// whatever bytes arrived, so the caller can say what it got.
func gwReadResponseQuiet(c net.Conn) (*http.Response, []byte) {
	_ = c.SetReadDeadline(time.Now().Add(gwIOGuard))
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &raw))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, raw.Bytes()
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

// gwPeakRSS is a process's peak resident set size (VmHWM) in bytes.
func gwPeakRSS(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int
			fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb)
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// gwPattern is an endless, cheap, non-repeating-per-block byte stream.
type gwPattern struct{}

func (gwPattern) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i*7 + i>>8)
	}
	return len(p), nil
}

// gwMutate applies one to four random edits to a copy of b: a byte replaced by
// one that matters to HTTP parsers, inserted, deleted, a line duplicated, or
// the request cut short.
func gwMutate(rng *mrand.Rand, b []byte) []byte {
	special := []byte("\x00\r\n \t:;,%-_0189aZ\x7f\x80\xff/?#\"\\")
	out := append([]byte(nil), b...)
	for range 1 + rng.IntN(4) {
		if len(out) == 0 {
			break
		}
		i := rng.IntN(len(out))
		switch rng.IntN(5) {
		case 0:
			out[i] = special[rng.IntN(len(special))]
		case 1:
			out = append(out[:i], append([]byte{special[rng.IntN(len(special))]}, out[i:]...)...)
		case 2:
			out = append(out[:i], out[i+1:]...)
		case 3:
			start := bytes.LastIndexByte(out[:i], '\n') + 1
			end := bytes.IndexByte(out[i:], '\n')
			if end >= 0 {
				line := append([]byte(nil), out[start:i+end+1]...)
				out = append(out[:start], append(line, out[start:]...)...)
			}
		case 4:
			out = out[:i]
		}
	}
	return out
}
