package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// EventsInsert writes events and their deliveries in one transaction (one fsync).
func (db *DB) EventsInsert(ctx context.Context, ws []*store.EventWrite) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rowids, err := db.deliveryRowids(ctx, tx, ws)
		if err != nil {
			return err
		}
		findKey, err := db.txPrepare(ctx, tx, `SELECT id, type, payload, ordering_key, created_at FROM events WHERE org_id = ? AND idempotency_key = ?`)
		if err != nil {
			return err
		}
		defer findKey.Close()
		insDelivery, err := db.txPrepare(ctx, tx, `INSERT INTO deliveries (rowid, id, org_id, event_id, endpoint_id, event_type,
			ordering_key, sequence, status, attempts_count, next_attempt_at, deadline_at, created_at, updated_at)
			VALUES (?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, ?11, ?11)`)
		if err != nil {
			return err
		}
		defer insDelivery.Close()
		// Most events have neither an idempotency nor an ordering key, and many no
		// business key: their rows bind fewer values (each bound value is a cgo call and
		// a copy), and the org, type and time they share with the other events of their
		// request once per statement (?1, ?2, ?3).
		withKey := db.newRows(tx, `INSERT INTO events (id, org_id, type, payload, idempotency_key, ordering_key, created_at, keys) VALUES `,
			`(?, ?, ?, ?, ?, ?, ?, ?)`, 8)
		keyed := db.newSharedRows(tx, `INSERT INTO events (id, org_id, type, payload, ordering_key, created_at, keys) VALUES `,
			`(?, ?1, ?2, ?, '', ?3, ?)`, 3, 3)
		keyed.after = withKey
		plain := db.newSharedRows(tx, `INSERT INTO events (id, org_id, type, payload, ordering_key, created_at) VALUES `,
			`(?, ?1, ?2, ?, '', ?3)`, 3, 2)
		plain.after = keyed
		deliveries := db.newRows(tx, `INSERT INTO deliveries (rowid, id, org_id, event_id, endpoint_id, event_type, ordering_key,
			sequence, status, attempts_count, next_attempt_at, deadline_at, created_at, updated_at) VALUES `,
			`(?, ?, ?, ?, ?, ?, '', 0, ?, 0, ?, ?, ?, ?)`, 11)
		deliveries.after = plain
		// flush writes what is buffered, events first (withKey, keyed, plain, then
		// deliveries, by their after links): deliveries refer to events, and the rows
		// that follow may look at them (idempotency keys, coalescing, sequences).
		flush := func() error { return deliveries.flush(ctx) }
		// The business keys go into each event's row (events.keys, which the trigger
		// event_keys_delete reads) and into the index, a row per key; the index's rows
		// share their org with those around them.
		keyRows := db.newSharedRows(tx, `INSERT OR IGNORE INTO event_keys (org_id, key, event_id) VALUES `, `(?1, ?, ?)`, 1, 2)
		for _, w := range ws {
			ev := w.Event
			w.Duplicate = false
			if ev.IdempotencyKey != "" {
				if err := flush(); err != nil {
					return err
				}
				var prev consign.Event
				var created int64
				err := findKey.QueryRowContext(ctx, ev.OrgID, ev.IdempotencyKey).Scan(&prev.ID, &prev.Type, &prev.Payload, &prev.OrderingKey, &created)
				switch {
				case err == sql.ErrNoRows:
				case err != nil:
					return err
				case ev.CreatedAt.Sub(fromMS(created)) < consign.IdempotencyWindow:
					prev.OrgID, prev.IdempotencyKey, prev.CreatedAt = ev.OrgID, ev.IdempotencyKey, fromMS(created)
					*ev = prev
					w.Duplicate = true
					continue
				default: // the key's window has passed: it may be used again
					if _, err := db.txExec(ctx, tx, `UPDATE events SET idempotency_key = NULL WHERE id = ?`, prev.ID); err != nil {
						return err
					}
				}
			}
			// The event's values go into its row and each of its deliveries' rows: made
			// into interface values once, not once per row.
			evID, orgID, typ, created := any(ev.ID), any(ev.OrgID), any(ev.Type), any(ms(ev.CreatedAt))
			shared := [...]any{orgID, typ, created}
			var err error
			switch keys := keysColumn(w.Keys); {
			case ev.IdempotencyKey != "" || ev.OrderingKey != "":
				err = withKey.add(ctx, evID, orgID, typ, []byte(ev.Payload), nullString(ev.IdempotencyKey), ev.OrderingKey, created, keys)
			case keys != nil:
				err = keyed.addShared(ctx, shared[:], evID, []byte(ev.Payload), keys)
			default:
				err = plain.addShared(ctx, shared[:], evID, []byte(ev.Payload))
			}
			if err != nil {
				return err
			}
			for _, k := range w.Keys[:min(len(w.Keys), maxIndexedKeys)] {
				if err := keyRows.addShared(ctx, shared[:1], k, evID); err != nil {
					return err
				}
			}
			for i := range w.Deliveries {
				d := &w.Deliveries[i]
				rowid, err := rowids.next(d.EndpointID)
				switch {
				case errors.Is(err, errGone):
					continue // deleted since fan-out was computed
				case err != nil:
					return err
				}
				status, next := consign.StatusPending, ev.CreatedAt
				switch d.Paused = rowids.inactive[d.EndpointID]; {
				case d.Paused:
					status = consign.StatusPaused
				case !d.LeaseUntil.IsZero():
					status, next = consign.StatusDelivering, d.LeaseUntil
				}
				if d.OrderingKey == "" {
					if err := deliveries.add(ctx, rowid, d.ID, orgID, evID, d.EndpointID, typ, status, ms(next),
						ms(d.Deadline), created, created); err != nil {
						return err
					}
					continue
				}
				if err := flush(); err != nil {
					return err
				}
				if err := db.insertDelivery(ctx, tx, insDelivery, ev, d, status, next, rowid); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		if err := keyRows.flush(ctx); err != nil {
			return err
		}
		for _, c := range store.FilteredCounts(ws) {
			if _, err := db.txExec(ctx, tx, `INSERT INTO endpoint_filtered (endpoint_id, minute, count) VALUES (?, ?, ?)
				ON CONFLICT (endpoint_id, minute) DO UPDATE SET count = count + excluded.count`, c.EndpointID, ms(c.Minute), c.N); err != nil {
				return err
			}
		}
		return nil
	})
}

