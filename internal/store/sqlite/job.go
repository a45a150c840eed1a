package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

const jobColumns = `id, org_id, endpoint_id, kind, status, params, scanned, created, total, cursor, error,
	created_at, updated_at, finished_at`

func scanJob(row interface{ Scan(...any) error }) (*store.JobRow, error) {
	var j store.JobRow
	var params string
	var total sql.NullInt64
	var created, updated int64
	var finished sql.NullInt64
	if err := row.Scan(&j.ID, &j.OrgID, &j.EndpointID, &j.Kind, &j.Status, &params, &j.Progress.Scanned,
		&j.Progress.Created, &total, &j.Cursor, &j.Error, &created, &updated, &finished); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(params), &j.Params); err != nil {
		return nil, err
	}
	if total.Valid {
		n := int(total.Int64)
		j.Progress.Total = &n
	}
	j.CreatedAt, j.UpdatedAt, j.FinishedAt = fromMS(created), fromMS(updated), fromNullMS(finished)
	return &j, nil
}

func nullInt(n *int) sql.NullInt64 {
	if n == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*n), Valid: true}
}

// JobInsert stores a new job.
func (db *DB) JobInsert(ctx context.Context, j *store.JobRow) error {
	params, err := json.Marshal(j.Params)
	if err != nil {
		return err
	}
	err = db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := db.txExec(ctx, tx, `INSERT INTO jobs (`+jobColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			j.ID, j.OrgID, j.EndpointID, j.Kind, j.Status, string(params), j.Progress.Scanned, j.Progress.Created,
			nullInt(j.Progress.Total), j.Cursor, j.Error, ms(j.CreatedAt), ms(j.UpdatedAt), nullMS(j.FinishedAt))
		return err
	})
	return replayConflict(err)
}

// replayConflict names the conflict of a second running replay of an endpoint.
func replayConflict(err error) error {
	var ce *consign.Error
	if errors.As(err, &ce) && ce.Code == consign.ECONFLICT {
		return consign.Errorf(consign.ECONFLICT, "a replay of this endpoint is running: wait for it to finish or cancel it (POST /v1/orgs/{org}/jobs/{id}/cancel)")
	}
	return err
}

// JobGet returns one job.
func (db *DB) JobGet(ctx context.Context, orgID, id string) (*store.JobRow, error) {
	q, args := `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, []any{id}
	if orgID != "" {
		q, args = q+` AND org_id = ?`, append(args, orgID)
	}
	j, err := scanJob(db.queryRow(ctx, q, args...))
	if err != nil {
		return nil, notFound(err, "job", id)
	}
	return j, nil
}

// JobList lists an org's jobs newest first.
func (db *DB) JobList(ctx context.Context, orgID, endpointID string, p store.Page) ([]*store.JobRow, error) {
	q := `SELECT ` + jobColumns + ` FROM jobs WHERE org_id = ? AND id < ?`
	args := []any{orgID, p.Below()}
	if endpointID != "" {
		q += ` AND endpoint_id = ?`
		args = append(args, endpointID)
	}
	rows, err := db.query(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, p.Size())...)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanJob)
}

// JobsRunning returns every running job, oldest first.
func (db *DB) JobsRunning(ctx context.Context) ([]*store.JobRow, error) {
	rows, err := db.query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE status = 'running' ORDER BY id`)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanJob)
}

