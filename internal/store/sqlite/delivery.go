package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

const deliveryColumns = `d.id, d.org_id, d.event_id, d.endpoint_id, e.type, d.status, d.attempts_count, d.next_attempt_at, d.created_at, d.updated_at`

func scanDelivery(row interface{ Scan(...any) error }) (*consign.Delivery, error) {
	var d consign.Delivery
	var next, created, updated int64
	if err := row.Scan(&d.ID, &d.OrgID, &d.EventID, &d.EndpointID, &d.EventType, &d.Status, &d.AttemptsCount, &next, &created, &updated); err != nil {
		return nil, err
	}
	if d.Status == consign.StatusPending {
		t := fromMS(next)
		d.NextAttemptAt = &t
	}
	d.CreatedAt, d.UpdatedAt = fromMS(created), fromMS(updated)
	return &d, nil
}

// DeliveryList lists an org's deliveries newest first.
func (db *DB) DeliveryList(ctx context.Context, orgID string, f store.DeliveryFilter) ([]*consign.Delivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.org_id = ? AND d.id < ?`
	args := []any{orgID, cursor(f.Page)}
	if f.EndpointID != "" {
		q += ` AND d.endpoint_id = ?`
		args = append(args, f.EndpointID)
	}
	if f.EventID != "" {
		q += ` AND d.event_id = ?`
		args = append(args, f.EventID)
	}
	if f.Status != "" {
		q += ` AND d.status = ?`
		args = append(args, f.Status)
	}
	rows, err := db.r.QueryContext(ctx, q+` ORDER BY d.id DESC LIMIT ?`, append(args, limit(f.Page))...)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanDelivery)
}

// DeliveryGet returns a delivery with its attempts.
func (db *DB) DeliveryGet(ctx context.Context, orgID, id string) (*consign.Delivery, error) {
	d, err := scanDelivery(db.r.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries d JOIN events e ON e.id = d.event_id
		WHERE d.org_id = ? AND d.id = ?`, orgID, id))
	if err != nil {
		return nil, notFound(err, "delivery", id)
	}
	rows, err := db.r.QueryContext(ctx, `SELECT n, started_at, duration_ms, request, response_status, response_headers,
		response_body, response_truncated, error FROM attempts WHERE delivery_id = ? ORDER BY n`, id)
	if err != nil {
		return nil, translate(err)
	}
	d.Attempts = []consign.Attempt{}
	attempts, err := collect(rows, scanAttempt)
	for _, a := range attempts {
		d.Attempts = append(d.Attempts, *a)
	}
	return d, err
}

func scanAttempt(row interface{ Scan(...any) error }) (*consign.Attempt, error) {
	var a consign.Attempt
	var started int64
	var req string
	var status sql.NullInt64
	var headers sql.NullString
	var body []byte
	var truncated bool
	var errText sql.NullString
	if err := row.Scan(&a.N, &started, &a.DurationMS, &req, &status, &headers, &body, &truncated, &errText); err != nil {
		return nil, err
	}
	a.StartedAt = fromMS(started)
	if err := json.Unmarshal([]byte(req), &a.Request); err != nil {
		return nil, err
	}
	if status.Valid {
		a.Response = &consign.AttemptResponse{Status: int(status.Int64), Body: string(body), Truncated: truncated}
		if headers.Valid {
			if err := json.Unmarshal([]byte(headers.String), &a.Response.Headers); err != nil {
				return nil, err
			}
		}
	}
	if errText.Valid {
		a.Error = &errText.String
	}
	return &a, nil
}

