package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/consign-dev/consign/internal/store"
)

var _ store.Purger = (*DB)(nil)

// AttemptsPurge deletes a batch of old attempts.
func (db *DB) AttemptsPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	return db.purge(ctx, `DELETE FROM attempts WHERE (delivery_id, n) IN (
		SELECT delivery_id, n FROM attempts WHERE started_at < ? LIMIT ?)`, ms(before), limit)
}

// EventsPurge deletes a batch of old events none of whose deliveries is still to be sent
// (paused ones count as kept long enough); their deliveries and attempts cascade.
func (db *DB) EventsPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	return db.purge(ctx, `DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.created_at < ?
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status IN ('pending', 'delivering'))
		LIMIT ?)`, ms(before), limit)
}

// ReceiptsPurge deletes a batch of old receipts that are no longer pending, oldest first
// (IDs sort by time).
func (db *DB) ReceiptsPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	return db.purge(ctx, `DELETE FROM receipts WHERE id IN (SELECT id FROM receipts
		WHERE received_at < ? AND status <> 'pending' ORDER BY id LIMIT ?)`, ms(before), limit)
}

// FilteredPurge deletes a batch of old minutes of filtered counts.
func (db *DB) FilteredPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	return db.purge(ctx, `DELETE FROM endpoint_filtered WHERE (endpoint_id, minute) IN (
		SELECT endpoint_id, minute FROM endpoint_filtered WHERE minute < ? LIMIT ?)`, ms(before.Add(-time.Minute)), limit)
}

// JobsPurge deletes a batch of jobs that finished long ago.
func (db *DB) JobsPurge(ctx context.Context, before time.Time, limit int) (int, error) {
	return db.purge(ctx, `DELETE FROM jobs WHERE id IN (SELECT id FROM jobs
		WHERE status <> 'running' AND finished_at < ? LIMIT ?)`, ms(before), limit)
}

func (db *DB) purge(ctx context.Context, q string, args ...any) (int, error) {
	var n int64
	err := db.lightTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
