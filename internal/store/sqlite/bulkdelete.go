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
// So the bulk goes first, in steps of at most deleteChunk rows, each in a write
// transaction of its own so that other writers get the lock in between; the DELETE of
// the endpoint's or org's row then takes what is left. A step goes through the owner's
// rows in id order from where the previous one stopped, up to the last id the owner had
// when the delete began: rows a step leaves are not looked at again, and rows that
// arrive meanwhile are the last DELETE's, so the steps end however fast new ones come.
// Deliveries being delivered (status 'delivering': leased, or held in a dispatcher's
// memory) are left to that last DELETE, which takes them with their endpoint, so an
// attempt in flight never finds its delivery gone while its endpoint is still there
// (the recorder drops the outcomes of endpoints that are gone); events that still have
// deliveries go with the org. A delete that fails or is canceled part-way has removed
// only what the deleted object would have taken with it; the object is still there, and
// deleting it again finishes the work.

// deleteChunk is the most rows a step deletes: a few milliseconds of the write lock on
// the project's machine, where an org's 300,000 queued deliveries and their events went
// in 2.5 s, writes meanwhile taking at most 35 ms (13.9 s, all writes held, in one
// statement).
const deleteChunk = 1000

// steps deletes one kind of row of one owner (an endpoint or an org) in steps.
type steps struct {
	// end returns the owner's last id (NULL: none); ?1 is the owner's id.
	end string
	// last returns the id of the step's last row: ?1 owner, ?2 the previous step's last
	// id, ?3 the chunk size, ?4 the end.
	last string
	// del deletes the step's rows: ?1 owner, ?2 the previous step's last id, ?3 this
	// step's.
	del string
}

var (
	endpointDeliveries = steps{
		end: `SELECT max(id) FROM deliveries INDEXED BY deliveries_endpoint WHERE endpoint_id = ?1`,
		last: `SELECT max(id) FROM (SELECT id FROM deliveries INDEXED BY deliveries_endpoint
			WHERE endpoint_id = ?1 AND id > ?2 AND id <= ?4 ORDER BY id LIMIT ?3)`,
		del: `DELETE FROM deliveries INDEXED BY deliveries_endpoint WHERE endpoint_id = ?1 AND id > ?2 AND id <= ?3
			AND status <> 'delivering'`,
	}
	orgDeliveries = steps{
		end: `SELECT max(id) FROM deliveries INDEXED BY deliveries_org WHERE org_id = ?1`,
		last: `SELECT max(id) FROM (SELECT id FROM deliveries INDEXED BY deliveries_org
			WHERE org_id = ?1 AND id > ?2 AND id <= ?4 ORDER BY id LIMIT ?3)`,
		del: `DELETE FROM deliveries INDEXED BY deliveries_org WHERE org_id = ?1 AND id > ?2 AND id <= ?3
			AND status <> 'delivering'`,
	}
	orgEvents = steps{
		end: `SELECT max(id) FROM events INDEXED BY events_org WHERE org_id = ?1`,
		last: `SELECT max(id) FROM (SELECT id FROM events INDEXED BY events_org
			WHERE org_id = ?1 AND id > ?2 AND id <= ?4 ORDER BY id LIMIT ?3)`,
		del: `DELETE FROM events INDEXED BY events_org WHERE org_id = ?1 AND id > ?2 AND id <= ?3
			AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)`,
	}
	sourceReceipts = steps{
		end: `SELECT max(id) FROM receipts INDEXED BY receipts_source WHERE source_id = ?1`,
		last: `SELECT max(id) FROM (SELECT id FROM receipts INDEXED BY receipts_source
			WHERE source_id = ?1 AND id > ?2 AND id <= ?4 ORDER BY id LIMIT ?3)`,
		del: `DELETE FROM receipts INDEXED BY receipts_source WHERE source_id = ?1 AND id > ?2 AND id <= ?3`,
	}
)

// deleteInSteps deletes owner's rows of each kind in steps, each in a write transaction
// of its own.
func (db *DB) deleteInSteps(ctx context.Context, owner string, kinds ...steps) error {
	for _, k := range kinds {
		var end sql.NullString
		if err := db.queryRow(ctx, k.end, owner).Scan(&end); err != nil {
			return translate(err)
		}
		for after := ""; end.Valid && after < end.String; {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := db.lightTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				var last sql.NullString
				if err := db.txQueryRow(ctx, tx, k.last, owner, after, db.chunk, end.String).Scan(&last); err != nil {
					return err
				}
				if !last.Valid { // nothing left before the end
					after = end.String
					return nil
				}
				if _, err := db.txExec(ctx, tx, k.del, owner, after, last.String); err != nil {
					return err
				}
				after = last.String
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteOrgInSteps deletes the bulk of what an org's row would take with it.
func (db *DB) deleteOrgInSteps(ctx context.Context, orgID string) error {
	if err := db.deleteInSteps(ctx, orgID, orgDeliveries, orgEvents); err != nil {
		return err
	}
	rows, err := db.query(ctx, `SELECT id FROM sources WHERE org_id = ?`, orgID)
	if err != nil {
		return translate(err)
	}
	sources, err := collect(rows, func(r interface{ Scan(...any) error }) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
	if err != nil {
		return err
	}
	for _, id := range sources {
		if err := db.deleteInSteps(ctx, id, sourceReceipts); err != nil {
			return err
		}
	}
	return nil
}
