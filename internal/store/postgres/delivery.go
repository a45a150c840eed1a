package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

const deliveryColumns = `d.id, d.org_id, d.event_id, d.endpoint_id, d.event_type, d.status, d.attempts_count, d.next_attempt_at, d.response_reference, d.response_fields, d.created_at, d.updated_at`

func scanDelivery(row scanner) (*consign.Delivery, error) {
	var d consign.Delivery
	var next time.Time
	if err := row.Scan(&d.ID, &d.OrgID, &d.EventID, &d.EndpointID, &d.EventType, &d.Status, &d.AttemptsCount, &next,
		&d.ResponseReference, &d.ResponseFields, &d.CreatedAt, &d.UpdatedAt); err != nil {
		return nil, err
	}
	if d.Status == consign.StatusPending && next.Before(waitingAt) {
		next = next.UTC()
		d.NextAttemptAt = &next
	}
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return &d, nil
}

// DeliveryList lists an org's deliveries newest first (by event with a key: DeliveryFilter.Key).
func (db *DB) DeliveryList(ctx context.Context, orgID string, f store.DeliveryFilter) ([]*consign.Delivery, error) {
	if f.Key != "" {
		// The key's index rows newest first, then each event's deliveries by
		// deliveries_event, so that LIMIT stops after the page's events (an incremental
		// sort orders each event's few deliveries) however many events share the key.
		// LATERAL and OFFSET 0 keep the planner from joining by a scan of every delivery
		// (5 s over 100,000 with the statistics of a freshly loaded table) or from reading
		// an event's deliveries through deliveries_org, whose range is the org's every
		// delivery. The cursor is a delivery: the page goes on below its event ($8), within
		// it below the delivery; a cursor whose delivery is gone (retention takes the
		// oldest events first) leaves nothing older to list.
		below := f.Page.Below()
		if f.Page.Cursor != "" {
			err := db.pool.QueryRow(ctx, `SELECT event_id FROM deliveries WHERE id = $1 AND org_id = $2`, f.Page.Cursor, orgID).Scan(&below)
			if errors.Is(err, pgx.ErrNoRows) {
				return []*consign.Delivery{}, nil
			} else if err != nil {
				return nil, translate(err)
			}
		}
		rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM event_keys k
			CROSS JOIN LATERAL (SELECT * FROM deliveries WHERE event_id = k.event_id OFFSET 0) d
			WHERE k.org_id = $1 AND k.key = $7 AND k.event_id <= $8 AND d.org_id = $1 AND (k.event_id < $8 OR d.id < $2)
			AND ($3 = '' OR d.endpoint_id = $3) AND ($4 = '' OR d.event_id = $4) AND ($5 = '' OR d.status = $5)
			ORDER BY k.event_id DESC, d.id DESC LIMIT $6`, orgID, f.Page.Below(), f.EndpointID, f.EventID, f.Status, f.Page.Size(), f.Key, below)
		return collect(rows, err, scanDelivery)
	}
	if f.EventID != "" {
		// An event's few deliveries by deliveries_event alone (OFFSET 0: the planner would
		// add deliveries_org's range, the org's every delivery, 25 ms an event over 100,000).
		rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM (SELECT * FROM deliveries WHERE event_id = $4 OFFSET 0) d
			WHERE d.org_id = $1 AND d.id < $2
			AND ($3 = '' OR d.endpoint_id = $3) AND ($5 = '' OR d.status = $5)
			ORDER BY d.id DESC LIMIT $6`, orgID, f.Page.Below(), f.EndpointID, f.EventID, f.Status, f.Page.Size())
		return collect(rows, err, scanDelivery)
	}
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries d WHERE d.org_id = $1 AND d.id < $2
		AND ($3 = '' OR d.endpoint_id = $3) AND ($4 = '' OR d.event_id = $4) AND ($5 = '' OR d.status = $5)
		ORDER BY d.id DESC LIMIT $6`, orgID, f.Page.Below(), f.EndpointID, f.EventID, f.Status, f.Page.Size())
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
			var h map[string]string
			if err := json.Unmarshal(headers, &h); err != nil {
				return nil, err
			}
			a.Response.FromStoredHeaders(h)
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
// the same endpoint and key with a lower sequence may exist. A delivery with a sequence
// has a key, so asking for a non-empty p.ordering_key changes no result; it lets the
// planner probe the partial index deliveries_key instead of reading the endpoint's whole
// backlog for every candidate (6,800 waiting deliveries of one endpoint in 50 keys: a
// claim took 2.7 s without it, 49 ms with it).
const headOnly = `(d.sequence = 0 OR NOT EXISTS (SELECT 1 FROM deliveries p
	WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key AND p.ordering_key <> ''
	AND p.sequence < d.sequence AND p.status IN ('pending', 'delivering', 'paused')))`

// waitingAt is the next_attempt_at of a delivery of an ordered key queued behind an
// unfinished one of its key: beyond any due time, so claims never step over it. When its
// key's head finishes, the trigger deliveries_next_of_key (migration 6) makes it due;
// waitingSQL is the same time in SQL.
var waitingAt = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

const waitingSQL = `'9999-12-31 00:00:00+00'::timestamptz`

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
	WHERE d.endpoint_id = $1 AND d.status IN ('pending', 'delivering') AND d.next_attempt_at < ` + waitingSQL + `
	AND ` + headOnly

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

