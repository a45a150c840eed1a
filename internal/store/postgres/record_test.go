package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

	const n = 5
	org, ep, ids := pendingDeliveries(t, db, n)

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

// orgEndpoint stores an org and an active endpoint of it that takes every topic.
func orgEndpoint(tb testing.TB, db *postgres.DB, at time.Time) (*consign.Org, *store.EndpointRow) {
	tb.Helper()
	ctx := tb.Context()
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, at), Name: "Acme", Role: consign.RoleBoth, CreatedAt: at, UpdatedAt: at}
	require.NoError(tb, db.OrgInsert(ctx, org))
	ep := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, at), OrgID: org.ID,
		URL: "https://erp.example.com/hooks", Topics: []string{"*"}, Active: true, CreatedAt: at, UpdatedAt: at}}
	require.NoError(tb, ep.Normalize())
	require.NoError(tb, db.EndpointInsert(ctx, ep, nil))
	return org, ep
}

// pendingDeliveries stores an org, an endpoint and n events with one pending delivery
// each, and returns the deliveries' IDs.
func pendingDeliveries(t *testing.T, db *postgres.DB, n int) (*consign.Org, *store.EndpointRow, []string) {
	t.Helper()
	ctx := t.Context()
	org, ep := orgEndpoint(t, db, now)
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
	return org, ep, ids
}

// TestRecordAfterDeadlock makes PostgreSQL abort a batch of outcomes to break a deadlock
// (another transaction holds the endpoint's row and then wants the delivery's): the
// store runs the batch again, and it is written. A batch sent again as it was named
// prepared statements that pgx had deallocated after the abort ("prepared statement
// does not exist"), and the outcomes were lost until the lease ran out.
func TestRecordAfterDeadlock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	db := open(t, dsn)
	t.Cleanup(func() { db.Close() })
	org, ep, ids := pendingDeliveries(t, db, 1)

	other, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { other.Close(context.Background()) })
	// The store's transaction waits first and so finds the deadlock first (after its
	// deadlock_timeout, 1 s by default): it is the one aborted.
	_, err = other.Exec(ctx, `SET deadlock_timeout = '1min'`)
	require.NoError(t, err)
	tx, err := other.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE endpoints SET updated_at = updated_at WHERE id = $1`, ep.ID)
	require.NoError(t, err)

	at := now.Add(time.Second)
	recorded := make(chan error, 1)
	go func() {
		recorded <- db.DeliveriesRecord(ctx, store.RecordParams{
			Outcomes: []*store.Outcome{{DeliveryID: ids[0], EndpointID: ep.ID, Status: consign.StatusSucceeded, At: at,
				Attempt: &consign.Attempt{N: 1, StartedAt: at, DurationMS: 3, Request: consign.AttemptRequest{Method: "POST", URL: ep.URL},
					Response: &consign.AttemptResponse{Status: 200}}}},
			Health: []store.HealthChange{{EndpointID: ep.ID, FailingSince: at}},
		})
	}()
	// Once the store's batch has the delivery's row and waits for the endpoint's, take
	// the delivery's row too: a cycle.
	require.Eventually(t, func() bool {
		var waiting int
		err := other.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		return err == nil && waiting > 0
	}, 10*time.Second, 10*time.Millisecond, "the store's batch never waited for the endpoint's row")
	_, err = tx.Exec(ctx, `UPDATE deliveries SET updated_at = updated_at WHERE id = $1`, ids[0])
	require.NoError(t, err, "this transaction should outlive the deadlock")
	require.NoError(t, tx.Rollback(ctx))

	select {
	case err := <-recorded:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the outcomes were not written within 30 s")
	}
	d, err := db.DeliveryGet(ctx, org.ID, ids[0])
	require.NoError(t, err)
	require.Equal(t, consign.StatusSucceeded, d.Status)
	require.Len(t, d.Attempts, 1)
	got, err := db.EndpointGet(ctx, org.ID, ep.ID)
	require.NoError(t, err)
	require.Equal(t, consign.HealthFailing, got.Health)
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
	org, ep := orgEndpoint(b, db, at)
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