// DeliveryRequeue makes one delivery due now.
func (db *DB) DeliveryRequeue(ctx context.Context, orgID, id string, now, deadline time.Time) (*consign.Delivery, error) {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, deadline_at = ?, updated_at = ?
			WHERE org_id = ? AND id = ?`, ms(now), ms(deadline), ms(now), orgID, id)
		return mustAffect(res, err, "delivery", id)
	})
	if err != nil {
		return nil, err
	}
	return db.DeliveryGet(ctx, orgID, id)
}

// DeliveriesRecover requeues an endpoint's matching deliveries.
func (db *DB) DeliveriesRecover(ctx context.Context, p store.RecoverParams) (int, error) {
	statuses := p.Statuses
	if len(statuses) == 0 {
		statuses = []string{consign.StatusFailed}
	}
	until := p.Until
	if until.IsZero() {
		until = p.Now
	}
	q := `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, deadline_at = ?, updated_at = ?
		WHERE org_id = ? AND endpoint_id = ? AND created_at >= ? AND created_at <= ? AND status IN (` + inList(len(statuses)) + `)`
	args := []any{ms(p.Now), ms(p.Deadline), ms(p.Now), p.OrgID, p.EndpointID, ms(p.Since), ms(until)}
	for _, s := range statuses {
		args = append(args, s)
	}
	if len(p.Types) > 0 {
		q += ` AND event_id IN (SELECT id FROM events WHERE org_id = ? AND type IN (` + inList(len(p.Types)) + `))`
		args = append(args, p.OrgID)
		for _, t := range p.Types {
			args = append(args, t)
		}
	}
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// DeliveriesClaim leases due deliveries: they become delivering and due again only when
// the lease ends, so a crash hands them back by itself.
func (db *DB) DeliveriesClaim(ctx context.Context, p store.ClaimParams) ([]*store.Claim, error) {
	var claims []*store.Claim
	skip, _ := json.Marshal(append([]string{}, p.SkipEndpoints...))
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT d.id, d.org_id, d.endpoint_id, ep.version, d.event_id, e.type, e.payload,
			e.ordering_key, e.created_at, d.attempts_count, d.deadline_at
			FROM deliveries d JOIN events e ON e.id = d.event_id JOIN endpoints ep ON ep.id = d.endpoint_id
			WHERE d.status IN ('pending', 'delivering') AND d.next_attempt_at <= ?
			AND d.endpoint_id NOT IN (SELECT value FROM json_each(?))
			ORDER BY d.next_attempt_at LIMIT ?`, ms(p.Now), string(skip), p.Limit)
		if err != nil {
			return err
		}
		claims, err = collect(rows, func(row interface{ Scan(...any) error }) (*store.Claim, error) {
			var c store.Claim
			var created, deadline int64
			err := row.Scan(&c.DeliveryID, &c.OrgID, &c.EndpointID, &c.EndpointVersion, &c.EventID, &c.EventType, &c.Payload,
				&c.OrderingKey, &created, &c.AttemptsCount, &deadline)
			c.EventCreatedAt, c.Deadline = fromMS(created), fromMS(deadline)
			return &c, err
		})
		if err != nil || len(claims) == 0 {
			return err
		}
		ids := make([]string, len(claims))
		for i, c := range claims {
			ids[i] = c.DeliveryID
		}
		idsJSON, _ := json.Marshal(ids)
		_, err = tx.ExecContext(ctx, `UPDATE deliveries SET status = 'delivering', next_attempt_at = ?, updated_at = ?
			WHERE id IN (SELECT value FROM json_each(?))`, ms(p.LeaseUntil), ms(p.Now), string(idsJSON))
		return err
	})
	return claims, err
}

// DeliveriesRecord writes outcomes and attempts in one transaction.
func (db *DB) DeliveriesRecord(ctx context.Context, os []*store.Outcome) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		upd, err := tx.PrepareContext(ctx, `UPDATE deliveries SET status = ?, attempts_count = max(attempts_count, ?),
			next_attempt_at = ?, updated_at = ? WHERE id = ?`)
		if err != nil {
			return err
		}
		defer upd.Close()
		ins, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO attempts (delivery_id, n, started_at, duration_ms, request,
			response_status, response_headers, response_body, response_truncated, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, o := range os {
			n, now := 0, ms(o.At)
			if a := o.Attempt; a != nil {
				n = a.N
				req, _ := json.Marshal(a.Request)
				var status sql.NullInt64
				var headers sql.NullString
				var body []byte
				truncated := false
				if r := a.Response; r != nil {
					status = sql.NullInt64{Int64: int64(r.Status), Valid: true}
					h, _ := json.Marshal(r.Headers)
					headers = sql.NullString{String: string(h), Valid: true}
					body, truncated = []byte(r.Body), r.Truncated
				}
				var errText sql.NullString
				if a.Error != nil {
					errText = sql.NullString{String: *a.Error, Valid: true}
				}
				if _, err := ins.ExecContext(ctx, o.DeliveryID, a.N, ms(a.StartedAt), a.DurationMS, string(req), status, headers,
					body, truncated, errText); err != nil {
					return err
				}
			}
			next := now
			if !o.NextAttemptAt.IsZero() {
				next = ms(o.NextAttemptAt)
			}
			if _, err := upd.ExecContext(ctx, o.Status, n, next, now, o.DeliveryID); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeliveriesNextDue returns the earliest next_attempt_at of waiting work.
func (db *DB) DeliveriesNextDue(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT min(next_attempt_at) FROM deliveries WHERE status IN ('pending', 'delivering')`).Scan(&next)
	if err != nil || !next.Valid {
		return time.Time{}, false, translate(err)
	}
	return fromMS(next.Int64), true, nil
}
