package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

func testDelivery(t *testing.T, open opener) {
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

	t.Run("Record", func(t *testing.T) {
		t.Parallel()
		errText := "dial tcp 203.0.113.7:443: connect: connection refused"
		request := consign.AttemptRequest{Method: "POST", URL: "https://hooks.example.com/orders",
			Headers: map[string]string{"Content-Type": "application/json", "Webhook-Id": "msg_1", "X-Tenant": "acme"}}
		started := now.Add(time.Second)
		tests := []struct {
			name     string
			attempt  *consign.Attempt
			status   string
			next     time.Time
			attempts int // the delivery's count afterwards
		}{
			{"ServerErrorRetried", &consign.Attempt{N: 1, StartedAt: started, DurationMS: 321, Request: request,
				Response: &consign.AttemptResponse{Status: 500, Headers: map[string]string{"Retry-After": "30", "Content-Type": "text/plain"}, Body: "upstream broke"}},
				consign.StatusPending, now.Add(30 * time.Second), 1},
			{"NetworkErrorRetried", &consign.Attempt{N: 1, StartedAt: started, DurationMS: 10000, Request: request, Error: &errText},
				consign.StatusPending, now.Add(5 * time.Second), 1},
			{"Succeeded", &consign.Attempt{N: 1, StartedAt: started, DurationMS: 45, Request: request,
				Response: &consign.AttemptResponse{Status: 204, Headers: map[string]string{"X-Request-Id": "r1"}}},
				consign.StatusSucceeded, time.Time{}, 1},
			{"TruncatedBodyFailed", &consign.Attempt{N: 1, StartedAt: started, DurationMS: 80, Request: request,
				Response: &consign.AttemptResponse{Status: 400, Headers: map[string]string{"Content-Type": "text/html"}, Body: strings.Repeat("<p>no</p>", 100), Truncated: true}},
				consign.StatusFailed, time.Time{}, 1},
			{"NoAttemptCancelled", nil, consign.StatusCancelled, time.Time{}, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				org := insertOrg(t, s, now)
				ep := insertEndpoint(t, s, org.ID, now)
				id := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID)[0]
				require.Len(t, claim(t, s, now, ep.ID), 1)

				decided := started.Add(time.Second)
				record(t, s, &store.Outcome{DeliveryID: id, EndpointID: ep.ID, Attempt: tt.attempt, Status: tt.status, NextAttemptAt: tt.next, At: decided})

				d := getDelivery(t, s, org.ID, id)
				require.Equal(t, tt.status, d.Status)
				require.Equal(t, tt.attempts, d.AttemptsCount)
				requireTime(t, decided, d.UpdatedAt, "updated_at")
				if tt.attempt == nil {
					require.Empty(t, d.Attempts)
				} else {
					require.Equal(t, []consign.Attempt{*tt.attempt}, d.Attempts)
				}
				if tt.status != consign.StatusPending {
					require.Nil(t, d.NextAttemptAt, "only a pending delivery has a next attempt")
					require.Empty(t, claim(t, s, now.Add(deadlineAfter), ep.ID), "an outcome ends the lease")
					requireDue(t, s, nil)
					return
				}
				require.NotNil(t, d.NextAttemptAt)
				requireTime(t, tt.next, *d.NextAttemptAt)
				requireDue(t, s, map[string]time.Time{ep.ID: tt.next})
				require.Empty(t, claim(t, s, tt.next.Add(-time.Millisecond), ep.ID))
				cs := claim(t, s, tt.next, ep.ID)
				require.Equal(t, []string{id}, claimIDs(cs))
				require.Equal(t, tt.attempts, cs[0].AttemptsCount)
			})
		}
	})

	t.Run("RecordPausedOnlyWhileInactive", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		first := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID)[0]
		second := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID)[0]
		require.Len(t, claim(t, s, now, ep.ID), 2)

		// The endpoint is active: a paused outcome (decided while it was briefly off)
		// must not strand the delivery; it becomes pending and due.
		setStatus(t, s, ep.ID, first, consign.StatusPaused, now.Add(time.Second))
		d := getDelivery(t, s, org.ID, first)
		require.Equal(t, consign.StatusPending, d.Status)
		requireTime(t, now.Add(time.Second), *d.NextAttemptAt)

		// The endpoint is inactive: paused it stays.
		ep.Active = false
		require.NoError(t, s.EndpointUpdate(t.Context(), ep))
		setStatus(t, s, ep.ID, second, consign.StatusPaused, now.Add(2*time.Second))
		require.Equal(t, consign.StatusPaused, getDelivery(t, s, org.ID, second).Status)
	})

	t.Run("RecordAttemptsOldestFirst", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		id := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID)[0]

		var want []consign.Attempt
		at := now
		for n := 1; n <= 3; n++ {
			require.Len(t, claim(t, s, at, ep.ID), 1)
			a := consign.Attempt{N: n, StartedAt: at, DurationMS: int64(n), Request: consign.AttemptRequest{Method: "POST", URL: ep.URL},
				Response: &consign.AttemptResponse{Status: 502, Body: "bad gateway"}}
			status := consign.StatusPending
			if n == 3 {
				a.Response = &consign.AttemptResponse{Status: 200, Body: "ok"}
				status = consign.StatusSucceeded
			}
			want = append(want, a)
			at = at.Add(time.Duration(n) * time.Minute)
			record(t, s, &store.Outcome{DeliveryID: id, EndpointID: ep.ID, Attempt: &a, Status: status, NextAttemptAt: at, At: a.StartedAt})
		}

		d := getDelivery(t, s, org.ID, id)
		require.Equal(t, consign.StatusSucceeded, d.Status)
		require.Equal(t, 3, d.AttemptsCount)
		require.Equal(t, want, d.Attempts)

		// An outcome without an attempt changes only the status.
		setStatus(t, s, ep.ID, id, consign.StatusCancelled, at)
		d = getDelivery(t, s, org.ID, id)
		require.Equal(t, consign.StatusCancelled, d.Status)
		require.Equal(t, 3, d.AttemptsCount)
		require.Equal(t, want, d.Attempts)
	})

	// What a successful reply named (response_reference_pointer, response_fields) stays
	// on the delivery; a later outcome without them keeps them, one with them replaces them.
	t.Run("RecordResponseValues", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		ids := insertEvent(t, s, newEvent(org.ID, "purchase_order.created", now), ep.ID, ep.ID)
		require.Len(t, claim(t, s, now, ep.ID), 2)
		attempt := func(n int) *consign.Attempt {
			return &consign.Attempt{N: n, StartedAt: now, Request: consign.AttemptRequest{Method: "POST", URL: ep.URL},
				Response: &consign.AttemptResponse{Status: 200, Body: `{"vendorReference": "VND-1", "id": 77}`}}
		}
		ref := "VND-1"
		fields := map[string]string{"reference": "VND-1", "id": "77", "note": "ünïcode ✓"}
		record(t, s, &store.Outcome{DeliveryID: ids[0], EndpointID: ep.ID, Status: consign.StatusSucceeded, At: now,
			Attempt: attempt(1), ResponseReference: &ref, ResponseFields: fields})
		d := getDelivery(t, s, org.ID, ids[0])
		require.Equal(t, &ref, d.ResponseReference)
		require.Equal(t, fields, d.ResponseFields)

		// Two outcomes of one delivery in one batch: the values of the first are kept.
		record(t, s,
			&store.Outcome{DeliveryID: ids[1], EndpointID: ep.ID, Status: consign.StatusSucceeded, At: now, Attempt: attempt(1),
				ResponseFields: map[string]string{"id": "1"}},
			&store.Outcome{DeliveryID: ids[1], EndpointID: ep.ID, Status: consign.StatusSucceeded, At: now.Add(time.Second)})
		d = getDelivery(t, s, org.ID, ids[1])
		require.Nil(t, d.ResponseReference)
		require.Equal(t, map[string]string{"id": "1"}, d.ResponseFields)

		// Sent again (a retry by hand): the new reply's values replace the old; an outcome
		// without values leaves them.
		record(t, s, &store.Outcome{DeliveryID: ids[0], EndpointID: ep.ID, Status: consign.StatusSucceeded, At: now.Add(time.Minute),
			Attempt: attempt(2), ResponseFields: map[string]string{"id": "78"}})
		record(t, s, &store.Outcome{DeliveryID: ids[0], EndpointID: ep.ID, Status: consign.StatusSucceeded, At: now.Add(2 * time.Minute)})
		d = getDelivery(t, s, org.ID, ids[0])
		require.Equal(t, &ref, d.ResponseReference)
		require.Equal(t, map[string]string{"id": "78"}, d.ResponseFields)

		list, err := s.DeliveryList(t.Context(), org.ID, store.DeliveryFilter{Page: store.Page{Limit: 10}})
		require.NoError(t, err)
		require.Len(t, list, 2)
		for _, d := range list {
			require.NotEmpty(t, d.ResponseFields, "lists show the values too")
		}
	})

	t.Run("RecordBatch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		ids := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID, ep.ID, ep.ID)
		require.Len(t, claim(t, s, now, ep.ID), 3)

		statuses := []string{consign.StatusSucceeded, consign.StatusFailed, consign.StatusPending}
		var os []*store.Outcome
		for i, id := range ids {
			os = append(os, &store.Outcome{DeliveryID: id, EndpointID: ep.ID, Status: statuses[i], NextAttemptAt: now.Add(time.Hour), At: now,
				Attempt: &consign.Attempt{N: 1, StartedAt: now, Request: consign.AttemptRequest{Method: "POST", URL: ep.URL}, Response: &consign.AttemptResponse{Status: 200 + i*100}}})
		}
		record(t, s, os...)

		for i, id := range ids {
			d := getDelivery(t, s, org.ID, id)
			require.Equal(t, statuses[i], d.Status)
			require.Len(t, d.Attempts, 1)
			require.Equal(t, 200+i*100, d.Attempts[0].Response.Status)
		}
	})

	// An endpoint deleted while its attempts are in flight: their outcomes arrive for
	// deliveries that no longer exist. The batch they share with other endpoints'
	// outcomes must still be written (the recorder retries a failed batch until it is),
	// and nothing of the deleted endpoint comes back.
	t.Run("RecordAfterEndpointDeleted", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		gone, kept := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		ids := insertEvent(t, s, newEvent(org.ID, "order.created", now), gone.ID, kept.ID)
		require.Len(t, claim(t, s, now, gone.ID, kept.ID), 2)
		require.NoError(t, s.EndpointDelete(t.Context(), org.ID, gone.ID))

		// The deleted endpoint's attempt failed and is to be retried; the other's succeeded.
		os := []*store.Outcome{
			{DeliveryID: ids[0], EndpointID: gone.ID, Status: consign.StatusPending, NextAttemptAt: now.Add(time.Minute), At: now,
				Attempt: &consign.Attempt{N: 1, StartedAt: now, Request: consign.AttemptRequest{Method: "POST", URL: gone.URL}, Response: &consign.AttemptResponse{Status: 500}}},
			{DeliveryID: ids[1], EndpointID: kept.ID, Status: consign.StatusSucceeded, At: now,
				Attempt: &consign.Attempt{N: 1, StartedAt: now, Request: consign.AttemptRequest{Method: "POST", URL: kept.URL}, Response: &consign.AttemptResponse{Status: 204}}},
		}
		require.NoError(t, s.DeliveriesRecord(t.Context(), store.RecordParams{
			Outcomes: os, Health: []store.HealthChange{{EndpointID: gone.ID, FailingSince: now}, {EndpointID: kept.ID, OK: true}}}))

		d := getDelivery(t, s, org.ID, ids[1])
		require.Equal(t, consign.StatusSucceeded, d.Status)
		require.Len(t, d.Attempts, 1)
		_, err := s.DeliveryGet(t.Context(), org.ID, ids[0])
		requireCode(t, consign.ENOTFOUND, err)
		n, err := s.EndpointFailures(t.Context(), []store.FailureQuery{{EndpointID: gone.ID, Since: now.Add(-time.Hour), Max: 10}})
		require.NoError(t, err)
		require.Empty(t, n, "the deleted endpoint is left out")
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
