//go:build !linux

package bench

import "time"

// processClock cannot read another process's CPU clock here.
func processClock(int) (time.Duration, bool) { return 0, false }
