package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
)

// TestHTTP11Differential holds the worker's HTTP/1.1 parser
// (python/wsgate/http11.py, for lent connections) to the master's verdict on
// the same bytes: a seeded corpus of plain requests and their mutations is
// sent raw to the real master, one request per connection, serving an app
// that echoes the CGI environ it got; parse() then reads the same bytes with
// the connection's constants. Whenever parse accepts, the master must have
// served the app, with the same environ key by key and the same body;
// whenever the master answers (or drops) the request itself, parse must not
// accept. Every unmutated plain request must be accepted, or the worker's
// path would serve nothing. Responses too: for WSGI responses of every kind,
// what the worker writes (response_head, chunk) must read, with Go's client,
// as the same status, headers and body as what the master sends.
// docs/architecture.md, "The worker's HTTP/1.1 parser".
func TestHTTP11Differential(t *testing.T) {
	const maxHead = 65536 // the server's --max-header-size, given to parse as max_head
	s := gwStartApp(t, "http11_echo:app", "", "--workers", "2", "--threads", "1",
		"--max-header-size", strconv.Itoa(maxHead))
	t.Run("Requests", func(t *testing.T) { h11Requests(t, s, maxHead) })
	t.Run("Responses", func(t *testing.T) { h11Responses(t, s) })
}

func h11Requests(t *testing.T, s *gwServer, maxHead int) {
	rng := mrand.New(mrand.NewPCG(1111, 2026))
	var corpus []h11Case
	for i := range 1600 {
		base := h11Plain(rng)
		corpus = append(corpus, h11Case{raw: base, plain: true})
		switch i % 3 {
		case 0:
			corpus = append(corpus, h11Case{raw: gwMutate(rng, base)})
		default:
			corpus = append(corpus, h11Case{raw: h11Twist(rng, base)})
		}
	}
	for _, m := range gwMalformedRequests {
		corpus = append(corpus, h11Case{raw: []byte(m.raw), malformed: m.name})
	}

	// The master's verdicts, one connection per request. The request is
	// followed by EOF (CloseWrite): a request the master finds incomplete is
	// then dropped or answered 400, never left waiting.
	for i := range corpus {
		c := &corpus[i]
		conn := s.gwDial(t)
		local := conn.LocalAddr().(*net.TCPAddr)
		c.conn = map[string]string{"wsgi.url_scheme": "http", "REMOTE_ADDR": local.IP.String(), "REMOTE_PORT": strconv.Itoa(local.Port)}
		go func() {
			conn.Write(c.raw)
			conn.(*net.TCPConn).CloseWrite()
		}()
		resp, _ := gwReadResponseQuiet(conn)
		conn.Close()
		if resp == nil {
			continue // status 0: closed without an answer
		}
		c.status = resp.StatusCode
		if echo := resp.Header.Get("X-Echo"); echo != "" {
			b, err := base64.StdEncoding.DecodeString(echo)
			if err != nil {
				t.Fatalf("case %d: X-Echo: %v", i, err)
			}
			c.served = &h11Echo{}
			if err := json.Unmarshal(b, c.served); err != nil {
				t.Fatalf("case %d: X-Echo: %v", i, err)
			}
		}
	}

	results := h11Parse(t, corpus, maxHead)
	counts := map[string]int{}
	for i, c := range corpus {
		r := results[i]
		counts[fmt.Sprintf("master %s, parse %s", c.verdict(), r.Verdict)]++
		switch {
		case c.malformed != "" && r.Verdict == "accept":
			t.Errorf("malformed request %s (%s): parse accepted it", c.malformed, c.verdict())
		case r.Verdict == "accept" && c.served == nil:
			t.Errorf("case %d: parse accepted what the master answered %s itself:\n%q", i, c.verdict(), c.raw)
		case r.Verdict == "accept":
			if len(r.Prefixes) > 0 {
				t.Errorf("case %d: parse did not answer NEED_MORE to its first %v bytes:\n%q", i, r.Prefixes, c.raw)
			}
			if diff := h11Diff(r.Environ, c.served.Environ); diff != "" {
				t.Errorf("case %d: environ differs (parse vs master):\n%s\nrequest: %q", i, diff, c.raw)
			}
			if r.Body != c.served.Body {
				t.Errorf("case %d: body %q from parse, %q at the app\nrequest: %q", i, r.Body, c.served.Body, c.raw)
			}
		case c.plain:
			t.Errorf("case %d: a plain request (master %s) was not accepted: %s\n%q", i, c.verdict(), r.Verdict, c.raw)
		case r.Verdict == "NEED_MORE" && c.served != nil:
			// The worker would wait for bytes that never come while the
			// master served the request.
			t.Errorf("case %d: parse waits for more, the master served it:\n%q", i, c.raw)
		}
		if c.served != nil && c.served.Environ["REMOTE_PORT"] != c.conn["REMOTE_PORT"] {
			t.Fatalf("case %d: the master saw REMOTE_PORT %s, the client's port is %s", i, c.served.Environ["REMOTE_PORT"], c.conn["REMOTE_PORT"])
		}
	}
	var lines []string
	for k, n := range counts {
		lines = append(lines, fmt.Sprintf("%5d  %s", n, k))
	}
	sort.Strings(lines)
	t.Logf("%d requests:\n%s", len(corpus), strings.Join(lines, "\n"))
}

