package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// testDelivery covers reading deliveries (get, list with filters and paging) and
// sending them again (requeue, recover).
func testDelivery(t *testing.T, open opener) {
	t.Run("GetNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		id := insertEvent(t, s, newEvent(org.ID, "order.created", now), insertEndpoint(t, s, org.ID, now).ID)[0]

		_, err := s.DeliveryGet(t.Context(), other.ID, id)
		requireCode(t, consign.ENOTFOUND, err)
		_, err = s.DeliveryGet(t.Context(), org.ID, consign.NewID(consign.PrefixDelivery, now))
		requireCode(t, consign.ENOTFOUND, err)
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		ep1, ep2 := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		otherEP := insertEndpoint(t, s, other.ID, now)
		e1 := newEvent(org.ID, "order.created", now)
		e2 := newEvent(org.ID, "order.cancelled", now.Add(time.Millisecond))
		d1 := insertEvent(t, s, e1, ep1.ID, ep2.ID) // d1[0] to ep1 succeeded, d1[1] to ep2 pending
		d2 := insertEvent(t, s, e2, ep1.ID)[0]      // failed
		setStatus(t, s, ep1.ID, d1[0], consign.StatusSucceeded, now)
		setStatus(t, s, ep1.ID, d2, consign.StatusFailed, now)
		insertEvent(t, s, newEvent(other.ID, "order.created", now), otherEP.ID)

		tests := []struct {
			name   string
			orgID  string
			filter store.DeliveryFilter
			want   []string
		}{
			{"AllNewestFirst", org.ID, store.DeliveryFilter{}, []string{d2, d1[1], d1[0]}},
			{"Endpoint", org.ID, store.DeliveryFilter{EndpointID: ep1.ID}, []string{d2, d1[0]}},
			{"Event", org.ID, store.DeliveryFilter{EventID: e1.ID}, []string{d1[1], d1[0]}},
			{"Status", org.ID, store.DeliveryFilter{Status: consign.StatusFailed}, []string{d2}},
			{"EndpointAndStatus", org.ID, store.DeliveryFilter{EndpointID: ep1.ID, Status: consign.StatusSucceeded}, []string{d1[0]}},
			{"NothingMatches", org.ID, store.DeliveryFilter{EventID: e2.ID, Status: consign.StatusPending}, nil},
			{"Limit", org.ID, store.DeliveryFilter{Page: store.Page{Limit: 2}}, []string{d2, d1[1]}},
			{"AfterCursor", org.ID, store.DeliveryFilter{Page: store.Page{Limit: 2, Cursor: d1[1]}}, []string{d1[0]}},
			{"OtherOrgByEndpoint", other.ID, store.DeliveryFilter{EndpointID: ep1.ID}, nil},
			{"OtherOrgByEvent", other.ID, store.DeliveryFilter{EventID: e1.ID}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				ds, err := s.DeliveryList(t.Context(), tt.orgID, tt.filter)
				require.NoError(t, err)
				var ids []string
				for _, d := range ds {
					ids = append(ids, d.ID)
				}
				require.Equal(t, tt.want, ids)
			})
		}

		t.Run("Fields", func(t *testing.T) {
			t.Parallel()
			ds, err := s.DeliveryList(t.Context(), org.ID, store.DeliveryFilter{EventID: e2.ID})
			require.NoError(t, err)
			require.Len(t, ds, 1)
			want := getDelivery(t, s, org.ID, d2)
			want.Attempts = nil
			ds[0].Attempts = nil
			require.Equal(t, want, ds[0])
			require.Equal(t, "order.cancelled", ds[0].EventType)
			require.Equal(t, consign.StatusFailed, ds[0].Status)
		})
	})

	t.Run("Requeue", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			status string
		}{
			{"Failed", consign.StatusFailed},
			{"Succeeded", consign.StatusSucceeded},
			{"Cancelled", consign.StatusCancelled},
			{"Delivering", consign.StatusDelivering},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				ctx := t.Context()
				org := insertOrg(t, s, now)
				ep := insertEndpoint(t, s, org.ID, now)
				id := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID)[0]
				require.Len(t, claim(t, s, now, ep.ID), 1) // leased until now+1m
				if tt.status != consign.StatusDelivering {
					setStatus(t, s, ep.ID, id, tt.status, now)
				}

				requeued, deadline := now.Add(10*time.Second), now.Add(48*time.Hour)
				d, err := s.DeliveryRequeue(ctx, org.ID, id, requeued, deadline)
				require.NoError(t, err)
				require.Equal(t, id, d.ID)
				require.Equal(t, consign.StatusPending, d.Status)
				requireTime(t, requeued, *d.NextAttemptAt)
				require.Equal(t, d, getDelivery(t, s, org.ID, id))

				cs := claim(t, s, requeued, ep.ID)
				require.Equal(t, []string{id}, claimIDs(cs), "claimable at once")
				requireTime(t, deadline, cs[0].Deadline)
			})
		}
	})

	t.Run("RequeueNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		id := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID)[0]
		setStatus(t, s, ep.ID, id, consign.StatusFailed, now)

		_, err := s.DeliveryRequeue(ctx, other.ID, id, now, now.Add(time.Hour))
		requireCode(t, consign.ENOTFOUND, err)
		require.Equal(t, consign.StatusFailed, getDelivery(t, s, org.ID, id).Status)
		_, err = s.DeliveryRequeue(ctx, org.ID, consign.NewID(consign.PrefixDelivery, now), now, now.Add(time.Hour))
		requireCode(t, consign.ENOTFOUND, err)
	})

	t.Run("Recover", func(t *testing.T) {
		t.Parallel()
		// The endpoint's deliveries, by event time: d[0] -4h order.created failed,
		// d[1] -3h order.cancelled failed, d[2] -2h order.created succeeded,
		// d[3] -1h order.created cancelled, d[4] -30m order.created failed.
		tests := []struct {
			name   string
			params func(w recoverWorld) store.RecoverParams
			want   []int
		}{
			{"FailedByDefault", func(w recoverWorld) store.RecoverParams { return w.params() }, []int{0, 1, 4}},
			{"Statuses", func(w recoverWorld) store.RecoverParams {
				p := w.params()
				p.Statuses = []string{consign.StatusSucceeded, consign.StatusCancelled}
				return p
			}, []int{2, 3}},
			{"Since", func(w recoverWorld) store.RecoverParams {
				p := w.params()
				p.Since = now.Add(-210 * time.Minute)
				return p
			}, []int{1, 4}},
			{"Until", func(w recoverWorld) store.RecoverParams {
				p := w.params()
				p.Until = now.Add(-210 * time.Minute)
				return p
			}, []int{0}},
			{"Window", func(w recoverWorld) store.RecoverParams {
				p := w.params()
				p.Since, p.Until = now.Add(-210*time.Minute), now.Add(-time.Hour)
				return p
			}, []int{1}},
			{"Types", func(w recoverWorld) store.RecoverParams {
				p := w.params()
				p.Types = []string{"order.created"}
				return p
			}, []int{0, 4}},
			{"TypesAndStatuses", func(w recoverWorld) store.RecoverParams {
				p := w.params()
				p.Types, p.Statuses = []string{"order.created", "order.cancelled"}, []string{consign.StatusFailed, consign.StatusSucceeded}
				return p
			}, []int{0, 1, 2, 4}},
			{"TypeWithoutEvents", func(w recoverWorld) store.RecoverParams {
				p := w.params()
				p.Types = []string{"inventory.updated"}
				return p
			}, nil},
			{"OtherOrg", func(w recoverWorld) store.RecoverParams {
				p := w.params()
				p.OrgID = w.otherOrg
				return p
			}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				w := seedRecover(t, s)
				p := tt.params(w)
				before := make([]*consign.Delivery, len(w.ds))
				for i, id := range w.ds {
					before[i] = getDelivery(t, s, w.org, id)
				}

				n, err := s.DeliveriesRecover(t.Context(), p)
				require.NoError(t, err)
				require.Equal(t, len(tt.want), n)

				var want []string
				for i, id := range w.ds {
					d := getDelivery(t, s, w.org, id)
					if !slices.Contains(tt.want, i) {
						require.Equal(t, before[i], d, "delivery %d must not change", i)
						continue
					}
					want = append(want, id)
					require.Equal(t, consign.StatusPending, d.Status, "delivery %d", i)
					requireTime(t, p.Now, *d.NextAttemptAt)
				}
				require.Equal(t, consign.StatusFailed, getDelivery(t, s, w.org, w.elsewhere).Status, "another endpoint's deliveries stay")
				cs := claim(t, s, p.Now, w.endpoint, w.endpoint2)
				if want == nil {
					want = []string{}
				}
				require.ElementsMatch(t, want, claimIDs(cs))
				for _, c := range cs {
					requireTime(t, p.Deadline, c.Deadline)
				}
			})
		}
	})
}

