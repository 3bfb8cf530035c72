package gateway

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// memoryCheckEvery is how often, at most, a worker's RSS is read against
// Config.MaxWorkerMemory: after a request ends, if this long has passed
// since the last reading. A reading is an open and a read of a small /proc
// file (a few microseconds); throttled so, it costs nothing measurable even
// for requests of a few hundred microseconds.
const memoryCheckEvery = 100 * time.Millisecond

var pageSize = int64(os.Getpagesize())

// RSS is a process's resident set size in bytes, from /proc/PID/statm
// (its second field, in pages).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/statm: unexpected %q", pid, b)
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/statm: %w", pid, err)
	}
	return pages * pageSize, nil
}

// overMemory reports whether w has grown past Config.MaxWorkerMemory; it
// reads the RSS at most every memoryCheckEvery per worker.
func (p *Pool) overMemory(w *worker) bool {
	limit := p.cfg.MaxWorkerMemory
	if limit <= 0 {
		return false
	}
	now := time.Now().UnixNano()
	last := w.memChecked.Load()
	if now-last < int64(memoryCheckEvery) || !w.memChecked.CompareAndSwap(last, now) {
		return false
	}
	rss, err := RSS(w.pid)
	if err != nil || rss <= limit {
		return false
	}
	p.log.Info("worker over max_worker_memory; replacing it after its requests", "worker", w.id, "pid", w.pid,
		"rss", rss, "max_worker_memory", limit)
	return true
}
