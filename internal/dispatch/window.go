package dispatch

import "time"

// window adapts how many attempts an endpoint has in flight to the round trips its
// answers take, by TCP Vegas's rule applied to requests.
//
// The shortest round trip seen lately (minRTT) is the endpoint's time without queueing.
// An answer that takes longer means requests wait somewhere — at the partner, on the
// network, or on this machine's own CPUs — and size × (1 − minRTT/rtt) estimates how many
// of the window wait. Below windowAlpha the window grows by one per window's worth of
// answers; above windowBeta it shrinks in proportion to the excess (nearly one per
// answer when most of the window waits), never past the endpoint's burst limit and
// never under windowMin. A slow endpoint whose answers always take long keeps the
// whole burst limit (nothing queues: every round trip is the minimum), while a fast one
// gets only what it turns over: more requests at once would only wait, holding
// connections and scheduling work, which on a busy machine is CPU taken from the rest.
//
// The time without queueing is learnt again every windowSpan while the window is
// smaller than the burst limit: for a moment the window drops to windowMin, and the
// least round trip of windowMin attempts started then becomes minRTT. Kept small by
// queueing, the window stays small; kept small by a minimum that no longer holds (a
// partner whose server became slower for good), it opens again. A fresh window is the
// whole burst limit.
//
// Endpoints of a pipelined kind (a broker whose attempts share one connection) take no
// samples, so they keep the whole burst limit (pipeliner, in dispatch.go).
type window struct {
	size     float64 // 0 until the first answer
	minRTT   time.Duration
	spanFrom time.Time
	// A probe runs from probeFrom until probeLeft attempts started after it have
	// answered; probeMin is their least round trip.
	probeFrom time.Time
	probeLeft int
	probeMin  time.Duration
}

const (
	windowMin   = 8
	windowAlpha = 3
	windowBeta  = 6
	windowSpan  = 10 * time.Second
)

// limit is how many attempts may be in flight, of at most burst.
func (w *window) limit(burst int) int {
	switch {
	case w.size == 0:
		return burst
	case w.probeLeft > 0:
		return min(burst, windowMin)
	}
	return min(burst, int(w.size))
}

// narrowed says whether the window holds the endpoint below its burst limit.
func (w *window) narrowed(burst int) bool { return w.limit(burst) < burst }

// sample adjusts the window to an attempt that took rtt and ended at now.
func (w *window) sample(rtt time.Duration, now time.Time, burst int) {
	if rtt <= 0 {
		return
	}
	if w.size == 0 {
		w.size, w.minRTT, w.spanFrom = float64(burst), rtt, now
	}
	if w.probeLeft > 0 {
		if !now.Add(-rtt).Before(w.probeFrom) { // started during the probe
			if w.probeMin == 0 || rtt < w.probeMin {
				w.probeMin = rtt
			}
			if w.probeLeft--; w.probeLeft == 0 {
				w.minRTT, w.spanFrom = w.probeMin, now
			}
		}
		return
	}
	if int(w.size) >= burst {
		w.spanFrom = now // nothing to learn while nothing queues
	} else if now.Sub(w.spanFrom) >= windowSpan {
		w.probeFrom, w.probeLeft, w.probeMin = now, windowMin, 0
		return
	}
	w.minRTT = min(w.minRTT, rtt)
	queued := w.size * (1 - float64(w.minRTT)/float64(rtt))
	switch {
	case queued < windowAlpha:
		w.size = min(float64(burst), w.size+1/w.size)
	case queued > windowBeta:
		// In proportion to the excess: one per window's worth of answers near the
		// threshold, nearly one per answer when most of the window waits.
		w.size = max(windowMin, w.size-max(1, queued-windowBeta)/w.size)
	}
}
