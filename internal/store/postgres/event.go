package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

var (
	eventCopyColumns    = []string{"id", "org_id", "type", "payload", "idempotency_key", "ordering_key", "created_at"}
	keyCopyColumns      = []string{"org_id", "key", "event_id"}
	deliveryCopyColumns = []string{"id", "org_id", "event_id", "endpoint_id", "event_type", "ordering_key", "sequence",
		"status", "attempts_count", "next_attempt_at", "deadline_at", "created_at", "updated_at"}
)

// EventsInsert writes events and their deliveries in one transaction. Plain rows are
// written with COPY, a batch at a time; rows that look at what came before them
// (idempotency keys, coalescing, sequences) flush the buffer first. Two nodes inserting
// one idempotency key at once: the second waits for the first, fails on the unique index
// and runs again, finding the first's event.
func (db *DB) EventsInsert(ctx context.Context, ws []*store.EventWrite) error {
	return db.retryTx(ctx, func(tx pgx.Tx) error {
		exists, err := existingEndpoints(ctx, tx, ws)
		if err != nil {
			return err
		}
		if err := lockOrderingKeys(ctx, tx, ws, exists); err != nil {
			return err
		}
		var events, deliveries, keys [][]any
		flush := func() error {
			if len(events) > 0 {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, eventCopyColumns, pgx.CopyFromRows(events)); err != nil {
					return err
				}
				events = events[:0]
			}
			if len(keys) > 0 {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"event_keys"}, keyCopyColumns, pgx.CopyFromRows(keys)); err != nil {
					return err
				}
				keys = keys[:0]
			}
			if len(deliveries) > 0 {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"deliveries"}, deliveryCopyColumns, pgx.CopyFromRows(deliveries)); err != nil {
					return err
				}
				deliveries = deliveries[:0]
			}
			return nil
		}
		for _, w := range ws {
			ev := w.Event
			w.Duplicate = false
			if ev.IdempotencyKey != "" {
				if err := flush(); err != nil {
					return err
				}
				dup, err := idempotent(ctx, tx, ev)
				if err != nil {
					return err
				}
				if dup {
					w.Duplicate = true
					continue
				}
			}
			created := ts(ev.CreatedAt)
			events = append(events, []any{ev.ID, ev.OrgID, ev.Type, []byte(ev.Payload), nullString(ev.IdempotencyKey), ev.OrderingKey, created})
			for _, k := range w.Keys {
				keys = append(keys, []any{ev.OrgID, k, ev.ID})
			}
			for i := range w.Deliveries {
				d := &w.Deliveries[i]
				active, ok := exists[d.EndpointID]
				if !ok {
					continue // deleted since fan-out was computed
				}
				status, next := consign.StatusPending, created
				switch d.Paused = !active; {
				case d.Paused:
					status = consign.StatusPaused
				case !d.LeaseUntil.IsZero():
					status, next = consign.StatusDelivering, ts(d.LeaseUntil)
				}
				if d.OrderingKey == "" {
					deliveries = append(deliveries, []any{d.ID, ev.OrgID, ev.ID, d.EndpointID, ev.Type, "", int64(0), status, int32(0),
						next, ts(d.Deadline), created, created})
					continue
				}
				if err := flush(); err != nil {
					return err
				}
				if err := insertKeyed(ctx, tx, ev, d, status, next); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		for _, c := range store.FilteredCounts(ws) {
			if _, err := tx.Exec(ctx, `INSERT INTO endpoint_filtered (endpoint_id, minute, count) VALUES ($1, $2, $3)
				ON CONFLICT (endpoint_id, minute) DO UPDATE SET count = endpoint_filtered.count + excluded.count`,
				c.EndpointID, c.Minute, c.N); err != nil {
				return err
			}
		}
		return nil
	})
}