// recordAttempts writes a batch's attempts in one statement, one array per column, except
// those of deliveries deleted meanwhile with their endpoint. (A deletion that commits
// while the statement runs still fails the foreign key, and the recorder's next try
// leaves the attempt out.)
const recordAttempts = `INSERT INTO attempts (delivery_id, n, endpoint_id, ok, started_at, duration_ms, request,
	response_status, response_headers, response_body, response_truncated, error)
SELECT a.delivery_id, a.n, a.endpoint_id, a.ok, a.started_at, a.duration_ms, a.request::jsonb,
	a.response_status, a.response_headers::jsonb, a.response_body, a.response_truncated, a.error
FROM unnest($1::text[], $2::int4[], $3::text[], $4::bool[], $5::timestamptz[], $6::int8[], $7::text[],
	$8::int4[], $9::text[], $10::bytea[], $11::bool[], $12::text[])
	AS a(delivery_id, n, endpoint_id, ok, started_at, duration_ms, request,
	response_status, response_headers, response_body, response_truncated, error)
WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id)
ON CONFLICT (delivery_id, n) DO UPDATE SET endpoint_id = excluded.endpoint_id, ok = excluded.ok,
	started_at = excluded.started_at, duration_ms = excluded.duration_ms, request = excluded.request,
	response_status = excluded.response_status, response_headers = excluded.response_headers,
	response_body = excluded.response_body, response_truncated = excluded.response_truncated, error = excluded.error`

// recordOutcomes gives a batch's deliveries their new states in one statement. A delivery
// is paused only while its endpoint is inactive: if the endpoint was activated again
// since the outcome was decided, it is pending instead.
const recordOutcomes = `UPDATE deliveries d SET status = CASE WHEN o.status = 'paused'
	AND (SELECT active FROM endpoints WHERE id = d.endpoint_id) THEN 'pending' ELSE o.status END,
	attempts_count = greatest(d.attempts_count, o.n), next_attempt_at = o.next, updated_at = o.at,
	response_reference = coalesce(o.ref, d.response_reference),
	response_fields = coalesce(o.fields::jsonb, d.response_fields)
FROM unnest($1::text[], $2::text[], $3::int4[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::text[])
	AS o(id, status, n, next, at, ref, fields)
WHERE d.id = o.id`

// lockFinishingKeys locks, in key order, the ordering_keys rows of the deliveries among
// $1 that have a key and whose new state in $2 ends them: the trigger of migration 6
// takes those rows one by one as the outcomes' UPDATE reaches each delivery, in the
// order of the deliveries, while ingest takes them in key order (lockOrderingKeys).
// Taken first and in key order here too, two transactions never wait on each other in a
// cycle over them. $3 are the endpoints of those deliveries: unless one of them orders
// by key, the first condition (a one-time filter) ends the statement before it looks up
// any delivery.
const lockFinishingKeys = `SELECT 1 FROM ordering_keys k
WHERE EXISTS (SELECT 1 FROM ordering_keys WHERE endpoint_id = ANY($3::text[]))
AND (k.endpoint_id, k.ordering_key) IN (SELECT d.endpoint_id, d.ordering_key
	FROM unnest($1::text[], $2::text[]) AS o(id, status) JOIN deliveries d ON d.id = o.id
	WHERE d.ordering_key <> '' AND o.status NOT IN ('pending', 'delivering', 'paused'))
ORDER BY k.endpoint_id, k.ordering_key
FOR UPDATE OF k`

