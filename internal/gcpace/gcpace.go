// Package gcpace sets the Go collector's pace for `consign serve` when the operator has
// not set it.
//
// A delivery allocates a few kilobytes that die within the delivery, and the live heap
// of a busy server is small (tens of MB, even with a million deliveries queued: they
// wait in the store, not in memory), so with Go's default GOGC=100 the collector runs
// often and marks little: it was about a tenth of the server's CPU. A higher percentage
// (400) lets the heap grow to five times the live data between cycles and cuts that
// cost, but bounded by nothing it would also let a larger live heap take five times its
// size. So the higher percentage comes with a soft memory limit (runtime/debug's
// SetMemoryLimit) of Budget bytes for all the memory Go manages, and that limit follows
// the live heap: after each cycle it is raised to what Go's default pace would use for
// the live heap at that moment (2.5 × live + the runtime's non-heap memory) whenever
// that is above Budget. The collector thus never runs more often than with GOGC=100,
// and never holds more than the larger of Budget and what GOGC=100 would hold; a live
// heap that grows past Budget/2 does not drive it into back-to-back cycles, as a fixed
// limit would.
//
// GOGC and GOMEMLIMIT belong to the operator: if either is set (non-empty), Pace changes
// nothing and the runtime follows them as usual. A cgroup memory limit (a container's)
// caps Budget at half of it, so the non-Go memory (SQLite's page cache, thread stacks)
// keeps its room.
package gcpace

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultPercent = 400
	DefaultBudget  = 160 << 20
	// DefaultInterval is how often the loop looks whether a cycle has ended; a cycle's
	// end is when the limit is recomputed.
	DefaultInterval = 100 * time.Millisecond
)

// Config says how the collector is paced when the operator has not set it.
type Config struct {
	// Percent is the GC percentage set in place of Go's default 100; default 400.
	Percent int
	// Budget is the soft limit, in bytes, of the memory Go manages (heap, stacks and
	// the runtime's own) while the live heap is small; default 160 MiB, at most half of
	// a cgroup memory limit.
	Budget int64
	// Interval is how often the live heap is looked at; default 100 ms.
	Interval time.Duration
	// Getenv reads the environment (GOGC, GOMEMLIMIT); default os.Getenv.
	Getenv func(string) string
	// CgroupRoot is where the cgroup file systems are mounted; default /sys/fs/cgroup.
	CgroupRoot string
}

func (c Config) withDefaults() Config {
	if c.Percent == 0 {
		c.Percent = DefaultPercent
	}
	if c.Budget == 0 {
		c.Budget = DefaultBudget
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.CgroupRoot == "" {
		c.CgroupRoot = "/sys/fs/cgroup"
	}
	return c
}

// Plan is what Pace does: nothing (Paced false, Reason says why) or Percent within a
// limit that starts at Budget.
type Plan struct {
	Paced   bool
	Percent int
	Budget  int64
	// CgroupLimit is the memory limit of the process's cgroup, 0 if none.
	CgroupLimit int64
	Reason      string
}

// String says the plan in a log line's words.
func (p Plan) String() string {
	if !p.Paced {
		return p.Reason
	}
	return fmt.Sprintf("GOGC %d within %d MiB of Go memory (%s)", p.Percent, p.Budget>>20, p.Reason)
}

// Decide says what Pace would do with c (defaults filled), without doing it.
func Decide(c Config) Plan {
	c = c.withDefaults()
	for _, name := range []string{"GOGC", "GOMEMLIMIT"} {
		if v := c.Getenv(name); v != "" {
			return Plan{Reason: fmt.Sprintf("%s=%s is set: the collector follows the environment", name, v)}
		}
	}
	p := Plan{Paced: true, Percent: c.Percent, Budget: c.Budget, Reason: "GOGC and GOMEMLIMIT unset"}
	if limit := cgroupLimit(c.CgroupRoot); limit > 0 {
		p.CgroupLimit = limit
		if limit/2 < p.Budget {
			p.Budget = limit / 2
			p.Reason += fmt.Sprintf("; half of the cgroup's %d MiB", limit>>20)
		}
	}
	return p
}

// Pace applies Decide(c) and, if it paces the collector, keeps the memory limit following
// the live heap until stop is called; stop then restores the runtime's settings as they
// were and returns.
func Pace(c Config) (plan Plan, stop func()) {
	c = c.withDefaults()
	plan = Decide(c)
	if !plan.Paced {
		return plan, func() {}
	}
	oldPercent := debug.SetGCPercent(plan.Percent)
	oldLimit := debug.SetMemoryLimit(plan.Budget)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			debug.SetGCPercent(oldPercent)
			debug.SetMemoryLimit(oldLimit)
		}()
		var h heapReader
		h.init()
		t := time.NewTicker(c.Interval)
		defer t.Stop()
		last, limit := uint64(0), plan.Budget
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cycles, live, nonHeap := h.read()
			if cycles == last {
				continue
			}
			last = cycles
			if l := Limit(plan.Budget, live, nonHeap); l != limit {
				limit = l
				debug.SetMemoryLimit(l)
			}
		}
	}()
	return plan, func() {
		cancel()
		<-done
	}
}

