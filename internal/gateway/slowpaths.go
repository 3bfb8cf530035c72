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

// slowPaths are the paths whose last request served on the master's path
// took slowRequest or more. A lending pool neither lends the connection of
// a request for one (its worker would hand it back after the request) nor
// lets it go before quicker requests waiting for a worker (acquireLending):
// without this, the first requests of new connections for a slow view park
// on the workers in front of quick ones, which then wait for one slow
// request after another (the mixed case, docs/architecture.md "Lent
// connections"). The master learns them from the connections the workers
// hand back as slow, whose requests it serves itself, and forgets a path
// whose request came out quick.
type slowPaths struct {
	mu    sync.Mutex
	paths map[string]struct{}
}

// slow reports whether path's last request was slow.
func (s *slowPaths) slow(path string) bool {
	s.mu.Lock()
	_, ok := s.paths[path]
	s.mu.Unlock()
	return ok
}

// note records what a request for path took.
func (s *slowPaths) note(path string, took time.Duration) {
	if len(path) > slowPathLen {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if took < slowRequest {
		delete(s.paths, path)
		return
	}
	if s.paths == nil || len(s.paths) >= slowPathsMax {
		s.paths = make(map[string]struct{})
	}
	s.paths[path] = struct{}{}
}
