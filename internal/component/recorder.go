package component

import (
	"io"
	"net/http"
)

// Recorder wraps a ResponseWriter to learn the status and the number of
// body bytes written, without seeing the bytes (SeesResponseHead). It keeps
// the fast paths of the writer it wraps: io.ReaderFrom (sendfile) and, via
// Unwrap, http.ResponseController's Flush, Hijack and deadlines.
type Recorder struct {
	http.ResponseWriter
	Status  int   // 0 until the header is written
	Written int64 // body bytes written
}

// NewRecorder wraps w.
func NewRecorder(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w} }

func (r *Recorder) WriteHeader(code int) {
	if r.Status == 0 && code >= 200 {
		r.Status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *Recorder) Write(p []byte) (int, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.Written += int64(n)
	return n, err
}

// ReadFrom lets io.Copy reach the underlying writer's sendfile path.
func (r *Recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
	}
	r.Written += n
	return n, err
}

// Flush passes a flush on (streaming responses stay streamed).
func (r *Recorder) Flush() {
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the writer underneath.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
