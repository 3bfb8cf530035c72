package sched

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// The test runs in a child process: moving the test binary's own threads
// would leak into every test after it.
func TestBatchThreadsMovesEveryThreadAndTheOnesCreatedLater(t *testing.T) {
	if os.Getenv("SCHED_TEST_CHILD") == "1" {
		if err := BatchThreads(); err != nil {
			t.Fatal(err)
		}
		// Threads made after the switch, locked so each is a new OS thread.
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				if p, err := Policy(0); err != nil || p != Batch {
					t.Errorf("a new thread has policy %d (%v)", p, err)
				}
			}()
		}
		wg.Wait()
		tids, err := threads()
		if err != nil {
			t.Fatal(err)
		}
		for _, tid := range tids {
			if p, err := Policy(tid); err == nil && p != Batch {
				t.Errorf("thread %d has policy %d", tid, p)
			}
		}
		// and a child process inherits it
		out, err := exec.Command("chrt", "-p", "0").CombinedOutput()
		if err == nil && !strings.Contains(string(out), "SCHED_BATCH") {
			t.Errorf("a child process: %s", out)
		}
		if err := BatchThreads(); !errors.Is(err, ErrNotOther) {
			t.Errorf("a second call: %v, want ErrNotOther", err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBatchThreadsMovesEveryThreadAndTheOnesCreatedLater$", "-test.v")
	cmd.Env = append(os.Environ(), "SCHED_TEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
