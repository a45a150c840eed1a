package postgres

import (
	"context"
	"time"

	"github.com/consign-dev/consign/internal/store"
)

var _ store.Purger = (*DB)(nil)

// AttemptsPurge deletes a batch of old attempts. SKIP LOCKED: nodes purging at the same
// time take different rows instead of waiting on (or deadlocking with) each other.
func (db *DB) AttemptsPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM attempts WHERE (delivery_id, n) IN (
		SELECT delivery_id, n FROM attempts WHERE started_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, ts(before), limit)
	if err != nil {
		return 0, translate(err)
	}
	return int(tag.RowsAffected()), nil
}

// EventsPurge deletes a batch of old events none of whose deliveries is still to be sent
// (paused ones count as kept long enough); their deliveries and attempts cascade.
func (db *DB) EventsPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.created_at < $1
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status IN ('pending', 'delivering'))
		LIMIT $2 FOR UPDATE OF e SKIP LOCKED)`, ts(before), limit)
	if err != nil {
		return 0, translate(err)
	}
	return int(tag.RowsAffected()), nil
}

// ReceiptsPurge deletes a batch of old receipts that are no longer pending, oldest first
// (IDs sort by time).
func (db *DB) ReceiptsPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM receipts WHERE id IN (SELECT id FROM receipts
		WHERE received_at < $1 AND status <> 'pending' ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)`, ts(before), limit)
	if err != nil {
		return 0, translate(err)
	}
	return int(tag.RowsAffected()), nil
}

// FilteredPurge deletes a batch of old minutes of filtered counts.
func (db *DB) FilteredPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM endpoint_filtered WHERE (endpoint_id, minute) IN (
		SELECT endpoint_id, minute FROM endpoint_filtered WHERE minute < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
		ts(before.Add(-time.Minute)), limit)
	if err != nil {
		return 0, translate(err)
	}
	return int(tag.RowsAffected()), nil
}

// JobsPurge deletes a batch of jobs that finished long ago.
func (db *DB) JobsPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM jobs WHERE id IN (SELECT id FROM jobs
		WHERE status <> 'running' AND finished_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, ts(before), limit)
	if err != nil {
		return 0, translate(err)
	}
	return int(tag.RowsAffected()), nil
}
