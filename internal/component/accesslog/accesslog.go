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
			{Name: "buffer", Type: "bytes", Default: "0",
				Help: "0 writes each line as its request ends. A size (up to 1m) gathers lines and writes them when it fills, `flush` after the first, before a reopen and when the server stops: one system call for many lines, at the price of losing up to `flush` of lines if the master is killed."},
			{Name: "flush", Type: "duration", Default: "1",
				Help: "With `buffer`, the longest a line waits to be written (seconds, or e.g. 500ms)."},
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
	buffer, err := b.Bytes("buffer", 0)
	if err != nil {
		return component.Built{}, err
	}
	if buffer > maxBuffer {
		return component.Built{}, b.Errorf("buffer", "%d bytes is more than %d, the largest buffer", buffer, maxBuffer)
	}
	every, err := b.Duration("flush", defaultFlush)
	if err != nil {
		return component.Built{}, err
	}
	if every <= 0 {
		return component.Built{}, b.Errorf("flush", "must be more than 0 (lines would never be written)")
	}
	dest := b.String("file", "stderr")
	switch dest {
	case "stderr", "":
		a.out = newOutput(os.Stderr, "", int(buffer), every)
	case "stdout":
		a.out = newOutput(os.Stdout, "", int(buffer), every)
	default:
		path := dest
		if !filepath.IsAbs(path) {
			here, _ := b.Node.GlobalConf.Get("here")
			path = filepath.Join(here, path)
		}
		f, err := openAppend(path)
		if err != nil {
			return component.Built{}, b.Errorf("file", "%v", err)
		}
		log := slog.Default()
		if b.Host != nil {
			log = b.Host.Logger()
		}
		a.out = newOutput(f, path, int(buffer), every)
		a.out.watchHangup(log)
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
