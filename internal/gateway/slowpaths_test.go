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
	s.note("/report", slowRequest)
	s.note("/quick", slowRequest-time.Millisecond)
	if !s.slow("/report") || s.slow("/quick") {
		t.Fatalf("after one request each: /report slow %v (want true), /quick slow %v (want false)", s.slow("/report"), s.slow("/quick"))
	}
	s.note("/report", time.Millisecond)
	if s.slow("/report") {
		t.Error("a slow path whose last request was quick is still slow")
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
