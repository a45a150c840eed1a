package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

func testEvent(t *testing.T, open opener) {
	t.Run("InsertGet", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		a, b := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		ev := newEvent(org.ID, "order.created", now)
		ev.IdempotencyKey, ev.OrderingKey = "order-1001-created", "order-1001"
		ev.Payload = []byte(`{ "order_id" : "1001",  "note": "kept exactly as sent" }`)
		ds := insertEvent(t, s, ev, a.ID, b.ID)

		got, err := s.EventGet(ctx, org.ID, ev.ID)
		require.NoError(t, err)
		require.Equal(t, ev, got)
		require.Equal(t, string(ev.Payload), string(got.Payload), "payload bytes are kept")

		for i, ep := range []string{a.ID, b.ID} {
			d := getDelivery(t, s, org.ID, ds[i])
			require.Equal(t, &consign.Delivery{
				ID: ds[i], OrgID: org.ID, EventID: ev.ID, EndpointID: ep, EventType: "order.created",
				Status: consign.StatusPending, NextAttemptAt: ptr(now), CreatedAt: now, UpdatedAt: now, Attempts: d.Attempts,
			}, d)
			require.Empty(t, d.Attempts)
		}
	})

	t.Run("GetNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		ev := newEvent(org.ID, "order.created", now)
		insertEvent(t, s, ev)

		_, err := s.EventGet(t.Context(), other.ID, ev.ID)
		requireCode(t, consign.ENOTFOUND, err)
		_, err = s.EventGet(t.Context(), org.ID, consign.NewID(consign.PrefixEvent, now))
		requireCode(t, consign.ENOTFOUND, err)
	})

	t.Run("Idempotency", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name      string
			otherOrg  bool          // the second event is in another org
			after     time.Duration // between the first event and the second
			secondKey string
			duplicate bool
		}{
			{"SameKeyWithinWindow", false, time.Minute, "k1", true},
			{"SameKeyJustInsideWindow", false, consign.IdempotencyWindow - time.Second, "k1", true},
			{"SameKeyAfterWindow", false, consign.IdempotencyWindow + time.Second, "k1", false},
			{"SameKeyOtherOrg", true, time.Minute, "k1", false},
			{"OtherKey", false, time.Minute, "k2", false},
			{"NoKeys", false, time.Minute, "", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				ctx := t.Context()
				org, other := insertOrg(t, s, now), insertOrg(t, s, now)
				ep, otherEP := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, other.ID, now)
				first := newEvent(org.ID, "order.created", now)
				if tt.secondKey != "" {
					first.IdempotencyKey = "k1"
				}
				firstDelivery := insertEvent(t, s, first, ep.ID)[0]

				secondOrg, secondEP := org.ID, ep.ID
				if tt.otherOrg {
					secondOrg, secondEP = other.ID, otherEP.ID
				}
				secondAt := now.Add(tt.after)
				second := newEvent(secondOrg, "order.updated", secondAt)
				second.IdempotencyKey = tt.secondKey
				sent := *second
				w := &store.EventWrite{Event: second, Deliveries: newDeliveries(secondAt, secondEP)}
				require.NoError(t, s.EventsInsert(ctx, []*store.EventWrite{w}))
				require.Equal(t, tt.duplicate, w.Duplicate)

				_, deliveryErr := s.DeliveryGet(ctx, secondOrg, w.Deliveries[0].ID)
				if tt.duplicate {
					require.Equal(t, first, w.Event, "the caller gets the first event back")
					_, err := s.EventGet(ctx, org.ID, sent.ID)
					requireCode(t, consign.ENOTFOUND, err)
					requireCode(t, consign.ENOTFOUND, deliveryErr)
					require.Equal(t, []string{firstDelivery}, claimIDs(claim(t, s, secondAt, ep.ID)), "a duplicate creates no deliveries")
					return
				}
				require.NoError(t, deliveryErr)
				require.Equal(t, &sent, w.Event)
				got, err := s.EventGet(ctx, secondOrg, sent.ID)
				require.NoError(t, err)
				require.Equal(t, &sent, got)
				_, err = s.EventGet(ctx, org.ID, first.ID)
				require.NoError(t, err)
			})
		}
	})

	t.Run("IdempotencyKeyMovesToNewEventAfterWindow", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		write := func(at time.Time) *store.EventWrite {
			t.Helper()
			ev := newEvent(org.ID, "order.created", at)
			ev.IdempotencyKey = "k"
			w := &store.EventWrite{Event: ev}
			require.NoError(t, s.EventsInsert(t.Context(), []*store.EventWrite{w}))
			return w
		}
		old := write(now)
		renewed := write(now.Add(consign.IdempotencyWindow + time.Hour))
		require.False(t, renewed.Duplicate)

		again := write(now.Add(consign.IdempotencyWindow + 2*time.Hour))
		require.True(t, again.Duplicate)
		require.Equal(t, renewed.Event.ID, again.Event.ID, "the key now names the newer event")
		require.NotEqual(t, old.Event.ID, again.Event.ID)
	})

	t.Run("IdempotencyWithinBatch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		ws := make([]*store.EventWrite, 3)
		for i := range ws {
			at := now.Add(time.Duration(i) * time.Millisecond)
			ev := newEvent(org.ID, "order.created", at)
			ev.IdempotencyKey = []string{"k", "k", "other"}[i]
			ws[i] = &store.EventWrite{Event: ev, Deliveries: newDeliveries(at, ep.ID)}
		}
		first := *ws[0].Event
		require.NoError(t, s.EventsInsert(ctx, ws))

		require.Equal(t, []bool{false, true, false}, []bool{ws[0].Duplicate, ws[1].Duplicate, ws[2].Duplicate})
		require.Equal(t, &first, ws[1].Event)
		_, err := s.DeliveryGet(ctx, org.ID, ws[1].Deliveries[0].ID)
		requireCode(t, consign.ENOTFOUND, err)
		events, err := s.EventList(ctx, org.ID, store.EventFilter{})
		require.NoError(t, err)
		require.Len(t, events, 2)
		require.ElementsMatch(t, []string{ws[0].Deliveries[0].ID, ws[2].Deliveries[0].ID}, claimIDs(claim(t, s, now.Add(time.Second), ep.ID)))
	})

	t.Run("BatchMixingKeys", func(t *testing.T) {
		// Events with and without keys in one batch, each with a delivery: every event
		// keeps its own keys and payload, and every delivery its event.
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		ws := make([]*store.EventWrite, 12)
		for i := range ws {
			at := now.Add(time.Duration(i) * time.Millisecond)
			ev := newEvent(org.ID, "order.created", at)
			ev.Payload = []byte(fmt.Sprintf(`{"n":%d}`, i))
			switch i % 4 {
			case 1:
				ev.IdempotencyKey = fmt.Sprintf("key-%d", i)
			case 2:
				ev.OrderingKey = fmt.Sprintf("order-%d", i)
			case 3:
				ev.IdempotencyKey, ev.OrderingKey = fmt.Sprintf("key-%d", i), fmt.Sprintf("order-%d", i)
			}
			ws[i] = &store.EventWrite{Event: ev, Deliveries: newDeliveries(at, ep.ID)}
		}
		want := make([]consign.Event, len(ws))
		for i, w := range ws {
			want[i] = *w.Event
		}
		require.NoError(t, s.EventsInsert(ctx, ws))
		for i, w := range ws {
			require.False(t, w.Duplicate)
			got, err := s.EventGet(ctx, org.ID, want[i].ID)
			require.NoError(t, err)
			require.Equal(t, &want[i], got)
			d := getDelivery(t, s, org.ID, w.Deliveries[0].ID)
			require.Equal(t, want[i].ID, d.EventID)
		}
	})

	t.Run("DeliveryToDeletedEndpointSkipped", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		gone, live := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		require.NoError(t, s.EndpointDelete(ctx, org.ID, gone.ID))

		ev := newEvent(org.ID, "order.created", now)
		ds := insertEvent(t, s, ev, gone.ID, live.ID)

		_, err := s.EventGet(ctx, org.ID, ev.ID)
		require.NoError(t, err)
		_, err = s.DeliveryGet(ctx, org.ID, ds[0])
		requireCode(t, consign.ENOTFOUND, err)
		getDelivery(t, s, org.ID, ds[1])
	})

	t.Run("DeliveryCreatedLeased", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		ev := newEvent(org.ID, consign.TypeTest, now)
		leaseUntil := now.Add(30 * time.Second)
		ds := newDeliveries(now, ep.ID)
		ds[0].LeaseUntil = leaseUntil
		require.NoError(t, s.EventsInsert(ctx, []*store.EventWrite{{Event: ev, Deliveries: ds}}))

		d := getDelivery(t, s, org.ID, ds[0].ID)
		require.Equal(t, consign.StatusDelivering, d.Status)
		require.Nil(t, d.NextAttemptAt)
		require.Empty(t, claim(t, s, leaseUntil.Add(-time.Millisecond), ep.ID), "the caller sends it itself")
		requireDue(t, s, map[string]time.Time{ep.ID: leaseUntil})
		require.Equal(t, []string{ds[0].ID}, claimIDs(claim(t, s, leaseUntil, ep.ID)), "after the lease, the dispatcher takes over")
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		var newest, created []string
		for i, typ := range []string{"order.created", "order.updated", "order.created", "shipment.created", "order.created"} {
			ev := newEvent(org.ID, typ, now.Add(time.Duration(i)*time.Millisecond))
			insertEvent(t, s, ev)
			newest = slices.Insert(newest, 0, ev.ID)
			if typ == "order.created" {
				created = slices.Insert(created, 0, ev.ID)
			}
		}
		insertEvent(t, s, newEvent(other.ID, "order.created", now))

		tests := []struct {
			name   string
			filter store.EventFilter
			want   []string
		}{
			{"AllNewestFirst", store.EventFilter{}, newest},
			{"Limit", store.EventFilter{Page: store.Page{Limit: 2}}, newest[:2]},
			{"AfterCursor", store.EventFilter{Page: store.Page{Limit: 2, Cursor: newest[1]}}, newest[2:4]},
			{"PastTheEnd", store.EventFilter{Page: store.Page{Cursor: newest[4]}}, nil},
			{"Type", store.EventFilter{Type: "order.created"}, created},
			{"TypePaged", store.EventFilter{Type: "order.created", Page: store.Page{Limit: 1, Cursor: created[0]}}, created[1:2]},
			{"TypeWithoutEvents", store.EventFilter{Type: "label.created"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				events, err := s.EventList(t.Context(), org.ID, tt.filter)
				require.NoError(t, err)
				var ids []string
				for _, ev := range events {
					require.Equal(t, org.ID, ev.OrgID)
					ids = append(ids, ev.ID)
				}
				require.Equal(t, tt.want, ids)
			})
		}
	})

	t.Run("InsertLargeFanOutBatch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		a, b, c := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		// More rows than one multi-row statement takes, three deliveries per event, some
		// of them leased, and idempotency keys among them.
		var ws []*store.EventWrite
		for i := range 130 {
			ev := newEvent(org.ID, "order.created", now)
			if i%40 == 0 {
				ev.IdempotencyKey = fmt.Sprintf("k-%d", i)
			}
			w := &store.EventWrite{Event: ev, Deliveries: newDeliveries(now, a.ID, b.ID, c.ID)}
			if i%2 == 0 {
				w.Deliveries[0].LeaseUntil = now.Add(time.Minute)
			}
			ws = append(ws, w)
		}
		require.NoError(t, s.EventsInsert(t.Context(), ws))
		for _, ep := range []string{a.ID, b.ID, c.ID} {
			ds, err := s.DeliveryList(t.Context(), org.ID, store.DeliveryFilter{EndpointID: ep, Page: store.Page{Limit: 500}})
			require.NoError(t, err)
			require.Len(t, ds, 130)
		}
		leased, err := s.DeliveryList(t.Context(), org.ID, store.DeliveryFilter{Status: consign.StatusDelivering, Page: store.Page{Limit: 500}})
		require.NoError(t, err)
		require.Len(t, leased, 65)
		for _, d := range leased {
			require.Equal(t, a.ID, d.EndpointID)
		}
	})

	t.Run("InsertConcurrent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		const writers, perBatch = 8, 5
		batches := make([][]*store.EventWrite, writers)
		for i := range batches {
			for j := range perBatch {
				at := now.Add(time.Duration(i*perBatch+j) * time.Millisecond)
				ev := newEvent(org.ID, "order.created", at)
				ev.IdempotencyKey = ev.ID
				batches[i] = append(batches[i], &store.EventWrite{Event: ev, Deliveries: newDeliveries(at, ep.ID)})
			}
		}

		errs := make([]error, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, batch := range batches {
			wg.Go(func() {
				<-start
				errs[i] = s.EventsInsert(ctx, batch)
			})
		}
		close(start)
		wg.Wait()

		for i, err := range errs {
			require.NoError(t, err, "writer %d", i)
		}
		for _, batch := range batches {
			for _, w := range batch {
				require.False(t, w.Duplicate)
				got, err := s.EventGet(ctx, org.ID, w.Event.ID)
				require.NoError(t, err)
				require.Equal(t, w.Event, got)
				getDelivery(t, s, org.ID, w.Deliveries[0].ID)
			}
		}
		ds, err := s.DeliveryList(ctx, org.ID, store.DeliveryFilter{Page: store.Page{Limit: 1000}})
		require.NoError(t, err)
		require.Len(t, ds, writers*perBatch)
	})
}
