package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/consign-dev/consign/internal/store"
	"github.com/stretchr/testify/require"
)

// TestGoOn: after a success, a worker goes on with the next buffered delivery of its
// endpoint without the loop only when nothing else could use its slot and the endpoint
// may start one now; otherwise its attempt's end goes to the loop, counted once either
// way.
func TestGoOn(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const lease = 2 * time.Minute
	type setup struct {
		queued      int
		inflight    int // the dispatcher's, this attempt included
		hold        bool
		nextDue     bool // the endpoint has due work in the store
		failed      bool // the attempt did not succeed
		concurrency int
	}
	cases := []struct {
		name                    string
		setup                   setup
		next, reported, wake    bool
		wantQueue, wantInflight int
	}{
		{"goes on", setup{queued: 3, inflight: 5, concurrency: 256}, true, true, false, 2, 5},
		{"goes on and asks for a claim", setup{queued: 3, inflight: 5, nextDue: true, concurrency: 256}, true, true, true, 2, 5},
		{"nothing buffered", setup{queued: 0, inflight: 5, concurrency: 256}, false, false, true, 0, 5},
		{"others wait for the slot", setup{queued: 3, inflight: 4, concurrency: 4}, false, false, true, 3, 4},
		{"a failure is the loop's", setup{queued: 3, inflight: 5, failed: true, concurrency: 256}, false, false, true, 3, 5},
		{"held: counted, not started", setup{queued: 3, inflight: 5, hold: true, concurrency: 256}, false, true, true, 3, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := New(nil, nil, nil, nil, Config{Now: func() time.Time { return now }, Lease: lease,
				Concurrency: tc.setup.concurrency})
			e := d.ep("ep_1")
			e.known = true
			e.inflight = 1
			d.inflight = tc.setup.inflight
			d.held["dlv_done"] = true
			for i := range tc.setup.queued {
				c := &store.Claim{DeliveryID: "dlv_" + string(rune('a'+i)), EndpointID: "ep_1"}
				e.queue = append(e.queue, queued{claim: c, leaseEnd: now.Add(lease)})
				d.held[c.DeliveryID] = true
				d.queued++
			}
			if tc.setup.hold {
				e.holdUntil = now.Add(time.Second)
			}
			if tc.setup.nextDue {
				e.nextDue = now.Add(-time.Second)
			}
			f := finished{endpointID: "ep_1", deliveryID: "dlv_done", attempted: true, ok: !tc.setup.failed,
				took: time.Millisecond}
			next, reported, wake := d.goOn(context.Background(), f)
			require.Equal(t, tc.next, next != nil, "next")
			require.Equal(t, tc.reported, reported, "reported")
			require.Equal(t, tc.wake, wake, "wake")
			if next != nil {
				require.Equal(t, "dlv_a", next.DeliveryID, "the buffer's head")
				require.Equal(t, 1, e.inflight)
			}
			require.Len(t, e.queue, tc.wantQueue)
			require.Equal(t, tc.wantInflight, d.inflight)
			require.Equal(t, !reported, d.held["dlv_done"], "the finished delivery is forgotten when reported, else left to the loop")
		})
	}
	t.Run("canceled", func(t *testing.T) {
		d := New(nil, nil, nil, nil, Config{Now: func() time.Time { return now }})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		next, reported, wake := d.goOn(ctx, finished{endpointID: "ep_1", ok: true, attempted: true})
		require.Nil(t, next)
		require.False(t, reported)
		require.True(t, wake)
	})
}
