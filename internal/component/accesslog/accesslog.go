// Package accesslog is the `egg:wsgate#accesslog` filter: one line per
// request, in the Common Log Format, the combined format (the default) or
// JSON, written to stderr or to a file.
//
// Each line ends with the request's duration in seconds and its id (the
// requestid filter's, "-" without one). The line is written once the
// application has returned, so it holds what the filters inside it
// established: the client address proxyfix found, the user an auth
// component set. A response cut off (http.ErrAbortHandler, a panic) is
// logged too.
//
// Security: a client chooses the request line, Referer and User-Agent; none
// can forge a line or a field. In the text formats `"` and `\` are
// backslash-escaped and control characters (newlines included) and non-ASCII
// bytes become \xHH; in JSON every string is a JSON string, control
// characters escaped.
//
// A file is opened in append mode when the site is built, created if
// missing, and reopened on SIGHUP (the signal that also reloads the
// workers), so a log rotator moves the file and sends SIGHUP.
package accesslog

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "accesslog",
		Role:    component.Filter,
		Sees:    component.SeesResponseHead,
		Summary: "Writes one line per request (common, combined or JSON) to stderr or a file, with its duration and request id.",
		Doc: `Text lines are ` + "`host - user [time] \"request\" status bytes \"referer\" \"agent\" seconds \"request-id\"`" + `
(` + "`common`" + ` leaves out referer and agent); ` + "`-`" + ` stands for an empty field. A JSON line has the keys
time, remote_addr, remote_user, method, uri, proto, host, status, bytes, duration (seconds), referer,
user_agent and request_id. Fields a client chooses are escaped (` + "`\\\"`" + `, ` + "`\\\\`" + `, control characters and
non-ASCII bytes as ` + "`\\xHH`" + `; JSON escapes in JSON): a forged header cannot start a line of its own.
The line is written when the application returns, so it shows what the filters inside this one found (the
client address from proxyfix, REMOTE_USER from an auth component); bytes are those sent to the client (after
compression when compress is inside accesslog). A response cut off after it began (the application failed
mid-stream) is logged with the status sent, and ` + "`\"aborted\":true`" + ` in JSON. Requests Go's HTTP server
refuses before any component runs (a malformed request line or header: 400) have no line.

A file is opened in append mode (created if missing) when the site is loaded, ` + "`wsgate check`" + ` included, and
reopened on SIGHUP: rotate it by moving it and sending SIGHUP to wsgate.`,
		Options: []component.Option{
			{Name: "format", Type: "string", Default: "combined",
				Help: "`common`, `combined` or `json`."},
			{Name: "file", Type: "path", Default: "stderr",
				Help: "Where lines go: `stderr`, `stdout` or a file (relative to the INI file's directory)."},
		},
		Build: build,
	})
}

// AccessLog is one configured filter.
type AccessLog struct {
	format string
	out    *output
}

func build(b *component.Builder) (component.Built, error) {
	a := &AccessLog{format: b.String("format", "combined")}
	switch a.format {
	case "common", "combined", "json":
	default:
		return component.Built{}, b.Errorf("format", "%q is not common, combined or json", a.format)
	}
	dest := b.String("file", "stderr")
	switch dest {
	case "stderr", "":
		a.out = &output{f: os.Stderr}
	case "stdout":
		a.out = &output{f: os.Stdout}
	default:
		path := dest
		if !filepath.IsAbs(path) {
			here, _ := b.Node.GlobalConf.Get("here")
			path = filepath.Join(here, path)
		}
		log := slog.Default()
		if b.Host != nil {
			log = b.Host.Logger()
		}
		out, err := openOutput(path, log)
		if err != nil {
			return component.Built{}, b.Errorf("file", "%v", err)
		}
		a.out = out
	}
	return component.Built{Wrap: a.Wrap, Close: a.out.close}, nil
}

// Wrap is the filter.
func (a *AccessLog) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		r, facts := component.Attach(r)
		rec := component.NewRecorder(w)
		defer func() {
			// A response cut off on purpose (http.ErrAbortHandler: the
			// application failed after its response began) or by a panic
			// is logged too, then the panic goes on to net/http.
			if p := recover(); p != nil {
				e := newEntry(r, facts, rec, start)
				e.aborted = true
				if rec.Status == 0 {
					e.status = http.StatusInternalServerError
				}
				a.log(&e)
				panic(p)
			}
		}()
		next.ServeHTTP(rec, r)
		e := newEntry(r, facts, rec, start)
		a.log(&e)
	})
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (a *AccessLog) log(e *entry) {
	bp := bufs.Get().(*[]byte)
	b := (*bp)[:0]
	switch a.format {
	case "json":
		b = e.appendJSON(b)
	default:
		b = e.appendText(b, a.format == "combined")
	}
	a.out.write(b)
	*bp = b
	bufs.Put(bp)
}

// output is where lines go: one write per line, so lines from concurrent
// requests never interleave.
type output struct {
	mu     sync.Mutex
	f      *os.File
	closed bool
	path   string        // "" for stderr/stdout: never reopened nor closed
	stop   chan struct{} // ends the SIGHUP watcher
	// reopened receives a value after each reopen (tests await it).
	reopened chan struct{}
}

func (o *output) write(line []byte) {
	o.mu.Lock()
	_, _ = o.f.Write(line) // a full disk must not fail the request
	o.mu.Unlock()
}

func openOutput(path string, log *slog.Logger) (*output, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	o := &output{f: f, path: path, stop: make(chan struct{}), reopened: make(chan struct{}, 1)}
	o.watchHangup(log)
	return o, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open the access log: %w", err)
	}
	return f, nil
}

// reopen swaps the file for a fresh open of the same path (after a log
// rotator moved it away); when that fails, lines keep going to the old file.
func (o *output) reopen() error {
	f, err := openAppend(o.path)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return f.Close()
	}
	old := o.f
	o.f = f
	return old.Close()
}

func (o *output) close() error {
	if o.path == "" {
		return nil
	}
	close(o.stop)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	return o.f.Close()
}
