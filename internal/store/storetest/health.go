package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

func testHealth(t *testing.T, open opener) {
	t.Run("RecordHealth", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep, bystander := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		change := func(ok bool, since time.Time) {
			t.Helper()
			require.NoError(t, s.DeliveriesRecord(t.Context(), store.RecordParams{Health: []store.HealthChange{{EndpointID: ep.ID, OK: ok, FailingSince: since}}}))
		}
		requireHealth := func(health string, failingSince *time.Time) {
			t.Helper()
			got := getEndpoint(t, s, ep.ID)
			require.Equal(t, health, got.Health)
			if failingSince == nil {
				require.Nil(t, got.FailingSince)
				return
			}
			require.NotNil(t, got.FailingSince)
			requireTime(t, *failingSince, *got.FailingSince)
		}

		change(false, now)
		requireHealth(consign.HealthFailing, &now)
		change(false, now.Add(time.Minute))
		requireHealth(consign.HealthFailing, &now) // the run goes on: disable_after counts from its start
		change(true, time.Time{})
		requireHealth(consign.HealthHealthy, nil)
		change(false, now.Add(time.Hour))
		requireHealth(consign.HealthFailing, ptr(now.Add(time.Hour)))

		b := getEndpoint(t, s, bystander.ID)
		require.Equal(t, consign.HealthHealthy, b.Health)
		require.Nil(t, b.FailingSince)
	})

	t.Run("RecordHealthWithOutcomes", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		id := insertEvent(t, s, newEvent(org.ID, "order.created", now), ep.ID)[0]

		require.NoError(t, s.DeliveriesRecord(t.Context(), store.RecordParams{
			Outcomes: []*store.Outcome{{DeliveryID: id, EndpointID: ep.ID, Status: consign.StatusPending, NextAttemptAt: now.Add(time.Minute), At: now,
				Attempt: &consign.Attempt{N: 1, StartedAt: now, Request: consign.AttemptRequest{Method: "POST", URL: ep.URL}, Response: &consign.AttemptResponse{Status: 500}}}},
			Health: []store.HealthChange{{EndpointID: ep.ID, FailingSince: now}},
		}))

		require.Len(t, getDelivery(t, s, org.ID, id).Attempts, 1)
		got := getEndpoint(t, s, ep.ID)
		require.NotNil(t, got.FailingSince)
		requireTime(t, now, *got.FailingSince)
	})

	t.Run("ListFailing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		a, b := insertOrg(t, s, now), insertOrg(t, s, now)
		failing := func(e *store.EndpointRow) { e.FailingSince, e.Health = ptr(now), consign.HealthFailing }
		inA := insertEndpoint(t, s, a.ID, now, failing)
		inB := insertEndpoint(t, s, b.ID, now)
		require.NoError(t, s.DeliveriesRecord(t.Context(), store.RecordParams{Health: []store.HealthChange{{EndpointID: inB.ID, FailingSince: now}}}))
		insertEndpoint(t, s, a.ID, now) // healthy
		insertEndpoint(t, s, b.ID, now, failing, func(e *store.EndpointRow) {
			e.Active, e.DisabledAt, e.DisabledReason = false, ptr(now), "failure policy"
		})

		es, err := s.EndpointListFailing(t.Context())
		require.NoError(t, err)
		require.ElementsMatch(t, []string{inA.ID, inB.ID}, endpointIDs(es), "active failing endpoints of every org")
	})

	t.Run("Failures", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep, other := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		errText := "timeout"
		for i, a := range []struct {
			endpoint string
			response *consign.AttemptResponse
			err      *string
		}{
			{ep.ID, &consign.AttemptResponse{Status: 500}, nil},
			{ep.ID, nil, &errText},
			{ep.ID, &consign.AttemptResponse{Status: 200}, nil},
			{ep.ID, &consign.AttemptResponse{Status: 410}, nil},
			{ep.ID, &consign.AttemptResponse{Status: 204}, nil},
			{other.ID, &consign.AttemptResponse{Status: 503}, nil},
		} {
			at := now.Add(time.Duration(i) * time.Minute)
			id := insertEvent(t, s, newEvent(org.ID, "order.created", at), a.endpoint)[0]
			record(t, s, &store.Outcome{DeliveryID: id, EndpointID: a.endpoint, Status: consign.StatusFailed, At: at,
				Attempt: &consign.Attempt{N: 1, StartedAt: at, Request: consign.AttemptRequest{Method: "POST", URL: "https://hooks.example.com"}, Response: a.response, Error: a.err}})
		}

		tests := []struct {
			name     string
			endpoint string
			since    time.Time
			max      int
			want     int
		}{
			{"All", ep.ID, now.Add(-time.Hour), 10, 3},
			{"Since", ep.ID, now.Add(90 * time.Second), 10, 1},
			{"NoneSince", ep.ID, now.Add(time.Hour), 10, 0},
			{"UpToMax", ep.ID, now.Add(-time.Hour), 2, 2},
			{"NotCounted", ep.ID, now.Add(-time.Hour), 0, 0},
			{"OtherEndpoint", other.ID, now.Add(-time.Hour), 10, 1},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				got, err := s.EndpointFailures(t.Context(), []store.FailureQuery{{EndpointID: tt.endpoint, Since: tt.since, Max: tt.max}})
				require.NoError(t, err)
				require.Len(t, got, 1)
				require.Equal(t, tt.endpoint, got[0].EndpointID)
				require.Equal(t, tt.want, got[0].Failures)
				require.True(t, got[0].Active)
			})
		}
	})

	// Several endpoints in one call, in the order asked; the state the policy judges
	// (active, failing_since); failures before a reactivation never counted; endpoints
	// gone left out.
	t.Run("FailuresSinceReactivation", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		reactivated := insertEndpoint(t, s, org.ID, now)
		off := insertEndpoint(t, s, org.ID, now)
		for i := range 4 {
			at := now.Add(time.Duration(i) * time.Minute)
			for _, ep := range []*store.EndpointRow{reactivated, off} {
				id := insertEvent(t, s, newEvent(org.ID, "order.created", at), ep.ID)[0]
				record(t, s, &store.Outcome{DeliveryID: id, EndpointID: ep.ID, Status: consign.StatusFailed, At: at,
					Attempt: &consign.Attempt{N: 1, StartedAt: at, Request: consign.AttemptRequest{Method: "POST", URL: ep.URL},
						Response: &consign.AttemptResponse{Status: 500}}})
			}
		}
		require.NoError(t, s.DeliveriesRecord(t.Context(), store.RecordParams{Health: []store.HealthChange{{EndpointID: off.ID, FailingSince: now}}}))
		reactivated.Active, reactivated.ReactivatedAt, reactivated.UpdatedAt = true, ptr(now.Add(150*time.Second)), now.Add(150*time.Second)
		require.NoError(t, s.EndpointUpdate(t.Context(), reactivated))
		off = getEndpoint(t, s, off.ID) // failing since now, as recorded
		off.Active, off.UpdatedAt = false, now.Add(time.Hour)
		require.NoError(t, s.EndpointUpdate(t.Context(), off))

		since := now.Add(-6 * time.Hour)
		got, err := s.EndpointFailures(t.Context(), []store.FailureQuery{
			{EndpointID: off.ID, Since: since, Max: 10},
			{EndpointID: "ep_gone", Since: since, Max: 10},
			{EndpointID: reactivated.ID, Since: since, Max: 10},
		})
		require.NoError(t, err)
		require.Len(t, got, 2)
		require.Equal(t, off.ID, got[0].EndpointID)
		require.False(t, got[0].Active)
		require.Equal(t, 4, got[0].Failures)
		require.NotNil(t, got[0].FailingSince)
		requireTime(t, now, *got[0].FailingSince)
		require.Equal(t, reactivated.ID, got[1].EndpointID)
		require.True(t, got[1].Active)
		require.Nil(t, got[1].FailingSince)
		require.Equal(t, 1, got[1].Failures, "only the attempt made after the reactivation")
	})

	t.Run("Stats", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, otherOrg := insertOrg(t, s, now), insertOrg(t, s, now)
		ep, other := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		since := now.Add(-time.Hour)
		type attempt struct {
			status     int // 0: a network error
			durationMS int64
		}
		errText := "connection reset"
		for _, d := range []struct {
			endpoint string
			ago      time.Duration
			attempts []attempt
			status   string
		}{
			{ep.ID, 2 * time.Hour, []attempt{{500, 999}}, consign.StatusFailed}, // before the window
			{ep.ID, 30 * time.Minute, []attempt{{500, 30}, {200, 10}}, consign.StatusSucceeded},
			{ep.ID, 20 * time.Minute, []attempt{{0, 20}}, consign.StatusPending},
			{ep.ID, 10 * time.Minute, []attempt{{503, 30}}, consign.StatusFailed},
			{ep.ID, 5 * time.Minute, []attempt{{204, 20}}, consign.StatusSucceeded},
			{ep.ID, time.Minute, nil, consign.StatusPending},
			{other.ID, 10 * time.Minute, []attempt{{200, 5000}}, consign.StatusSucceeded},
		} {
			at := now.Add(-d.ago)
			id := insertEvent(t, s, newEvent(org.ID, "order.created", at), d.endpoint)[0]
			for i, a := range d.attempts {
				o := &store.Outcome{DeliveryID: id, EndpointID: d.endpoint, Status: consign.StatusPending, NextAttemptAt: at.Add(time.Minute), At: at,
					Attempt: &consign.Attempt{N: i + 1, StartedAt: at.Add(time.Duration(i) * time.Second), DurationMS: a.durationMS, Request: consign.AttemptRequest{Method: "POST", URL: "https://hooks.example.com"}}}
				if a.status == 0 {
					o.Attempt.Error = &errText
				} else {
					o.Attempt.Response = &consign.AttemptResponse{Status: a.status}
				}
				if i == len(d.attempts)-1 {
					o.Status = d.status
				}
				record(t, s, o)
			}
		}

		st, err := store.EndpointStats(t.Context(), s, org.ID, ep.ID, since)
		require.NoError(t, err)
		require.Equal(t, ep.ID, st.EndpointID)
		requireTime(t, since, st.Since)
		require.Equal(t, map[string]int{consign.StatusSucceeded: 2, consign.StatusPending: 2, consign.StatusFailed: 1}, st.Deliveries)
		require.Equal(t, 5, st.Attempts)
		require.Equal(t, 2, st.Succeeded)
		require.Equal(t, 3, st.Failed)
		require.NotNil(t, st.SuccessRate)
		require.InDelta(t, 0.4, *st.SuccessRate, 1e-9)
		// Durations 10, 20, 20, 30, 30: every usual percentile definition agrees.
		require.NotNil(t, st.LatencyP50MS)
		require.EqualValues(t, 20, *st.LatencyP50MS)
		require.NotNil(t, st.LatencyP99MS)
		require.EqualValues(t, 30, *st.LatencyP99MS)

		t.Run("NoAttempts", func(t *testing.T) {
			t.Parallel()
			st, err := store.EndpointStats(t.Context(), s, org.ID, ep.ID, now.Add(time.Hour))
			require.NoError(t, err)
			require.Empty(t, st.Deliveries)
			require.Zero(t, st.Attempts)
			require.Nil(t, st.SuccessRate)
			require.Nil(t, st.LatencyP50MS)
			require.Nil(t, st.LatencyP99MS)
		})

		t.Run("NotFound", func(t *testing.T) {
			t.Parallel()
			_, err := store.EndpointStats(t.Context(), s, otherOrg.ID, ep.ID, since)
			requireCode(t, consign.ENOTFOUND, err)
			_, err = store.EndpointStats(t.Context(), s, org.ID, consign.NewID(consign.PrefixEndpoint, now), since)
			requireCode(t, consign.ENOTFOUND, err)
		})
	})

	// Filtered: the events an endpoint's filter turned away are counted by the minute in
	// the stats window, once per event (not again for an idempotent repeat), purged by
	// age and deleted with the endpoint.
	t.Run("Filtered", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := open(t)
		org := insertOrg(t, s, now)
		ep, other := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		write := func(at time.Time, key string, filtered ...string) *store.EventWrite {
			ev := newEvent(org.ID, "order.created", at)
			ev.IdempotencyKey = key
			w := &store.EventWrite{Event: ev, Deliveries: newDeliveries(at, other.ID), Filtered: filtered}
			require.NoError(t, s.EventsInsert(ctx, []*store.EventWrite{w}))
			return w
		}
		write(now.Add(-2*time.Hour), "", ep.ID) // before the window
		write(now.Add(-30*time.Minute), "", ep.ID)
		write(now.Add(-30*time.Minute), "k1", ep.ID)
		require.True(t, write(now.Add(-29*time.Minute), "k1", ep.ID).Duplicate)
		// Two in one batch, with an endpoint deleted since fan-out.
		gone := consign.NewID(consign.PrefixEndpoint, now)
		a, b := newEvent(org.ID, "order.created", now.Add(-time.Minute)), newEvent(org.ID, "order.created", now.Add(-time.Minute))
		require.NoError(t, s.EventsInsert(ctx, []*store.EventWrite{{Event: a, Filtered: []string{ep.ID, gone}}, {Event: b, Filtered: []string{ep.ID}}}))

		filtered := func(id string, since time.Time) int {
			t.Helper()
			st, err := store.EndpointStats(ctx, s, org.ID, id, since)
			require.NoError(t, err)
			return st.Filtered
		}
		require.Equal(t, 4, filtered(ep.ID, now.Add(-time.Hour)))
		require.Equal(t, 5, filtered(ep.ID, now.Add(-3*time.Hour)))
		require.Equal(t, 2, filtered(ep.ID, now.Add(-90*time.Second)), "the minute the window starts in counts whole")
		require.Zero(t, filtered(other.ID, now.Add(-3*time.Hour)))
		st, err := store.EndpointStats(ctx, s, org.ID, other.ID, now.Add(-time.Hour))
		require.NoError(t, err)
		require.Equal(t, 2, st.Deliveries[consign.StatusPending], "events turned away from one endpoint still go to the others")

		p := s.(store.Purger)
		n, err := p.FilteredPurge(ctx, now.Add(-time.Hour), 100)
		require.NoError(t, err)
		require.Equal(t, 1, n, "the minute before the cutoff")
		require.Equal(t, 4, filtered(ep.ID, now.Add(-3*time.Hour)))

		require.NoError(t, s.EndpointDelete(ctx, org.ID, ep.ID))
		again := insertEndpoint(t, s, org.ID, now, func(e *store.EndpointRow) { e.ID = ep.ID; e.URL += "/again" })
		require.Zero(t, filtered(again.ID, now.Add(-3*time.Hour)), "a deleted endpoint's counts go with it")
	})
}