// recoverWorld is an endpoint with deliveries in several states, for DeliveriesRecover.
type recoverWorld struct {
	org, otherOrg, endpoint string
	endpoint2               string // another endpoint of the org
	ds                      []string
	elsewhere               string // a failed delivery to another endpoint of the org
}

func (w recoverWorld) params() store.RecoverParams {
	return store.RecoverParams{OrgID: w.org, EndpointID: w.endpoint, Now: now, Deadline: now.Add(24 * time.Hour)}
}

func seedRecover(tb testing.TB, s store.Store) recoverWorld {
	tb.Helper()
	start := now.Add(-5 * time.Hour)
	org, other := insertOrg(tb, s, start), insertOrg(tb, s, start)
	ep, ep2 := insertEndpoint(tb, s, org.ID, start), insertEndpoint(tb, s, org.ID, start)
	insertEndpoint(tb, s, other.ID, start)
	w := recoverWorld{org: org.ID, otherOrg: other.ID, endpoint: ep.ID, endpoint2: ep2.ID}
	for _, d := range []struct {
		ago    time.Duration
		typ    string
		status string
	}{
		{4 * time.Hour, "order.created", consign.StatusFailed},
		{3 * time.Hour, "order.cancelled", consign.StatusFailed},
		{2 * time.Hour, "order.created", consign.StatusSucceeded},
		{time.Hour, "order.created", consign.StatusCancelled},
		{30 * time.Minute, "order.created", consign.StatusFailed},
	} {
		at := now.Add(-d.ago)
		ids := insertEvent(tb, s, newEvent(org.ID, d.typ, at), ep.ID, ep2.ID)
		setStatus(tb, s, ep.ID, ids[0], d.status, at)
		setStatus(tb, s, ep2.ID, ids[1], consign.StatusFailed, at)
		w.ds = append(w.ds, ids[0])
		w.elsewhere = ids[1]
	}
	return w
}

// insertKeyed stores ev with one delivery to each endpoint that carries the event's
// ordering key, ordered and/or coalesced, and returns the deliveries' IDs.
func insertKeyed(tb testing.TB, s store.Store, ev *consign.Event, ordered, coalesce bool, endpointIDs ...string) []string {
	tb.Helper()
	ds := newDeliveries(ev.CreatedAt, endpointIDs...)
	ids := make([]string, len(ds))
	for i := range ds {
		ds[i].OrderingKey, ds[i].Ordered, ds[i].Coalesce = ev.OrderingKey, ordered, coalesce
		ids[i] = ds[i].ID
	}
	w := &store.EventWrite{Event: ev, Deliveries: ds}
	require.NoError(tb, s.EventsInsert(tb.Context(), []*store.EventWrite{w}))
	require.False(tb, w.Duplicate)
	return ids
}
