//go:build unix

package cputime_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/consign-dev/consign/internal/cputime"
)

// TestProcessCountsWork checks that the CPU time read grows by about what a busy loop
// spent: at least half its wall time (it runs on one thread, which the machine may share).
func TestProcessCountsWork(t *testing.T) {
	before, ok := cputime.Process()
	if !ok {
		t.Fatal("the CPU time of the process cannot be read on this system")
	}
	start := time.Now()
	buf := make([]byte, 1<<16)
	for time.Since(start) < 200*time.Millisecond {
		sum := sha256.Sum256(buf)
		buf[0] = sum[0]
	}
	wall := time.Since(start)
	after, _ := cputime.Process()
	if spent := after - before; spent < wall/2 {
		t.Fatalf("CPU time grew by %v over %v of busy work", spent, wall)
	}
}
