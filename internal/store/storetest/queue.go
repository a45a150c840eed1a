package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// testQueue covers the queue: claiming due deliveries (oldest first, limits, leases,
// per-endpoint quotas) and the per-endpoint next due time.
func testQueue(t *testing.T, open opener) {
	t.Run("ClaimDueOldestFirst", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now, func(e *store.EndpointRow) { e.Ordering = consign.OrderingKey })
		require.NoError(t, s.SecretInsert(ctx, newSecretRow(ep.ID, now.Add(time.Second))))
		version := getEndpoint(t, s, ep.ID).Version

		var events []*consign.Event
		var ids []string
		for _, ago := range []time.Duration{time.Minute, 3 * time.Minute, 2 * time.Minute, -time.Minute} {
			ev := newEvent(org.ID, "order.created", now.Add(-ago))
			ev.OrderingKey = "order-" + ev.ID // one key each: every one is first of its key
			events = append(events, ev)
			ids = append(ids, insertKeyed(t, s, ev, true, false, ep.ID)[0])
		}
		// One failed attempt, so that the claim shows the count.
		record(t, s, &store.Outcome{
			DeliveryID: ids[1], EndpointID: ep.ID, Status: consign.StatusPending, NextAttemptAt: now.Add(-3 * time.Minute), At: now.Add(-3 * time.Minute),
			Attempt: &consign.Attempt{N: 1, StartedAt: now.Add(-3 * time.Minute), Request: consign.AttemptRequest{Method: "POST", URL: ep.URL}},
		})

		leaseUntil := now.Add(5 * time.Minute)
		res, err := s.DeliveriesClaim(ctx, store.ClaimParams{Now: now, LeaseUntil: leaseUntil, Quotas: []store.Quota{{EndpointID: ep.ID, Limit: 10}}})
		require.NoError(t, err)
		cs := res.Claims
		require.Equal(t, []string{ids[1], ids[2], ids[0]}, claimIDs(cs), "due ones, oldest due first; the future one waits")
		require.Contains(t, res.NextDue, ep.ID)
		requireTime(t, now.Add(time.Minute), res.NextDue[ep.ID], "the endpoint's next work is the future delivery")
		ev := events[1]
		require.Equal(t, &store.Claim{
			DeliveryID: ids[1], OrgID: org.ID, EndpointID: ep.ID, EndpointVersion: version, EventID: ev.ID,
			EventType: ev.Type, Payload: ev.Payload, OrderingKey: ev.OrderingKey, Sequence: 1, EventCreatedAt: ev.CreatedAt,
			AttemptsCount: 1, Deadline: ev.CreatedAt.Add(deadlineAfter),
		}, cs[0])
		require.Zero(t, cs[1].AttemptsCount)

		for _, id := range ids[:3] {
			d := getDelivery(t, s, org.ID, id)
			require.Equal(t, consign.StatusDelivering, d.Status)
			require.Nil(t, d.NextAttemptAt)
		}
		require.Equal(t, consign.StatusPending, getDelivery(t, s, org.ID, ids[3]).Status)
	})

	t.Run("ClaimLimit", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		var ids []string
		for i := range 5 {
			ids = append(ids, insertEvent(t, s, newEvent(org.ID, "order.created", now.Add(time.Duration(i)*time.Second)), ep.ID)[0])
		}
		at := now.Add(time.Minute)
		for _, want := range [][]string{ids[:2], ids[2:4], ids[4:], {}} {
			res, err := s.DeliveriesClaim(t.Context(), store.ClaimParams{Now: at, LeaseUntil: at.Add(time.Minute), Quotas: []store.Quota{{EndpointID: ep.ID, Limit: 2}}})
			require.NoError(t, err)
			require.Equal(t, want, claimIDs(res.Claims))
		}
	})

	t.Run("ClaimLeaseEndsAndReturns", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		id := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID)[0]
		leaseUntil := now.Add(30 * time.Second)

		res, err := s.DeliveriesClaim(ctx, store.ClaimParams{Now: now, LeaseUntil: leaseUntil, Quotas: []store.Quota{{EndpointID: ep.ID, Limit: 10}}})
		require.NoError(t, err)
		require.Equal(t, []string{id}, claimIDs(res.Claims))
		require.Empty(t, claim(t, s, now, ep.ID), "claimed work is not handed out twice")
		require.Empty(t, claim(t, s, leaseUntil.Add(-time.Millisecond), ep.ID))
		requireDue(t, s, map[string]time.Time{ep.ID: leaseUntil}) // a lease comes due when it ends

		// The claimer died without recording anything: the work comes back by itself.
		cs := claim(t, s, leaseUntil, ep.ID)
		require.Equal(t, []string{id}, claimIDs(cs))
		require.Zero(t, cs[0].AttemptsCount)
	})

	t.Run("ReleaseLeases", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		leased := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID, ep.ID)
		require.Len(t, claim(t, s, now, ep.ID), 2) // leased until now+1m
		pending := insertEvent(t, s, newEvent(org.ID, "order.created", now.Add(10*time.Second)), ep.ID)[0]
		done := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID)[0]
		setStatus(t, s, ep.ID, done, consign.StatusSucceeded, now)

		restart := now.Add(5 * time.Second) // a crash cut the leases short
		n, err := s.DeliveriesReleaseLeases(t.Context(), restart)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		requireDue(t, s, map[string]time.Time{ep.ID: restart})
		require.ElementsMatch(t, leased, claimIDs(claim(t, s, restart, ep.ID)), "sent again at once")
		require.Equal(t, consign.StatusPending, getDelivery(t, s, org.ID, pending).Status)
		require.Equal(t, consign.StatusSucceeded, getDelivery(t, s, org.ID, done).Status)
	})

	t.Run("ClaimPerEndpointQuota", func(t *testing.T) {
		t.Parallel()
		// Endpoint i has i+1 due deliveries.
		tests := []struct {
			name   string
			quotas map[int]int // endpoint index → limit
			want   map[int]int // endpoint index → how many of its oldest are claimed
		}{
			{"None", nil, nil},
			{"One", map[int]int{1: 10}, map[int]int{1: 2}},
			{"Capped", map[int]int{1: 1, 2: 2}, map[int]int{1: 1, 2: 2}},
			{"All", map[int]int{0: 5, 1: 5, 2: 5}, map[int]int{0: 1, 1: 2, 2: 3}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				org := insertOrg(t, s, now)
				eps := make([]string, 3)
				ds := make([][]string, 3) // per endpoint, oldest first
				for i := range eps {
					eps[i] = insertEndpoint(t, s, org.ID, now).ID
					for j := range i + 1 {
						at := now.Add(time.Duration(j*3+i) * time.Millisecond)
						ds[i] = append(ds[i], insertEvent(t, s, newEvent(org.ID, "order.created", at), eps[i])[0])
					}
				}
				p := store.ClaimParams{Now: now.Add(time.Second), LeaseUntil: now.Add(time.Minute)}
				for i, limit := range tt.quotas {
					p.Quotas = append(p.Quotas, store.Quota{EndpointID: eps[i], Limit: limit})
				}

				res, err := s.DeliveriesClaim(t.Context(), p)
				require.NoError(t, err)
				got := map[string][]string{}
				for _, c := range res.Claims {
					got[c.EndpointID] = append(got[c.EndpointID], c.DeliveryID)
				}
				want := map[string][]string{}
				for i, n := range tt.want {
					want[eps[i]] = ds[i][:n]
				}
				require.Equal(t, want, got, "per endpoint, its oldest due first")
			})
		}
	})

	t.Run("ClaimNextDue", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		busy, idle, later, unasked := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now),
			insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		for _, ev := range []struct {
			endpoint string
			after    time.Duration
		}{{busy.ID, 0}, {busy.ID, 0}, {busy.ID, 2 * time.Minute}, {later.ID, 3 * time.Minute}, {unasked.ID, 0}} {
			insertEvent(t, s, newEvent(org.ID, "order.created", now.Add(ev.after)), ev.endpoint)
		}

		res, err := s.DeliveriesClaim(t.Context(), store.ClaimParams{Now: now, LeaseUntil: now.Add(10 * time.Minute), Quotas: []store.Quota{
			{EndpointID: busy.ID, Limit: 1}, {EndpointID: idle.ID, Limit: 1}, {EndpointID: later.ID, Limit: 1},
		}})
		require.NoError(t, err)
		require.Len(t, res.Claims, 1)
		require.Len(t, res.NextDue, 2, "endpoints asked for that have work left: %v", res.NextDue)
		requireTime(t, now, res.NextDue[busy.ID], "its quota left a due delivery behind")
		requireTime(t, now.Add(3*time.Minute), res.NextDue[later.ID])
		require.NotContains(t, res.NextDue, idle.ID, "no work")
		require.NotContains(t, res.NextDue, unasked.ID, "not asked for")
	})

	t.Run("ClaimLeavesFinishedAndPaused", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		for _, status := range []string{consign.StatusSucceeded, consign.StatusFailed, consign.StatusSuperseded, consign.StatusCancelled} {
			setStatus(t, s, ep.ID, insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID)[0], status, now)
		}
		// Paused: pending when its endpoint is deactivated.
		paused := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID)[0]
		ep.Active = false
		require.NoError(t, s.EndpointUpdate(t.Context(), ep))
		require.Equal(t, consign.StatusPaused, getDelivery(t, s, org.ID, paused).Status)
		require.Empty(t, claim(t, s, now.Add(24*time.Hour), ep.ID))
		requireDue(t, s, nil)
	})

	t.Run("Due", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		requireDue(t, s, nil)
		org := insertOrg(t, s, now)
		a, b := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		insertEndpoint(t, s, org.ID, now) // without work
		var ids []string
		for _, after := range []time.Duration{3 * time.Minute, time.Minute, 2 * time.Minute} {
			ids = append(ids, insertEvent(t, s, newEvent(org.ID, "order.created", now.Add(after)), a.ID)[0])
		}
		bID := insertEvent(t, s, newEvent(org.ID, "order.created", now.Add(5*time.Minute)), b.ID)[0]
		requireDue(t, s, map[string]time.Time{a.ID: now.Add(time.Minute), b.ID: now.Add(5 * time.Minute)})

		require.Len(t, claim(t, s, now.Add(time.Minute), a.ID), 1) // ids[1], leased until now+2m
		requireDue(t, s, map[string]time.Time{a.ID: now.Add(2 * time.Minute), b.ID: now.Add(5 * time.Minute)})
		setStatus(t, s, a.ID, ids[2], consign.StatusSucceeded, now)
		requireDue(t, s, map[string]time.Time{a.ID: now.Add(2 * time.Minute), b.ID: now.Add(5 * time.Minute)}) // ids[1]'s lease
		setStatus(t, s, a.ID, ids[1], consign.StatusSucceeded, now)
		requireDue(t, s, map[string]time.Time{a.ID: now.Add(3 * time.Minute), b.ID: now.Add(5 * time.Minute)})
		setStatus(t, s, a.ID, ids[0], consign.StatusFailed, now)
		setStatus(t, s, b.ID, bID, consign.StatusCancelled, now)
		requireDue(t, s, nil)
	})
}
