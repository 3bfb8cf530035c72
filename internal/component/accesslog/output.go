package accesslog

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// maxBuffer bounds the buffer option: past it, lines gain nothing from
// waiting and a killed master loses more of them.
const maxBuffer = 1 << 20

// defaultFlush is the longest a gathered line waits (buffer option) unless
// the flush option says otherwise.
const defaultFlush = time.Second

// output is where lines go. Each line (or, with a buffer, each batch) is one
// write, so lines from concurrent requests never interleave.
type output struct {
	mu     sync.Mutex
	f      *os.File
	path   string // "" for stderr/stdout: never reopened nor closed
	closed bool

	buf   []byte        // gathered lines, when limit > 0
	limit int           // the buffer option
	every time.Duration // the flush option
	timer *time.Timer   // flushes gathered lines every after the first

	stop chan struct{} // ends the SIGHUP watcher (files only)
	// reopened receives a value after each reopen (tests await it).
	reopened chan struct{}
}

func newOutput(f *os.File, path string, limit int, every time.Duration) *output {
	o := &output{f: f, path: path, limit: limit, every: every, stop: make(chan struct{}), reopened: make(chan struct{}, 1)}
	if limit > 0 {
		o.buf = make([]byte, 0, limit)
		o.timer = time.AfterFunc(every, o.flush)
		o.timer.Stop()
	}
	return o
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open the access log: %w", err)
	}
	return f, nil
}

// Write errors (a full disk) are dropped: they must not fail the request.
func (o *output) write(line []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		// A request that outlived its site (a configuration reload
		// replaced it while the request ran) still gets its line.
		if f, err := openAppend(o.path); err == nil {
			_, _ = f.Write(line)
			_ = f.Close()
		}
		return
	}
	if o.limit == 0 {
		_, _ = o.f.Write(line)
		return
	}
	if len(o.buf)+len(line) > o.limit {
		o.flushLocked()
	}
	if len(o.buf) == 0 {
		o.timer.Reset(o.every)
	}
	o.buf = append(o.buf, line...)
	if len(o.buf) >= o.limit {
		o.flushLocked()
	}
}

func (o *output) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
}

func (o *output) flushLocked() {
	if len(o.buf) > 0 && !o.closed {
		_, _ = o.f.Write(o.buf)
		o.buf = o.buf[:0]
	}
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
	o.flushLocked() // what was gathered belongs to the old file
	old := o.f
	o.f = f
	return old.Close()
}

// close writes what is gathered and, for a file, closes it.
func (o *output) close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.timer != nil {
		o.timer.Stop()
	}
	o.flushLocked()
	if o.path == "" || o.closed {
		return nil
	}
	close(o.stop)
	o.closed = true
	return o.f.Close()
}
