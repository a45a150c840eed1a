package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// deliveriesByKeySQL selects an org's deliveries of the events that have a business key,
// newest event first and an event's deliveries newest first: the key's index rows in
// their own order (event_id DESC, the primary key's), each event's deliveries by
// deliveries_event (named: the planner would rather walk the org's every delivery by
// deliveries_org), so that LIMIT stops after the page's events and a search reads a
// page's worth of rows however many events share the key (ordering by delivery ID
// instead read every delivery of every event the key has, 2,000 for a common SKU, to
// sort them). The cursor is a delivery: the page continues below its event (the third
// and fourth arguments), within that event below the delivery (the fifth).
const deliveriesByKeySQL = `SELECT ` + deliveryColumns + ` FROM event_keys k CROSS JOIN deliveries d INDEXED BY deliveries_event ON d.event_id = k.event_id
	WHERE k.org_id = ? AND k.key = ? AND k.event_id <= ? AND d.org_id = k.org_id AND (k.event_id < ? OR d.id < ?)`

// cursorEventSQL finds the event of a key search's cursor. A cursor whose delivery is
// gone finds none and the page is empty: deliveries go with their events, and retention
// takes the oldest first, so nothing older than it is left to list.
const cursorEventSQL = `SELECT event_id FROM deliveries WHERE id = ? AND org_id = ?`

// deliveriesOfEventSQL selects an org's deliveries below a cursor, of the event named by
// a condition on d.event_id that follows.
const deliveriesOfEventSQL = `SELECT ` + deliveryColumns + ` FROM deliveries d INDEXED BY deliveries_event WHERE d.org_id = ? AND d.id < ?`

const deliveryColumns = `d.id, d.org_id, d.event_id, d.endpoint_id, d.event_type, d.status, d.attempts_count, d.next_attempt_at, d.response_reference, d.response_fields, d.created_at, d.updated_at`

func scanDelivery(row interface{ Scan(...any) error }) (*consign.Delivery, error) {
	var d consign.Delivery
	var next, created, updated int64
	var ref, fields sql.NullString
	if err := row.Scan(&d.ID, &d.OrgID, &d.EventID, &d.EndpointID, &d.EventType, &d.Status, &d.AttemptsCount, &next, &ref,
		&fields, &created, &updated); err != nil {
		return nil, err
	}
	if ref.Valid {
		d.ResponseReference = &ref.String
	}
	if fields.Valid {
		if err := json.Unmarshal([]byte(fields.String), &d.ResponseFields); err != nil {
			return nil, fmt.Errorf("delivery %s response_fields: %w", d.ID, err)
		}
	}
	if d.Status == consign.StatusPending && next < waiting {
		t := fromMS(next)
		d.NextAttemptAt = &t
	}
	d.CreatedAt, d.UpdatedAt = fromMS(created), fromMS(updated)
	return &d, nil
}

// unsent is the condition of the partial index deliveries_unsent, on the rare states that
// are looked up per endpoint; a query repeats it to have the index used.
const unsent = `status IN ('paused', 'failed')`

// isUnsent reports whether every status is one that deliveries_unsent holds.
func isUnsent(statuses ...string) bool {
	for _, s := range statuses {
		if s != consign.StatusPaused && s != consign.StatusFailed {
			return false
		}
	}
	return len(statuses) > 0
}

