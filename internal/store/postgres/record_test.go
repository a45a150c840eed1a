package postgres_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/postgres"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
)

// TestRecordBatch writes, in one batch, outcomes that touch the same delivery or attempt
// more than once: the result is what writing them one after the other gives, except that
// a finished delivery stays finished, and a response reference is kept.
func TestRecordBatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := open(t, pgtest.DSN(t))
	t.Cleanup(func() { db.Close() })

	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleBoth, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, db.OrgInsert(ctx, org))
	ep := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, now), OrgID: org.ID,
		URL: "https://erp.example.com/hooks", Topics: []string{"*"}, Active: true, CreatedAt: now, UpdatedAt: now}}
	require.NoError(t, ep.Normalize())
	require.NoError(t, db.EndpointInsert(ctx, ep, nil))

	const n = 5
	ids := make([]string, n)
	var ws []*store.EventWrite
	for i := range n {
		at := now.Add(time.Duration(i) * time.Millisecond)
		ids[i] = consign.NewID(consign.PrefixDelivery, at)
		ws = append(ws, &store.EventWrite{
			Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.created",
				Payload: []byte(`{}`), CreatedAt: at},
			Deliveries: []store.NewDelivery{{ID: ids[i], EndpointID: ep.ID, Deadline: at.Add(time.Hour)}},
		})
	}
	require.NoError(t, db.EventsInsert(ctx, ws))

	at := now.Add(time.Second)
	attempt := func(n, status int) *consign.Attempt {
		a := &consign.Attempt{N: n, StartedAt: at, DurationMS: int64(n), Request: consign.AttemptRequest{
			Method: "POST", URL: ep.URL, Headers: map[string]string{"webhook-id": "msg"}}}
		if status == 0 {
			msg := "connection refused"
			a.Error = &msg
			return a
		}
		a.Response = &consign.AttemptResponse{Status: status, Headers: map[string]string{"x-n": "1"}, Body: "body"}
		return a
	}
	outcome := func(id, status string, a *consign.Attempt) *store.Outcome {
		o := &store.Outcome{DeliveryID: id, EndpointID: ep.ID, Status: status, Attempt: a, At: at}
		if status == consign.StatusPending {
			o.NextAttemptAt = at.Add(time.Minute)
		}
		return o
	}
	ref := "SO-1001"
	withRef := outcome(ids[2], consign.StatusSucceeded, attempt(1, 200))
	withRef.ResponseReference = &ref
	require.NoError(t, db.DeliveriesRecord(ctx, store.RecordParams{Outcomes: []*store.Outcome{
		// 0: a failed attempt, then a successful retry.
		outcome(ids[0], consign.StatusPending, attempt(1, 500)),
		outcome(ids[0], consign.StatusSucceeded, attempt(2, 200)),
		// 1: finished, then an outcome without attempt that would reopen it.
		outcome(ids[1], consign.StatusFailed, attempt(1, 0)),
		outcome(ids[1], consign.StatusPending, nil),
		// 2: a reference, then a later outcome without one.
		withRef,
		outcome(ids[2], consign.StatusSucceeded, nil),
		// 3: the same attempt twice: the last is kept.
		outcome(ids[3], consign.StatusPending, attempt(1, 503)),
		outcome(ids[3], consign.StatusPending, attempt(1, 429)),
		// 4: one retry to come.
		outcome(ids[4], consign.StatusPending, attempt(1, 0)),
	}}))

	get := func(id string) *consign.Delivery {
		d, err := db.DeliveryGet(ctx, org.ID, id)
		require.NoError(t, err)
		return d
	}
	d := get(ids[0])
	require.Equal(t, consign.StatusSucceeded, d.Status)
	require.Equal(t, 2, d.AttemptsCount)
	require.Len(t, d.Attempts, 2)
	require.Equal(t, 500, d.Attempts[0].Response.Status)
	require.Equal(t, 200, d.Attempts[1].Response.Status)
	require.Equal(t, "body", d.Attempts[1].Response.Body)
	require.Equal(t, map[string]string{"x-n": "1"}, d.Attempts[1].Response.Headers)
	require.Equal(t, map[string]string{"webhook-id": "msg"}, d.Attempts[1].Request.Headers)
	require.Nil(t, d.ResponseReference)

	d = get(ids[1])
	require.Equal(t, consign.StatusFailed, d.Status)
	require.Len(t, d.Attempts, 1)
	require.Nil(t, d.Attempts[0].Response)
	require.Equal(t, "connection refused", *d.Attempts[0].Error)

	d = get(ids[2])
	require.Equal(t, consign.StatusSucceeded, d.Status)
	require.NotNil(t, d.ResponseReference)
	require.Equal(t, ref, *d.ResponseReference)

	d = get(ids[3])
	require.Equal(t, consign.StatusPending, d.Status)
	require.Len(t, d.Attempts, 1)
	require.Equal(t, 429, d.Attempts[0].Response.Status)

	d = get(ids[4])
	require.Equal(t, consign.StatusPending, d.Status)
	require.Equal(t, 1, d.AttemptsCount)
	require.Equal(t, at.Add(time.Minute), d.NextAttemptAt.UTC())
}

