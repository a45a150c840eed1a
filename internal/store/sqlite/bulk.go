package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// Changes that reach an endpoint's or org's whole backlog go in steps, so that no one of
// them holds the write lock for long: deleting (below) and pausing or resuming
// (flipBacklog).
//
// Deleting an endpoint or an org takes everything under it: deliveries, their attempts,
// events, receipts. One of them may hold a million queued deliveries, and a single
// cascading DELETE of those held the write lock — every publish, every recorded
// attempt, on every endpoint — for about 28 s on the project's machine, and journaled
// every page it touched (1.7 GB of memory, which the C allocator kept afterwards).
//
// So the bulk goes first, in steps of at most bulkChunk rows, each in a write
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

// bulkChunk is the most rows a step deletes, pauses or resumes: a few milliseconds of
// the write lock on the project's machine, where an org's 300,000 queued deliveries and
// their events were deleted in 2.5 s, writes meanwhile taking at most 35 ms (13.9 s, all
// writes held, in one statement).
const bulkChunk = 1000

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

// stepsOf is the steps through table's rows of an owner, by index (owner column, id);
// keep, when not empty, is a condition a row must meet to be deleted.
func stepsOf(table, index, ownerColumn, keep string) steps {
	from := table + ` INDEXED BY ` + index + ` WHERE ` + ownerColumn + ` = ?1`
	k := steps{
		end:  `SELECT max(id) FROM ` + from,
		last: `SELECT max(id) FROM (SELECT id FROM ` + from + ` AND id > ?2 AND id <= ?4 ORDER BY id LIMIT ?3)`,
		del:  `DELETE FROM ` + from + ` AND id > ?2 AND id <= ?3`,
	}
	if keep != "" {
		k.del += ` AND ` + keep
	}
	return k
}