// Limit is the soft memory limit for a live heap of live bytes and nonHeap bytes of
// other memory the runtime manages (stacks, its metadata): budget, or what Go's default
// pace would hold for that heap if that is more. The default pace lets the heap reach
// twice the live bytes; the extra half covers what the limit counts and that goal does
// not (free and partly used spans not yet returned to the system).
func Limit(budget int64, live, nonHeap uint64) int64 {
	if live > math.MaxInt64/4 {
		return math.MaxInt64
	}
	atDefault := int64(live*5/2 + nonHeap)
	return max(budget, atDefault)
}

// heapReader reads the runtime's metrics the limit is computed from.
type heapReader struct{ samples []metrics.Sample }

const (
	metricCycles   = "/gc/cycles/total:gc-cycles"
	metricLive     = "/gc/heap/live:bytes"
	metricTotal    = "/memory/classes/total:bytes"
	metricObjects  = "/memory/classes/heap/objects:bytes"
	metricUnused   = "/memory/classes/heap/unused:bytes"
	metricFree     = "/memory/classes/heap/free:bytes"
	metricReleased = "/memory/classes/heap/released:bytes"
)

func (h *heapReader) init() {
	for _, name := range []string{metricCycles, metricLive, metricTotal, metricObjects, metricUnused, metricFree, metricReleased} {
		h.samples = append(h.samples, metrics.Sample{Name: name})
	}
}

// read returns the collector's completed cycles, the live heap as of the last one, and
// the memory the runtime manages outside the heap's spans.
func (h *heapReader) read() (cycles, live, nonHeap uint64) {
	metrics.Read(h.samples)
	v := func(i int) uint64 {
		if h.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return h.samples[i].Value.Uint64()
	}
	heap := v(3) + v(4) + v(5) + v(6)
	total := v(2)
	if total > heap {
		nonHeap = total - heap
	}
	return v(0), v(1), nonHeap
}

// cgroupLimit returns the memory limit of this process's cgroup (v2 memory.max, else
// v1 memory.limit_in_bytes), 0 if there is none or it cannot be read.
func cgroupLimit(root string) int64 {
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	return cgroupLimitOf(root, string(cg))
}

// cgroupLimitOf reads the limit for the cgroup membership lines of /proc/self/cgroup
// under root; a limit of "max" or one near the largest int64 (v1's "none") is none.
func cgroupLimitOf(root, membership string) int64 {
	var paths []string
	for _, line := range strings.Split(strings.TrimSpace(membership), "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			paths = append(paths, root+parts[2]+"/memory.max", root+"/memory.max")
		case hasController(parts[1], "memory"):
			paths = append(paths, root+"/memory"+parts[2]+"/memory.limit_in_bytes", root+"/memory/memory.limit_in_bytes")
		}
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0
		}
		return n
	}
	return 0
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
