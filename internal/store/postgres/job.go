package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

const jobColumns = `id, org_id, endpoint_id, kind, status, params, scanned, created, total, cursor, error,
	created_at, updated_at, finished_at`

func scanJob(row scanner) (*store.JobRow, error) {
	var j store.JobRow
	var params string
	var scanned, created int64
	var total *int64
	if err := row.Scan(&j.ID, &j.OrgID, &j.EndpointID, &j.Kind, &j.Status, &params, &scanned, &created, &total,
		&j.Cursor, &j.Error, &j.CreatedAt, &j.UpdatedAt, &j.FinishedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(params), &j.Params); err != nil {
		return nil, err
	}
	j.Progress.Scanned, j.Progress.Created = int(scanned), int(created)
	if total != nil {
		n := int(*total)
		j.Progress.Total = &n
	}
	j.CreatedAt, j.UpdatedAt, j.FinishedAt = j.CreatedAt.UTC(), j.UpdatedAt.UTC(), utc(j.FinishedAt)
	return &j, nil
}

func nullInt(n *int) *int64 {
	if n == nil {
		return nil
	}
	v := int64(*n)
	return &v
}

// JobInsert stores a new job.
func (db *DB) JobInsert(ctx context.Context, j *store.JobRow) error {
	params, err := json.Marshal(j.Params)
	if err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO jobs (`+jobColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		j.ID, j.OrgID, j.EndpointID, j.Kind, j.Status, string(params), j.Progress.Scanned, j.Progress.Created,
		nullInt(j.Progress.Total), j.Cursor, j.Error, ts(j.CreatedAt), ts(j.UpdatedAt), nullTS(j.FinishedAt))
	err = translate(err)
	var ce *consign.Error
	if errors.As(err, &ce) && ce.Code == consign.ECONFLICT {
		return consign.Errorf(consign.ECONFLICT, "a replay of this endpoint is running: wait for it to finish or cancel it (POST /v1/orgs/{org}/jobs/{id}/cancel)")
	}
	return err
}

// JobGet returns one job.
func (db *DB) JobGet(ctx context.Context, orgID, id string) (*store.JobRow, error) {
	j, err := scanJob(db.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1 AND ($2 = '' OR org_id = $2)`, id, orgID))
	if err != nil {
		return nil, notFound(err, "job", id)
	}
	return j, nil
}

// JobList lists an org's jobs newest first.
func (db *DB) JobList(ctx context.Context, orgID, endpointID string, p store.Page) ([]*store.JobRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE org_id = $1 AND id < $2 AND ($3 = '' OR endpoint_id = $3)
		ORDER BY id DESC LIMIT $4`, orgID, p.Below(), endpointID, p.Size())
	return collect(rows, err, scanJob)
}

// JobsRunning returns every running job, oldest first.
func (db *DB) JobsRunning(ctx context.Context) ([]*store.JobRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE status = 'running' ORDER BY id`)
	return collect(rows, err, scanJob)
}

