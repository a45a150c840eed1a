package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/store"
)

// TestWatch: the loop's scans visit an endpoint while it has buffered work, known due
// work or a hold, drop it at the first turn after it has none, and take it back as soon
// as anything gives it work again.
func TestWatch(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := New(nil, nil, nil, nil, Config{Now: func() time.Time { return now }})
	watched := func(id string) bool {
		e, ok := d.eps[id]
		_, in := d.watch[e]
		require.Equal(t, in, ok && e.watched, "watched flag and set agree for %s", id)
		return in
	}
	turn := func() { d.takeWakes(now) }

	d.ep("idle")
	require.True(t, watched("idle"), "a new endpoint is watched")
	turn()
	require.False(t, watched("idle"), "dropped at the first turn with nothing to do")

	// Buffered work (ingest's hand-over) keeps an endpoint until its buffer is empty.
	d.Handoff([]*store.Claim{{DeliveryID: "dlv_1", EndpointID: "idle"}}, now.Add(time.Minute))
	require.True(t, watched("idle"), "taken back by a hand-over")
	turn()
	require.True(t, watched("idle"), "kept while work is buffered")
	d.eps["idle"].queue = nil
	turn()
	require.False(t, watched("idle"))

	// Known due work: a wake-up or a retry's due time.
	d.Wake("woken")
	turn()
	require.True(t, watched("woken"), "kept while due work is known")
	d.eps["woken"].nextDue = time.Time{} // a claim found nothing more
	turn()
	require.False(t, watched("woken"))

	// A hold (Retry-After) keeps it until the hold ends.
	d.hold("held", now.Add(time.Second))
	turn()
	require.True(t, watched("held"))
	now = now.Add(2 * time.Second)
	turn()
	require.False(t, watched("held"), "dropped once the hold has passed")
	require.True(t, d.eps["held"].holdUntil.IsZero())

	// An attempt's end brings it back (a retry due later).
	d.inflight, d.eps["held"].inflight = 1, 1
	d.finish(finished{endpointID: "held", deliveryID: "dlv_2", attempted: true, nextDue: now.Add(time.Minute)}, now)
	require.True(t, watched("held"), "taken back by a finished attempt with a retry")

	// Forgotten endpoints leave the watch with the map.
	d.eps["held"].nextDue, d.eps["held"].failures = time.Time{}, 0
	d.store = emptyDue{}
	d.resync(t.Context(), now)
	_, known := d.eps["held"]
	require.False(t, known)
	require.Empty(t, d.watch)
}

// emptyDue is a store with no waiting work: only DeliveriesDue is called.
type emptyDue struct{ store.Store }

func (emptyDue) DeliveriesDue(context.Context) (map[string]time.Time, error) {
	return map[string]time.Time{}, nil
}
