package sqlite

import (
	"context"
	"database/sql"
)

// Deleting an endpoint or an org takes everything under it: deliveries, their attempts,
// events, receipts. One of them may hold a million queued deliveries, and a single
// cascading DELETE of those held the write lock — every publish, every recorded
// attempt, on every endpoint — for about 28 s on the project's machine, and journaled
// every page it touched (1.7 GB of memory, which the C allocator kept afterwards).
//
// So the bulk goes first, at most deleteChunk rows a transaction, each in a write
// transaction of its own so that other writers get the lock in between; the DELETE of
// the endpoint's or org's row then takes what is left. Deliveries being delivered
// (status 'delivering': leased, or held in a dispatcher's memory) are left to that last
// step, which takes them with their endpoint, so an attempt in flight never finds its
// delivery gone while its endpoint is still there (the recorder drops the outcomes of
// endpoints that are gone). Between the steps new deliveries may arrive; the last step
// takes them too. A delete that fails or is canceled part-way has removed only what
// the deleted object would have taken with it; the object is still there, and deleting
// it again finishes the work.

// deleteChunk is the most deliveries, events or receipts one step deletes: about
// 25–30 ms of the write lock on the project's machine (a delivery with its attempt).
const deleteChunk = 1000

// Each query deletes one chunk; ?1 is the endpoint's or org's id, ?2 the chunk size.
const (
	deleteEndpointDeliveries = `DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries INDEXED BY deliveries_endpoint
		WHERE endpoint_id = ?1 AND status <> 'delivering' LIMIT ?2)`
	deleteOrgDeliveries = `DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries INDEXED BY deliveries_org
		WHERE org_id = ?1 AND status <> 'delivering' LIMIT ?2)`
	// An event goes once no delivery refers to it; one that still has a delivery in
	// flight goes with the org.
	deleteOrgEvents = `DELETE FROM events WHERE rowid IN (SELECT rowid FROM events INDEXED BY events_org
		WHERE org_id = ?1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id) LIMIT ?2)`
	deleteOrgReceipts = `DELETE FROM receipts WHERE rowid IN (SELECT rowid FROM receipts
		WHERE source_id IN (SELECT id FROM sources WHERE org_id = ?1) LIMIT ?2)`
)

// deleteInChunks runs each query with id and db.chunk until it deletes fewer rows than
// that, each run in a write transaction of its own.
func (db *DB) deleteInChunks(ctx context.Context, id string, queries ...string) error {
	for _, q := range queries {
		for {
			var n int64
			err := db.lightTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				res, err := db.txExec(ctx, tx, q, id, db.chunk)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return err
			}
			if n < int64(db.chunk) {
				break
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}
