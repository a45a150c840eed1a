package bench

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// I/O stalls. Every acknowledged event waits for an fsync, so the disk's share of a
// figure is worth seeing next to it: a disk that stalls shows in the single-event, batch
// and latency figures as if the code were slow. Linux's pressure stall information counts
// the time in which every non-idle task waited for I/O at once (/proc/pressure/io,
// "full ... total=" in microseconds): the fsyncs the figure itself waits for when nothing
// else can run, and whatever else held up the disk. The share of a scenario's wall time
// spent so is printed with its figure when it is noticeable.

// ioStallNotable is the share from which a figure's line mentions the stalls.
const ioStallNotable = 0.01

// ioStallTotal reads the cumulative full I/O stall time; false when the kernel does
// not report it.
func ioStallTotal() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/pressure/io")
	if err != nil {
		return 0, false
	}
	return parsePressureFull(string(b))
}

// parsePressureFull returns the total of the "full" line of a pressure file.
func parsePressureFull(text string) (time.Duration, bool) {
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, "full ")
		if !ok {
			continue
		}
		for field := range strings.FieldsSeq(rest) {
			if v, ok := strings.CutPrefix(field, "total="); ok {
				us, err := strconv.ParseInt(v, 10, 64)
				if err != nil || us < 0 {
					return 0, false
				}
				return time.Duration(us) * time.Microsecond, true
			}
		}
	}
	return 0, false
}

// ioMeter measures the I/O stall share of a run; its zero value measures nothing.
type ioMeter struct {
	stall time.Duration
	at    time.Time
	ok    bool
}

func startIO() ioMeter {
	d, ok := ioStallTotal()
	return ioMeter{stall: d, at: time.Now(), ok: ok}
}

// share is the part of the wall time since start in which all tasks stalled on I/O.
func (m ioMeter) share() float64 {
	d, ok := ioStallTotal()
	wall := time.Since(m.at)
	if !ok || !m.ok || wall <= 0 {
		return 0
	}
	return min(1, max(0, float64(d-m.stall)/float64(wall)))
}
