package gateway

import (
	"sync"
	"time"
)

// slowRequest is how long a request may take before its path counts as
// slow; lend.py's _HEAVY, which hands a connection back for good after
// such a request, is the same.
const slowRequest = 20 * time.Millisecond

// slowPathsMax bounds the paths remembered (and slowPathLen their length):
// past it the set starts again, so that requests for made-up paths cost a
// few hundred kilobytes at most.
const (
	slowPathsMax = 1024
	slowPathLen  = 256
)

// slowPaths are the paths whose requests served on the master's path take
// slowRequest or more: the moving average of their times (a quarter of each
// new one, seeded by the first). A lending pool neither lends the
// connection of a request for one (its worker would hand it back after the
// request) nor lets it go before quicker requests waiting for a worker
// (line.go): without this, the first requests of new connections for a slow
// view park on the workers in front of quick ones, which then wait for one
// slow request after another (the mixed case, docs/architecture.md "Lent
// connections"). The master learns them from the requests it serves
// itself: the first requests of new connections, those of the connections
// the workers hand back as slow, uploads.
//
// A slow path turns quick again only when its average falls under a
// quarter of slowRequest: the requests of one path must not change class
// from one to the next, or those of the slow class wait behind those of the
// quick one, which keep coming. The 10 MiB upload case, whose requests take
// 2 to 30 ms on the master's path, changed class 19 times in 6 s with a
// rule that marked a path slow after one slow request, and its p99 went
// from 180 ms to 2.2 s.
type slowPaths struct {
	mu    sync.Mutex
	paths map[string]pathTime
}

type pathTime struct {
	avg  time.Duration // moving average of its requests' times
	slow bool
}

// slow reports whether path's requests are slow.
func (s *slowPaths) slow(path string) bool {
	s.mu.Lock()
	pt := s.paths[path]
	s.mu.Unlock()
	return pt.slow
}

// note records what a request for path took.
func (s *slowPaths) note(path string, took time.Duration) {
	if len(path) > slowPathLen {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pt, known := s.paths[path]
	if known {
		pt.avg += (took - pt.avg) / 4
	} else {
		pt.avg = took
		if s.paths == nil || len(s.paths) >= slowPathsMax {
			s.paths = make(map[string]pathTime)
		}
	}
	switch {
	case pt.avg >= slowRequest:
		pt.slow = true
	case pt.avg < slowRequest/4:
		pt.slow = false
	}
	s.paths[path] = pt
}