// BenchmarkDeliveriesRecord writes outcomes in batches of 500 as the dispatcher's
// recorder does: one op is one batch (the deliveries' insert is not timed). "succeeded":
// first-try successes; "retry": failed attempts (HTTP 500) to be tried again.
func BenchmarkDeliveriesRecord(b *testing.B) {
	ctx := b.Context()
	db, err := postgres.Open(ctx, pgtest.DSN(b))
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	at := time.Now().UTC()
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, at), Name: "Acme", Role: consign.RoleBoth, CreatedAt: at, UpdatedAt: at}
	require.NoError(b, db.OrgInsert(ctx, org))
	ep := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, at), OrgID: org.ID,
		URL: "https://erp.example.com/hooks", Topics: []string{"*"}, Active: true, CreatedAt: at, UpdatedAt: at}}
	require.NoError(b, ep.Normalize())
	require.NoError(b, db.EndpointInsert(ctx, ep, nil))
	payload := []byte(`{"order_id":1001,"note":"` + strings.Repeat("x", 1000) + `"}`)

	const batch = 500
	for _, tc := range []struct {
		name   string
		status string
		code   int
	}{{"succeeded", consign.StatusSucceeded, 204}, {"retry", consign.StatusPending, 500}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				ws := make([]*store.EventWrite, batch)
				for i := range ws {
					ws[i] = &store.EventWrite{
						Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.created",
							Payload: payload, CreatedAt: at},
						Deliveries: []store.NewDelivery{{ID: consign.NewID(consign.PrefixDelivery, at), EndpointID: ep.ID,
							Deadline: at.Add(time.Hour), LeaseUntil: at.Add(time.Minute)}},
					}
				}
				require.NoError(b, db.EventsInsert(ctx, ws))
				outcomes := make([]*store.Outcome, batch)
				for i, w := range ws {
					id := w.Deliveries[0].ID
					outcomes[i] = &store.Outcome{DeliveryID: id, EndpointID: ep.ID, Status: tc.status, At: at,
						Attempt: &consign.Attempt{N: 1, StartedAt: at, DurationMS: 2, Request: consign.AttemptRequest{
							Method: "POST", URL: ep.URL, Headers: map[string]string{
								"content-type": "application/json", "user-agent": "Consign/0.1", "webhook-id": "msg_" + id[4:],
								"webhook-timestamp": "1763900000", "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmP9qmKcIFIRHKM3s9Xv+8bhVg=",
							}},
							Response: &consign.AttemptResponse{Status: tc.code, Headers: map[string]string{"date": "Mon, 23 Nov 2026 13:00:00 GMT"}}}}
					if tc.status == consign.StatusPending {
						outcomes[i].NextAttemptAt = at.Add(time.Minute)
					}
				}
				b.StartTimer()
				require.NoError(b, db.DeliveriesRecord(ctx, store.RecordParams{Outcomes: outcomes}))
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
