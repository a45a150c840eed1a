package dispatch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/sender"
)

// queueingEndpoint answers in base when at most capacity requests are in flight, and
// proportionally later beyond that, as a server (or a busy machine) that queues the rest.
func queueingEndpoint(base time.Duration, capacity, inflight int) time.Duration {
	if inflight <= capacity {
		return base
	}
	return base * time.Duration(inflight) / time.Duration(capacity)
}

// drive feeds w n answers from an endpoint kept full to the window from start on (the
// first answers, of a cold start, found fewer ahead of them) and returns when the last
// one ended.
func drive(w *window, n, burst int, start time.Time, rtt func(inflight int) time.Duration) time.Time {
	now := start
	for i := range n {
		inflight := w.limit(burst)
		if i < inflight {
			inflight = i + 1
		}
		d := rtt(inflight)
		now = now.Add(d / time.Duration(max(1, inflight)))
		w.sample(d, now, burst)
	}
	return now
}

func TestWindow(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		burst    int
		rtt      func(inflight int) time.Duration
		min, max int // where the window ends
	}{
		{"slow endpoint, no queueing: the whole burst limit", 64,
			func(int) time.Duration { return 500 * time.Millisecond }, 64, 64},
		{"fast endpoint that queues past 20: near its capacity", 64,
			func(n int) time.Duration { return queueingEndpoint(200*time.Microsecond, 20, n) }, 20, 20 + windowBeta + 1},
		{"queueing past 2: the floor", 64,
			func(n int) time.Duration { return queueingEndpoint(time.Millisecond, 2, n) }, windowMin, windowMin},
		{"burst limit under the floor: the burst limit", 3,
			func(n int) time.Duration { return queueingEndpoint(time.Millisecond, 1, n) }, 3, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var w window
			if got := w.limit(tc.burst); got != tc.burst {
				t.Fatalf("fresh window: %d, want the burst limit %d", got, tc.burst)
			}
			drive(&w, 20_000, tc.burst, start, tc.rtt)
			if got := w.limit(tc.burst); got < tc.min || got > tc.max {
				t.Fatalf("window after 20,000 answers: %d, want %d to %d", got, tc.min, tc.max)
			}
		})
	}
}

// TestWindowRecovers checks that a window shrunk by queueing opens again to the burst
// limit once answers come back at the endpoint's own speed.
func TestWindowRecovers(t *testing.T) {
	t.Parallel()
	var w window
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	now := drive(&w, 20_000, 64, start, func(n int) time.Duration { return queueingEndpoint(time.Millisecond, 16, n) })
	if got := w.limit(64); got > 16+windowBeta+1 {
		t.Fatalf("window while queueing: %d, want at most %d", got, 16+windowBeta+1)
	}
	drive(&w, 20_000, 64, now, func(int) time.Duration { return time.Millisecond })
	if got := w.limit(64); got != 64 {
		t.Fatalf("window after the queue cleared: %d, want 64", got)
	}
}

// TestWindowForgetsOldMinimum checks that an endpoint that became slower for good (a new
// route, a partner's slower server) gets its whole window back once the fast round trips
// are more than two spans old, instead of being held small forever.
func TestWindowForgetsOldMinimum(t *testing.T) {
	t.Parallel()
	var w window
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for range 100 {
		now = now.Add(10 * time.Millisecond)
		w.sample(time.Millisecond, now, 64)
	}
	for i := 0; now.Sub(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)) < 3*windowSpan+time.Minute; i++ {
		now = now.Add(5 * time.Millisecond)
		w.sample(300*time.Millisecond, now, 64)
	}
	if got := w.limit(64); got != 64 {
		t.Fatalf("window a minute after the endpoint slowed down: %d, want 64", got)
	}
	if w.minRTT != 300*time.Millisecond {
		t.Fatalf("minimum round trip: %s, want 300ms", w.minRTT)
	}
}

// TestWindowStaysSmallUnderLoad checks that relearning the time without queueing (every
// windowSpan) does not let the window creep back open while the endpoint keeps queueing.
func TestWindowStaysSmallUnderLoad(t *testing.T) {
	t.Parallel()
	var w window
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	end := drive(&w, 4_000_000, 64, start, func(n int) time.Duration { return queueingEndpoint(time.Millisecond, 16, n) })
	if end.Sub(start) < 20*windowSpan {
		t.Fatalf("simulated %s, want at least %s", end.Sub(start), 20*windowSpan)
	}
	if got := w.limit(64); got > 16+windowBeta+1 {
		t.Fatalf("window after %s of queueing: %d, want at most %d", end.Sub(start), got, 16+windowBeta+1)
	}
	if w.minRTT != time.Millisecond {
		t.Fatalf("minimum round trip: %s, want 1ms", w.minRTT)
	}
}

// TestWindowPipelined: an endpoint whose URL's kind is pipelined (a broker's attempts
// sharing one connection) keeps its whole burst limit however its acks lengthen, while
// an HTTP endpoint with the same round trips is narrowed; both kinds through the
// registry the server wires.
func TestWindowPipelined(t *testing.T) {
	t.Parallel()
	snd := sender.New(sender.Config{InsecureTargets: true})
	t.Cleanup(snd.Close)
	reg, err := destination.NewRegistry(
		destination.Kind{Name: "HTTP", Schemes: []string{"https", "http"}, Check: sender.ValidateTargetURL, Sender: snd},
		destination.Kind{Name: "broker", Schemes: []string{"broker"}, Check: func(string, bool) error { return nil },
			Sender: snd, Pipelined: true})
	require.NoError(t, err)
	cases := []struct {
		url  string
		want func(burst, got int) bool
	}{
		{"broker://127.0.0.1:4222/orders", func(burst, got int) bool { return got == burst }},
		{"BROKER://127.0.0.1:4222/orders", func(burst, got int) bool { return got == burst }},
		{"http://127.0.0.1:8080/hook", func(burst, got int) bool { return got <= windowMin+1 }},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			d := New(nil, nil, nil, reg, Config{})
			d.mu.Lock()
			defer d.mu.Unlock()
			e := d.ep("ep_1")
			e.known = true
			burst, _ := d.limits(e)
			now := time.Now()
			for i := range 5_000 {
				// A fast first answer, then answers that wait ever longer: queueing, by
				// the window's reading of round trips.
				rtt := 100 * time.Microsecond
				if i > 0 {
					rtt = 20 * time.Millisecond
				}
				d.inflight, e.inflight = 1, 1
				d.finish(finished{endpointID: "ep_1", deliveryID: "dlv", attempted: true, ok: true,
					took: d.roundTrip(tc.url, destination.Outcome{Duration: rtt})}, now)
			}
			st := e.win.limit(burst)
			if !tc.want(burst, st) {
				t.Fatalf("attempts in flight allowed after 5,000 answers: %d (burst limit %d)", st, burst)
			}
		})
	}
}
