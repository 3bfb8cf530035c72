package component

import (
	"errors"
	"io"
	"net/http"
)

// ErrTakenOver is what an Interceptor's Write returns once its response was
// taken over: the gateway then tells the worker to stop iterating, so the
// worker is free as soon as the application has answered.
var ErrTakenOver = errors.New("response taken over by a Go component")

// Interceptor lets a filter look at the response head an application
// writes before it reaches the client, and take the response over (sendfile
// serves a file instead, delegate hands the request on). Decide is called
// once, with the final status and the header map (the real writer's own,
// not a copy); when it returns true nothing the application writes reaches
// the client: its writes fail with ErrTakenOver, and the filter answers
// through the real writer once the application has returned. Otherwise the
// Interceptor passes everything through, keeping sendfile (ReadFrom) and
// Flush.
type Interceptor struct {
	w      http.ResponseWriter
	decide func(status int, h http.Header) bool
	// Status is the application's status, once it wrote one.
	Status  int
	decided bool
	taken   bool
}

// Intercept wraps w.
func Intercept(w http.ResponseWriter, decide func(status int, h http.Header) bool) *Interceptor {
	return &Interceptor{w: w, decide: decide}
}

// Taken reports whether Decide took the response over.
func (i *Interceptor) Taken() bool { return i.taken }

func (i *Interceptor) Header() http.Header { return i.w.Header() }

func (i *Interceptor) WriteHeader(code int) {
	if code < 200 {
		if !i.decided {
			i.w.WriteHeader(code) // 103 Early Hints and such pass
		}
		return
	}
	if i.decided {
		if !i.taken {
			i.w.WriteHeader(code) // net/http logs the superfluous call
		}
		return
	}
	i.decided, i.Status = true, code
	i.taken = i.decide(code, i.w.Header())
	if !i.taken {
		i.w.WriteHeader(code)
	}
}

func (i *Interceptor) Write(p []byte) (int, error) {
	if !i.decided {
		i.WriteHeader(http.StatusOK)
	}
	if i.taken {
		return 0, ErrTakenOver
	}
	return i.w.Write(p)
}

// ReadFrom keeps the underlying writer's sendfile path.
func (i *Interceptor) ReadFrom(src io.Reader) (int64, error) {
	if !i.decided {
		i.WriteHeader(http.StatusOK)
	}
	if i.taken {
		return 0, ErrTakenOver
	}
	if rf, ok := i.w.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{i.w}, src)
}

// Flush passes a flush on, unless the response was taken over.
func (i *Interceptor) Flush() {
	if i.taken || !i.decided {
		return // an undecided head must not go out before Decide saw it
	}
	_ = http.NewResponseController(i.w).Flush()
}

// Unwrap gives http.ResponseController the writer underneath.
func (i *Interceptor) Unwrap() http.ResponseWriter { return i.w }
