package postgres

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

const deliveryColumns = `d.id, d.org_id, d.event_id, d.endpoint_id, d.event_type, d.status, d.attempts_count, d.next_attempt_at, d.response_reference, d.created_at, d.updated_at`

func scanDelivery(row scanner) (*consign.Delivery, error) {
	var d consign.Delivery
	var next time.Time
	if err := row.Scan(&d.ID, &d.OrgID, &d.EventID, &d.EndpointID, &d.EventType, &d.Status, &d.AttemptsCount, &next,
		&d.ResponseReference, &d.CreatedAt, &d.UpdatedAt); err != nil {
		return nil, err
	}
	if d.Status == consign.StatusPending {
		next = next.UTC()
		d.NextAttemptAt = &next
	}
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return &d, nil
}

// DeliveryList lists an org's deliveries newest first.
func (db *DB) DeliveryList(ctx context.Context, orgID string, f store.DeliveryFilter) ([]*consign.Delivery, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries d WHERE d.org_id = $1 AND d.id < $2
		AND ($3 = '' OR d.endpoint_id = $3) AND ($4 = '' OR d.event_id = $4) AND ($5 = '' OR d.status = $5)
		ORDER BY d.id DESC LIMIT $6`, orgID, cursor(f.Page), f.EndpointID, f.EventID, f.Status, limit(f.Page))
	return collect(rows, err, scanDelivery)
}

// DeliveryGet returns a delivery with its attempts.
func (db *DB) DeliveryGet(ctx context.Context, orgID, id string) (*consign.Delivery, error) {
	d, err := scanDelivery(db.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries d WHERE d.org_id = $1 AND d.id = $2`, orgID, id))
	if err != nil {
		return nil, notFound(err, "delivery", id)
	}
	rows, err := db.pool.Query(ctx, `SELECT n, started_at, duration_ms, request, response_status, response_headers,
		response_body, response_truncated, error FROM attempts WHERE delivery_id = $1 ORDER BY n`, id)
	attempts, err := collect(rows, err, scanAttempt)
	d.Attempts = []consign.Attempt{}
	for _, a := range attempts {
		d.Attempts = append(d.Attempts, *a)
	}
	return d, err
}

func scanAttempt(row scanner) (*consign.Attempt, error) {
	var a consign.Attempt
	var req, headers, body []byte
	var status *int32
	var truncated bool
	if err := row.Scan(&a.N, &a.StartedAt, &a.DurationMS, &req, &status, &headers, &body, &truncated, &a.Error); err != nil {
		return nil, err
	}
	a.StartedAt = a.StartedAt.UTC()
	if err := json.Unmarshal(req, &a.Request); err != nil {
		return nil, err
	}
	if status != nil {
		a.Response = &consign.AttemptResponse{Status: int(*status), Body: string(body), Truncated: truncated}
		if headers != nil {
			if err := json.Unmarshal(headers, &a.Response.Headers); err != nil {
				return nil, err
			}
		}
	}
	return &a, nil
}

// DeliveryRequeue makes one delivery due now.
func (db *DB) DeliveryRequeue(ctx context.Context, orgID, id string, now, deadline time.Time) (*consign.Delivery, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = $1, deadline_at = $2, updated_at = $1
		WHERE org_id = $3 AND id = $4`, ts(now), ts(deadline), orgID, id)
	if err := translate(mustAffect(tag, err, "delivery", id)); err != nil {
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
	types := p.Types
	if types == nil {
		types = []string{}
	}
	tag, err := db.pool.Exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = $1, deadline_at = $2, updated_at = $1
		WHERE org_id = $3 AND endpoint_id = $4 AND created_at >= $5 AND created_at <= $6 AND status = ANY($7)
		AND (cardinality($8::text[]) = 0 OR event_type = ANY($8))`,
		ts(p.Now), ts(p.Deadline), p.OrgID, p.EndpointID, ts(p.Since), ts(until), statuses, types)
	if err != nil {
		return 0, translate(err)
	}
	return int(tag.RowsAffected()), nil
}

// headOnly restricts a claim to the head of each ordering key: no unfinished delivery of
// the same endpoint and key with a lower sequence may exist.
const headOnly = `(d.sequence = 0 OR NOT EXISTS (SELECT 1 FROM deliveries p
	WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key AND p.sequence < d.sequence
	AND p.status IN ('pending', 'delivering', 'paused')))`

