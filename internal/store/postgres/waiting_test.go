package postgres_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
)

// TestNextOfKeyWaitsForWriter: a delivery added behind its key's head by a transaction
// still open when the head finishes (on another node, or another batch of this one) must
// not be left waiting. The writer of an ordered delivery holds its key's row in
// ordering_keys; the test plays that writer with plain SQL, holds the row, and adds a
// waiting delivery (as the writer does when it sees the head unfinished) while the head's
// success is recorded. The record must wait for the writer, then make its delivery due.
func TestNextOfKeyWaitsForWriter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	db := open(t, dsn)
	t.Cleanup(func() { db.Close() })
	f := newKeyFixture(t, db)
	at, org, ep := f.at, f.org, f.ep

	head := &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.updated",
		Payload: []byte(`{}`), OrderingKey: "order-1", CreatedAt: at}
	headDelivery := store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, at), EndpointID: ep.ID, Endpoint: ep,
		OrderingKey: "order-1", Ordered: true, Deadline: at.Add(time.Hour)}
	next := &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.updated",
		Payload: []byte(`{}`), OrderingKey: "order-1", CreatedAt: at}
	require.NoError(t, db.EventsInsert(ctx, []*store.EventWrite{
		{Event: head, Deliveries: []store.NewDelivery{headDelivery}}, {Event: next}}))

	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	writer, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer writer.Rollback(ctx)
	_, err = writer.Exec(ctx, `UPDATE ordering_keys SET last_sequence = last_sequence + 1 WHERE endpoint_id = $1 AND ordering_key = 'order-1'`, ep.ID)
	require.NoError(t, err)
	nextID := consign.NewID(consign.PrefixDelivery, at)
	_, err = writer.Exec(ctx, `INSERT INTO deliveries (id, org_id, event_id, endpoint_id, event_type, ordering_key, sequence, status,
		attempts_count, next_attempt_at, deadline_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'order.updated', 'order-1', 2, 'pending', 0, '9999-12-31 00:00:00+00', $5, $6, $6)`,
		nextID, org.ID, next.ID, ep.ID, at.Add(time.Hour), at)
	require.NoError(t, err)

	done := at.Add(time.Second)
	recorded := make(chan error, 1)
	go func() {
		recorded <- db.DeliveriesRecord(ctx, store.RecordParams{Outcomes: []*store.Outcome{
			{DeliveryID: headDelivery.ID, EndpointID: ep.ID, Status: consign.StatusSucceeded, At: done}}})
	}()
	select {
	case err := <-recorded:
		t.Fatalf("the head's outcome was recorded while a writer held its key (err %v): its delivery would wait for good", err)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, writer.Commit(ctx))
	require.NoError(t, <-recorded)

	d, err := db.DeliveryGet(ctx, org.ID, nextID)
	require.NoError(t, err)
	require.NotNil(t, d.NextAttemptAt, "due once the head has finished")
	require.Equal(t, done, d.NextAttemptAt.UTC())
}