// DeliveriesRecord writes outcomes, attempts and health changes in one transaction, sent
// as one batch: one statement for all attempts, one for all outcomes, one per endpoint
// whose health changed. Rows go in ID order, so that two nodes' batches lock them in the
// same order.
func (db *DB) DeliveriesRecord(ctx context.Context, p store.RecordParams) error {
	var att attemptRows
	var out outcomeRows
	for _, o := range latestOutcomes(p.Outcomes) {
		out.add(o)
	}
	for _, o := range latestAttempts(p.Outcomes) {
		att.add(o)
	}
	var finishing []string // endpoints of deliveries this batch ends, each once
	for i, status := range out.status {
		if !unfinished(status) {
			finishing = append(finishing, out.endpoint[i])
		}
	}
	slices.Sort(finishing)
	finishing = slices.Compact(finishing)
	// Endpoints in a fixed order, so that two nodes' batches never wait on each other in a
	// cycle.
	health := slices.Clone(p.Health)
	slices.SortFunc(health, func(a, b store.HealthChange) int { return strings.Compare(a.EndpointID, b.EndpointID) })
	if len(att.deliveryID) == 0 && len(out.id) == 0 && len(health) == 0 {
		return nil
	}
	// A new batch for every try: pgx keeps in each queued query the prepared statement it
	// ran as, and a failed try's statements are deallocated before the next begins, so
	// sending the same batch again would name statements the server no longer has.
	return db.retryTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		if len(att.deliveryID) > 0 {
			b.Queue(recordAttempts, att.deliveryID, att.n, att.endpointID, att.ok, att.startedAt, att.durationMS, att.request,
				att.responseStatus, att.responseHeaders, att.responseBody, att.responseTruncated, att.error)
		}
		if len(finishing) > 0 {
			b.Queue(lockFinishingKeys, out.id, out.status, finishing)
		}
		if len(out.id) > 0 {
			b.Queue(recordOutcomes, out.id, out.status, out.n, out.next, out.at, out.ref, out.fields)
		}
		for _, h := range health {
			if h.OK {
				b.Queue(`UPDATE endpoints SET health = 'healthy', failing_since = NULL
					WHERE id = $1 AND active AND (health <> 'healthy' OR failing_since IS NOT NULL)`, h.EndpointID)
			} else {
				b.Queue(`UPDATE endpoints SET health = 'failing', failing_since = coalesce(failing_since, $1)
					WHERE id = $2 AND active`, ts(h.FailingSince), h.EndpointID)
			}
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// unfinished reports whether a delivery in this status is still to be sent (the states
// that the trigger of migration 6 watches a keyed delivery leave).
func unfinished(status string) bool {
	return status == consign.StatusPending || status == consign.StatusDelivering || status == consign.StatusPaused
}

// finished reports whether a delivery in this status is done for good.
func finished(status string) bool {
	return status == consign.StatusSucceeded || status == consign.StatusFailed || status == consign.StatusCancelled
}

// latestOutcomes keeps one outcome per delivery, in ID order, as if the batch's outcomes
// were written one after the other, except that a finished state is never replaced by an
// unfinished one. A response reference and response fields are kept from an earlier
// outcome when the one kept has none.
func latestOutcomes(outcomes []*store.Outcome) []*store.Outcome {
	kept := make(map[string]*store.Outcome, len(outcomes))
	for _, o := range outcomes {
		prev := kept[o.DeliveryID]
		switch {
		case prev == nil:
			kept[o.DeliveryID] = o
		case finished(prev.Status) && !finished(o.Status):
		default:
			if (o.ResponseReference == nil && prev.ResponseReference != nil) || (len(o.ResponseFields) == 0 && len(prev.ResponseFields) > 0) {
				c := *o
				if c.ResponseReference == nil {
					c.ResponseReference = prev.ResponseReference
				}
				if len(c.ResponseFields) == 0 {
					c.ResponseFields = prev.ResponseFields
				}
				o = &c
			}
			kept[o.DeliveryID] = o
		}
	}
	out := slices.Collect(maps.Values(kept))
	slices.SortFunc(out, func(a, b *store.Outcome) int { return strings.Compare(a.DeliveryID, b.DeliveryID) })
	return out
}

// latestAttempts keeps the outcomes with an attempt, the last of each delivery and attempt
// number, in that order: one statement may not write a row twice.
func latestAttempts(outcomes []*store.Outcome) []*store.Outcome {
	type key struct {
		id string
		n  int
	}
	kept := map[key]*store.Outcome{}
	for _, o := range outcomes {
		if o.Attempt != nil {
			kept[key{o.DeliveryID, o.Attempt.N}] = o
		}
	}
	out := slices.Collect(maps.Values(kept))
	slices.SortFunc(out, func(a, b *store.Outcome) int {
		return cmp.Or(strings.Compare(a.DeliveryID, b.DeliveryID), cmp.Compare(a.Attempt.N, b.Attempt.N))
	})
	return out
}

// attemptRows are attempts as the columns of recordAttempts.
type attemptRows struct {
	deliveryID, endpointID, request []string
	n                               []int32
	ok, responseTruncated           []bool
	startedAt                       []time.Time
	durationMS                      []int64
	responseStatus                  []*int32
	responseHeaders, error          []*string
	responseBody                    [][]byte
}

func (r *attemptRows) add(o *store.Outcome) {
	a := o.Attempt
	req, _ := json.Marshal(a.Request)
	var status *int32
	var headers *string
	var body []byte
	truncated, ok := false, false
	if resp := a.Response; resp != nil {
		s := int32(resp.Status)
		status = &s
		h, _ := json.Marshal(resp.StoredHeaders())
		hs := string(h)
		headers = &hs
		body, truncated = []byte(resp.Body), resp.Truncated
		if body == nil {
			body = []byte{}
		}
		ok = resp.OK() && !a.Refused
	}
	r.deliveryID = append(r.deliveryID, o.DeliveryID)
	r.n = append(r.n, int32(a.N))
	r.endpointID = append(r.endpointID, o.EndpointID)
	r.ok = append(r.ok, ok)
	r.startedAt = append(r.startedAt, ts(a.StartedAt))
	r.durationMS = append(r.durationMS, a.DurationMS)
	r.request = append(r.request, string(req))
	r.responseStatus = append(r.responseStatus, status)
	r.responseHeaders = append(r.responseHeaders, headers)
	r.responseBody = append(r.responseBody, body)
	r.responseTruncated = append(r.responseTruncated, truncated)
	r.error = append(r.error, a.Error)
}

// outcomeRows are outcomes as the columns of recordOutcomes.
type outcomeRows struct {
	id, status []string
	endpoint   []string // not written: see lockFinishingKeys
	n          []int32
	next, at   []time.Time
	ref        []*string
	fields     []*string // JSON objects; nil keeps the delivery's
}

// add adds an outcome. The attempt count is its attempt's number (0 without one, which
// leaves the count as it is); a finished delivery's next attempt time is when it finished.
func (r *outcomeRows) add(o *store.Outcome) {
	n := 0
	if o.Attempt != nil {
		n = o.Attempt.N
	}
	at := ts(o.At)
	next := at
	if !finished(o.Status) && !o.NextAttemptAt.IsZero() {
		next = ts(o.NextAttemptAt)
	}
	r.id = append(r.id, o.DeliveryID)
	r.status = append(r.status, o.Status)
	r.endpoint = append(r.endpoint, o.EndpointID)
	r.n = append(r.n, int32(n))
	r.next = append(r.next, next)
	r.at = append(r.at, at)
	r.ref = append(r.ref, o.ResponseReference)
	var fields *string
	if len(o.ResponseFields) > 0 {
		doc, _ := json.Marshal(o.ResponseFields)
		fields = new(string(doc))
	}
	r.fields = append(r.fields, fields)
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
		WHERE d.endpoint_id = e.id AND d.status IN ('pending', 'delivering') AND d.next_attempt_at < `+waitingSQL+`
		ORDER BY d.next_attempt_at LIMIT 1) FROM endpoints e`)
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
