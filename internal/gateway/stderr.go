package gateway

import (
	"bufio"
	"os"
)

// A worker's stderr (the application's own prints to it, its logging's
// console handler, Python's warnings and fatal-error tracebacks) comes to
// the master through a pipe, and each line becomes a log line naming the
// worker and, when the worker is on exactly one request, that request. Its
// stdout is left as it is: the master's.

// maxStderrLine bounds one logged line; longer ones are cut into pieces.
const maxStderrLine = 64 << 10

// logStderr logs what the worker writes to r until every process holding
// the pipe's write end (the worker, subprocesses it started) has closed it.
func (w *worker) logStderr(r *os.File) {
	eachLine(r, func(line string) { w.logLine("worker stderr", line) })
}

// eachLine calls f with each line read from r (without its newline) until
// the pipe's end, and closes r.
func eachLine(r *os.File, f func(line string)) {
	defer r.Close()
	br := bufio.NewReaderSize(r, maxStderrLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			f(string(trimNewline(line)))
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// logLine logs text from the worker with the request it belongs to: the
// one it is on, if it is on exactly one (with several threads busy the
// line could be any one's).
func (w *worker) logLine(msg, text string) {
	attrs := []any{"worker", w.id, "pid", w.pid}
	if reqs := w.inFlight(); len(reqs) == 1 {
		attrs = append(attrs, requestAttrs(reqs[0])...)
	}
	w.pool.log.Info(msg, append(attrs, "text", text)...)
}

// requestAttrs are the log attributes that name a request.
func requestAttrs(r RequestInfo) []any {
	attrs := []any{"method", r.Method, "uri", r.URI}
	if r.RequestID != "" {
		attrs = append(attrs, "request_id", r.RequestID)
	}
	return attrs
}
