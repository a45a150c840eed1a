package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Pausing and resuming. Deactivating an endpoint pauses its pending deliveries and
// activating it makes its paused ones due at once. An endpoint deactivated by its failure
// policy may hold millions, and one UPDATE of them all held the endpoint's row (FOR
// UPDATE) until it ended: every publish with a delivery to that endpoint waited for it,
// and with it everything else its node was writing in the same batch. The endpoint's row
// changes first (EndpointUpdate); its deliveries then follow in steps of bulkChunk, each
// in a transaction of its own, going through the endpoint's rows in id order (the index
// deliveries_endpoint: endpoint, status, id) from where the previous step stopped. Each
// step changes nothing once the endpoint's state is no longer the one it works for, so
// that a pause and a resume made one after the other end in the state of the later one.
// Deliveries written meanwhile take the endpoint's new state (EventsInsert). A pause or
// resume cut short (a crash, a canceled request) is finished by DeliveriesSettle.

// bulkChunk is the most rows a step pauses or resumes.
const bulkChunk = 1000

const (
	// pauseStep pauses up to $3 pending deliveries of endpoint $1 after id $2 while the
	// endpoint is inactive ($4: now); it returns the last id it looked at, how many it
	// looked at, and whether the endpoint is active (false once it is gone).
	pauseStep = `WITH step AS (
		SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'pending' AND id > $2 ORDER BY id LIMIT $3),
	changed AS (
		UPDATE deliveries d SET status = 'paused', updated_at = $4 FROM step
		WHERE d.id = step.id AND d.status = 'pending' AND NOT (SELECT active FROM endpoints WHERE id = $1))
	SELECT (SELECT max(id) FROM step), (SELECT count(*) FROM step), coalesce((SELECT active FROM endpoints WHERE id = $1), false)`
	// resumeStep makes up to $3 paused deliveries of endpoint $1 after id $2 due at $4
	// while the endpoint is active. Those waiting behind an unfinished delivery of their
	// key keep waiting; one whose key has none before it any more (retention deleted a
	// paused head with its event) is due with the rest.
	resumeStep = `WITH step AS (
		SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'paused' AND id > $2 ORDER BY id LIMIT $3),
	changed AS (
		UPDATE deliveries d SET status = 'pending', updated_at = $4,
			next_attempt_at = CASE WHEN d.next_attempt_at = ` + waitingSQL + ` AND EXISTS (SELECT 1 FROM deliveries p
				WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key AND p.ordering_key <> ''
				AND p.status IN ('pending', 'delivering', 'paused') AND p.sequence < d.sequence)
			THEN d.next_attempt_at ELSE $4 END
		FROM step WHERE d.id = step.id AND d.status = 'paused' AND (SELECT active FROM endpoints WHERE id = $1))
	SELECT (SELECT max(id) FROM step), (SELECT count(*) FROM step), coalesce((SELECT active FROM endpoints WHERE id = $1), false)`
	// discardStep cancels up to $3 paused deliveries of endpoint $1 after id $2 while the
	// endpoint is inactive ($4: now): an activation that discards what waited.
	discardStep = `WITH step AS (
		SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'paused' AND id > $2 ORDER BY id LIMIT $3),
	changed AS (
		UPDATE deliveries d SET status = 'cancelled', next_attempt_at = $4, updated_at = $4 FROM step
		WHERE d.id = step.id AND d.status = 'paused' AND NOT (SELECT active FROM endpoints WHERE id = $1))
	SELECT (SELECT max(id) FROM step), (SELECT count(*) FROM step), coalesce((SELECT active FROM endpoints WHERE id = $1), false)`
	// lockDiscardedKeys takes, in key order, the ordering_keys rows of the keyed
	// deliveries the next discardStep (same $1–$3) cancels: the trigger of migration 6
	// takes them as the step reaches each delivery, in the deliveries' order, while
	// ingest takes them in key order (see lockFinishingKeys). The first condition ends
	// the statement at once for an endpoint that never ordered by key.
	lockDiscardedKeys = `SELECT 1 FROM ordering_keys k
	WHERE EXISTS (SELECT 1 FROM ordering_keys WHERE endpoint_id = $1)
	AND k.endpoint_id = $1 AND k.ordering_key IN (SELECT ordering_key FROM (SELECT ordering_key FROM deliveries
		WHERE endpoint_id = $1 AND status = 'paused' AND id > $2 ORDER BY id LIMIT $3) s WHERE ordering_key <> '')
	ORDER BY k.ordering_key
	FOR UPDATE OF k`
)

// flipBacklog pauses (active false) or resumes the deliveries of endpoint id in steps.
func (db *DB) flipBacklog(ctx context.Context, id string, active bool, at time.Time) error {
	q := pauseStep
	if active {
		q = resumeStep
	}
	return db.stepBacklog(ctx, q, id, active, at)
}

// stepBacklog runs step (pauseStep, resumeStep, discardStep), which works while the
// endpoint's active is as given, until the steps reach the end or the endpoint's state
// moves on.
func (db *DB) stepBacklog(ctx context.Context, step, id string, active bool, at time.Time) error {
	for after := ""; ; {
		var last *string
		var seen int
		var now bool // whether the endpoint is active (false once it is gone)
		err := db.retryTx(ctx, func(tx pgx.Tx) error {
			if step == discardStep {
				if _, err := tx.Exec(ctx, lockDiscardedKeys, id, after, db.chunk); err != nil {
					return err
				}
			}
			return tx.QueryRow(ctx, step, id, after, db.chunk, ts(at)).Scan(&last, &seen, &now)
		})
		switch {
		case err != nil:
			return err
		case seen < db.chunk, now != active: // the end, or the endpoint's state moved on
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		after = *last
	}
}

// DeliveriesSettle finishes the pauses and resumes cut short: paused deliveries of active
// endpoints become due at now, pending ones of inactive endpoints are paused.
func (db *DB) DeliveriesSettle(ctx context.Context, now time.Time) (int, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, active FROM endpoints e WHERE
		EXISTS (SELECT 1 FROM deliveries WHERE endpoint_id = e.id
			AND status = CASE WHEN e.active THEN 'paused' ELSE 'pending' END)`)
	if err != nil {
		return 0, translate(err)
	}
	type flip struct {
		id     string
		active bool
	}
	var flips []flip
	var f flip
	if _, err := pgx.ForEachRow(rows, []any{&f.id, &f.active}, func() error { flips = append(flips, f); return nil }); err != nil {
		return 0, translate(err)
	}
	for _, f := range flips {
		if err := db.flipBacklog(ctx, f.id, f.active, now); err != nil {
			return 0, err
		}
	}
	return len(flips), nil
}