// insertDelivery writes one new delivery in status, due at next, superseding what it
// coalesces and taking the next sequence number of its key when it is ordered.
func (db *DB) insertDelivery(ctx context.Context, tx *sql.Tx, ins *sql.Stmt, ev *consign.Event, d *store.NewDelivery,
	status string, next time.Time, rowid int64) error {
	if d.Coalesce && d.OrderingKey != "" {
		if _, err := db.txExec(ctx, tx, supersedeSQL, ms(ev.CreatedAt), d.EndpointID, d.OrderingKey, ev.Type); err != nil {
			return err
		}
	}
	var seq int64
	if d.Ordered && d.OrderingKey != "" {
		err := db.txQueryRow(ctx, tx, `INSERT INTO ordering_keys (endpoint_id, ordering_key, last_sequence) VALUES (?1, ?2, 1)
			ON CONFLICT (endpoint_id, ordering_key) DO UPDATE SET last_sequence = last_sequence + 1
			RETURNING last_sequence`, d.EndpointID, d.OrderingKey).Scan(&seq)
		if err != nil {
			return err
		}
		var behind bool
		if err := db.txQueryRow(ctx, tx, behindSQL, d.EndpointID, d.OrderingKey, seq).Scan(&behind); err != nil {
			return err
		}
		if behind {
			next = fromMS(waiting)
		}
	}
	_, err := ins.ExecContext(ctx, d.ID, ev.OrgID, ev.ID, d.EndpointID, ev.Type, d.OrderingKey, seq, status, ms(next),
		ms(d.Deadline), ms(ev.CreatedAt), rowid)
	return err
}

const eventColumns = `id, org_id, type, payload, idempotency_key, ordering_key, created_at`

// eventColumnsE are eventColumns of the table named e.
const eventColumnsE = `e.id, e.org_id, e.type, e.payload, e.idempotency_key, e.ordering_key, e.created_at`