type h11Case struct {
	raw       []byte
	plain     bool   // built from the plain shape only: parse must accept it
	malformed string // one of gwMalformedRequests
	conn      map[string]string
	status    int      // the master's answer; 0 if none
	served    *h11Echo // what the app saw, when the master served it
}

func (c *h11Case) verdict() string {
	if c.served != nil {
		return "served"
	}
	return strconv.Itoa(c.status)
}

type h11Echo struct {
	Environ map[string]string `json:"environ"`
	Body    string            `json:"body"`
}

type h11Result struct {
	Verdict  string            `json:"verdict"`
	Environ  map[string]string `json:"environ"`
	Body     string            `json:"body"`
	Prefixes []int             `json:"prefixes"` // shorter reads that did not answer NEED_MORE
}

// h11Parse runs wsgate.http11.parse over every case.
func h11Parse(t *testing.T, corpus []h11Case, maxHead int) []h11Result {
	t.Helper()
	type in struct {
		Raw      string            `json:"raw"`
		Conn     map[string]string `json:"conn"`
		MaxHead  int               `json:"max_head"`
		Prefixes bool              `json:"prefixes"`
	}
	cases := make([]in, len(corpus))
	for i, c := range corpus {
		// Every shorter read of one request in 16 (all of them: too slow).
		cases[i] = in{base64.StdEncoding.EncodeToString(c.raw), c.conn, maxHead, i%16 == 0}
	}
	var results []h11Result
	h11Python(t, cases, &results)
	if len(results) != len(corpus) {
		t.Fatalf("http11_parse.py: %d results for %d cases", len(results), len(corpus))
	}
	return results
}

// h11Python gives cases to test/e2e/apps/http11_parse.py in one Python
// process and decodes its answer into out.
func h11Python(t *testing.T, cases, out any) {
	t.Helper()
	input, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.VenvPython(t), filepath.Join(gwAppsDir(), "http11_parse.py"))
	cmd.Env = append(cmd.Environ(), "PYTHONPATH="+filepath.Join(testutil.RepoRoot(), "python"))
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("http11_parse.py: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("http11_parse.py: %v", err)
	}
}