// JobFinish ends a running job.
func (db *DB) JobFinish(ctx context.Context, orgID, id, status, message string, now time.Time) (*store.JobRow, error) {
	var j *store.JobRow
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		j, err = scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1 AND ($2 = '' OR org_id = $2) FOR UPDATE`, id, orgID))
		if err != nil {
			return notFound(err, "job", id)
		}
		if j.Status != consign.JobRunning {
			return consign.Errorf(consign.ECONFLICT, "job %s is %s already", id, j.Status)
		}
		at := ts(now)
		j.Status, j.Error, j.UpdatedAt, j.FinishedAt = status, message, at, &at
		_, err = tx.Exec(ctx, `UPDATE jobs SET status = $1, error = $2, updated_at = $3, finished_at = $3 WHERE id = $4`,
			status, message, at, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return j, nil
}

// JobReplayStep writes one step of a replay: its new deliveries and cursor together. The
// job's row is taken FOR UPDATE first, so steps of one job (two runners, a lapsed lease)
// and its cancellation happen one after the other.
func (db *DB) JobReplayStep(ctx context.Context, p store.ReplayStep) (*store.ReplayStepResult, error) {
	var res *store.ReplayStepResult
	err := db.retryTx(ctx, func(tx pgx.Tx) error {
		res = &store.ReplayStepResult{}
		j, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1 FOR UPDATE`, p.JobID))
		if err != nil {
			return notFound(err, "job", p.JobID)
		}
		if j.Status != consign.JobRunning {
			return consign.Errorf(consign.ECONFLICT, "job %s is %s", j.ID, j.Status)
		}
		if j.Cursor != p.From {
			return consign.Errorf(consign.ECONFLICT, "job %s has moved on (another runner took a step)", j.ID)
		}
		exists, err := existingEndpoints(ctx, tx, p.Writes)
		if err != nil {
			return err
		}
		if _, ok := exists[j.EndpointID]; !ok && len(p.Writes) > 0 {
			return consign.Errorf(consign.ENOTFOUND, "endpoint %q not found", j.EndpointID)
		}
		if err := lockOrderingKeys(ctx, tx, p.Writes, exists); err != nil {
			return err
		}
		ids := make([]string, len(p.Writes))
		for i, w := range p.Writes {
			ids[i] = w.Event.ID
		}
		had := map[string]bool{}
		rows, err := tx.Query(ctx, `SELECT DISTINCT event_id FROM deliveries WHERE event_id = ANY($1) AND endpoint_id = $2`, ids, j.EndpointID)
		if err != nil {
			return err
		}
		var id string
		if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { had[id] = true; return nil }); err != nil {
			return err
		}
		now := ts(p.Now)
		var plain [][]any
		for _, w := range p.Writes {
			if w.Duplicate = had[w.Event.ID]; w.Duplicate {
				continue
			}
			// The delivery is made now: its creation time is the step's, not the event's.
			ev := *w.Event
			ev.CreatedAt = now
			for i := range w.Deliveries {
				d := &w.Deliveries[i]
				status := consign.StatusPending
				if d.Paused = !exists[d.EndpointID]; d.Paused {
					status = consign.StatusPaused
				}
				res.Created++
				if d.OrderingKey == "" {
					plain = append(plain, []any{d.ID, ev.OrgID, ev.ID, d.EndpointID, ev.Type, "", int64(0), status, int32(0),
						now, ts(d.Deadline), now, now})
					continue
				}
				if err := insertKeyed(ctx, tx, &ev, d, status, now); err != nil {
					return err
				}
			}
		}
		if len(plain) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"deliveries"}, deliveryCopyColumns, pgx.CopyFromRows(plain)); err != nil {
				return err
			}
		}
		j.Cursor, j.Progress.Scanned, j.Progress.Created = p.Cursor, j.Progress.Scanned+p.Scanned, j.Progress.Created+res.Created
		if p.Total != nil {
			j.Progress.Total = p.Total
		}
		j.UpdatedAt = now
		res.Job = j
		_, err = tx.Exec(ctx, `UPDATE jobs SET cursor = $1, scanned = $2, created = $3, total = $4, updated_at = $5 WHERE id = $6`,
			j.Cursor, j.Progress.Scanned, j.Progress.Created, nullInt(j.Progress.Total), now, j.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// EventsScan returns a window of an org's events in ID order.
func (db *DB) EventsScan(ctx context.Context, p store.EventScan) ([]*consign.Event, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+eventColumns+scanWhere+` ORDER BY id LIMIT $8`, scanArgs(p, max(p.Limit, 1))...)
	return collect(rows, err, scanEvent)
}

// EventsCount counts a window of an org's events.
func (db *DB) EventsCount(ctx context.Context, p store.EventScan) (int, error) {
	p.After = ""
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*)`+scanWhere, scanArgs(p, 0)...).Scan(&n)
	return n, translate(err)
}

// scanWhere selects a window of events by ID range (IDs begin with their creation
// millisecond, so the range is read off the index events_org) and by creation time.
const scanWhere = ` FROM events WHERE org_id = $1 AND id > $2 AND id >= $3 AND id < $4 AND created_at >= $5 AND created_at < $6
	AND (cardinality($7::text[]) = 0 OR type = ANY($7))`

func scanArgs(p store.EventScan, limit int) []any {
	types := p.Types
	if types == nil {
		types = []string{}
	}
	args := []any{p.OrgID, p.After, store.IDFloor(consign.PrefixEvent, p.Since), store.IDFloor(consign.PrefixEvent, p.Until),
		ts(p.Since), ts(p.Until), types}
	if limit > 0 {
		args = append(args, limit)
	}
	return args
}

// DeliveriesQueued counts the endpoint's pending and delivering deliveries, up to max.
func (db *DB) DeliveriesQueued(ctx context.Context, endpointID string, max int) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM deliveries
		WHERE endpoint_id = $1 AND status IN ('pending', 'delivering') LIMIT $2) q`, endpointID, max).Scan(&n)
	return n, translate(err)
}
