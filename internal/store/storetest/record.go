package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// testRecord covers recording attempt outcomes: statuses, attempts, response values,
// batches, and endpoints paused or deleted meanwhile.
func testRecord(t *testing.T, open opener) {
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
}
