package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// EventsInsert writes events and their deliveries in one transaction (one fsync).
func (db *DB) EventsInsert(ctx context.Context, ws []*store.EventWrite) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		findKey, err := tx.PrepareContext(ctx, `SELECT id, type, payload, ordering_key, created_at FROM events WHERE org_id = ? AND idempotency_key = ?`)
		if err != nil {
			return err
		}
		defer findKey.Close()
		insEvent, err := tx.PrepareContext(ctx, `INSERT INTO events (id, org_id, type, payload, idempotency_key, ordering_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insEvent.Close()
		// The EXISTS guard skips endpoints deleted since fan-out was computed.
		insDelivery, err := tx.PrepareContext(ctx, `INSERT INTO deliveries (id, org_id, event_id, endpoint_id, status, attempts_count,
			next_attempt_at, deadline_at, created_at, updated_at)
			SELECT ?1, ?2, ?3, ?4, ?7, 0, ?8, ?6, ?5, ?5 WHERE EXISTS (SELECT 1 FROM endpoints WHERE id = ?4)`)
		if err != nil {
			return err
		}
		defer insDelivery.Close()
		for _, w := range ws {
			ev := w.Event
			w.Duplicate = false
			if ev.IdempotencyKey != "" {
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
					if _, err := tx.ExecContext(ctx, `UPDATE events SET idempotency_key = NULL WHERE id = ?`, prev.ID); err != nil {
						return err
					}
				}
			}
			if _, err := insEvent.ExecContext(ctx, ev.ID, ev.OrgID, ev.Type, []byte(ev.Payload), nullString(ev.IdempotencyKey),
				ev.OrderingKey, ms(ev.CreatedAt)); err != nil {
				return err
			}
			for _, d := range w.Deliveries {
				status, next := consign.StatusPending, ev.CreatedAt
				if !d.LeaseUntil.IsZero() {
					status, next = consign.StatusDelivering, d.LeaseUntil
				}
				if _, err := insDelivery.ExecContext(ctx, d.ID, ev.OrgID, ev.ID, d.EndpointID, ms(ev.CreatedAt), ms(d.Deadline),
					status, ms(next)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

const eventColumns = `id, org_id, type, payload, idempotency_key, ordering_key, created_at`

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
	e, err := scanEvent(db.r.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM events WHERE org_id = ? AND id = ?`, orgID, id))
	if err != nil {
		return nil, notFound(err, "event", id)
	}
	return e, nil
}

// EventList lists an org's events newest first.
func (db *DB) EventList(ctx context.Context, orgID string, f store.EventFilter) ([]*consign.Event, error) {
	q := `SELECT ` + eventColumns + ` FROM events WHERE org_id = ? AND id < ?`
	args := []any{orgID, cursor(f.Page)}
	if f.Type != "" {
		q += ` AND type = ?`
		args = append(args, f.Type)
	}
	rows, err := db.r.QueryContext(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, limit(f.Page))...)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanEvent)
}

// inList returns "?, ?, ?" for n values.
func inList(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