// DeliveryList lists an org's deliveries newest first (by event with a key: DeliveryFilter.Key).
func (db *DB) DeliveryList(ctx context.Context, orgID string, f store.DeliveryFilter) ([]*consign.Delivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM deliveries d WHERE d.org_id = ? AND d.id < ?`
	args := []any{orgID, f.Page.Below()}
	if f.EventID != "" {
		// An event's few deliveries by deliveries_event (named: to skip the sort, the
		// planner would rather walk the org's every delivery by deliveries_org).
		q = deliveriesOfEventSQL
	}
	order := ` ORDER BY d.id DESC LIMIT ?`
	if f.Key != "" {
		below := f.Page.Below()
		if f.Page.Cursor != "" {
			if err := db.queryRow(ctx, cursorEventSQL, f.Page.Cursor, orgID).Scan(&below); errors.Is(err, sql.ErrNoRows) {
				return []*consign.Delivery{}, nil
			} else if err != nil {
				return nil, translate(err)
			}
		}
		q, order = deliveriesByKeySQL, ` ORDER BY k.event_id DESC, d.id DESC LIMIT ?`
		args = []any{orgID, f.Key, below, below, f.Page.Below()}
	}
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
		if f.EndpointID != "" && isUnsent(f.Status) {
			q += ` AND d.` + unsent
		}
	}
	rows, err := db.query(ctx, q+order, append(args, f.Page.Size())...)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanDelivery)
}

// DeliveryGet returns a delivery with its attempts.
func (db *DB) DeliveryGet(ctx context.Context, orgID, id string) (*consign.Delivery, error) {
	d, err := scanDelivery(db.queryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries d WHERE d.org_id = ? AND d.id = ?`, orgID, id))
	if err != nil {
		return nil, notFound(err, "delivery", id)
	}
	rows, err := db.query(ctx, `SELECT n, started_at, duration_ms, request, response_status, response_headers,
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
			var h map[string]string
			if err := json.Unmarshal([]byte(headers.String), &h); err != nil {
				return nil, err
			}
			a.Response.FromStoredHeaders(h)
		}
	}
	if errText.Valid {
		a.Error = &errText.String
	}
	return &a, nil
}

// DeliveryRequeue makes one delivery due now.
func (db *DB) DeliveryRequeue(ctx context.Context, orgID, id string, now, deadline time.Time) (*consign.Delivery, error) {
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.txExec(ctx, tx, `UPDATE deliveries SET status = 'pending', next_attempt_at = ?, deadline_at = ?, updated_at = ?
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
	if isUnsent(statuses...) {
		q += ` AND ` + unsent
	}
	if len(p.Types) > 0 {
		q += ` AND event_type IN (` + inList(len(p.Types)) + `)`
		for _, t := range p.Types {
			args = append(args, t)
		}
	}
	var n int64
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.txExec(ctx, tx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// headOnly restricts a claim to the head of each ordering key: no unfinished delivery of
// the same endpoint and key with a lower sequence may exist. Only keyed deliveries have a
// sequence; saying so (a non-empty ordering_key) lets the lookup use the partial index
// deliveries_key instead of reading the endpoint's every row.
const headOnly = `(d.sequence = 0 OR NOT EXISTS (SELECT 1 FROM deliveries p
	WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key AND p.ordering_key <> ''
	AND p.sequence < d.sequence AND p.status IN ('pending', 'delivering', 'paused')))`

// waiting is the next_attempt_at of a keyed delivery queued behind an unfinished one of
// its key: beyond any due time, so claims never step over it. When its key's head
// finishes, the trigger deliveries_next_of_key (migration 6) makes it due; waitingSQL is
// the same number in SQL.
const (
	waiting    = int64(1) << 62
	waitingSQL = `4611686018427387904`
)

// The statements of the dispatcher's hot path; TestQueryPlans checks how SQLite runs them.
const (
	claimSQL = `SELECT d.id, d.org_id, d.endpoint_id, ep.version, d.event_id, d.event_type, e.payload,
		d.ordering_key, d.sequence, e.created_at, d.attempts_count, d.deadline_at
		FROM deliveries d JOIN events e ON e.id = d.event_id JOIN endpoints ep ON ep.id = d.endpoint_id
		WHERE d.endpoint_id = ? AND d.status IN ('pending', 'delivering') AND d.next_attempt_at <= ? AND ` + headOnly + `
		ORDER BY d.next_attempt_at, d.id LIMIT ?`
	leaseSQL = `UPDATE deliveries SET status = 'delivering', next_attempt_at = ?, updated_at = ?
		WHERE id IN (SELECT value FROM json_each(?))`
	nextDueSQL = `SELECT d.next_attempt_at FROM deliveries d
		WHERE d.endpoint_id = ? AND d.status IN ('pending', 'delivering') AND d.next_attempt_at < ` + waitingSQL + `
		AND ` + headOnly + ` ORDER BY d.next_attempt_at LIMIT 1`
	// outcomeSQL writes one outcome. A delivery is paused only while its endpoint is
	// inactive: if the endpoint was activated again since the outcome was decided, it is
	// pending instead.
	outcomeSQL = `UPDATE deliveries SET status = CASE WHEN ?1 = 'paused'
		AND (SELECT active FROM endpoints WHERE id = deliveries.endpoint_id) = 1 THEN 'pending' ELSE ?1 END,
		attempts_count = max(attempts_count, ?2), next_attempt_at = ?3, updated_at = ?4 WHERE id = ?5`
	// finishedSQL writes the outcomes of deliveries that end in the same state after the
	// same number of attempts (most outcomes) in one statement.
	finishedSQL = `UPDATE deliveries SET status = ?1, attempts_count = max(attempts_count, ?2),
		next_attempt_at = ?3, updated_at = ?3 WHERE id IN (SELECT value FROM json_each(?4))`
	// supersedeSQL marks an endpoint's not-yet-attempted deliveries of a key and type
	// superseded (coalescing), through the index of the keys' unfinished deliveries
	// (whose condition the query repeats) rather than the endpoint's rows. Those waiting
	// while the endpoint is inactive (paused) are superseded too: after an outage only
	// the newest of a key is sent.
	supersedeSQL = `UPDATE deliveries INDEXED BY deliveries_key SET status = 'superseded', updated_at = ?
		WHERE endpoint_id = ? AND ordering_key = ? AND ordering_key <> '' AND status IN ('pending', 'delivering', 'paused')
		AND event_type = ? AND status IN ('pending', 'paused') AND attempts_count = 0`
	// behindSQL says whether a new keyed delivery has an unfinished one of its key before it.
	behindSQL = `SELECT EXISTS (SELECT 1 FROM deliveries INDEXED BY deliveries_key WHERE endpoint_id = ? AND ordering_key = ?
		AND ordering_key <> '' AND status IN ('pending', 'delivering', 'paused') AND sequence < ?)`
)

// DeliveriesClaim leases due deliveries endpoint by endpoint: they become delivering and
// due again only when the lease ends, so a crash hands them back by itself.
func (db *DB) DeliveriesClaim(ctx context.Context, p store.ClaimParams) (*store.ClaimResult, error) {
	res := &store.ClaimResult{NextDue: map[string]time.Time{}}
	err := db.lightTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		sel, err := db.txPrepare(ctx, tx, claimSQL)
		if err != nil {
			return err
		}
		defer sel.Close()
		lease, err := db.txPrepare(ctx, tx, leaseSQL)
		if err != nil {
			return err
		}
		defer lease.Close()
		next, err := db.txPrepare(ctx, tx, nextDueSQL)
		if err != nil {
			return err
		}
		defer next.Close()
		for _, q := range p.Quotas {
			if q.Limit <= 0 {
				continue
			}
			rows, err := sel.QueryContext(ctx, q.EndpointID, ms(p.Now), q.Limit)
			if err != nil {
				return err
			}
			claims, err := collect(rows, scanClaim)
			if err != nil {
				return err
			}
			if len(claims) > 0 {
				ids := make([]string, len(claims))
				for i, c := range claims {
					ids[i] = c.DeliveryID
				}
				if _, err := lease.ExecContext(ctx, ms(p.LeaseUntil), ms(p.Now), string(appendStrings(nil, ids))); err != nil {
					return err
				}
			}
			res.Claims = append(res.Claims, claims...)
			var due sql.NullInt64
			if err := next.QueryRowContext(ctx, q.EndpointID).Scan(&due); err != nil && err != sql.ErrNoRows {
				return err
			}
			if due.Valid {
				res.NextDue[q.EndpointID] = fromMS(due.Int64)
			}
		}
		return nil
	})
	return res, err
}

