package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// testPaused checks what waits for an inactive endpoint: deliveries of events published
// while it is inactive are paused, never left paused once it is active again (however a
// publish and the change cross), sent in order when it is, and kept no longer than
// retention keeps events.
func testPaused(t *testing.T, open opener) {
	t.Run("PublishToInactive", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		off := insertEndpoint(t, s, org.ID, now, func(e *store.EndpointRow) {
			e.Active, e.DisabledAt, e.DisabledReason = false, ptr(now), "created inactive"
		})
		on := insertEndpoint(t, s, org.ID, now)

		// Two events; the first one's delivery to the inactive endpoint asks to be written
		// leased (fan-out saw it active a moment ago): it is paused all the same.
		var paused []string
		for i := range 2 {
			at := now.Add(time.Duration(i) * time.Millisecond)
			w := &store.EventWrite{Event: newEvent(org.ID, "order.created", at), Deliveries: newDeliveries(at, off.ID, on.ID)}
			if i == 0 {
				w.Deliveries[0].LeaseUntil = at.Add(time.Minute)
			}
			require.NoError(t, s.EventsInsert(ctx, []*store.EventWrite{w}))
			require.True(t, w.Deliveries[0].Paused, "to the inactive endpoint")
			require.False(t, w.Deliveries[1].Paused, "to the active endpoint")
			require.Equal(t, consign.StatusPaused, getDelivery(t, s, org.ID, w.Deliveries[0].ID).Status)
			require.Nil(t, getDelivery(t, s, org.ID, w.Deliveries[0].ID).NextAttemptAt)
			require.Equal(t, consign.StatusPending, getDelivery(t, s, org.ID, w.Deliveries[1].ID).Status)
			paused = append(paused, w.Deliveries[0].ID)
		}
		later := now.Add(time.Hour)
		require.Empty(t, claim(t, s, later, off.ID), "paused deliveries are not sent")
		requireDue(t, s, map[string]time.Time{on.ID: now})
		ds, err := s.DeliveryList(ctx, org.ID, store.DeliveryFilter{EndpointID: off.ID, Status: consign.StatusPaused})
		require.NoError(t, err)
		require.Len(t, ds, 2, "listed as paused")

		off.Active, off.DisabledAt, off.DisabledReason, off.UpdatedAt = true, nil, "", later
		require.NoError(t, s.EndpointUpdate(ctx, off))
		for _, id := range paused {
			d := getDelivery(t, s, org.ID, id)
			require.Equal(t, consign.StatusPending, d.Status)
			requireTime(t, later, *d.NextAttemptAt, "due when the endpoint was activated")
		}
		require.Equal(t, paused, claimIDs(claim(t, s, later, off.ID)), "sent in the order they were published")
	})

	t.Run("PublishAfterDeactivation", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		ep.Active, ep.UpdatedAt = false, now.Add(time.Second)
		require.NoError(t, s.EndpointUpdate(t.Context(), ep))
		d := insertEvent(t, s, newEvent(org.ID, "order.created", now.Add(2*time.Second)), ep.ID)[0]
		require.Equal(t, consign.StatusPaused, getDelivery(t, s, org.ID, d).Status)

		ep.Active, ep.UpdatedAt = true, now.Add(3*time.Second)
		require.NoError(t, s.EndpointUpdate(t.Context(), ep))
		require.Equal(t, consign.StatusPending, getDelivery(t, s, org.ID, d).Status)
		after := insertEvent(t, s, newEvent(org.ID, "order.created", now.Add(4*time.Second)), ep.ID)[0]
		require.Equal(t, consign.StatusPending, getDelivery(t, s, org.ID, after).Status)
		require.Equal(t, []string{d, after}, claimIDs(claim(t, s, now.Add(time.Minute), ep.ID)))
	})

	// Publishing and (de)activating at once, as an API and the dispatcher may: once the
	// endpoint is active and the publishes are written, nothing is left paused; once it
	// is inactive again, nothing is left pending.
	t.Run("NeverLeftBehindByAToggle", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		const batches, perBatch, toggles = 60, 5, 30
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for b := range batches {
				var ws []*store.EventWrite
				for i := range perBatch {
					at := now.Add(time.Duration(b*perBatch+i) * time.Millisecond)
					ws = append(ws, &store.EventWrite{Event: newEvent(org.ID, "order.created", at), Deliveries: newDeliveries(at, ep.ID)})
				}
				if !assertNoError(t, s.EventsInsert(ctx, ws)) {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			e := *ep
			for i := range toggles {
				e.Active, e.UpdatedAt = i%2 == 1, now.Add(time.Duration(i)*time.Second) // ends active
				if !assertNoError(t, s.EndpointUpdate(ctx, &e)) {
					return
				}
			}
		}()
		wg.Wait()
		count := func(status string) int {
			ds, err := s.DeliveryList(ctx, org.ID, store.DeliveryFilter{Page: store.Page{Limit: 500}, EndpointID: ep.ID, Status: status})
			require.NoError(t, err)
			return len(ds)
		}
		require.Zero(t, count(consign.StatusPaused), "paused deliveries on an active endpoint")
		require.Equal(t, batches*perBatch, count(consign.StatusPending))

		ep.Active, ep.UpdatedAt = false, now.Add(time.Hour)
		require.NoError(t, s.EndpointUpdate(ctx, ep))
		require.Zero(t, count(consign.StatusPending))
		require.Equal(t, batches*perBatch, count(consign.StatusPaused))
		n, err := s.DeliveriesSettle(ctx, now.Add(time.Hour))
		require.NoError(t, err)
		require.Zero(t, n, "nothing to settle after updates that ran to their end")
	})

	// Activated with DiscardPaused, an endpoint's paused deliveries are cancelled, keyed
	// ones too (the next of each key is not made due: it is cancelled as well), and
	// nothing else; what is published afterwards is due.
	t.Run("DiscardPausedOnActivation", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now, func(e *store.EndpointRow) { e.Ordering = consign.OrderingKey })
		other := insertEndpoint(t, s, org.ID, now, func(e *store.EndpointRow) { e.Active = false })
		done := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID)[0]
		setStatus(t, s, ep.ID, done, consign.StatusSucceeded, now)
		ep.Active, ep.UpdatedAt = false, now.Add(time.Second)
		require.NoError(t, s.EndpointUpdate(ctx, ep))
		var waited []string
		for i := range 4 {
			ev := newEvent(org.ID, "order.updated", now.Add(time.Duration(2+i)*time.Second))
			if i%2 == 0 {
				ev.OrderingKey = "order-1"
				waited = append(waited, insertKeyed(t, s, ev, true, false, ep.ID, other.ID)...)
			} else {
				waited = append(waited, insertEvent(t, s, ev, ep.ID, other.ID)...)
			}
		}

		on := now.Add(time.Minute)
		ep.Active, ep.UpdatedAt, ep.ReactivatedAt, ep.DiscardPaused = true, on, &on, true
		require.NoError(t, s.EndpointUpdate(ctx, ep))
		for i, id := range waited {
			want := consign.StatusCancelled
			if i%2 == 1 {
				want = consign.StatusPaused // the other endpoint's, still inactive
			}
			require.Equal(t, want, getDelivery(t, s, org.ID, id).Status, "delivery %d", i)
		}
		require.Equal(t, consign.StatusSucceeded, getDelivery(t, s, org.ID, done).Status)
		requireTime(t, on, *getEndpoint(t, s, ep.ID).ReactivatedAt)
		require.Empty(t, claim(t, s, on.Add(time.Hour), ep.ID), "nothing that waited is sent")

		ev := newEvent(org.ID, "order.updated", on.Add(time.Second))
		ev.OrderingKey = "order-1"
		after := insertKeyed(t, s, ev, true, false, ep.ID)[0]
		require.Equal(t, []string{after}, claimIDs(claim(t, s, on.Add(time.Hour), ep.ID)), "the key goes on")

		// On an endpoint that is active already, DiscardPaused changes nothing.
		ep.Description, ep.UpdatedAt = "again", on.Add(time.Hour)
		require.NoError(t, s.EndpointUpdate(ctx, ep))
		require.Equal(t, consign.StatusDelivering, getDelivery(t, s, org.ID, after).Status)
	})

	t.Run("CoalesceSupersedesPaused", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now, func(e *store.EndpointRow) { e.Coalesce, e.Active = true, false })
		var ids []string
		for i := range 3 {
			ev := newEvent(org.ID, "inventory.updated", now.Add(time.Duration(i)*time.Millisecond))
			ev.OrderingKey = "sku-1"
			ids = append(ids, insertKeyed(t, s, ev, false, true, ep.ID)[0])
		}
		require.Equal(t, consign.StatusSuperseded, getDelivery(t, s, org.ID, ids[0]).Status, "only the newest waits")
		require.Equal(t, consign.StatusSuperseded, getDelivery(t, s, org.ID, ids[1]).Status)
		require.Equal(t, consign.StatusPaused, getDelivery(t, s, org.ID, ids[2]).Status)
	})

	// Retention keeps a paused delivery as long as any other, no longer: its event goes
	// when it is old enough. An ordered key whose paused head went that way does not wait
	// for it once the endpoint is active again.
	t.Run("RetentionBoundsPaused", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		p := s.(store.Purger)
		old, cutoff := now.Add(-40*24*time.Hour), now.Add(-30*24*time.Hour)
		org := insertOrg(t, s, old)
		ep := insertEndpoint(t, s, org.ID, old, func(e *store.EndpointRow) { e.Ordering, e.Active = consign.OrderingKey, false })
		keyed := func(at time.Time) (string, string) {
			ev := newEvent(org.ID, "order.updated", at)
			ev.OrderingKey = "order-1"
			return ev.ID, insertKeyed(t, s, ev, true, false, ep.ID)[0]
		}
		oldEvent, oldHead := keyed(old)
		_, behind := keyed(now)
		require.Equal(t, consign.StatusPaused, getDelivery(t, s, org.ID, oldHead).Status)
		require.Equal(t, consign.StatusPaused, getDelivery(t, s, org.ID, behind).Status)

		n, err := p.EventsPurge(ctx, cutoff, 100)
		require.NoError(t, err)
		require.Equal(t, 1, n, "the old event, paused delivery and all")
		_, err = s.EventGet(ctx, org.ID, oldEvent)
		requireCode(t, consign.ENOTFOUND, err)
		_, err = s.DeliveryGet(ctx, org.ID, oldHead)
		requireCode(t, consign.ENOTFOUND, err)

		ep.Active, ep.UpdatedAt = true, now.Add(time.Minute)
		require.NoError(t, s.EndpointUpdate(ctx, ep))
		require.Equal(t, []string{behind}, claimIDs(claim(t, s, now.Add(time.Minute), ep.ID)), "the key's next goes")
	})
}

// assertNoError reports err in a goroutine other than the test's, where require may not
// stop the test; it says whether there was none.
func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}
