// Package cgi is the `egg:wsgate#cgi` application: a CGI program (RFC 3875)
// mounted like any app, so `git http-backend` or hgweb.cgi serve under
// Django's login.
//
// It runs the program itself rather than through net/http/cgi, whose
// Handler cannot stop a program (no context, no process handle: a hung
// program would hold its request and process forever) and refuses chunked
// request bodies (git sends pushes over 1 MiB chunked). What it keeps from
// the stdlib's behaviour: the environment's shape, the Status and Location
// response headers, no HTTP_PROXY (httpoxy).
//
// Security: REMOTE_USER comes from Facts only (an auth filter, a delegating
// app); header names holding "_" are dropped, as the gateway does, so no
// client header can pose as another variable; the program's environment is
// the CGI variables plus what `env` names, never the whole of wsgate's.
package cgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "cgi",
		Role:    component.App,
		Sees:    component.SeesRequest,
		Summary: "Runs a CGI program (RFC 3875) for each request: git http-backend, hgweb.cgi, any script.",
		Doc: `Mounted under a urlmap prefix, the program gets SCRIPT_NAME (the mount) and PATH_INFO (the rest) as the
urlmap split them, REMOTE_USER from an auth filter or a delegating app (never from a header), REMOTE_ADDR,
SERVER_NAME, SERVER_PORT and HTTPS as proxyfix established them, the request's headers as HTTP_* (names
holding "_" dropped, and Proxy), CONTENT_LENGTH and CONTENT_TYPE, and the request body on its standard input,
streamed (a chunked body too, without CONTENT_LENGTH: the program reads to the end, as under Apache). Its
output is streamed to the client; a ` + "`Status:`" + ` header sets the status, a ` + "`Location:`" + ` alone makes a 302. What
it writes on standard error goes to the log, line by line.

Its environment holds only those variables, PATH, and what ` + "`env`" + ` says. The program runs in its own
process group; after ` + "`timeout`" + ` (or when the client goes away) the group is killed: a 504 if the program had
not answered yet, else the response is cut.

    [app:git]
    use = egg:wsgate#cgi
    program = /usr/lib/git-core/git-http-backend
    env = GIT_PROJECT_ROOT=%(here)s/repositories GIT_HTTP_EXPORT_ALL=1
    timeout = 300`,
		Options: []component.Option{
			{Name: "program", Type: "path", Required: true, Help: "The executable (relative to the INI file's directory)."},
			{Name: "env", Type: "list", Help: "Environment for the program, space-separated: NAME=value sets a variable, a bare NAME passes wsgate's own value on. REMOTE_USER, AUTH_TYPE and HTTP_* cannot be set."},
			{Name: "dir", Type: "path", Help: "The program's working directory; default: the program's own directory."},
			{Name: "timeout", Type: "duration", Default: "60", Help: "How long one run may take before its process group is killed. 0: no limit."},
		},
		Build: build,
	})
}

type program struct {
	path    string
	dir     string
	env     []string // NAME=value, from the env option
	timeout time.Duration
	log     *slog.Logger
}

func build(b *component.Builder) (component.Built, error) {
	p := &program{log: slog.Default()}
	if b.Host != nil {
		p.log = b.Host.Logger()
	}
	written, err := b.Required("program")
	if err != nil {
		return component.Built{}, err
	}
	p.path = written
	if !filepath.IsAbs(p.path) {
		here, _ := b.Node.GlobalConf.Get("here")
		p.path = filepath.Join(here, p.path)
	}
	fi, err := os.Stat(p.path)
	switch {
	case err != nil:
		return component.Built{}, b.Errorf("program", "%v", err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return component.Built{}, b.Errorf("program", "%s is not an executable file", written)
	}
	p.dir = filepath.Dir(p.path)
	if _, ok := b.Lookup("dir"); ok {
		if p.dir, err = b.Dir("dir", false); err != nil {
			return component.Built{}, err
		}
	}
	for _, w := range b.List("env") {
		name, value, set := strings.Cut(w, "=")
		switch {
		case name == "" || strings.ContainsAny(name, "\x00"):
			return component.Built{}, b.Errorf("env", "%q is not NAME=value or NAME", w)
		case name == "REMOTE_USER" || name == "AUTH_TYPE" || strings.HasPrefix(name, "HTTP_"):
			return component.Built{}, b.Errorf("env", "%s comes from the request, never from the configuration", name)
		}
		if !set {
			v, ok := os.LookupEnv(name)
			if !ok {
				continue
			}
			value = v
		}
		p.env = append(p.env, name+"="+value)
	}
	if p.timeout, err = b.Duration("timeout", 60*time.Second); err != nil {
		return component.Built{}, err
	}
	return component.Built{Handler: p}, nil
}

// environ is the program's environment for r (RFC 3875 section 4.1).
func (p *program) environ(r *http.Request, script, pathInfo string) []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	if env[0] == "PATH=" {
		env[0] = "PATH=/usr/local/bin:/usr/bin:/bin"
	}
	env = append(env, p.env...)
	for k, v := range r.Header {
		if strings.Contains(k, "_") || k == "Proxy" {
			continue
		}
		name := "HTTP_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		sep := ", "
		if k == "Cookie" {
			sep = "; "
		}
		env = append(env, name+"="+strings.Join(v, sep))
	}
	remote, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		remote = r.RemoteAddr
	}
	serverName, serverPort := r.Host, ""
	if h, port, err := net.SplitHostPort(r.Host); err == nil {
		serverName, serverPort = h, port
	}
	https := r.TLS != nil
	user := ""
	if f := component.FactsOf(r); f != nil {
		if f.RemoteAddr != "" {
			remote = f.RemoteAddr
		}
		if f.ServerName != "" {
			serverName, serverPort = f.ServerName, f.ServerPort
		}
		if f.Scheme != "" {
			https = f.Scheme == "https"
		}
		user = f.RemoteUser
	}
	if serverPort == "" {
		serverPort = "80"
		if https {
			serverPort = "443"
		}
	}
	env = append(env,
		"GATEWAY_INTERFACE=CGI/1.1",
		"SERVER_SOFTWARE=wsgate",
		"SERVER_PROTOCOL="+r.Proto,
		"SERVER_NAME="+serverName,
		"SERVER_PORT="+serverPort,
		"REQUEST_METHOD="+r.Method,
		"REQUEST_URI="+r.RequestURI,
		"QUERY_STRING="+r.URL.RawQuery,
		"SCRIPT_NAME="+script,
		"PATH_INFO="+pathInfo,
		"SCRIPT_FILENAME="+p.path,
		"REMOTE_ADDR="+remote,
		"REMOTE_HOST="+remote,
	)
	if https {
		env = append(env, "HTTPS=on")
	}
	if user != "" {
		env = append(env, "REMOTE_USER="+user)
	}
	if r.ContentLength > 0 {
		env = append(env, "CONTENT_LENGTH="+strconv.FormatInt(r.ContentLength, 10))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		env = append(env, "CONTENT_TYPE="+ct)
	}
	return env
}