var (
	endpointDeliveries = stepsOf("deliveries", "deliveries_endpoint", "endpoint_id", `status <> 'delivering'`)
	orgDeliveries      = stepsOf("deliveries", "deliveries_org", "org_id", `status <> 'delivering'`)
	// An event goes once no delivery refers to it.
	orgEvents      = stepsOf("events", "events_org", "org_id", `NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)`)
	sourceReceipts = stepsOf("receipts", "receipts_source", "source_id", "")
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
	sources, err := collect(rows, scanString)
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

// Pausing and resuming. Deactivating an endpoint pauses its pending deliveries and
// activating it makes its paused ones due at once; an endpoint deactivated by its failure
// policy has been failing for days and may hold millions, which one UPDATE flipped under
// the write lock (300,000 in 0.9 s, every write waiting). The endpoint's row changes
// first (EndpointUpdate); its deliveries then follow in steps (300,000 paused in 1.2 s
// and resumed in 1.4 s, writes meanwhile taking at most 36 ms), each step changing
// nothing once the endpoint's state is no longer the one it works for, so that a pause
// and a resume made one after the other end in the state of the later one. Deliveries
// written meanwhile take the endpoint's new state (EventsInsert reads it). A delivery
// still pending on an inactive endpoint meanwhile is paused when an attempt finds the
// endpoint inactive; one still paused on an active endpoint would wait for nothing. A
// pause or resume cut short (a crash, a canceled request) is finished when the store
// opens and whenever DeliveriesSettle runs.

const (
	// pauseStep pauses up to ?2 pending deliveries of endpoint ?1 while it is inactive
	// (?3: now). Paused rows leave deliveries_due, so each step starts at the first
	// pending row left.
	pauseStep = `UPDATE deliveries SET status = 'paused', updated_at = ?3 WHERE rowid IN (
		SELECT rowid FROM deliveries INDEXED BY deliveries_due
		WHERE endpoint_id = ?1 AND status IN ('pending', 'delivering') AND status = 'pending' LIMIT ?2)
		AND (SELECT active FROM endpoints WHERE id = ?1) = 0`
	// resumeStep makes up to ?2 paused deliveries of endpoint ?1 due at ?3 while it is
	// active. Those waiting behind an unfinished delivery of their key keep waiting; one
	// whose key has none before it any more (retention deleted a paused head with its
	// event) is due with the rest. The search goes through deliveries_unsent
	// (endpoint_id, status, id), so a step takes the oldest paused ones (an ORDER BY
	// would sort every paused row each step: 300,000 resumed in 7.2 s instead of 1.4),
	// and resumed rows leave that part of the index.
	resumeStep = `UPDATE deliveries SET status = 'pending',
		next_attempt_at = CASE WHEN next_attempt_at = ` + waitingSQL + ` AND ` + behindOwnKey + ` THEN next_attempt_at ELSE ?3 END,
		updated_at = ?3
		WHERE rowid IN (SELECT rowid FROM deliveries INDEXED BY deliveries_unsent
			WHERE endpoint_id = ?1 AND ` + unsent + ` AND status = 'paused' LIMIT ?2)
		AND (SELECT active FROM endpoints WHERE id = ?1) = 1`
	// discardStep cancels up to ?2 (-1: every) paused deliveries of endpoint ?1 while it
	// is inactive (?3: now): an activation that discards what waited (EndpointUpdate).
	discardStep = `UPDATE deliveries SET status = 'cancelled', next_attempt_at = ?3, updated_at = ?3
		WHERE rowid IN (SELECT rowid FROM deliveries INDEXED BY deliveries_unsent
			WHERE endpoint_id = ?1 AND ` + unsent + ` AND status = 'paused' LIMIT ?2)
		AND (SELECT active FROM endpoints WHERE id = ?1) = 0`
	// behindOwnKey says whether the delivery being updated has an unfinished one of its
	// key before it.
	behindOwnKey = `EXISTS (SELECT 1 FROM deliveries p INDEXED BY deliveries_key
		WHERE p.endpoint_id = deliveries.endpoint_id AND p.ordering_key = deliveries.ordering_key AND p.ordering_key <> ''
		AND p.status IN ('pending', 'delivering', 'paused') AND p.sequence < deliveries.sequence)`
)

// flipBacklog pauses (active false) or resumes the deliveries of endpoint id in steps.
func (db *DB) flipBacklog(ctx context.Context, id string, active bool, at time.Time) error {
	q := pauseStep
	if active {
		q = resumeStep
	}
	return db.stepBacklog(ctx, q, id, at)
}

// stepBacklog runs step (pauseStep, resumeStep, discardStep) for endpoint id until it
// changes fewer rows than a step may.
func (db *DB) stepBacklog(ctx context.Context, q, id string, at time.Time) error {
	for {
		var n int64
		err := db.lightTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			res, err := db.txExec(ctx, tx, q, id, db.chunk, ms(at))
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil || n < int64(db.chunk) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// DeliveriesSettle finishes the pauses and resumes cut short: paused deliveries of active
// endpoints become due at now, pending ones of inactive endpoints are paused.
func (db *DB) DeliveriesSettle(ctx context.Context, now time.Time) (int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, active FROM endpoints e WHERE
		(active = 1 AND EXISTS (SELECT 1 FROM deliveries INDEXED BY deliveries_unsent
			WHERE endpoint_id = e.id AND `+unsent+` AND status = 'paused'))
		OR (active = 0 AND EXISTS (SELECT 1 FROM deliveries INDEXED BY deliveries_due
			WHERE endpoint_id = e.id AND status IN ('pending', 'delivering') AND status = 'pending'))`)
	if err != nil {
		return 0, translate(err)
	}
	type flip struct {
		id     string
		active bool
	}
	flips, err := collect(rows, func(r interface{ Scan(...any) error }) (flip, error) {
		var f flip
		return f, r.Scan(&f.id, &f.active)
	})
	if err != nil {
		return 0, err
	}
	for _, f := range flips {
		if err := db.flipBacklog(ctx, f.id, f.active, now); err != nil {
			return 0, err
		}
	}
	return len(flips), nil
}