func scanClaim(row interface{ Scan(...any) error }) (*store.Claim, error) {
	var c store.Claim
	var created, deadline int64
	err := row.Scan(&c.DeliveryID, &c.OrgID, &c.EndpointID, &c.EndpointVersion, &c.EventID, &c.EventType, &c.Payload,
		&c.OrderingKey, &c.Sequence, &created, &c.AttemptsCount, &deadline)
	c.EventCreatedAt, c.Deadline = fromMS(created), fromMS(deadline)
	return &c, err
}

// DeliveriesRecord writes outcomes, attempts and health changes in one transaction.
func (db *DB) DeliveriesRecord(ctx context.Context, p store.RecordParams) error {
	return db.lightTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// Deliveries go only with their endpoint (or org, whose endpoints go with it), so an
		// endpoint that is still here still has the deliveries in flight to it.
		gone, err := db.goneEndpoints(ctx, tx, p.Endpoints())
		if err != nil {
			return err
		}
		p := p.Without(gone)
		attempts := db.newRows(tx, `INSERT OR REPLACE INTO attempts (delivery_id, n, endpoint_id, ok, started_at, duration_ms,
			request, response_status, response_headers, response_body, response_truncated, error) VALUES `,
			`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, 12)
		upd, err := db.txPrepare(ctx, tx, outcomeSQL)
		if err != nil {
			return err
		}
		defer upd.Close()
		finished, err := db.txPrepare(ctx, tx, finishedSQL)
		if err != nil {
			return err
		}
		defer finished.Close()
		type group struct {
			status string
			n      int
		}
		groups := map[group][]string{}
		var last int64
		var buf []byte // scratch for the JSON of attempts
		for _, o := range p.Outcomes {
			n, now := 0, ms(o.At)
			if a := o.Attempt; a != nil {
				n = a.N
				buf = appendRequest(buf[:0], &a.Request)
				req := string(buf)
				// NULLs as nil, values as themselves: a sql.Null* in an interface value is
				// an allocation, a nil or a status code (below 256) is none.
				var status, headers, errText any
				var body []byte
				truncated, ok := false, false
				if r := a.Response; r != nil {
					status = int64(r.Status)
					buf = appendStringMap(buf[:0], r.StoredHeaders())
					headers = string(buf)
					body, truncated = []byte(r.Body), r.Truncated
					ok = r.OK() && !a.Refused
				}
				if a.Error != nil {
					errText = *a.Error
				}
				if err := attempts.add(ctx, o.DeliveryID, a.N, o.EndpointID, ok, ms(a.StartedAt), a.DurationMS, req,
					status, headers, body, truncated, errText); err != nil {
					return err
				}
			}
			last = max(last, now)
			switch o.Status {
			case consign.StatusSucceeded, consign.StatusFailed, consign.StatusCancelled:
				g := group{o.Status, n}
				groups[g] = append(groups[g], o.DeliveryID)
				continue
			}
			next := now
			if !o.NextAttemptAt.IsZero() {
				next = ms(o.NextAttemptAt)
			}
			if _, err := upd.ExecContext(ctx, o.Status, n, next, now, o.DeliveryID); err != nil {
				return err
			}
		}
		if err := attempts.flush(ctx); err != nil {
			return err
		}
		for _, o := range p.Outcomes {
			if o.ResponseReference != nil {
				if _, err := db.txExec(ctx, tx, `UPDATE deliveries SET response_reference = ? WHERE id = ?`,
					*o.ResponseReference, o.DeliveryID); err != nil {
					return err
				}
			}
			if len(o.ResponseFields) > 0 {
				doc, _ := json.Marshal(o.ResponseFields)
				if _, err := db.txExec(ctx, tx, `UPDATE deliveries SET response_fields = ? WHERE id = ?`,
					string(doc), o.DeliveryID); err != nil {
					return err
				}
			}
		}
		for g, ids := range groups {
			buf = appendStrings(buf[:0], ids)
			if _, err := finished.ExecContext(ctx, g.status, g.n, last, string(buf)); err != nil {
				return err
			}
		}
		for _, h := range p.Health {
			var err error
			if h.OK {
				_, err = db.txExec(ctx, tx, `UPDATE endpoints SET health = 'healthy', failing_since = NULL
					WHERE id = ? AND active = 1 AND (health <> 'healthy' OR failing_since IS NOT NULL)`, h.EndpointID)
			} else {
				_, err = db.txExec(ctx, tx, `UPDATE endpoints SET health = 'failing', failing_since = coalesce(failing_since, ?)
					WHERE id = ? AND active = 1`, ms(h.FailingSince), h.EndpointID)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// goneEndpoints returns those of ids that no longer exist.
func (db *DB) goneEndpoints(ctx context.Context, tx *sql.Tx, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := db.txQuery(ctx, tx, `SELECT value FROM json_each(?) WHERE NOT EXISTS (SELECT 1 FROM endpoints WHERE id = value)`,
		string(appendStrings(nil, ids)))
	if err != nil {
		return nil, err
	}
	return collect(rows, scanString)
}

// DeliveriesReleaseLeases makes leased deliveries due now.
func (db *DB) DeliveriesReleaseLeases(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := db.lightTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.txExec(ctx, tx, `UPDATE deliveries SET next_attempt_at = ? WHERE status = 'delivering' AND next_attempt_at > ?`,
			ms(now), ms(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// DeliveriesDue returns each endpoint's earliest due time of waiting work.
func (db *DB) DeliveriesDue(ctx context.Context) (map[string]time.Time, error) {
	// One index seek per endpoint: grouping the deliveries instead would read every
	// waiting row, a million for an endpoint with a large backlog.
	rows, err := db.query(ctx, `SELECT e.id, (SELECT d.next_attempt_at FROM deliveries d
		WHERE d.endpoint_id = e.id AND d.status IN ('pending', 'delivering') AND d.next_attempt_at < `+waitingSQL+`
		ORDER BY d.next_attempt_at LIMIT 1) FROM endpoints e`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	due := map[string]time.Time{}
	for rows.Next() {
		var id string
		var t sql.NullInt64
		if err := rows.Scan(&id, &t); err != nil {
			return nil, translate(err)
		}
		if t.Valid {
			due[id] = fromMS(t.Int64)
		}
	}
	return due, translate(rows.Err())
}
