package gateway

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSlowPathsLearnAndForget(t *testing.T) {
	var s slowPaths
	if s.slow("/report") {
		t.Fatal("a path never seen is slow")
	}
	s.note("/report", 100*time.Millisecond)
	s.note("/quick", slowRequest-time.Millisecond)
	if !s.slow("/report") || s.slow("/quick") {
		t.Fatalf("after one request each: /report slow %v (want true), /quick slow %v (want false)", s.slow("/report"), s.slow("/quick"))
	}
	// A path whose requests take about slowRequest keeps its class: its
	// requests would otherwise be of both classes in the line, and those
	// of the slow one wait behind those of the quick one.
	for _, tooks := range [][]time.Duration{{3, 30, 2, 25, 3, 3}, {25, 8, 15, 6, 10, 6}} {
		var s slowPaths
		was := s.slow("/upload")
		s.note("/upload", tooks[0]*time.Millisecond)
		first := s.slow("/upload")
		for _, took := range tooks[1:] {
			s.note("/upload", took*time.Millisecond)
			if s.slow("/upload") != first {
				t.Fatalf("/upload (requests of %v ms) changed class after one of %d ms", tooks, took)
			}
		}
		if was || first != (tooks[0] >= 20) {
			t.Errorf("/upload's class after its first request (%d ms): %v", tooks[0], first)
		}
	}
	// Quick requests bring a slow path's average down: not the first, but
	// within a dozen or so.
	quick := 0
	for s.slow("/report") && quick < 40 {
		s.note("/report", time.Millisecond)
		quick++
	}
	if quick < 4 || quick > 16 {
		t.Errorf("/report was slow until %d quick requests had followed a 100 ms one; want 4 to 16", quick)
	}
}

func TestSlowPathsAreBounded(t *testing.T) {
	var s slowPaths
	long := "/" + strings.Repeat("x", slowPathLen)
	s.note(long, time.Second)
	if s.slow(long) {
		t.Errorf("a path of %d bytes was remembered", len(long))
	}
	for i := range slowPathsMax + 10 {
		s.note("/p"+strconv.Itoa(i), time.Second)
	}
	if n := len(s.paths); n > slowPathsMax {
		t.Errorf("%d paths remembered, want at most %d", n, slowPathsMax)
	}
	if !s.slow("/p" + strconv.Itoa(slowPathsMax+9)) {
		t.Error("the newest slow path was not remembered once the set was full")
	}
}
