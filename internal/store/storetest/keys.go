package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// testKeys checks the business-key index: written with its events in their transaction
// (not for idempotent repeats), read newest first in pages, combined with the other
// filters, never across orgs, and gone with its events.
func testKeys(t *testing.T, open opener) {
	// keyed stores events of org at successive seconds from at, each with its keys, each with a
	// delivery to ep; it returns the events and their deliveries.
	keyed := func(t *testing.T, s store.Store, orgID, epID string, typ string, at time.Time, keys ...[]string) ([]*consign.Event, []string) {
		t.Helper()
		var evs []*consign.Event
		var dls []string
		for i, ks := range keys {
			ev := newEvent(orgID, typ, at.Add(time.Duration(i)*time.Second))
			w := &store.EventWrite{Event: ev, Deliveries: newDeliveries(ev.CreatedAt, epID), Keys: ks}
			require.NoError(t, s.EventsInsert(t.Context(), []*store.EventWrite{w}))
			evs, dls = append(evs, ev), append(dls, w.Deliveries[0].ID)
		}
		return evs, dls
	}
	eventIDs := func(t *testing.T, s store.Store, orgID string, f store.EventFilter) []string {
		t.Helper()
		evs, err := s.EventList(t.Context(), orgID, f)
		require.NoError(t, err)
		ids := []string{}
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		return ids
	}
	deliveryIDs := func(t *testing.T, s store.Store, orgID string, f store.DeliveryFilter) []string {
		t.Helper()
		ds, err := s.DeliveryList(t.Context(), orgID, f)
		require.NoError(t, err)
		ids := []string{}
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		return ids
	}

	t.Run("Events", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		evs, _ := keyed(t, s, org.ID, ep.ID, "order.created", now, []string{"1001", "SKU-1"}, []string{"1002", "SKU-1"}, nil, []string{"1001"})
		other, _ := keyed(t, s, org.ID, ep.ID, "order.cancelled", now.Add(time.Minute), []string{"1001"})

		tests := []struct {
			name   string
			filter store.EventFilter
			want   []string
		}{
			{"NewestFirst", store.EventFilter{Key: "1001"}, []string{other[0].ID, evs[3].ID, evs[0].ID}},
			{"SharedKey", store.EventFilter{Key: "SKU-1"}, []string{evs[1].ID, evs[0].ID}},
			{"WithType", store.EventFilter{Key: "1001", Type: "order.created"}, []string{evs[3].ID, evs[0].ID}},
			{"Page", store.EventFilter{Key: "1001", Page: store.Page{Limit: 2}}, []string{other[0].ID, evs[3].ID}},
			{"NextPage", store.EventFilter{Key: "1001", Page: store.Page{Limit: 2, Cursor: evs[3].ID}}, []string{evs[0].ID}},
			{"Missing", store.EventFilter{Key: "9999"}, []string{}},
			{"Exact", store.EventFilter{Key: "100"}, []string{}},
		}
		for _, tt := range tests {
			require.Equal(t, tt.want, eventIDs(t, s, org.ID, tt.filter), tt.name)
		}
	})

	t.Run("Deliveries", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		a, b := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		_, da := keyed(t, s, org.ID, a.ID, "order.created", now, []string{"PO-4411"}, []string{"PO-9"})
		_, db := keyed(t, s, org.ID, b.ID, "order.created", now.Add(time.Minute), []string{"PO-4411"})
		setStatus(t, s, a.ID, da[0], consign.StatusFailed, now)

		tests := []struct {
			name   string
			filter store.DeliveryFilter
			want   []string
		}{
			{"All", store.DeliveryFilter{Key: "PO-4411"}, []string{db[0], da[0]}},
			{"Endpoint", store.DeliveryFilter{Key: "PO-4411", EndpointID: b.ID}, []string{db[0]}},
			{"Status", store.DeliveryFilter{Key: "PO-4411", Status: consign.StatusFailed}, []string{da[0]}},
			{"StatusAndEndpoint", store.DeliveryFilter{Key: "PO-4411", Status: consign.StatusFailed, EndpointID: a.ID}, []string{da[0]}},
			{"Page", store.DeliveryFilter{Key: "PO-4411", Page: store.Page{Limit: 1}}, []string{db[0]}},
			{"NextPage", store.DeliveryFilter{Key: "PO-4411", Page: store.Page{Limit: 1, Cursor: db[0]}}, []string{da[0]}},
			{"Missing", store.DeliveryFilter{Key: "PO-1"}, []string{}},
		}
		for _, tt := range tests {
			require.Equal(t, tt.want, deliveryIDs(t, s, org.ID, tt.filter), tt.name)
		}
	})

	// ByEvent: a key's deliveries come by event, newest first, and an event's newest
	// first, so that a page reads only its own events' rows; a delivery made after newer
	// events' (a replay's) comes with its event. Pages of any size add up to the list.
	t.Run("ByEvent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		a, b := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		older, newer := newEvent(org.ID, "order.created", now), newEvent(org.ID, "order.created", now.Add(time.Second))
		olderDs := newDeliveries(now.Add(time.Minute), a.ID, b.ID) // made after newer's
		newerDs := newDeliveries(newer.CreatedAt, a.ID)
		require.NoError(t, s.EventsInsert(t.Context(), []*store.EventWrite{
			{Event: older, Deliveries: olderDs, Keys: []string{"SKU-7"}}, {Event: newer, Deliveries: newerDs, Keys: []string{"SKU-7"}}}))
		want := []string{newerDs[0].ID, olderDs[1].ID, olderDs[0].ID}
		require.Equal(t, want, deliveryIDs(t, s, org.ID, store.DeliveryFilter{Key: "SKU-7"}))
		for size := 1; size <= len(want); size++ {
			var got []string
			for cursor := ""; ; {
				page := deliveryIDs(t, s, org.ID, store.DeliveryFilter{Key: "SKU-7", Page: store.Page{Limit: size, Cursor: cursor}})
				got = append(got, page...)
				if len(page) < size {
					break
				}
				cursor = page[len(page)-1]
			}
			require.Equal(t, want, got, "pages of %d", size)
		}
		require.Equal(t, []string{olderDs[0].ID}, deliveryIDs(t, s, org.ID, store.DeliveryFilter{Key: "SKU-7", EndpointID: a.ID, Page: store.Page{Cursor: newerDs[0].ID}}))
		require.Empty(t, deliveryIDs(t, s, org.ID, store.DeliveryFilter{Key: "SKU-7", Page: store.Page{Cursor: consign.NewID(consign.PrefixDelivery, now)}}),
			"a cursor whose delivery is gone (retention took its event, and every older one) ends the list")
	})

	t.Run("Isolation", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		ep, otherEp := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, other.ID, now)
		mine, _ := keyed(t, s, org.ID, ep.ID, "order.created", now, []string{"1001"})
		keyed(t, s, other.ID, otherEp.ID, "order.created", now, []string{"1001"})

		require.Equal(t, []string{mine[0].ID}, eventIDs(t, s, org.ID, store.EventFilter{Key: "1001"}))
		require.Len(t, deliveryIDs(t, s, org.ID, store.DeliveryFilter{Key: "1001"}), 1)
		lonely := insertOrg(t, s, now)
		require.Empty(t, eventIDs(t, s, lonely.ID, store.EventFilter{Key: "1001"}), "an org sees no other org's keys")
		require.Empty(t, deliveryIDs(t, s, lonely.ID, store.DeliveryFilter{Key: "1001"}))
	})

	t.Run("Atomic", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		first := newEvent(org.ID, "order.created", now)
		first.IdempotencyKey = "order-1001"
		require.NoError(t, s.EventsInsert(t.Context(), []*store.EventWrite{{Event: first, Keys: []string{"1001"}}}))

		// An idempotent repeat is not indexed again: the key finds the first event once.
		again := newEvent(org.ID, "order.created", now.Add(time.Second))
		again.IdempotencyKey = "order-1001"
		w := &store.EventWrite{Event: again, Keys: []string{"1001", "only-in-the-repeat"}}
		require.NoError(t, s.EventsInsert(t.Context(), []*store.EventWrite{w}))
		require.True(t, w.Duplicate)
		require.Equal(t, []string{first.ID}, eventIDs(t, s, org.ID, store.EventFilter{Key: "1001"}))
		require.Empty(t, eventIDs(t, s, org.ID, store.EventFilter{Key: "only-in-the-repeat"}))

		// A batch that fails writes no key: the second event's ID is taken.
		fresh := newEvent(org.ID, "order.created", now.Add(2*time.Second))
		clash := *first
		clash.IdempotencyKey = ""
		err := s.EventsInsert(t.Context(), []*store.EventWrite{{Event: fresh, Keys: []string{"2002"}}, {Event: &clash, Keys: []string{"3003"}}})
		require.Error(t, err)
		require.Empty(t, eventIDs(t, s, org.ID, store.EventFilter{Key: "2002"}), "no key of a batch that was not written")
		require.Empty(t, eventIDs(t, s, org.ID, store.EventFilter{Key: "3003"}))
		_, err = s.EventGet(t.Context(), org.ID, fresh.ID)
		requireCode(t, consign.ENOTFOUND, err)
	})

	t.Run("Retention", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		p, ok := s.(store.Purger)
		require.True(t, ok, "the store must implement store.Purger")
		org := insertOrg(t, s, now)
		old := newEvent(org.ID, "order.created", now.Add(-40*24*time.Hour))
		kept := newEvent(org.ID, "order.created", now)
		require.NoError(t, s.EventsInsert(t.Context(), []*store.EventWrite{{Event: old, Keys: []string{"1001", "old"}}, {Event: kept, Keys: []string{"1001"}}}))

		n, err := p.EventsPurge(t.Context(), now.Add(-30*24*time.Hour), 100)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, []string{kept.ID}, eventIDs(t, s, org.ID, store.EventFilter{Key: "1001"}))
		// Its key rows went with it: an event written again under its ID, without keys,
		// is not found by them.
		require.NoError(t, s.EventsInsert(t.Context(), []*store.EventWrite{{Event: old}}))
		require.Empty(t, eventIDs(t, s, org.ID, store.EventFilter{Key: "old"}))

		require.NoError(t, s.OrgDelete(t.Context(), org.ID), "an org goes with its events' keys")
	})
}
