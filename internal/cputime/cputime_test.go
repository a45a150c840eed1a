//go:build unix

package cputime_test

import (
	"crypto/sha256"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/consign-dev/consign/internal/cputime"
)

// threadCPU is the CPU time of the calling thread, read from a clock independent of the
// process total that Process reports.
func threadCPU(t *testing.T) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		t.Fatalf("read the thread's CPU clock: %v", err)
	}
	return time.Duration(ts.Nano())
}

// TestProcessCountsWork checks that the process's CPU time grows by at least what a busy
// loop on one thread spent by that thread's own CPU clock. The loop runs for CPU time,
// not wall time, so a machine busy with other work makes it longer, not the check false.
func TestProcessCountsWork(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, ok := cputime.Process()
	if !ok {
		t.Fatal("the CPU time of the process cannot be read on this system")
	}
	start := threadCPU(t)
	buf := make([]byte, 1<<16)
	for threadCPU(t)-start < 200*time.Millisecond {
		sum := sha256.Sum256(buf)
		buf[0] = sum[0]
	}
	busy := threadCPU(t) - start
	after, _ := cputime.Process()
	// The process total also counts other threads, so it can only be larger; 5 % covers
	// the two clocks' different granularity.
	if spent := after - before; spent < busy*95/100 {
		t.Fatalf("process CPU time grew by %v while one of its threads spent %v", spent, busy)
	}
}
