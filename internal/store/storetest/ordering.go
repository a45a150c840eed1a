package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// testOrdering covers ordered delivery by key (one at a time per key, through pause,
// cancel and coalescing) and coalescing of pending deliveries with the same key.
func testOrdering(t *testing.T, open opener) {
	t.Run("OrderedByKey", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ordered := func(e *store.EndpointRow) { e.Ordering = consign.OrderingKey }
		ep, other := insertEndpoint(t, s, org.ID, now, ordered), insertEndpoint(t, s, org.ID, now, ordered)
		keyed := func(key string, at time.Time, endpointIDs ...string) []string {
			t.Helper()
			ev := newEvent(org.ID, "order.updated", at)
			ev.OrderingKey = key
			return insertKeyed(t, s, ev, true, false, endpointIDs...)
		}
		first := keyed("order-1", now, ep.ID, other.ID)
		k1 := []string{first[0], keyed("order-1", now.Add(time.Millisecond), ep.ID)[0], keyed("order-1", now.Add(2*time.Millisecond), ep.ID)[0]}
		k2 := keyed("order-2", now.Add(3*time.Millisecond), ep.ID)[0]
		free := insertEvent(t, s, newEvent(org.ID, "order.updated", now.Add(4*time.Millisecond)), ep.ID)[0]
		sequences := func(cs []*store.Claim) map[string]int64 {
			m := map[string]int64{}
			for _, c := range cs {
				m[c.DeliveryID] = c.Sequence
			}
			return m
		}

		at := now.Add(time.Second) // everything has been created
		require.Equal(t, map[string]int64{k1[0]: 1, k2: 1, free: 0}, sequences(claim(t, s, at, ep.ID)),
			"per key, only the first is due")
		require.Equal(t, map[string]int64{first[1]: 1}, sequences(claim(t, s, at, other.ID)),
			"another endpoint counts its own sequence")
		require.Empty(t, claim(t, s, at, ep.ID), "the next of a key waits while the first is in flight")

		retry := at.Add(30 * time.Second)
		record(t, s, &store.Outcome{DeliveryID: k1[0], EndpointID: ep.ID, Status: consign.StatusPending, NextAttemptAt: retry, At: at,
			Attempt: &consign.Attempt{N: 1, StartedAt: at, Request: consign.AttemptRequest{Method: "POST", URL: ep.URL}, Response: &consign.AttemptResponse{Status: 500}}})
		require.Empty(t, claim(t, s, retry.Add(-time.Millisecond), ep.ID), "... and while it waits for a retry")
		require.Equal(t, map[string]int64{k1[0]: 1}, sequences(claim(t, s, retry, ep.ID)))

		setStatus(t, s, ep.ID, k1[0], consign.StatusSucceeded, retry)
		require.Equal(t, map[string]int64{k1[1]: 2}, sequences(claim(t, s, retry, ep.ID)), "a success lets the next go")
		setStatus(t, s, ep.ID, k1[1], consign.StatusFailed, retry)
		require.Equal(t, map[string]int64{k1[2]: 3}, sequences(claim(t, s, retry, ep.ID)), "so does a final failure")
	})

	t.Run("OrderedThroughPauseCancelAndCoalescing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now, func(e *store.EndpointRow) { e.Ordering, e.Coalesce = consign.OrderingKey, true })
		n := 0
		write := func(typ string) string {
			t.Helper()
			n++
			ev := newEvent(org.ID, typ, now.Add(time.Duration(n)*time.Millisecond))
			ev.OrderingKey = "order-7"
			return insertKeyed(t, s, ev, true, true, ep.ID)[0]
		}
		at := now.Add(time.Second)
		head := write("order.created")
		shipped := write("order.shipped")
		noted := write("order.noted")
		require.Equal(t, []string{head}, claimIDs(claim(t, s, at, ep.ID)))
		require.Equal(t, consign.StatusPending, getDelivery(t, s, org.ID, shipped).Status)

		setStatus(t, s, ep.ID, head, consign.StatusFailed, at)
		require.Equal(t, []string{shipped}, claimIDs(claim(t, s, at, ep.ID)), "a final failure lets the next go")
		setStatus(t, s, ep.ID, shipped, consign.StatusCancelled, at)

		// Paused and resumed: the head is due again, the one behind it still waits.
		latest := write("order.created")
		ep.Active = false
		ep.UpdatedAt = at
		require.NoError(t, s.EndpointUpdate(t.Context(), ep))
		ep.Active = true
		require.NoError(t, s.EndpointUpdate(t.Context(), ep))
		require.Equal(t, []string{noted}, claimIDs(claim(t, s, at, ep.ID)), "a cancelled one lets the next go")
		require.Empty(t, claim(t, s, at.Add(30*time.Second), ep.ID), "the last waits for the one in flight")
		setStatus(t, s, ep.ID, noted, consign.StatusSucceeded, at)

		// Coalescing replaces a head that was never tried; what waited behind it goes.
		behind := write("order.noted")
		replacing := write("order.created")
		require.Equal(t, consign.StatusSuperseded, getDelivery(t, s, org.ID, latest).Status)
		require.Equal(t, []string{behind}, claimIDs(claim(t, s, at.Add(time.Hour), ep.ID)))
		setStatus(t, s, ep.ID, behind, consign.StatusSucceeded, at.Add(time.Hour))
		require.Equal(t, []string{replacing}, claimIDs(claim(t, s, at.Add(time.Hour), ep.ID)))
	})

	// A delivery queued behind an unfinished one of its key has no due time (in the API,
	// and for the dispatcher's wake-ups) until the one before it finishes; then it is due
	// from that moment. Through a pause and a resume it keeps waiting.
	t.Run("OrderedWaitingHasNoDueTime", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now, func(e *store.EndpointRow) { e.Ordering = consign.OrderingKey })
		var ids []string
		for i := range 3 {
			ev := newEvent(org.ID, "order.updated", now.Add(time.Duration(i)*time.Millisecond))
			ev.OrderingKey = "order-1"
			ids = append(ids, insertKeyed(t, s, ev, true, false, ep.ID)[0])
		}
		require.NotNil(t, getDelivery(t, s, org.ID, ids[0]).NextAttemptAt)
		require.Nil(t, getDelivery(t, s, org.ID, ids[1]).NextAttemptAt, "waits for its key")
		require.Nil(t, getDelivery(t, s, org.ID, ids[2]).NextAttemptAt, "waits for its key")
		requireDue(t, s, map[string]time.Time{ep.ID: now})

		later := now.Add(time.Minute)
		ep.Active, ep.UpdatedAt = false, later
		require.NoError(t, s.EndpointUpdate(t.Context(), ep))
		ep.Active = true
		require.NoError(t, s.EndpointUpdate(t.Context(), ep))
		requireTime(t, later, *getDelivery(t, s, org.ID, ids[0]).NextAttemptAt, "resumed: due now")
		require.Nil(t, getDelivery(t, s, org.ID, ids[1]).NextAttemptAt, "resumed, and still waiting for its key")

		done := later.Add(time.Second)
		setStatus(t, s, ep.ID, ids[0], consign.StatusSucceeded, done)
		next := getDelivery(t, s, org.ID, ids[1]).NextAttemptAt
		require.NotNil(t, next, "due once the head has finished")
		requireTime(t, done, *next)
		require.Nil(t, getDelivery(t, s, org.ID, ids[2]).NextAttemptAt)
		requireDue(t, s, map[string]time.Time{ep.ID: done})
		require.Equal(t, []string{ids[1]}, claimIDs(claim(t, s, done, ep.ID)))
	})

	// An endpoint that coalesced by key and now orders by it may hold unfinished keyed
	// deliveries without a sequence; an ordered one created behind them waits, and is due
	// when they have finished.
	t.Run("OrderedWaitingBehindUnorderedKey", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		insert := func(ordered bool) string {
			ev := newEvent(org.ID, "inventory.updated", now)
			ev.OrderingKey = "sku-1"
			return insertKeyed(t, s, ev, ordered, !ordered, ep.ID)[0]
		}
		first, second := insert(false), insert(true)
		require.Nil(t, getDelivery(t, s, org.ID, second).NextAttemptAt, "waits behind the unfinished one of its key")
		done := now.Add(time.Second)
		setStatus(t, s, ep.ID, first, consign.StatusSucceeded, done)
		next := getDelivery(t, s, org.ID, second).NextAttemptAt
		require.NotNil(t, next, "due once the one before it has finished")
		requireTime(t, done, *next)
	})

	t.Run("Coalesce", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		coalesced := func(e *store.EndpointRow) { e.Coalesce = true }
		ep, other := insertEndpoint(t, s, org.ID, now, coalesced), insertEndpoint(t, s, org.ID, now, coalesced)
		n := 0
		write := func(typ, key string, endpointIDs ...string) []string {
			t.Helper()
			n++
			ev := newEvent(org.ID, typ, now.Add(time.Duration(n)*time.Millisecond))
			ev.OrderingKey = key
			return insertKeyed(t, s, ev, false, true, endpointIDs...)
		}
		requireStatus := func(want string, ids ...string) {
			t.Helper()
			for _, id := range ids {
				require.Equal(t, want, getDelivery(t, s, org.ID, id).Status, "delivery %s", id)
			}
		}

		old := write("inventory.updated", "sku-1", ep.ID, other.ID)
		newer := write("inventory.updated", "sku-1", ep.ID)[0]
		requireStatus(consign.StatusSuperseded, old[0])
		requireStatus(consign.StatusPending, newer, old[1]) // another endpoint's is not replaced

		otherKey := write("inventory.updated", "sku-2", ep.ID)[0]
		otherType := write("product.unavailable", "sku-1", ep.ID)[0]
		requireStatus(consign.StatusPending, newer, otherKey, otherType)

		// Once tried, a delivery is not replaced: the receiver has seen it.
		record(t, s, &store.Outcome{DeliveryID: newer, EndpointID: ep.ID, Status: consign.StatusPending, NextAttemptAt: now.Add(time.Minute), At: now,
			Attempt: &consign.Attempt{N: 1, StartedAt: now, Request: consign.AttemptRequest{Method: "POST", URL: ep.URL}, Response: &consign.AttemptResponse{Status: 503}}})
		newest := write("inventory.updated", "sku-1", ep.ID)[0]
		requireStatus(consign.StatusPending, newer, newest)

		require.ElementsMatch(t, []string{newer, otherKey, otherType, newest}, claimIDs(claim(t, s, now.Add(time.Hour), ep.ID)),
			"superseded deliveries are not sent")
	})

	t.Run("CoalesceWithinBatch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now, func(e *store.EndpointRow) { e.Coalesce = true })
		var ws []*store.EventWrite
		for i := range 3 {
			at := now.Add(time.Duration(i) * time.Millisecond)
			ev := newEvent(org.ID, "inventory.updated", at)
			ev.OrderingKey = "sku-1"
			ds := newDeliveries(at, ep.ID)
			ds[0].OrderingKey, ds[0].Coalesce = "sku-1", true
			ws = append(ws, &store.EventWrite{Event: ev, Deliveries: ds})
		}
		require.NoError(t, s.EventsInsert(t.Context(), ws))

		for i, w := range ws {
			want := consign.StatusSuperseded
			if i == len(ws)-1 {
				want = consign.StatusPending
			}
			require.Equal(t, want, getDelivery(t, s, org.ID, w.Deliveries[0].ID).Status, "delivery %d", i)
		}
	})
}
