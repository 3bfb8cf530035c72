// Package sched puts the master's threads under Linux's SCHED_BATCH policy.
//
// The master wakes up for every frame a worker writes. Under the normal
// policy (SCHED_OTHER) a thread that wakes up may preempt the task running
// on its CPU, and on a machine where the Python workers keep every core busy
// that task is a worker, interrupted in the middle of a request, about twice
// per request. A SCHED_BATCH thread that wakes up never preempts: it runs
// when a CPU falls idle, a worker blocks, or the running task's slice ends.
// The master does little work per wake-up, so it loses little latency, and
// the workers keep their CPU (see docs/serve.md, --sched-batch).
package sched

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// Linux scheduling policies (sched(7)).
const (
	Other = 0
	Batch = 3
)

// ErrNotOther: the process does not run under the normal policy, so someone
// chose its policy (chrt, systemd's CPUSchedulingPolicy=): it is left alone.
var ErrNotOther = errors.New("the process does not run under SCHED_OTHER")

// BatchThreads moves every thread of this process from SCHED_OTHER to
// SCHED_BATCH. Threads created later inherit the policy of the thread that
// creates them, and so do child processes, whose policy is theirs to reset.
func BatchThreads() error {
	if p, err := Policy(0); err != nil {
		return err
	} else if p != Other {
		return ErrNotOther
	}
	// A thread created during a pass, by a thread not moved yet, is found
	// by the next one.
	for pass := 0; pass < 10; pass++ {
		tids, err := threads()
		if err != nil {
			return err
		}
		moved := 0
		for _, tid := range tids {
			p, err := Policy(tid)
			if err != nil || p == Batch {
				continue // gone, or done
			}
			if err := setPolicy(tid, Batch); err != nil {
				return fmt.Errorf("thread %d: %w", tid, err)
			}
			moved++
		}
		if moved == 0 {
			return nil
		}
	}
	return errors.New("threads kept appearing")
}

// Policy is the scheduling policy of a thread (0: the calling one).
func Policy(tid int) (int, error) {
	r, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	if errno != 0 {
		return 0, fmt.Errorf("sched_getscheduler: %w", errno)
	}
	return int(r), nil
}

func setPolicy(tid, policy int) error {
	var param struct{ priority int32 } // must be 0 for the non-real-time policies
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&param)))
	if errno != 0 {
		return fmt.Errorf("sched_setscheduler: %w", errno)
	}
	return nil
}

func threads() ([]int, error) {
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(entries))
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}