// eventsByKeySQL selects an org's events by business key below a cursor, walking the
// key's index rows (CROSS JOIN keeps them the outer loop) in ID order.
const eventsByKeySQL = `SELECT ` + eventColumnsE + ` FROM event_keys k CROSS JOIN events e ON e.id = k.event_id
	WHERE k.org_id = ? AND k.key = ? AND k.event_id < ?`

func scanEvent(row interface{ Scan(...any) error }) (*consign.Event, error) {
	var e consign.Event
	var payload []byte
	var key sql.NullString
	var created int64
	if err := row.Scan(&e.ID, &e.OrgID, &e.Type, &payload, &key, &e.OrderingKey, &created); err != nil {
		return nil, err
	}
	e.Payload, e.IdempotencyKey, e.CreatedAt = json.RawMessage(payload), key.String, fromMS(created)
	return &e, nil
}

// EventGet returns one event.
func (db *DB) EventGet(ctx context.Context, orgID, id string) (*consign.Event, error) {
	e, err := scanEvent(db.queryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE org_id = ? AND id = ?`, orgID, id))
	if err != nil {
		return nil, notFound(err, "event", id)
	}
	return e, nil
}

// EventList lists an org's events newest first.
func (db *DB) EventList(ctx context.Context, orgID string, f store.EventFilter) ([]*consign.Event, error) {
	q := `SELECT ` + eventColumns + ` FROM events WHERE org_id = ? AND id < ?`
	args := []any{orgID, f.Page.Below()}
	if f.Key != "" {
		// Through the key index, newest first: the events table is read only for the
		// rows of the page (and those of other types, with a type filter).
		q = eventsByKeySQL
		args = []any{orgID, f.Key, f.Page.Below()}
		if f.Type != "" {
			q += ` AND e.type = ?`
			args = append(args, f.Type)
		}
		rows, err := db.query(ctx, q+` ORDER BY k.event_id DESC LIMIT ?`, append(args, f.Page.Size())...)
		if err != nil {
			return nil, translate(err)
		}
		return collect(rows, scanEvent)
	}
	if f.Type != "" {
		q += ` AND type = ?`
		args = append(args, f.Type)
	}
	rows, err := db.query(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, f.Page.Size())...)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanEvent)
}

// inList returns "?, ?, ?" for n values.
func inList(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// The business-key index (event_keys, migrations 00015 and 00017) holds a row per key
// of an event, (org_id, key, event_id), in a table whose primary key is its one B-tree.
// The keys themselves are recorded in their event's row (events.keys, a JSON array), so
// that nothing else points from a key row to its event: the index rows are written with
// their events, in multi-row statements that bind a key and its event's id per row (the
// org once per statement; binding two short strings costs less than reading the rows
// back through json_each did), and emptied by the trigger event_keys_delete, which finds an event's key rows by primary key from
// what its row records whenever the row goes (retention, an org's deletion). With no
// other index and no foreign key, a key row costs one B-tree insertion; ordered by key,
// the rows of keys that grow with time (order numbers) are appended where the last
// ones went rather than spread over the tree as hashed keys would be
// (docs/decisions.md, "The business-key index on SQLite").

// maxIndexedKeys is how many of an event's keys the index holds (bizkey keeps no
// more): event_keys_delete finds each by its place in events.keys, one primary-key
// lookup for each of the 16 places, because a lookup through a list (key IN (SELECT …
// json_each)) builds a temporary table every time the trigger runs, once for each
// event deleted.
const maxIndexedKeys = 16

// keysColumn is the events.keys value of an event's business keys: a JSON array of
// strings (text: json_each reads a blob as JSONB), NULL when it has none. It is built on
// the committer's path, once per event: keys are valid UTF-8 (bizkey finds no other), and
// those are quoted here, escaping only what JSON requires, without encoding/json's
// reflection; any other goes through encoding/json.
func keysColumn(keys []string) any {
	if len(keys) == 0 {
		return nil
	}
	b := make([]byte, 0, 64)
	b = append(b, '[')
	for i, k := range keys {
		if !utf8.ValidString(k) {
			return string(appendStrings(nil, keys))
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
	}
	return string(append(b, ']'))
}

// appendJSONString appends the valid UTF-8 string s as a JSON string: quote, backslash
// and control characters escaped, everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