func h11Diff(got, want map[string]string) string {
	var d []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			d = append(d, fmt.Sprintf("  %s: missing, master %q", k, v))
		} else if g != v {
			d = append(d, fmt.Sprintf("  %s: %q, master %q", k, g, v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("  %s: %q, not in the master's", k, v))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

func h11Pick[T any](rng *mrand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// h11Plain builds a plain request: HTTP/1.1, origin-form target, one Host,
// CRLF lines, token names, at most one Content-Length, no Connection but
// keep-alive, no Expect, Upgrade or Transfer-Encoding. Within that shape,
// everything varies: methods, escapes and raw bytes in the target, Host
// forms, name casing, repeated headers and cookies, blanks around values,
// latin-1 values, names with "_", bodies.
func h11Plain(rng *mrand.Rand) []byte {
	var b bytes.Buffer
	b.WriteString(h11Pick(rng, []string{"GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "PROPFIND", "get", "M-SEARCH"}))
	b.WriteString(" /")
	for range rng.IntN(5) {
		for range rng.IntN(8) {
			b.WriteString(h11Pick(rng, []string{"a", "Z", "0", "-", ".", "_", "~", "%2F", "%2f", "%20", "%C3%A9", "%ff", "%00", "%25",
				"\xe9", "\xc3\xa9", ";", "=", "@", ":", "!", "$", "&", "'", "(", "*", "+", ",", "\"", "<", "{", "|", "\\", "^", "`", "#", "[", "]"}))
		}
		b.WriteString(h11Pick(rng, []string{"/", "/", "//"}))
	}
	if rng.IntN(2) == 0 {
		b.WriteString("?")
		for range rng.IntN(12) {
			b.WriteString(h11Pick(rng, []string{"a=1", "&", "b=%zz", "%", "?", "=", "+", "%41", "#", "/", "\xff", ";"}))
		}
	}
	b.WriteString(" HTTP/1.1\r\n")
	headers := []string{"Host: " + h11Pick(rng, []string{"localhost", "example.com:8080", "EXAMPLE.org", "[::1]", "[::1]:9000", "127.0.0.1:80",
		"h:", "a:b:c", "::1", "xn--bcher-kva.example", "h_1.example", "[fe80::1%25eth0]:1", "[a]b:80", "h:abc", "x!$&'()*+,;=~"})}
	pool := []string{
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "Accept: */*", "Accept: text/html", "Accept-Language: en-US,en;q=0.5",
		"Accept-Encoding: gzip, deflate, br", "Cookie: sessionid=abc123", "Cookie: csrftoken=x; theme=dark", "Referer: http://example.com/a?b",
		"X-Forwarded-For: 203.0.113.9", "X-Request-Id: abc-123", "Authorization: Basic dTpw", "If-None-Match: \"v1\"", "Cache-Control: no-cache",
		"Pragma: no-cache", "Pragma: No-Cache", "Origin: http://example.com", "DNT: 1", "Sec-Fetch-Mode: navigate", "X_Custom: underscore",
		"X-Custom_Name: underscore", "X-Empty:", "X-Blank: \t ", "X-Latin: caf\xe9", "X-Tabs:\ta\tb\t", "X-Spaces:   a  b   ",
		"Content-Type: text/plain", "Content-Type: application/json", "X-Json: {\"a\": [1, 2]}", "Connection: keep-alive", "Connection: Keep-Alive",
		"Te: trailers", "Trailer: X-T", "Keep-Alive: timeout=5", "Proxy-Connection: keep-alive", "Http2-Settings: x", "Content-Encoding: gzip",
		"Range: bytes=0-1", "Via: 1.1 proxy", "X-!#$%&'*+.^`|~: tokens",
	}
	for range rng.IntN(11) {
		headers = append(headers, h11Pick(rng, pool))
	}
	var body []byte
	if rng.IntN(3) == 0 {
		body = make([]byte, h11Pick(rng, []int{0, 1, 7, 100, 3000}))
		for i := range body {
			body[i] = byte(rng.IntN(256))
		}
		headers = append(headers, fmt.Sprintf("%s: %s%d%s", h11Pick(rng, []string{"Content-Length", "content-length", "CONTENT-LENGTH"}),
			h11Pick(rng, []string{"", " ", "\t"}), len(body), h11Pick(rng, []string{"", " ", "\t "})))
	}
	seenConnection := false
	rng.Shuffle(len(headers), func(i, j int) { headers[i], headers[j] = headers[j], headers[i] })
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		if strings.EqualFold(name, "Connection") {
			if seenConnection {
				continue // a repeated Connection is the master's (parse defers it)
			}
			seenConnection = true
		}
		switch rng.IntN(4) {
		case 0:
			name = strings.ToLower(name)
		case 1:
			name = strings.ToUpper(name)
		}
		b.WriteString(name + ":" + value + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// h11Twist makes one targeted change that matters to the verdict: a framing,
// version, target, name, value or Host the master refuses or handles itself,
// or one it still serves in a way the worker must defer.
func h11Twist(rng *mrand.Rand, base []byte) []byte {
	head, body, _ := bytes.Cut(base, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	method, rest, _ := strings.Cut(lines[0], " ")
	target, _, _ := strings.Cut(rest, " ")
	add := func(h ...string) { lines = append(lines, h...) }
	dropHost := func() {
		for i := 1; i < len(lines); i++ {
			if n, _, _ := strings.Cut(lines[i], ":"); strings.EqualFold(n, "Host") {
				lines = append(lines[:i], lines[i+1:]...)
				return
			}
		}
	}
	switch rng.IntN(30) {
	case 0:
		lines[0] = method + " " + target + " " + h11Pick(rng, []string{"HTTP/1.0", "HTTP/2.0", "HTTP/1.2", "http/1.1", "HTTP/1.1 ", "HTTP/1.10", "HTTP/0.9"})
	case 1:
		add("Connection: " + h11Pick(rng, []string{"close", "Close", "upgrade", "keep-alive, close", "te", ""}))
	case 2:
		add("Expect: " + h11Pick(rng, []string{"100-continue", "x"}))
	case 3:
		add("Upgrade: " + h11Pick(rng, []string{"websocket", "h2c"}))
	case 4:
		add("Transfer-Encoding: " + h11Pick(rng, []string{"chunked", "identity", "gzip, chunked"}))
		body = []byte("5\r\nhello\r\n0\r\n\r\n")
	case 5:
		cl := h11Pick(rng, []string{"+5", "05", "5,5", "5, 5", "", "-1", "0x5", "5 5", "99999999999999999999", "5\t", "\xff"})
		add("Content-Length: " + cl)
		body = []byte("hello")
	case 6:
		add("Content-Length: 5", "Content-Length: "+h11Pick(rng, []string{"5", "6", " 5"}))
		body = []byte("hello")
	case 7:
		lines[0] = method + " " + h11Pick(rng, []string{"*", "http://example.com/a", "https://h/", "example.com:80", "a/b", "//x", "/a b", "/a\tb",
			"/%zz", "/%4", "/a%", "/%%", "/\x00", "/\x7f", "/\x01", "/\xff\xfe"}) + " HTTP/1.1"
	case 8:
		add(h11Pick(rng, []string{"X Name: v", "X-Name : v", "X(Name): v", "X\xe9: v", ": v", "NoColon", "X-A:\x00", "X-A: a\x01b", "X-A: \x1b[0m",
			"X-A: a\x7f", "X-A: a\rb", "X-A: \x0b"}))
	case 9:
		add("X-Folded: a", h11Pick(rng, []string{" b", "\tb", "  "}))
	case 10:
		return []byte(strings.Join(lines, "\n") + "\n\n" + string(body)) // bare LF line ends
	case 11:
		i := rng.IntN(len(lines))
		lines[i] += "\n" + "X-After-Bare-LF: v"
	case 12:
		dropHost()
	case 13:
		add("Host: " + h11Pick(rng, []string{"other", "localhost"}))
	case 14:
		dropHost()
		add("Host:" + h11Pick(rng, []string{"", " ", ":80", "a b", "a/b", "u@h", "h\xe9", "h?x", "h#x", "[::1", "::1]"}))
	case 15:
		add("X-Long: " + strings.Repeat("v", h11Pick(rng, []int{1000, 8000, 65000, 70000})))
	case 16:
		return append([]byte(h11Pick(rng, []string{"\r\n", "\n", " "})), base...)
	case 17:
		if len(body) > 0 {
			body = body[:rng.IntN(len(body))] // shorter than its Content-Length
		} else {
			add("Content-Length: 3")
		}
	case 18:
		lines[0] = h11Pick(rng, []string{"G(T", "GET\x00", "CONNECT", "G\xe9T", "", " GET"}) + " " + target + " HTTP/1.1"
	case 19:
		lines[0] = method + "  " + target + " HTTP/1.1"
	case 20:
		add("X-Under_Score: v", "Content_Length: 5", "Transfer_Encoding: chunked", "Host_: x")
	case 21:
		add("Pragma: no-cache")
	case 22:
		add("Content-Length: " + strconv.Itoa(70000))
		body = bytes.Repeat([]byte("b"), 70000)
	case 23:
		add("Cookie: a=1", "cookie: b=2", "COOKIE: c=3")
	case 24:
		add("Keep-Alive: 300", "Proxy-Connection: close")
	default:
		// The plain request again with a few random bytes changed.
		return gwMutate(rng, base)
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n" + string(body))
}

// h11Response is a WSGI response: what the application gives start_response
// and the blocks it returns (latin-1 str on the Python side).
type h11Response struct {
	Status  string      `json:"status"`
	Headers [][2]string `json:"headers"`
	Body    []string    `json:"body"`
}

func h11Responses(t *testing.T, s *gwServer) {
	rng := mrand.New(mrand.NewPCG(2222, 2026))
	pool := [][2]string{
		{"Content-Type", "text/html; charset=utf-8"}, {"content-type", "application/json"}, {"Set-Cookie", "a=1; Path=/"},
		{"set-cookie", "b=2; HttpOnly"}, {"X-Frame-Options", "DENY"}, {"x-custom-THING", " padded \t"}, {"Cache-Control", "no-cache"},
		{"ETag", `"v1"`}, {"WWW-Authenticate", `Basic realm="x"`}, {"Location", "/next?a=1"}, {"X-Latin", "café"}, {"Vary", "Cookie"},
		{"Date", "Sun, 06 Nov 1994 08:49:37 GMT"}, {"X_Under", "u"}, {"Content-Language", "de"}, {"X-Empty", ""}, {"x-tab", "a\tb"},
	}
	var cases []h11Response
	for range 200 {
		r := h11Response{Headers: [][2]string{}, Body: []string{}, Status: h11Pick(rng, []string{"200 OK", "200 Fine Thanks", "201 Created", "204 No Content", "304 Not Modified",
			"302 Found", "404 Not Found", "418 I'm a teapot", "299 Custom", "500 Internal Server Error"})}
		for _, j := range rng.Perm(len(pool))[:rng.IntN(8)] {
			r.Headers = append(r.Headers, pool[j])
		}
		total := 0
		if r.Status[:3] != "204" && r.Status[:3] != "304" {
			for range rng.IntN(4) {
				block := h11Pick(rng, []string{"", "hello", "café", strings.Repeat("x", 3000), "<html>not sniffed</html>"})
				r.Body = append(r.Body, block)
				total += len([]rune(block))
			}
		}
		switch rng.IntN(4) {
		case 0:
			r.Headers = append(r.Headers, [2]string{h11Pick(rng, []string{"Content-Length", "content-length"}), strconv.Itoa(total)})
		case 1:
			r.Headers = append(r.Headers, [2]string{"Content-Length", h11Pick(rng, []string{"abc", "-1", ""})}) // net/http drops it
		}
		rng.Shuffle(len(r.Headers), func(i, j int) { r.Headers[i], r.Headers[j] = r.Headers[j], r.Headers[i] })
		cases = append(cases, r)
	}
	type in struct {
		Response h11Response `json:"response"`
	}
	input := make([]in, len(cases))
	for i, r := range cases {
		input[i] = in{r}
	}
	var written []struct {
		Response []byte `json:"response"`
	}
	h11Python(t, input, &written)
	if len(written) != len(cases) {
		t.Fatalf("http11_parse.py: %d responses for %d cases", len(written), len(cases))
	}
	for i, r := range cases {
		spec, _ := json.Marshal(r)
		conn := s.gwDial(t)
		fmt.Fprintf(conn, "POST /respond HTTP/1.1\r\nHost: x\r\nX-Http11-Respond: 1\r\nContent-Length: %d\r\n\r\n%s", len(spec), spec)
		master, masterBody := gwReadResponse(t, bufio.NewReader(conn), "POST")
		conn.Close()
		br := bufio.NewReader(bytes.NewReader(written[i].Response))
		worker, workerBody := gwReadResponse(t, br, "POST")
		if n, _ := br.Read(make([]byte, 1)); n > 0 {
			t.Errorf("case %d: bytes after the worker's response: %q", i, written[i].Response)
		}
		if diff := h11SameResponse(master, masterBody, worker, workerBody); diff != "" {
			t.Errorf("case %d: %s\nspec %s\nworker wrote %q", i, diff, spec, written[i].Response)
		}
	}
}

// h11SameResponse says how two responses differ for a client: status,
// headers but the framing ones and Date's value, body. Framing may differ
// (the master knows the whole length where the worker chunks) unless the
// application gave a valid Content-Length.
func h11SameResponse(master *http.Response, masterBody []byte, worker *http.Response, workerBody []byte) string {
	if master.StatusCode != worker.StatusCode {
		return fmt.Sprintf("status %d from the master, %d from the worker", master.StatusCode, worker.StatusCode)
	}
	if !bytes.Equal(masterBody, workerBody) {
		return fmt.Sprintf("body %q from the master, %q from the worker", masterBody, workerBody)
	}
	mh, wh := master.Header.Clone(), worker.Header.Clone()
	for _, h := range []http.Header{mh, wh} {
		if d := h.Values("Date"); len(d) != 1 {
			return fmt.Sprintf("Date %q", d)
		} else if _, err := http.ParseTime(d[0]); err != nil {
			return fmt.Sprintf("Date %q: %v", d[0], err)
		}
		h.Del("Date")
	}
	if master.StatusCode == 204 || master.StatusCode == 304 {
		if len(worker.TransferEncoding) > 0 || wh.Get("Content-Length") != "" {
			return "framing on a response without a body"
		}
	} else if !(master.ContentLength >= 0 && mh.Get("Content-Length") != "" && master.ContentLength == worker.ContentLength) {
		mh.Del("Content-Length")
		wh.Del("Content-Length")
	}
	if !reflect.DeepEqual(mh, wh) {
		return fmt.Sprintf("headers differ:\n  master %q\n  worker %q", mh, wh)
	}
	return ""
}
