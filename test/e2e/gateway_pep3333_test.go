package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/test/e2e/harness"
)

// TestGatewayPEP3333 drives every PEP 3333 path of the gateway against one
// server (2 workers, 1 thread) running validator-wrapped test apps.
func TestGatewayPEP3333(t *testing.T) {
	s := gwStart(t, "--workers", "2", "--threads", "1")

	t.Run("EnvironCGIKeys", func(t *testing.T) {
		c := s.gwDial(t)
		_, clientPort, _ := net.SplitHostPort(c.LocalAddr().String())
		raw := "GET /environ/caf%C3%A9%2Fx%FF%20y?a=%20b&c=d+e&x=%FF&&z HTTP/1.1\r\n" +
			"Host: example.test:8080\r\n" +
			"X-Dup: first\r\n" +
			"User-Agent: e2e\r\n" +
			"X-Dup: second\r\n" +
			"Content-Type: text/x-e2e; charset=latin-1\r\n" +
			"X-Forwarded-User: real\r\n" +
			"X_Forwarded_User: spoofed\r\n" +
			"X-Name: caf\xc3\xa9\r\n" +
			"Content-Length: 3\r\n" +
			"Connection: close\r\n\r\nabc"
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		resp, body := gwReadResponse(t, bufio.NewReader(c), "GET")
		var env map[string]any
		gwJSON(t, "environ", gwResponse{status: resp.StatusCode, body: body}, &env)

		want := map[string]any{
			"REQUEST_METHOD":  "GET",
			"SCRIPT_NAME":     "",
			"PATH_INFO":       "/environ/" + gwLatin1([]byte("caf\xc3\xa9/x\xff y")),
			"QUERY_STRING":    "a=%20b&c=d+e&x=%FF&&z",
			"CONTENT_TYPE":    "text/x-e2e; charset=latin-1",
			"CONTENT_LENGTH":  "3",
			"SERVER_PROTOCOL": "HTTP/1.1",
			"REMOTE_ADDR":     "127.0.0.1",
			"REMOTE_PORT":     clientPort,
			"HTTP_HOST":       "example.test:8080",
			"HTTP_X_DUP":      "first, second",
			"HTTP_USER_AGENT": "e2e",
			// A header spelt with "_" must not pass for the "-" one.
			"HTTP_X_FORWARDED_USER": "real",
			// Header bytes reach the app as latin-1 code points.
			"HTTP_X_NAME":     gwLatin1([]byte("caf\xc3\xa9")),
			"wsgi.url_scheme": "http",
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("environ[%q] = %#v, want %#v", k, env[k], v)
			}
		}
		for _, k := range []string{"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"} {
			if _, ok := env[k]; ok {
				t.Errorf("environ has %s; PEP 3333 keeps it only as the CGI key", k)
			}
		}
		if v, _ := env["wsgi.version"].([]any); len(v) != 2 || v[0] != 1.0 || v[1] != 0.0 {
			t.Errorf("wsgi.version = %v, want [1 0]", env["wsgi.version"])
		}
		// PEP 3333's URL reconstruction must give back what the client asked.
		if got, want := gwReconstructURL(env), "http://example.test:8080/environ/"+gwLatin1([]byte("caf\xc3\xa9/x\xff y"))+"?a=%20b&c=d+e&x=%FF&&z"; got != want {
			t.Errorf("reconstructed URL %q, want %q", got, want)
		}
	})

	t.Run("EnvironHTTP10WithoutHost", func(t *testing.T) {
		env := s.gwRawEnviron(t, "environ over HTTP/1.0", "GET /environ/plain HTTP/1.0\r\n\r\n", "GET")
		if env["SERVER_PROTOCOL"] != "HTTP/1.0" {
			t.Errorf("SERVER_PROTOCOL = %v, want HTTP/1.0", env["SERVER_PROTOCOL"])
		}
		if _, ok := env["HTTP_HOST"]; ok {
			t.Errorf("HTTP_HOST = %v for a request without Host", env["HTTP_HOST"])
		}
		_, port, _ := net.SplitHostPort(s.addr)
		if env["SERVER_NAME"] != "127.0.0.1" || env["SERVER_PORT"] != port {
			t.Errorf("SERVER_NAME:SERVER_PORT = %v:%v, want the listener 127.0.0.1:%s", env["SERVER_NAME"], env["SERVER_PORT"], port)
		}
		if _, ok := env["CONTENT_LENGTH"]; ok && env["CONTENT_LENGTH"] != "" && env["CONTENT_LENGTH"] != "0" {
			t.Errorf("CONTENT_LENGTH = %v for a request without a body", env["CONTENT_LENGTH"])
		}
	})

	t.Run("LongPath", func(t *testing.T) {
		seg := strings.Repeat("%C3%A9abc", 1000) // 9000 bytes of request target
		var env map[string]any
		gwJSON(t, "long path", gwGet(t, s.URL+"/environ/"+seg), &env)
		if want := "/environ/" + gwLatin1([]byte(strings.Repeat("\xc3\xa9abc", 1000))); env["PATH_INFO"] != want {
			t.Errorf("PATH_INFO of a 9000-byte target differs (%d code points, want %d)", len([]rune(env["PATH_INFO"].(string))), len([]rune(want)))
		}
	})

	t.Run("AbsoluteFormTarget", func(t *testing.T) {
		// A request line may carry the whole URL (RFC 9112 3.2.2):
		// PATH_INFO and QUERY_STRING come from its path and query only.
		env := s.gwRawEnviron(t, "absolute-form", "GET http://example.test/environ/abs%2Fx?q=1 HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n", "GET")
		if env["PATH_INFO"] != "/environ/abs/x" || env["QUERY_STRING"] != "q=1" || env["HTTP_HOST"] != "example.test" {
			t.Errorf("absolute-form target: PATH_INFO %q QUERY_STRING %q HTTP_HOST %q", env["PATH_INFO"], env["QUERY_STRING"], env["HTTP_HOST"])
		}
	})

	t.Run("PathWithNUL", func(t *testing.T) {
		// %00 decodes to a NUL code point, which a native string holds.
		var env map[string]any
		gwJSON(t, "NUL in path", gwGet(t, s.URL+"/environ/a%00b"), &env)
		if env["PATH_INFO"] != "/environ/a\x00b" {
			t.Errorf("PATH_INFO %q, want %q", env["PATH_INFO"], "/environ/a\x00b")
		}
	})

	t.Run("OptionsStar", func(t *testing.T) {
		// "OPTIONS *" asks about the server as a whole: the application
		// answers it (not net/http's own empty 200), with REQUEST_URI "*"
		// and no path: SCRIPT_NAME and PATH_INFO empty.
		env := s.gwRawEnviron(t, "OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "OPTIONS")
		if env["REQUEST_METHOD"] != "OPTIONS" || env["REQUEST_URI"] != "*" || env["PATH_INFO"] != "" || env["SCRIPT_NAME"] != "" {
			t.Errorf("OPTIONS *: REQUEST_METHOD %q REQUEST_URI %q SCRIPT_NAME %q PATH_INFO %q", env["REQUEST_METHOD"], env["REQUEST_URI"], env["SCRIPT_NAME"], env["PATH_INFO"])
		}
	})

	t.Run("ChunkedTransferEncoding", func(t *testing.T) {
		// net/http takes Transfer-Encoding out of the header; the app still
		// sees it, as every client header, and no CONTENT_LENGTH.
		env := s.gwRawEnviron(t, "chunked POST", "POST /environ/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "POST")
		if env["HTTP_TRANSFER_ENCODING"] != "chunked" {
			t.Errorf("HTTP_TRANSFER_ENCODING = %v, want chunked", env["HTTP_TRANSFER_ENCODING"])
		}
		if v, ok := env["CONTENT_LENGTH"]; ok && v != "" {
			t.Errorf("CONTENT_LENGTH = %v for a chunked body", v)
		}
	})

	t.Run("WSGIFlagsOneThread", func(t *testing.T) {
		var env map[string]any
		gwJSON(t, "environ", gwGet(t, s.URL+"/environ/"), &env)
		if env["wsgi.multithread"] != false || env["wsgi.multiprocess"] != true || env["wsgi.run_once"] != false {
			t.Errorf("--workers 2 --threads 1: multithread=%v multiprocess=%v run_once=%v, want false true false",
				env["wsgi.multithread"], env["wsgi.multiprocess"], env["wsgi.run_once"])
		}
		if env["has wsgi.file_wrapper"] != true {
			t.Errorf("wsgi.file_wrapper missing from environ")
		}
	})

	t.Run("InputModes", func(t *testing.T) {
		body := gwLines()
		for _, mode := range []string{"chunks", "small", "all", "exact", "readline", "readline_n", "readlines", "iter"} {
			for _, chunked := range []bool{false, true} {
				if mode == "exact" && chunked {
					continue // needs CONTENT_LENGTH
				}
				name := mode
				if chunked {
					name += "/chunked"
				}
				t.Run(name, func(t *testing.T) {
					piece := 0
					if chunked {
						piece = 4093
					}
					req := gwPost(t, s.URL+"/read?mode="+mode, bytes.NewReader(body), piece)
					var got struct {
						SHA256        string `json:"sha256"`
						Length        int    `json:"length"`
						LinesOK       bool   `json:"lines_ok"`
						EOFSticky     bool   `json:"eof_sticky"`
						ContentLength string `json:"content_length"`
					}
					gwJSON(t, "read "+name, gwDo(t, req), &got)
					if got.Length != len(body) || got.SHA256 != gwSHA(body) {
						t.Errorf("app read %d bytes (sha %s), want %d (sha %s)", got.Length, got.SHA256, len(body), gwSHA(body))
					}
					if !got.LinesOK {
						t.Errorf("a line read in mode %s did not end with a newline", mode)
					}
					if !got.EOFSticky {
						t.Errorf("after EOF, read(1)/read(n)/readline() did not all return b''")
					}
					if !chunked && got.ContentLength != strconv.Itoa(len(body)) {
						t.Errorf("CONTENT_LENGTH = %q, want %d", got.ContentLength, len(body))
					}
					if chunked && got.ContentLength != "" && got.ContentLength != strconv.Itoa(len(body)) {
						t.Errorf("chunked request: CONTENT_LENGTH = %q, want empty or the real length %d", got.ContentLength, len(body))
					}
				})
			}
		}
	})

	t.Run("EmptyBody", func(t *testing.T) {
		req, _ := http.NewRequest("POST", s.URL+"/read?mode=chunks", strings.NewReader(""))
		var got struct {
			Length    int  `json:"length"`
			EOFSticky bool `json:"eof_sticky"`
		}
		gwJSON(t, "empty POST", gwDo(t, req), &got)
		if got.Length != 0 || !got.EOFSticky {
			t.Errorf("empty body: read %d bytes, eof sticky %v", got.Length, got.EOFSticky)
		}
	})

	t.Run("WriteCallable", func(t *testing.T) {
		r := gwGet(t, s.URL+"/write")
		gwOK(t, "/write", r)
		if string(r.body) != "one-two-three" {
			t.Errorf("body %q, want the write() calls then the iterable: %q", r.body, "one-two-three")
		}
	})

	t.Run("LazyStartResponse", func(t *testing.T) {
		r := gwGet(t, s.URL+"/lazy")
		gwOK(t, "/lazy", r)
		if string(r.body) != "lazy body" || r.header.Get("X-Lazy") != "yes" {
			t.Errorf("generator app calling start_response on first next(): X-Lazy %q body %q", r.header.Get("X-Lazy"), r.body)
		}
	})

	t.Run("ResponseHeaders", func(t *testing.T) {
		all := s.gwRawExchange(t, "GET /cookies HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, _ := gwReadResponse(t, bufio.NewReader(bytes.NewReader(all)), "GET")
		if got := resp.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1; Path=/" || got[1] != "b=2, c=3; Path=/" {
			t.Errorf("Set-Cookie headers %q, want the app's two, separate and in order", got)
		}
		// PEP 3333: header values are latin-1 strings, sent as those bytes.
		if !bytes.Contains(all, []byte("X-Latin1: caf\xe9\r\n")) {
			t.Errorf("X-Latin1 \"caf\\xe9\" not sent as the latin-1 byte: %q", all)
		}
	})

	t.Run("BadHeaderFromAppRefused", func(t *testing.T) {
		for _, h := range [][2]string{
			{"X-Euro", "\u20ac"}, // not latin-1
			{"X Space", "v"},     // not a token
			{"X-Ctl", "a\x01b"},  // control character
		} {
			c := s.gwDial(t)
			fmt.Fprintf(c, "GET /header?name=%s&value=%s HTTP/1.1\r\nHost: x\r\n\r\n", url.QueryEscape(h[0]), url.QueryEscape(h[1]))
			br := bufio.NewReader(c)
			resp, _ := gwReadResponse(t, br, "GET")
			if resp.StatusCode != 500 {
				t.Errorf("app header %q: %q: status %d, want 500", h[0], h[1], resp.StatusCode)
			}
			// The connection stays usable unless the server said otherwise.
			if !resp.Close {
				io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
				if next, body := gwReadResponse(t, br, "GET"); next.StatusCode != 200 || string(body) != "hello world\n" {
					t.Errorf("next request on the connection: %d %q", next.StatusCode, body)
				}
			}
		}
	})

	t.Run("ContentLengthShort", func(t *testing.T) {
		// The app declares 100 bytes and sends 10: the client must be able
		// to tell the response is incomplete.
		r := gwGet(t, s.URL+"/badlength?declared=100&actual=10")
		if r.bodyErr == nil {
			t.Errorf("response with %d of its declared 100 bytes ended cleanly", len(r.body))
		}
		gwOK(t, "next request", gwGet(t, s.URL+"/hello"))
	})

	t.Run("ContentLengthExceeded", func(t *testing.T) {
		// The app declares fewer bytes than it sends: no more than those may
		// reach the client, or they would poison the next response. A large
		// list body would be written by the worker itself (DIRECT): the
		// master must refuse that past the declared length too.
		for _, tc := range []struct {
			path     string
			declared int
		}{{"/badlength?declared=5&actual=10", 5}, {"/big?size=1000000&declared=200000", 200000}} {
			c := s.gwDial(t)
			io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(c)
			req, _ := http.NewRequest("GET", "/", nil)
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if len(body) > tc.declared {
				t.Errorf("%s: got %d body bytes, the app declared %d", tc.path, len(body), tc.declared)
			}
			io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			rest, _ := io.ReadAll(br)
			if len(rest) > 0 && !bytes.HasPrefix(rest, []byte("HTTP/1.1 200")) {
				t.Errorf("%s: after the over-long body the connection carries %.100q", tc.path, rest)
			}
		}
	})

	t.Run("UnreadRequestBody", func(t *testing.T) {
		// /hello never reads its body. The response must still come, and
		// the connection be either reusable or closed, never desynchronised.
		for _, tc := range []struct {
			size    int
			chunked bool
		}{{10 << 10, false}, {5 << 20, false}, {10 << 10, true}, {5 << 20, true}} {
			size := tc.size
			c := s.gwDial(t)
			go func() {
				if tc.chunked {
					fmt.Fprintf(c, "POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", size)
				} else {
					fmt.Fprintf(c, "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
				}
				c.Write(bytes.Repeat([]byte("u"), size))
				if tc.chunked {
					io.WriteString(c, "\r\n0\r\n\r\n")
				}
				io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			}()
			br := bufio.NewReader(c)
			first, body := gwReadResponse(t, br, "POST")
			if first.StatusCode != 200 || string(body) != "hello world\n" {
				t.Fatalf("POST of %d unread bytes (chunked %v): %d %q", size, tc.chunked, first.StatusCode, body)
			}
			rest, _ := io.ReadAll(br)
			if len(rest) == 0 && !first.Close && size <= 10<<10 {
				t.Errorf("connection dropped after a small unread body without Connection: close")
			}
			if len(rest) > 0 && !bytes.HasPrefix(rest, []byte("HTTP/1.1 200")) {
				t.Errorf("after an unread %d-byte body (chunked %v) the connection carries %.100q", size, tc.chunked, rest)
			}
		}
	})

	t.Run("Pipelining", func(t *testing.T) {
		all := s.gwRawExchange(t, "GET /write HTTP/1.1\r\nHost: x\r\n\r\n"+
			"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"+
			"GET /lazy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		br := bufio.NewReader(bytes.NewReader(all))
		for _, want := range []string{"one-two-three", "hello world\n", "lazy body"} {
			resp, body := gwReadResponse(t, br, "GET")
			if resp.StatusCode != 200 || string(body) != want {
				t.Errorf("pipelined response: %d %q, want 200 %q", resp.StatusCode, body, want)
			}
		}
	})

	t.Run("ChunkedWhenNoContentLength", func(t *testing.T) {
		r := gwGet(t, s.URL+"/stream?n=5")
		gwOK(t, "/stream", r)
		want := "piece 0\npiece 1\npiece 2\npiece 3\npiece 4\n"
		if string(r.body) != want {
			t.Errorf("body %q, want %q", r.body, want)
		}
		// A short body may be framed by a Content-Length the server
		// computed itself, or chunked; either must be exact.
		if te := r.resp.TransferEncoding; !(len(te) == 1 && te[0] == "chunked") && r.resp.ContentLength != int64(len(want)) {
			t.Errorf("Transfer-Encoding %v Content-Length %d: the response is not framed", te, r.resp.ContentLength)
		}
		// An HTTP/1.0 client cannot read chunks: the body ends with the connection.
		b := s.gwRawExchange(t, "GET /stream?n=3 HTTP/1.0\r\n\r\n")
		resp, body := gwReadResponse(t, bufio.NewReader(bytes.NewReader(b)), "GET")
		if resp.StatusCode != 200 || string(body) != "piece 0\npiece 1\npiece 2\n" || len(resp.TransferEncoding) != 0 {
			t.Errorf("HTTP/1.0: status %d, transfer-encoding %v, body %q", resp.StatusCode, resp.TransferEncoding, body)
		}
		// Even when the HTTP/1.0 client asks to keep the connection, a
		// streamed body of unknown length can only end with it: a server
		// keeping it open would leave the client waiting forever.
		c := s.gwDial(t)
		io.WriteString(c, "GET /stream?n=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		resp, body = gwReadResponse(t, bufio.NewReader(c), "GET")
		if resp.StatusCode != 200 || string(body) != "piece 0\npiece 1\npiece 2\n" {
			t.Errorf("HTTP/1.0 keep-alive: status %d, body %q", resp.StatusCode, body)
		}
	})

	t.Run("BlocksNotDelayed", func(t *testing.T) {
		// PEP 3333: a block the app yields is transmitted before the app
		// produces the next. The app holds its second piece until the
		// client has seen the first, so the server cannot know the length
		// and must send it chunked.
		resp, err := gwClient.Get(s.URL + "/stream?n=3&hold=stream1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		first, err := br.ReadString('\n')
		if err != nil || first != "piece 0\n" {
			t.Fatalf("first block: %q, %v", first, err)
		}
		s.gwRelease(t, "stream1")
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "piece 1\npiece 2\n" {
			t.Errorf("rest of the stream: %q, %v", rest, err)
		}
		if te := resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
			t.Errorf("Transfer-Encoding %v, want chunked for a streamed HTTP/1.1 response without Content-Length", te)
		}
	})

	t.Run("HeadHasNoBody", func(t *testing.T) {
		c := s.gwDial(t)
		// Two requests on one connection: a body sent after the HEAD
		// response would be read as the start of the GET response.
		io.WriteString(c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		head, _ := gwReadResponse(t, br, "HEAD")
		if head.StatusCode != 200 || head.ContentLength != int64(len("hello world\n")) {
			t.Errorf("HEAD: status %d, Content-Length %d, want 200 and the app's 12", head.StatusCode, head.ContentLength)
		}
		io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		get, body := gwReadResponse(t, br, "GET")
		if get.StatusCode != 200 || string(body) != "hello world\n" {
			t.Errorf("GET after HEAD on the same connection: %d %q", get.StatusCode, body)
		}
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			t.Errorf("bytes after the last response: %q", rest)
		}
	})

	for _, status := range []string{"204 No Content", "304 Not Modified"} {
		t.Run("NoBody"+status[:3], func(t *testing.T) {
			c := s.gwDial(t)
			fmt.Fprintf(c, "GET /status?status=%s HTTP/1.1\r\nHost: x\r\n\r\n", url.QueryEscape(status))
			br := bufio.NewReader(c)
			first, _ := gwReadResponse(t, br, "GET")
			if first.StatusCode != gwAtoi(status[:3]) {
				t.Errorf("status %d, want %s", first.StatusCode, status)
			}
			if len(first.TransferEncoding) != 0 {
				t.Errorf("%s framed with Transfer-Encoding %v", status, first.TransferEncoding)
			}
			// Body bytes sent anyway would now sit before the next response.
			io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			all, err := io.ReadAll(br)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(all, []byte("MUST-NOT-BE-SENT")) {
				t.Fatalf("the app's body was sent with %s:\n%q", status, all)
			}
			second, body := gwReadResponse(t, bufio.NewReader(bytes.NewReader(all)), "GET")
			if second.StatusCode != 200 || string(body) != "hello world\n" {
				t.Errorf("next response on the connection: %d %q", second.StatusCode, body)
			}
		})
	}

	t.Run("NoBody1xx", func(t *testing.T) {
		// A WSGI app cannot send an interim response: a 1xx given as the
		// final status is refused by start_response (docs/serve.md), so the
		// client gets a 500, neither the app's body nor a fake success.
		all := s.gwRawExchange(t, "GET /status?status=103+Early+Hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if bytes.Contains(all, []byte("MUST-NOT-BE-SENT")) {
			t.Errorf("the app's body was sent after a 1xx status:\n%q", all)
		}
		if !strings.HasPrefix(string(all), "HTTP/1.1 500 ") {
			t.Errorf("response to an app answering 103 as its final status: %q, want a 500", all)
		}
		gwOK(t, "next request", gwGet(t, s.URL+"/hello"))
	})

	t.Run("ExcInfoBeforeHeadersReplacesThem", func(t *testing.T) {
		r := gwGet(t, s.URL+"/excinfo?when=before")
		if r.status != 500 || r.header.Get("X-Replaced") != "yes" || string(r.body) != "replaced body" || r.bodyErr != nil {
			t.Errorf("got %d X-Replaced=%q body %q (%v), want the app's replacement 500", r.status, r.header.Get("X-Replaced"), r.body, r.bodyErr)
		}
	})

	t.Run("ExcInfoAfterEmptyBlockReplaces", func(t *testing.T) {
		// An empty block sends nothing, so the headers are not out yet.
		r := gwGet(t, s.URL+"/excinfo?when=empty")
		if r.status != 500 || r.header.Get("X-Replaced") != "yes" || string(r.body) != "replaced after an empty block" {
			t.Errorf("got %d X-Replaced=%q body %q (%v), want the app's replacement 500", r.status, r.header.Get("X-Replaced"), r.body, r.bodyErr)
		}
	})

	t.Run("ExcInfoAfterHeadersReraises", func(t *testing.T) {
		r := gwTry(t, s.URL+"/excinfo?when=after&id=exc1")
		if got := harness.WaitFile(t, s.gwRecord("exc1")); got != "reraised" {
			t.Errorf("start_response(…, exc_info) after the headers were sent: app recorded %q, want reraised", got)
		}
		gwFailedVisibly(t, "app raised after its first block", r, "first chunk")
		gwOK(t, "next request", gwGet(t, s.URL+"/hello"))
	})

	t.Run("CloseCalled", func(t *testing.T) {
		r := gwGet(t, s.URL+"/close?id=normal&n=3")
		gwOK(t, "/close", r)
		if len(r.body) != 3*65536 {
			t.Errorf("body %d bytes, want %d", len(r.body), 3*65536)
		}
		if got := harness.WaitFile(t, s.gwRecord("closed-normal")); got != "3" {
			t.Errorf("close() recorded %q pieces sent, want 3", got)
		}
	})

	t.Run("CloseCalledWhenAppRaises", func(t *testing.T) {
		r := gwTry(t, s.URL+"/close?id=raise&mode=raise&n=3")
		if got := harness.WaitFile(t, s.gwRecord("closed-raise")); got != "1" {
			t.Errorf("close() recorded %q pieces sent, want 1", got)
		}
		gwFailedVisibly(t, "app raised mid-stream", r, "xxxx")
		s.WaitLog("e2e: app fails mid-stream")
	})

	t.Run("CloseCalledWhenClientDisconnects", func(t *testing.T) {
		const pieces = 4000 // 256 MB if nobody stops the app
		c := s.gwDial(t)
		fmt.Fprintf(c, "GET /close?id=gone&mode=stream&n=%d HTTP/1.1\r\nHost: x\r\n\r\n", pieces)
		if _, err := io.ReadFull(c, make([]byte, 200000)); err != nil {
			t.Fatalf("reading the start of the stream: %v", err)
		}
		c.Close()
		got := harness.WaitFile(t, s.gwRecord("closed-gone"))
		if n, err := strconv.Atoi(got); err != nil || n >= pieces {
			t.Errorf("close() recorded %q pieces sent: the app was not stopped when the client went away", got)
		}
		gwOK(t, "next request", gwGet(t, s.URL+"/hello"))
	})

	t.Run("FileWrapper", func(t *testing.T) {
		data := make([]byte, 1<<20+12345)
		rand.Read(data)
		path := filepath.Join(t.TempDir(), "payload.bin")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cases := []struct{ name, query string }{
			{"RealFile", ""},
			{"FromOffset", "&seek=1000"},
			{"BytesIO", "&like=bytesio"},
			{"NoContentLength", "&length=none"},
			{"Validated", ""},
		}
		t.Run("SentByTheMaster", func(t *testing.T) {
			// A real file in wsgi.file_wrapper goes out by sendfile from
			// the master: the worker never reads it. (Connection: close:
			// a request on the master's path, never a lent connection.)
			before := map[int]int64{}
			for _, pid := range gwChildren(t, s.PID) {
				before[pid] = gwReadChars(t, pid)
			}
			req, err := http.NewRequest("GET", s.URL+"/file?path="+url.QueryEscape(path), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Close = true
			r := gwDo(t, req)
			gwOK(t, "/file", r)
			pid := gwAtoi(r.header.Get("X-Worker-Pid"))
			start, ok := before[pid]
			if !ok {
				t.Fatalf("worker %d that served the file is not among the master's children %v", pid, before)
			}
			if read := gwReadChars(t, pid) - start; read >= int64(len(data)) {
				t.Errorf("the worker read %d bytes while serving a %d-byte file through wsgi.file_wrapper: no sendfile", read, len(data))
			}
		})
		t.Run("SentBySendfileOnALentConnection", func(t *testing.T) {
			// On a lent connection (--lend) the worker answers: it sends
			// the file with sendfile(2), a few system calls, and never
			// reads it through Python (8 KiB reads: 130 of them).
			ctl := filepath.Join(t.TempDir(), "ctl.sock")
			ls := gwStart(t, "--workers", "1", "--lend", "--control-socket", ctl)
			c := ls.gwDial(t)
			br := bufio.NewReader(c)
			io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") // the first request lends the connection
			if resp, body := gwReadResponse(t, br, "GET"); resp.StatusCode != 200 || string(body) != "hello world\n" {
				t.Fatalf("first request: %d %q", resp.StatusCode, body)
			}
			pids := gwChildren(t, ls.PID)
			before := map[int]int64{}
			for _, pid := range pids {
				before[pid] = gwProcIO(t, pid, "syscr")
			}
			io.WriteString(c, "GET /file?path="+url.QueryEscape(path)+" HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, body := gwReadResponse(t, br, "GET")
			if resp.StatusCode != 200 || !bytes.Equal(body, data) {
				t.Fatalf("/file on a lent connection: status %d, %d bytes, want 200 and the file's %d", resp.StatusCode, len(body), len(data))
			}
			pid := gwAtoi(resp.Header.Get("X-Worker-Pid"))
			start, ok := before[pid]
			if !ok {
				t.Fatalf("worker %d that served the file is not among the master's children %v", pid, pids)
			}
			if reads := gwProcIO(t, pid, "syscr") - start; reads >= 16 {
				t.Errorf("the worker made %d read system calls to send a %d-byte file on a lent connection: no sendfile", reads, len(data))
			}
			if lent := statusLentRequests(t, ctl); lent < 1 {
				t.Errorf("status shows %d requests served on lent connections: the file did not take the lent path", lent)
			}
		})
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				route := "/file"
				if tc.name == "Validated" {
					route = "/vfile"
				}
				r := gwGet(t, s.URL+route+"?path="+url.QueryEscape(path)+tc.query)
				gwOK(t, route, r)
				want := data
				if tc.query == "&seek=1000" {
					want = data[1000:]
				}
				if len(r.body) != len(want) || gwSHA(r.body) != gwSHA(want) {
					t.Errorf("got %d bytes (sha %s), want %d (sha %s)", len(r.body), gwSHA(r.body), len(want), gwSHA(want))
				}
			})
		}
	})

	t.Run("HopByHopHeadersRejected", func(t *testing.T) {
		for _, h := range [][2]string{
			{"Connection", "close"},
			{"Keep-Alive", "timeout=1234"},
			{"Transfer-Encoding", "chunked"},
			{"Upgrade", "e2e/1"},
			{"Proxy-Authenticate", "Basic"},
			{"TE", "trailers"},
			{"Proxy-Authorization", "Basic ZTJlOmUyZQ=="},
		} {
			t.Run(h[0], func(t *testing.T) {
				r := gwGet(t, s.URL+"/hop?name="+url.QueryEscape(h[0])+"&value="+url.QueryEscape(h[1]))
				if r.status != 500 {
					t.Errorf("app sent hop-by-hop %s: status %d, want 500", h[0], r.status)
				}
				for _, v := range r.header.Values(h[0]) {
					if v == h[1] {
						t.Errorf("the app's %s: %s reached the client", h[0], h[1])
					}
				}
			})
		}
		gwOK(t, "next request", gwGet(t, s.URL+"/hello"))
	})

	t.Run("CRLFInHeaderRefused", func(t *testing.T) {
		r := gwGet(t, s.URL+"/crlf")
		if r.status != 500 {
			t.Errorf("status %d, want 500 for a header value holding CR/LF", r.status)
		}
		if c := r.header.Get("Set-Cookie"); c != "" {
			t.Errorf("header injection reached the client: Set-Cookie %q", c)
		}
		s.WaitLog("X-Injected")
	})

	t.Run("AppMisbehaves", func(t *testing.T) {
		pid := string(gwGet(t, s.URL+"/pid").body)
		for _, how := range []string{"raise", "none", "nostart", "str", "badstatus", "twice"} {
			r := gwTry(t, s.URL+"/misbehave?how="+how)
			if r.status != 500 {
				t.Errorf("app breaking WSGI (%s): status %d (%v), want 500", how, r.status, r.bodyErr)
			}
		}
		s.WaitLog("e2e: the app raised before start_response")
		// An app error is the request's, not the worker's: nobody died.
		p0 := s.gwAssertPoolServes(t, 2, "after-misbehaving")
		if strconv.Itoa(p0[0]) != pid && strconv.Itoa(p0[1]) != pid {
			t.Errorf("worker %s is gone after app errors (pool now %v)", pid, p0)
		}
	})

	t.Run("ErrorsToServerLog", func(t *testing.T) {
		gwOK(t, "/errors", gwGet(t, s.URL+"/errors?id=e2e-7731"))
		s.WaitLog("e2e wsgi.errors marker e2e-7731")
	})
}

// TestGatewayWSGIFlagsThreaded checks wsgi.multithread in a threaded worker.
func TestGatewayWSGIFlagsThreaded(t *testing.T) {
	s := gwStart(t, "--workers", "1", "--threads", "4")
	var env map[string]any
	gwJSON(t, "environ", gwGet(t, s.URL+"/environ/"), &env)
	if env["wsgi.multithread"] != true || env["wsgi.run_once"] != false {
		t.Errorf("--threads 4: multithread=%v run_once=%v, want true false", env["wsgi.multithread"], env["wsgi.run_once"])
	}
	// Four requests held at once in the one worker: its four threads.
	var pids [4]int
	var dones [4]<-chan gwResponse
	for i := range 4 {
		pids[i], dones[i] = s.gwBlock(t, fmt.Sprintf("thread%d", i))
		if pids[i] != pids[0] {
			t.Errorf("held request %d on pid %d, request 0 on %d: --workers 1 has one process", i, pids[i], pids[0])
		}
	}
	for i := range 4 {
		s.gwRelease(t, fmt.Sprintf("thread%d", i))
		gwFinish(t, fmt.Sprintf("threaded request %d", i), pids[i], dones[i])
	}

	// A worker that dies takes all its threads' requests: each gets 502,
	// none hangs.
	heldPid, held := s.gwBlock(t, "victim")
	r := gwGet(t, s.URL+"/crash?how=kill&id=threadcrash")
	if r.status != 502 {
		t.Errorf("crashing request: status %d, want 502", r.status)
	}
	if other := <-held; other.status != 502 {
		t.Errorf("request on another thread of the dead worker %d: status %d (%v), want 502", heldPid, other.status, other.bodyErr)
	}
	harness.WaitFor(t, "the dead worker to be reaped", func() bool { return harness.ProcessReaped(heldPid) })
	gwOK(t, "request after the crash", gwGet(t, s.URL+"/hello"))
}

// gwReconstructURL is PEP 3333's "URL Reconstruction" algorithm.
func gwReconstructURL(env map[string]any) string {
	str := func(k string) string { s, _ := env[k].(string); return s }
	u := str("wsgi.url_scheme") + "://"
	if host := str("HTTP_HOST"); host != "" {
		u += host
	} else {
		u += str("SERVER_NAME")
		if (str("wsgi.url_scheme") == "https" && str("SERVER_PORT") != "443") || (str("wsgi.url_scheme") == "http" && str("SERVER_PORT") != "80") {
			u += ":" + str("SERVER_PORT")
		}
	}
	// The path is compared decoded, as the environ holds it.
	u += str("SCRIPT_NAME") + str("PATH_INFO")
	if q := str("QUERY_STRING"); q != "" {
		u += "?" + q
	}
	return u
}

func gwAtoi(s string) int { n, _ := strconv.Atoi(s); return n }

// gwRawEnviron sends raw (a request written byte for byte) to an environ
// view and returns the environ the application saw.
func (s *gwServer) gwRawEnviron(t *testing.T, what, raw, method string) map[string]any {
	t.Helper()
	b := s.gwRawExchange(t, raw)
	resp, body := gwReadResponse(t, bufio.NewReader(bytes.NewReader(b)), method)
	var env map[string]any
	gwJSON(t, what, gwResponse{status: resp.StatusCode, body: body}, &env)
	return env
}

// statusLentRequests is the number of requests served on lent connections
// (--lend) that `wsgate status` reports for every worker together.
func statusLentRequests(t *testing.T, ctl string) int64 {
	t.Helper()
	var pools []struct {
		Live []struct {
			Lent int64 `json:"lent_requests"`
		} `json:"live_workers"`
	}
	out := wsgateCmd(t, "status", "--json", "--control-socket", ctl)
	if err := json.Unmarshal([]byte(out), &pools); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	var n int64
	for _, p := range pools {
		for _, w := range p.Live {
			n += w.Lent
		}
	}
	return n
}