// idempotent reports whether ev's idempotency key was used in its org within the window;
// if so, *ev becomes the first event. A key whose window has passed is released.
func idempotent(ctx context.Context, tx pgx.Tx, ev *consign.Event) (bool, error) {
	var prev consign.Event
	var payload []byte
	err := tx.QueryRow(ctx, `SELECT id, type, payload, ordering_key, created_at FROM events WHERE org_id = $1 AND idempotency_key = $2`,
		ev.OrgID, ev.IdempotencyKey).Scan(&prev.ID, &prev.Type, &payload, &prev.OrderingKey, &prev.CreatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	case ev.CreatedAt.Sub(prev.CreatedAt) < consign.IdempotencyWindow:
		prev.OrgID, prev.IdempotencyKey, prev.CreatedAt = ev.OrgID, ev.IdempotencyKey, prev.CreatedAt.UTC()
		prev.Payload = json.RawMessage(payload)
		*ev = prev
		return true, nil
	default: // the key's window has passed: it may be used again
		_, err := tx.Exec(ctx, `UPDATE events SET idempotency_key = NULL WHERE id = $1`, prev.ID)
		return false, err
	}
}

// existingEndpoints returns which of the batch's endpoints still exist, each with whether
// it is active, and keeps them from being deleted or (de)activated until the transaction
// ends: EndpointUpdate takes the row FOR UPDATE, which waits for FOR KEY SHARE, and a
// FOR KEY SHARE that waited for it reads the row as that update left it. So a delivery
// is written either before a change of the endpoint's state (and the steps that follow
// the change find it) or after it, in the new state.
func existingEndpoints(ctx context.Context, tx pgx.Tx, ws []*store.EventWrite) (map[string]bool, error) {
	ids := store.EndpointIDs(ws)
	exists := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return exists, nil
	}
	rows, err := tx.Query(ctx, `SELECT id, active FROM endpoints WHERE id = ANY($1) FOR KEY SHARE`, ids)
	if err != nil {
		return nil, err
	}
	var id string
	var active bool
	_, err = pgx.ForEachRow(rows, []any{&id, &active}, func() error { exists[id] = active; return nil })
	return exists, err
}

// lockOrderingKeys takes the ordering_keys rows of the batch's ordered deliveries, in
// key order, creating those that are new (their first delivery then takes sequence 1).
// The batch's deliveries take them again in event order, as their sequence numbers must
// follow the events; taken in that order first, two nodes' batches (or a batch and the
// outcomes that finish deliveries of the same keys, see lockFinishingKeys) would wait on
// each other in a cycle, which PostgreSQL breaks only after deadlock_timeout (a second)
// by aborting one of them.
func lockOrderingKeys(ctx context.Context, tx pgx.Tx, ws []*store.EventWrite, exists map[string]bool) error {
	type key struct{ endpoint, key string }
	seen := map[key]bool{}
	var endpoints, keys []string
	for _, w := range ws {
		for _, d := range w.Deliveries {
			k := key{d.EndpointID, d.OrderingKey}
			if _, ok := exists[d.EndpointID]; !d.Ordered || d.OrderingKey == "" || !ok || seen[k] {
				continue
			}
			seen[k] = true
			endpoints, keys = append(endpoints, k.endpoint), append(keys, k.key)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO ordering_keys (endpoint_id, ordering_key, last_sequence)
		SELECT e, k, 0 FROM unnest($1::text[], $2::text[]) AS u(e, k) ORDER BY e, k
		ON CONFLICT (endpoint_id, ordering_key) DO UPDATE SET last_sequence = ordering_keys.last_sequence`, endpoints, keys)
	return err
}

// insertKeyed writes one delivery that has an ordering key, superseding what it
// coalesces and taking the next sequence number of its key when it is ordered.
func insertKeyed(ctx context.Context, tx pgx.Tx, ev *consign.Event, d *store.NewDelivery, status string, next any) error {
	created := ts(ev.CreatedAt)
	if d.Coalesce {
		// The conditions of the partial index deliveries_key (a keyed delivery's key is
		// never empty; superseded ones are unfinished), spelled out so that even a generic
		// plan uses it rather than the endpoint's every row.
		// Those waiting while the endpoint is inactive (paused) are superseded too: after
		// an outage only the newest of a key is sent.
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'superseded', updated_at = $1
			WHERE endpoint_id = $2 AND ordering_key = $3 AND ordering_key <> '' AND status IN ('pending', 'delivering', 'paused')
			AND event_type = $4 AND status IN ('pending', 'paused') AND attempts_count = 0`,
			created, d.EndpointID, d.OrderingKey, ev.Type); err != nil {
			return err
		}
	}
	var seq int64
	if d.Ordered {
		// The upsert locks the key's row until the transaction ends: concurrent writers of
		// one key take numbers in turn, and the trigger that makes a key's next delivery
		// due waits for them (migration 6).
		err := tx.QueryRow(ctx, `INSERT INTO ordering_keys (endpoint_id, ordering_key, last_sequence) VALUES ($1, $2, 1)
			ON CONFLICT (endpoint_id, ordering_key) DO UPDATE SET last_sequence = ordering_keys.last_sequence + 1
			RETURNING last_sequence`, d.EndpointID, d.OrderingKey).Scan(&seq)
		if err != nil {
			return err
		}
	}
	// A delivery behind an unfinished one of its key waits (no due time) until the
	// trigger makes it due. The check runs after the upsert took the key's row (a later
	// statement, with a snapshot of its own), so it sees a head that finished meanwhile.
	_, err := tx.Exec(ctx, `INSERT INTO deliveries (id, org_id, event_id, endpoint_id, event_type, ordering_key, sequence, status,
		attempts_count, next_attempt_at, deadline_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7::bigint, $8, 0, CASE WHEN $7::bigint > 0 AND EXISTS (SELECT 1 FROM deliveries p
			WHERE p.endpoint_id = $4 AND p.ordering_key = $6 AND p.ordering_key <> ''
			AND p.status IN ('pending', 'delivering', 'paused') AND p.sequence < $7::bigint)
		THEN `+waitingSQL+` ELSE $9::timestamptz END, $10, $11, $11)`,
		d.ID, ev.OrgID, ev.ID, d.EndpointID, ev.Type, d.OrderingKey, seq, status, next, ts(d.Deadline), created)
	return err
}

