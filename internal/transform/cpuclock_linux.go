package transform

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// threadClock locks the calling goroutine to its thread and returns a function that
// reads that thread's CPU time, from any goroutine, and the function that unlocks it.
// The clock id is the one pthread_getcpuclockid makes: the thread id, negated and
// shifted, with the per-thread and scheduler-time bits.
func threadClock() (read func() (time.Duration, bool), unlock func()) {
	runtime.LockOSThread()
	id := int32(^unix.Gettid()<<3) | 6
	return func() (time.Duration, bool) {
		var ts unix.Timespec
		if unix.ClockGettime(id, &ts) != nil {
			return 0, false
		}
		return time.Duration(ts.Nano()), true
	}, runtime.UnlockOSThread
}