// JobFinish ends a running job.
func (db *DB) JobFinish(ctx context.Context, orgID, id, status, message string, now time.Time) (*store.JobRow, error) {
	var j *store.JobRow
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		q, args := `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, []any{id}
		if orgID != "" {
			q, args = q+` AND org_id = ?`, append(args, orgID)
		}
		var err error
		if j, err = scanJob(db.txQueryRow(ctx, tx, q, args...)); err != nil {
			return notFound(err, "job", id)
		}
		if j.Status != consign.JobRunning {
			return consign.Errorf(consign.ECONFLICT, "job %s is %s already", id, j.Status)
		}
		j.Status, j.Error, j.UpdatedAt, j.FinishedAt = status, message, now.UTC(), &now
		_, err = db.txExec(ctx, tx, `UPDATE jobs SET status = ?, error = ?, updated_at = ?, finished_at = ? WHERE id = ?`,
			status, message, ms(now), ms(now), id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return db.JobGet(ctx, "", id)
}

// JobReplayStep writes one step of a replay: its new deliveries and cursor together.
func (db *DB) JobReplayStep(ctx context.Context, p store.ReplayStep) (*store.ReplayStepResult, error) {
	res := &store.ReplayStepResult{}
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		j, err := scanJob(db.txQueryRow(ctx, tx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, p.JobID))
		if err != nil {
			return notFound(err, "job", p.JobID)
		}
		if err := stepAllowed(j, p); err != nil {
			return err
		}
		rowids, err := db.deliveryRowids(ctx, tx, p.Writes)
		if err != nil {
			return err
		}
		if _, ok := rowids.slots[j.EndpointID]; !ok && len(p.Writes) > 0 {
			return consign.Errorf(consign.ENOTFOUND, "endpoint %q not found", j.EndpointID)
		}
		had, err := db.deliveredEvents(ctx, tx, j.EndpointID, p.Writes)
		if err != nil {
			return err
		}
		ins, err := db.txPrepare(ctx, tx, `INSERT INTO deliveries (rowid, id, org_id, event_id, endpoint_id, event_type,
			ordering_key, sequence, status, attempts_count, next_attempt_at, deadline_at, created_at, updated_at)
			VALUES (?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, ?11, ?11)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, w := range p.Writes {
			if w.Duplicate = had[w.Event.ID]; w.Duplicate {
				continue
			}
			// The delivery is made now: its creation time (and that of what coalescing
			// would touch, which a replay never asks for) is the step's, not the event's.
			ev := *w.Event
			ev.CreatedAt = p.Now
			for i := range w.Deliveries {
				d := &w.Deliveries[i]
				rowid, err := rowids.next(d.EndpointID)
				if err != nil {
					return err
				}
				status := consign.StatusPending
				if d.Paused = rowids.inactive[d.EndpointID]; d.Paused {
					status = consign.StatusPaused
				}
				if err := db.insertDelivery(ctx, tx, ins, &ev, d, status, p.Now, rowid); err != nil {
					return err
				}
				res.Created++
			}
		}
		j.Cursor, j.Progress.Scanned, j.Progress.Created = p.Cursor, j.Progress.Scanned+p.Scanned, j.Progress.Created+res.Created
		if p.Total != nil {
			j.Progress.Total = p.Total
		}
		j.UpdatedAt = p.Now.UTC()
		res.Job = j
		_, err = db.txExec(ctx, tx, `UPDATE jobs SET cursor = ?, scanned = ?, created = ?, total = ?, updated_at = ? WHERE id = ?`,
			j.Cursor, j.Progress.Scanned, j.Progress.Created, nullInt(j.Progress.Total), ms(p.Now), j.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// deliveredEvents returns which of the writes' events the endpoint has a delivery of.
func (db *DB) deliveredEvents(ctx context.Context, tx *sql.Tx, endpointID string, ws []*store.EventWrite) (map[string]bool, error) {
	had := map[string]bool{}
	if len(ws) == 0 {
		return had, nil
	}
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.Event.ID
	}
	b, _ := json.Marshal(ids)
	rows, err := db.txQuery(ctx, tx, `SELECT DISTINCT event_id FROM deliveries
		WHERE event_id IN (SELECT value FROM json_each(?)) AND endpoint_id = ?`, string(b), endpointID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		had[id] = true
	}
	return had, rows.Err()
}

// stepAllowed refuses a step of a job that no longer runs or whose cursor moved.
func stepAllowed(j *store.JobRow, p store.ReplayStep) error {
	if j.Status != consign.JobRunning {
		return consign.Errorf(consign.ECONFLICT, "job %s is %s", j.ID, j.Status)
	}
	if j.Cursor != p.From {
		return consign.Errorf(consign.ECONFLICT, "job %s has moved on (another runner took a step)", j.ID)
	}
	return nil
}

// EventsScan returns a window of an org's events in ID order.
func (db *DB) EventsScan(ctx context.Context, p store.EventScan) ([]*consign.Event, error) {
	q, args := scanQuery(`SELECT `+eventColumns, p)
	rows, err := db.query(ctx, q+` ORDER BY id LIMIT ?`, append(args, max(p.Limit, 1))...)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanEvent)
}

// EventsCount counts a window of an org's events.
func (db *DB) EventsCount(ctx context.Context, p store.EventScan) (int, error) {
	p.After = ""
	q, args := scanQuery(`SELECT count(*)`, p)
	var n int
	if err := db.queryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, translate(err)
	}
	return n, nil
}

// scanQuery selects a window of events by ID range (IDs begin with their creation
// millisecond, so the range is read off the index events_org) and by creation time.
func scanQuery(sel string, p store.EventScan) (string, []any) {
	lo, op := store.IDFloor(consign.PrefixEvent, p.Since), ">="
	if p.After >= lo {
		lo, op = p.After, ">"
	}
	q := sel + ` FROM events WHERE org_id = ? AND id ` + op + ` ? AND id < ? AND created_at >= ? AND created_at < ?`
	args := []any{p.OrgID, lo, store.IDFloor(consign.PrefixEvent, p.Until), ms(p.Since), ms(p.Until)}
	if len(p.Types) > 0 {
		q += ` AND type IN (` + inList(len(p.Types)) + `)`
		for _, t := range p.Types {
			args = append(args, t)
		}
	}
	return q, args
}

// DeliveriesQueued counts the endpoint's pending and delivering deliveries, up to max.
func (db *DB) DeliveriesQueued(ctx context.Context, endpointID string, max int) (int, error) {
	var n int
	err := db.queryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM deliveries INDEXED BY deliveries_due
		WHERE endpoint_id = ? AND status IN ('pending', 'delivering') LIMIT ?)`, endpointID, max).Scan(&n)
	return n, translate(err)
}