const eventColumns = `id, org_id, type, payload, idempotency_key, ordering_key, created_at`

// eventColumnsE are eventColumns of the table named e.
const eventColumnsE = `e.id, e.org_id, e.type, e.payload, e.idempotency_key, e.ordering_key, e.created_at`

func scanEvent(row scanner) (*consign.Event, error) {
	var e consign.Event
	var payload []byte
	var key *string
	if err := row.Scan(&e.ID, &e.OrgID, &e.Type, &payload, &key, &e.OrderingKey, &e.CreatedAt); err != nil {
		return nil, err
	}
	e.Payload, e.CreatedAt = json.RawMessage(payload), e.CreatedAt.UTC()
	if key != nil {
		e.IdempotencyKey = *key
	}
	return &e, nil
}

// EventGet returns one event.
func (db *DB) EventGet(ctx context.Context, orgID, id string) (*consign.Event, error) {
	e, err := scanEvent(db.pool.QueryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE org_id = $1 AND id = $2`, orgID, id))
	if err != nil {
		return nil, notFound(err, "event", id)
	}
	return e, nil
}

// EventList lists an org's events newest first.
func (db *DB) EventList(ctx context.Context, orgID string, f store.EventFilter) ([]*consign.Event, error) {
	if f.Key != "" {
		// Through the key index, newest first: the events table is read only for the
		// rows of the page (and those of other types, with a type filter).
		rows, err := db.pool.Query(ctx, `SELECT `+eventColumnsE+` FROM event_keys k JOIN events e ON e.id = k.event_id
			WHERE k.org_id = $1 AND k.key = $2 AND k.event_id < $3 AND ($4 = '' OR e.type = $4)
			ORDER BY k.event_id DESC LIMIT $5`, orgID, f.Key, f.Page.Below(), f.Type, f.Page.Size())
		return collect(rows, err, scanEvent)
	}
	rows, err := db.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE org_id = $1 AND id < $2
		AND ($3 = '' OR type = $3) ORDER BY id DESC LIMIT $4`, orgID, f.Page.Below(), f.Type, f.Page.Size())
	return collect(rows, err, scanEvent)
}
