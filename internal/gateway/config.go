package gateway

import (
	"log/slog"
	"runtime"
	"time"
)

// Config is everything the pool needs. Each field is one `wsgate serve`
// flag and one `[server:…]` option (docs/serve.md lists them); Defaults
// fills what is left zero.
type Config struct {
	// Python is the interpreter that runs the workers.
	Python string
	// PythonPath directories go on PYTHONPATH after the runtime (--pythonpath).
	PythonPath []string
	// Dir is the workers' working directory, put on sys.path (--chdir).
	Dir string
	// Node is the application's node tree in worker form (JSON).
	Node []byte
	// Env adds KEY=value variables to the workers' environment (e.g.
	// PYTHONDONTWRITEBYTECODE=1 under --reload).
	Env []string
	// AppName names the application in messages ("mysite.wsgi:application").
	AppName string
	// Workers is the number of worker processes (--workers; default: cores).
	Workers int
	// Threads is the number of threads per worker, each with its own socket
	// (--threads; default 1).
	Threads int
	// Pipeline is how many requests may be dispatched to one worker
	// thread at a time: with 2, the next request is already in the
	// worker's socket when it finishes one, so it never waits for the
	// master. A request is pipelined only when no thread is free; it is
	// retried elsewhere if the one before it kills the worker, and taken
	// back to be served elsewhere if it waits long behind a slow one or
	// another worker falls idle (--pipeline; default 2, 1 turns it off).
	Pipeline int
	// ResetWorkerSched: the master has moved itself to SCHED_BATCH, which
	// the workers inherit; they go back to SCHED_OTHER (internal/sched).
	ResetWorkerSched bool
	// Timeout bounds a request from dispatch to its last frame: past it the
	// client gets 504 and the worker is killed and replaced; it also bounds
	// a request's wait in the queue (503). NoTimeout: no bound (--timeout;
	// 0 is the default, 30s).
	Timeout time.Duration
	// MaxRequests recycles a worker gracefully after this many requests
	// (--max-requests; 0 = never).
	MaxRequests int
	// MaxRequestsJitter adds 0..N to each worker's MaxRequests so the
	// workers do not all restart at once (--max-requests-jitter).
	MaxRequestsJitter int
	// MaxWorkerMemory recycles a worker gracefully once its RSS passes this
	// many bytes: read after a request ends, at most every 100 ms per
	// worker (memory.go), the worker finishes its requests and is replaced
	// (--max-worker-memory; 0 = no limit).
	MaxWorkerMemory int64
	// Preload: one process per generation loads the application and forks
	// the workers, which share its memory copy-on-write (preload.go); a
	// reload starts a new one (--preload).
	Preload bool
	// Lend: after a plain HTTP/1.1 connection's first request the worker
	// serves the connection's following requests itself (lend.go); only
	// for a handler marked Lendable (the site is this one pool) and a pool
	// with one thread per worker and no preloader (--lend, on by default
	// in `wsgate serve`; the zero Config does not lend).
	Lend bool
	// MaxHeaderBytes is the server's --max-header-size: a worker serving
	// lent connections reads no longer request head itself.
	MaxHeaderBytes int
	// QueueSize bounds the requests waiting for a free worker; past it they
	// get 503 with Retry-After. NoQueue: none waits (--queue-size; 0 is
	// the default, 1024).
	QueueSize int
	// GracefulTimeout bounds how long a draining worker may take to finish
	// its requests before it is killed (--graceful-timeout; default 30s).
	GracefulTimeout time.Duration
	// Logger receives the pool's log lines (default slog.Default()).
	Logger *slog.Logger
}

// NoTimeout (Config.Timeout) lets requests take as long as they take, and
// wait in the queue as long as they must (`--timeout 0`, as gunicorn).
const NoTimeout time.Duration = -1

// NoQueue (Config.QueueSize) answers 503 at once when no worker can take a
// request (`--queue-size 0`).
const NoQueue = -1

// Defaults fills zero fields with their documented defaults.
func (c *Config) Defaults() {
	if c.Workers <= 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.Threads <= 0 {
		c.Threads = 1
	}
	if c.Pipeline <= 0 {
		c.Pipeline = 2
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.QueueSize == 0 {
		c.QueueSize = 1024
	}
	if c.GracefulTimeout <= 0 {
		c.GracefulTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Python == "" {
		c.Python = "python3"
	}
}