// maxHeader bounds the program's response head.
const maxHeader = 64 << 10

func (p *program) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	script, pathInfo, err := component.RequestPath(r)
	if err != nil {
		http.Error(w, "400 Bad Request: "+err.Error(), http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, p.path)
	cmd.Dir = p.dir
	cmd.Env = p.environ(r, script, pathInfo)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) } // git's children too
	cmd.WaitDelay = time.Second
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		cmd.Stdin = r.Body
		_ = http.NewResponseController(w).EnableFullDuplex() // it may answer while it reads
	}
	stderr := &lineLog{log: p.log, program: p.path, uri: r.RequestURI}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	if err := cmd.Start(); err != nil {
		p.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	started := p.relay(w, r, stdout)
	stdout.Close()
	err = cmd.Wait()
	stderr.flush()
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	switch {
	case timedOut && !started:
		p.fail(w, r, http.StatusGatewayTimeout, fmt.Errorf("no answer within %s: killed", p.timeout))
	case timedOut:
		p.log.Error("cgi: timed out; killed, response cut", "program", p.path, "uri", r.RequestURI, "timeout", p.timeout.String())
		panic(http.ErrAbortHandler)
	case r.Context().Err() != nil:
		// the client went away; its program was killed
	case !started:
		p.fail(w, r, http.StatusBadGateway, fmt.Errorf("no response head (exit: %v)", err))
	case err != nil:
		p.log.Warn("cgi: program failed after answering", "program", p.path, "uri", r.RequestURI, "error", err.Error())
	}
}

// relay copies the program's response to the client; it reports whether
// the response head was sent.
func (p *program) relay(w http.ResponseWriter, r *http.Request, stdout io.Reader) bool {
	br := bufio.NewReaderSize(stdout, 32<<10)
	head, err := readHead(br)
	if err != nil {
		if len(head) > 0 || !errors.Is(err, io.EOF) {
			p.log.Error("cgi: bad response head", "program", p.path, "uri", r.RequestURI, "error", err.Error())
		}
		return false
	}
	status, statusSet := http.StatusOK, false
	h := w.Header()
	for _, kv := range head {
		k := textproto.CanonicalMIMEHeaderKey(kv[0])
		switch k {
		case "Status":
			code, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(kv[1], " ", 2)[0]))
			if err != nil || code < 100 || code > 999 {
				p.log.Error("cgi: bad Status header", "program", p.path, "value", kv[1])
				return false
			}
			status, statusSet = code, true
			continue
		case "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Te", "Trailer":
			continue
		}
		h.Add(k, kv[1])
	}
	if !statusSet && h.Get("Location") != "" {
		status = http.StatusFound
	}
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return true // the client is gone: the context kills the program
			}
			if br.Buffered() == 0 {
				_ = rc.Flush() // nothing more yet: let the client see it (git's progress)
			}
		}
		if err != nil {
			return true
		}
	}
}

// readHead reads the program's header lines up to the blank line.
func readHead(br *bufio.Reader) ([][2]string, error) {
	var head [][2]string
	size := 0
	for {
		line, err := br.ReadString('\n')
		size += len(line)
		if size > maxHeader {
			return head, errors.New("response head over 64 KiB")
		}
		if err != nil {
			return head, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if len(head) == 0 {
				return head, errors.New("no header before the blank line")
			}
			return head, nil
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || !component.ValidHeaderName(strings.TrimSpace(k)) {
			return head, fmt.Errorf("malformed header line %q", line)
		}
		head = append(head, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
}

func (p *program) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	p.log.Error("cgi: program failed", "program", p.path, "uri", r.RequestURI, "status", code, "error", err.Error())
	http.Error(w, strconv.Itoa(code)+" "+http.StatusText(code), code)
}

// lineLog logs what the program writes on standard error, a line at a time.
type lineLog struct {
	log          *slog.Logger
	program, uri string
	buf          []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			break
		}
		l.emit(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 4096 {
		l.flush()
	}
	return len(p), nil
}

func (l *lineLog) flush() {
	if len(l.buf) > 0 {
		l.emit(string(l.buf))
		l.buf = nil
	}
}

func (l *lineLog) emit(line string) {
	if line = strings.TrimRight(line, "\r"); line != "" {
		l.log.Warn("cgi stderr", "program", l.program, "uri", l.uri, "text", line)
	}
}