// claimQuery leases up to $3 due deliveries of endpoint $1. SKIP LOCKED passes over rows
// another node is claiming this instant; the RETURNING gives what is needed to send, and
// the old due time (due) to put the claims in order again.
const claimQuery = `WITH c AS (
	SELECT d.id, d.next_attempt_at AS due FROM deliveries d
	WHERE d.endpoint_id = $1 AND d.status IN ('pending', 'delivering') AND d.next_attempt_at <= $2 AND ` + headOnly + `
	ORDER BY d.next_attempt_at, d.id LIMIT $3
	FOR UPDATE OF d SKIP LOCKED)
UPDATE deliveries d SET status = 'delivering', next_attempt_at = $4, updated_at = $2
FROM c, events e, endpoints ep
WHERE d.id = c.id AND e.id = d.event_id AND ep.id = d.endpoint_id
RETURNING d.id, d.org_id, d.endpoint_id, ep.version, d.event_id, d.event_type, e.payload,
	d.ordering_key, d.sequence, e.created_at, d.attempts_count, d.deadline_at, c.due`

const nextDueQuery = `SELECT min(d.next_attempt_at) FROM deliveries d
	WHERE d.endpoint_id = $1 AND d.status IN ('pending', 'delivering') AND ` + headOnly

// DeliveriesClaim leases due deliveries endpoint by endpoint: they become delivering and
// due again only when the lease ends, so the work of a node that died comes back by
// itself. Every quota's claim and next-due query go in one batch: one round trip.
func (db *DB) DeliveriesClaim(ctx context.Context, p store.ClaimParams) (*store.ClaimResult, error) {
	res := &store.ClaimResult{NextDue: map[string]time.Time{}}
	now, lease := ts(p.Now), ts(p.LeaseUntil)
	err := db.tx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, q := range p.Quotas {
			if q.Limit <= 0 {
				continue
			}
			type claimDue struct {
				c   *store.Claim
				due time.Time
			}
			var claims []claimDue
			b.Queue(claimQuery, q.EndpointID, now, q.Limit, lease).Query(func(rows pgx.Rows) error {
				for rows.Next() {
					var c store.Claim
					var due time.Time
					if err := rows.Scan(&c.DeliveryID, &c.OrgID, &c.EndpointID, &c.EndpointVersion, &c.EventID, &c.EventType,
						&c.Payload, &c.OrderingKey, &c.Sequence, &c.EventCreatedAt, &c.AttemptsCount, &c.Deadline, &due); err != nil {
						return err
					}
					c.EventCreatedAt, c.Deadline = c.EventCreatedAt.UTC(), c.Deadline.UTC()
					claims = append(claims, claimDue{&c, due})
				}
				if err := rows.Err(); err != nil {
					return err
				}
				// Oldest due first, as the claim chose them.
				sort.Slice(claims, func(i, j int) bool {
					if !claims[i].due.Equal(claims[j].due) {
						return claims[i].due.Before(claims[j].due)
					}
					return claims[i].c.DeliveryID < claims[j].c.DeliveryID
				})
				for _, c := range claims {
					res.Claims = append(res.Claims, c.c)
				}
				return nil
			})
			b.Queue(nextDueQuery, q.EndpointID).QueryRow(func(row pgx.Row) error {
				var due *time.Time
				if err := row.Scan(&due); err != nil {
					return err
				}
				if due != nil {
					res.NextDue[q.EndpointID] = due.UTC()
				}
				return nil
			})
		}
		if b.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// DeliveriesRecord writes outcomes, attempts and health changes in one transaction, sent
// as one batch.
func (db *DB) DeliveriesRecord(ctx context.Context, p store.RecordParams) error {
	b := &pgx.Batch{}
	type group struct {
		status string
		n      int
	}
	groups := map[group][]string{}
	var last time.Time
	for _, o := range p.Outcomes {
		n, at := 0, ts(o.At)
		if a := o.Attempt; a != nil {
			n = a.N
			req, _ := json.Marshal(a.Request)
			var status *int32
			var headers json.RawMessage
			var body []byte
			truncated, ok := false, false
			if r := a.Response; r != nil {
				s := int32(r.Status)
				status = &s
				headers, _ = json.Marshal(r.Headers)
				body, truncated = []byte(r.Body), r.Truncated
				if body == nil {
					body = []byte{}
				}
				ok = r.Status >= 200 && r.Status < 300
			}
			b.Queue(`INSERT INTO attempts (delivery_id, n, endpoint_id, ok, started_at, duration_ms, request, response_status,
				response_headers, response_body, response_truncated, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
				ON CONFLICT (delivery_id, n) DO UPDATE SET endpoint_id = excluded.endpoint_id, ok = excluded.ok,
				started_at = excluded.started_at, duration_ms = excluded.duration_ms, request = excluded.request,
				response_status = excluded.response_status, response_headers = excluded.response_headers,
				response_body = excluded.response_body, response_truncated = excluded.response_truncated, error = excluded.error`,
				o.DeliveryID, a.N, o.EndpointID, ok, ts(a.StartedAt), a.DurationMS, json.RawMessage(req), status,
				headers, body, truncated, a.Error)
		}
		if at.After(last) {
			last = at
		}
		switch o.Status {
		case consign.StatusSucceeded, consign.StatusFailed, consign.StatusCancelled:
			g := group{o.Status, n}
			groups[g] = append(groups[g], o.DeliveryID)
			continue
		}
		next := at
		if !o.NextAttemptAt.IsZero() {
			next = ts(o.NextAttemptAt)
		}
		// A delivery is paused only while its endpoint is inactive: if the endpoint was
		// activated again since the outcome was decided, it is pending instead.
		b.Queue(`UPDATE deliveries SET status = CASE WHEN $1::text = 'paused'
			AND (SELECT active FROM endpoints WHERE id = deliveries.endpoint_id) THEN 'pending' ELSE $1::text END,
			attempts_count = greatest(attempts_count, $2), next_attempt_at = $3, updated_at = $4 WHERE id = $5`,
			o.Status, n, next, at, o.DeliveryID)
	}
	for _, o := range p.Outcomes {
		if o.ResponseReference != nil {
			b.Queue(`UPDATE deliveries SET response_reference = $1 WHERE id = $2`, *o.ResponseReference, o.DeliveryID)
		}
	}
	// Finished deliveries (most outcomes) share their new state: one statement per state
	// and attempt count.
	for g, ids := range groups {
		b.Queue(`UPDATE deliveries SET status = $1, attempts_count = greatest(attempts_count, $2),
			next_attempt_at = $3, updated_at = $3 WHERE id = ANY($4)`, g.status, g.n, last, ids)
	}
	// Endpoints in a fixed order, so that two nodes' batches never wait on each other in a
	// cycle.
	health := slices.Clone(p.Health)
	slices.SortFunc(health, func(a, b store.HealthChange) int { return strings.Compare(a.EndpointID, b.EndpointID) })
	for _, h := range health {
		if h.OK {
			b.Queue(`UPDATE endpoints SET health = 'healthy', failing_since = NULL
				WHERE id = $1 AND active AND (health <> 'healthy' OR failing_since IS NOT NULL)`, h.EndpointID)
		} else {
			b.Queue(`UPDATE endpoints SET health = 'failing', failing_since = coalesce(failing_since, $1)
				WHERE id = $2 AND active`, ts(h.FailingSince), h.EndpointID)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return db.retryTx(ctx, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
}

// DeliveriesReleaseLeases makes leased deliveries due now. With PostgreSQL, other nodes
// may hold leases: only call it when no other process dispatches from the database.
func (db *DB) DeliveriesReleaseLeases(ctx context.Context, now time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE deliveries SET next_attempt_at = $1 WHERE status = 'delivering' AND next_attempt_at > $1`, ts(now))
	if err != nil {
		return 0, translate(err)
	}
	return int(tag.RowsAffected()), nil
}

// DeliveriesDue returns each endpoint's earliest due time of waiting work.
func (db *DB) DeliveriesDue(ctx context.Context) (map[string]time.Time, error) {
	// One index probe per endpoint: grouping the deliveries instead would read every
	// waiting row, a million for an endpoint with a large backlog.
	rows, err := db.pool.Query(ctx, `SELECT e.id, (SELECT d.next_attempt_at FROM deliveries d
		WHERE d.endpoint_id = e.id AND d.status IN ('pending', 'delivering') ORDER BY d.next_attempt_at LIMIT 1) FROM endpoints e`)
	if err != nil {
		return nil, translate(err)
	}
	due := map[string]time.Time{}
	var id string
	var t *time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &t}, func() error {
		if t != nil {
			due[id] = t.UTC()
		}
		return nil
	})
	return due, translate(err)
}
