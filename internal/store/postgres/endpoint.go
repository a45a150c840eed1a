package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

func configOf(e *store.EndpointRow) json.RawMessage {
	return json.RawMessage(store.EncodeEndpointConfig(e))
}

const endpointColumns = `id, org_id, url, config, token_sealed, active, health, disabled_at, disabled_reason, failing_since,
	reactivated_at, version, created_at, updated_at`

func scanEndpoint(row scanner) (*store.EndpointRow, error) {
	var r store.EndpointRow
	var cfg []byte
	if err := row.Scan(&r.ID, &r.OrgID, &r.URL, &cfg, &r.TokenSealed, &r.Active, &r.Health, &r.DisabledAt,
		&r.DisabledReason, &r.FailingSince, &r.ReactivatedAt, &r.Version, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return nil, err
	}
	if err := store.DecodeEndpointConfig(cfg, &r); err != nil {
		return nil, err
	}
	r.DisabledAt, r.FailingSince, r.ReactivatedAt = utc(r.DisabledAt), utc(r.FailingSince), utc(r.ReactivatedAt)
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return &r, nil
}

func endpointConflict(err error, e *store.EndpointRow) error {
	err = translate(err)
	if consign.ErrorCode(err) == consign.ECONFLICT {
		return consign.Errorf(consign.ECONFLICT, "an endpoint for %s exists already in this org", e.URL)
	}
	return err
}

// EndpointInsert stores an endpoint and its first secrets.
func (db *DB) EndpointInsert(ctx context.Context, e *store.EndpointRow, secrets []*store.SecretRow) error {
	e.Version = 1
	err := db.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO endpoints (`+endpointColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			e.ID, e.OrgID, e.URLKey(), configOf(e), e.TokenSealed, e.Active, e.Health, nullTS(e.DisabledAt),
			e.DisabledReason, nullTS(e.FailingSince), nullTS(e.ReactivatedAt), e.Version, ts(e.CreatedAt), ts(e.UpdatedAt))
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if err := insertSecretRow(ctx, tx, s); err != nil {
				return err
			}
		}
		return nil
	})
	return endpointConflict(err, e)
}

// EndpointGet returns one endpoint.
func (db *DB) EndpointGet(ctx context.Context, orgID, id string) (*store.EndpointRow, error) {
	var row pgx.Row
	if orgID == "" {
		row = db.pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE id = $1`, id)
	} else {
		row = db.pool.QueryRow(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE id = $1 AND org_id = $2`, id, orgID)
	}
	e, err := scanEndpoint(row)
	if err != nil {
		return nil, notFound(err, "endpoint", id)
	}
	return e, nil
}

// EndpointList lists an org's endpoints newest first.
func (db *DB) EndpointList(ctx context.Context, orgID string, p store.Page) ([]*store.EndpointRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE org_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
		orgID, p.Below(), p.Size())
	return collect(rows, err, scanEndpoint)
}

// EndpointListAll returns the org's endpoints in ID order.
func (db *DB) EndpointListAll(ctx context.Context, orgID string) ([]*store.EndpointRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE org_id = $1 ORDER BY id`, orgID)
	return collect(rows, err, scanEndpoint)
}

// OrgEndpointsVersion returns the org's endpoints_version (migration 7).
func (db *DB) OrgEndpointsVersion(ctx context.Context, orgID string) (int64, error) {
	var v int64
	err := db.pool.QueryRow(ctx, `SELECT endpoints_version FROM orgs WHERE id = $1`, orgID).Scan(&v)
	return v, notFound(err, "org", orgID)
}

// EndpointUpdate saves an endpoint, then pauses or resumes its deliveries in steps when
// it was deactivated or activated (bulk.go). Activated with e.DiscardPaused, it cancels
// the paused ones instead: in steps before, while the endpoint is still inactive, and
// what they left with the row's change.
func (db *DB) EndpointUpdate(ctx context.Context, e *store.EndpointRow) error {
	discard := e.Active && e.DiscardPaused
	if discard {
		if err := db.stepBacklog(ctx, discardStep, e.ID, false, e.UpdatedAt); err != nil {
			return err
		}
	}
	var wasActive bool
	// retryTx: cancelling keyed deliveries takes their keys' rows (migration 6), which
	// the recorder may hold while it waits for this endpoint's row.
	err := db.retryTx(ctx, func(tx pgx.Tx) error {
		// FOR UPDATE: a concurrent update of the same endpoint waits, so the
		// active → inactive transition is seen by exactly one of them; and so does a
		// publish to it (EventsInsert holds the row FOR KEY SHARE while it writes), so
		// that every delivery is written before the change, and paused or resumed by the
		// steps that follow it, or after it, in the endpoint's new state.
		if err := tx.QueryRow(ctx, `SELECT active FROM endpoints WHERE id = $1 AND org_id = $2 FOR UPDATE`, e.ID, e.OrgID).Scan(&wasActive); err != nil {
			return notFound(err, "endpoint", e.ID)
		}
		if !wasActive && discard {
			// What the steps left (written since), with the activation: nothing that
			// waited is sent.
			if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'cancelled', next_attempt_at = $2, updated_at = $2
				WHERE endpoint_id = $1 AND status = 'paused'`, e.ID, ts(e.UpdatedAt)); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `UPDATE endpoints SET url = $1, config = $2, token_sealed = $3, active = $4, health = $5,
			disabled_at = $6, disabled_reason = $7, failing_since = $8, reactivated_at = $9, version = version + 1, updated_at = $10
			WHERE id = $11 RETURNING version`,
			e.URLKey(), configOf(e), e.TokenSealed, e.Active, e.Health, nullTS(e.DisabledAt), e.DisabledReason,
			nullTS(e.FailingSince), nullTS(e.ReactivatedAt), ts(e.UpdatedAt), e.ID).Scan(&e.Version)
	})
	if err != nil || wasActive == e.Active {
		return endpointConflict(err, e)
	}
	// The endpoint's row has changed: its deliveries follow even when the caller goes
	// away meanwhile (a client that hung up), rather than at the next settle.
	return db.flipBacklog(context.WithoutCancel(ctx), e.ID, e.Active, e.UpdatedAt)
}

// EndpointDelete removes an endpoint; secrets, deliveries and attempts cascade.
func (db *DB) EndpointDelete(ctx context.Context, orgID, id string) error {
	return db.retryTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM endpoints WHERE org_id = $1 AND id = $2`, orgID, id)
		if err := mustAffect(tag, err, "endpoint", id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM endpoint_filtered WHERE endpoint_id = $1`, id)
		return err
	})
}

// insertSecretRow stores a secret without bumping its endpoint's version: a new
// endpoint's first secrets belong to its version 1.
func insertSecretRow(ctx context.Context, tx pgx.Tx, s *store.SecretRow) error {
	_, err := tx.Exec(ctx, `INSERT INTO secrets (id, endpoint_id, sealed, public_key, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.ID, s.EndpointID, s.Sealed, s.PublicKey, ts(s.CreatedAt), nullTS(s.ExpiresAt))
	return err
}

// bumpVersion marks an endpoint changed so that the dispatcher reloads its signing keys.
func bumpVersion(ctx context.Context, tx pgx.Tx, endpointID string) error {
	_, err := tx.Exec(ctx, `UPDATE endpoints SET version = version + 1 WHERE id = $1`, endpointID)
	return err
}

// SecretInsert adds a secret to an endpoint.
func (db *DB) SecretInsert(ctx context.Context, s *store.SecretRow) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if err := insertSecretRow(ctx, tx, s); err != nil {
			return err
		}
		return bumpVersion(ctx, tx, s.EndpointID)
	})
}

func scanSecret(row scanner) (*store.SecretRow, error) {
	var s store.SecretRow
	if err := row.Scan(&s.ID, &s.EndpointID, &s.Sealed, &s.PublicKey, &s.CreatedAt, &s.ExpiresAt); err != nil {
		return nil, err
	}
	s.CreatedAt, s.ExpiresAt = s.CreatedAt.UTC(), utc(s.ExpiresAt)
	return &s, nil
}

// SecretList returns an endpoint's secrets, oldest first.
func (db *DB) SecretList(ctx context.Context, endpointID string) ([]*store.SecretRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, endpoint_id, sealed, public_key, created_at, expires_at
		FROM secrets WHERE endpoint_id = $1 ORDER BY id`, endpointID)
	return collect(rows, err, scanSecret)
}

// SecretUpdate saves a secret's expiry (its value never changes).
func (db *DB) SecretUpdate(ctx context.Context, s *store.SecretRow) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE secrets SET expires_at = $1 WHERE endpoint_id = $2 AND id = $3`,
			nullTS(s.ExpiresAt), s.EndpointID, s.ID)
		if err := mustAffect(tag, err, "secret", s.ID); err != nil {
			return err
		}
		return bumpVersion(ctx, tx, s.EndpointID)
	})
}

// SecretDelete removes a secret.
func (db *DB) SecretDelete(ctx context.Context, endpointID, id string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM secrets WHERE endpoint_id = $1 AND id = $2`, endpointID, id)
		if err := mustAffect(tag, err, "secret", id); err != nil {
			return err
		}
		return bumpVersion(ctx, tx, endpointID)
	})
}

// SecretRotate adds s and shortens the others' lives to expireAt.
func (db *DB) SecretRotate(ctx context.Context, s *store.SecretRow, expireAt time.Time) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE secrets SET expires_at = $1 WHERE endpoint_id = $2 AND (expires_at IS NULL OR expires_at > $1)`,
			ts(expireAt), s.EndpointID); err != nil {
			return err
		}
		if err := insertSecretRow(ctx, tx, s); err != nil {
			return err
		}
		return bumpVersion(ctx, tx, s.EndpointID)
	})
}

// EndpointFailures answers the failure policy's questions in one statement, through
// attempts_failed (migration 10).
func (db *DB) EndpointFailures(ctx context.Context, qs []store.FailureQuery) ([]store.FailureCount, error) {
	if len(qs) == 0 {
		return nil, nil
	}
	ids, since, limits := make([]string, len(qs)), make([]time.Time, len(qs)), make([]int32, len(qs))
	for i, q := range qs {
		ids[i], since[i], limits[i] = q.EndpointID, ts(q.Since), int32(q.Max)
	}
	rows, err := db.pool.Query(ctx, `SELECT e.id, e.active, e.failing_since, CASE WHEN q.max > 0 THEN (SELECT count(*) FROM (
			SELECT 1 FROM attempts a WHERE a.endpoint_id = e.id AND NOT a.ok
			AND a.started_at >= greatest(q.since, e.reactivated_at) LIMIT q.max) f) ELSE 0 END
		FROM unnest($1::text[], $2::timestamptz[], $3::int4[]) WITH ORDINALITY AS q(id, since, max, n)
		JOIN endpoints e ON e.id = q.id ORDER BY q.n`, ids, since, limits)
	if err != nil {
		return nil, translate(err)
	}
	var out []store.FailureCount
	var c store.FailureCount
	_, err = pgx.ForEachRow(rows, []any{&c.EndpointID, &c.Active, &c.FailingSince, &c.Failures}, func() error {
		c.FailingSince = utc(c.FailingSince)
		out = append(out, c)
		return nil
	})
	return out, translate(err)
}

// EndpointListFailing returns active endpoints with a run of failures.
func (db *DB) EndpointListFailing(ctx context.Context) ([]*store.EndpointRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE active AND failing_since IS NOT NULL`)
	return collect(rows, err, scanEndpoint)
}

// EndpointStatsCounts counts an endpoint's deliveries and attempts since a time.
func (db *DB) EndpointStatsCounts(ctx context.Context, orgID, endpointID string, since time.Time) (*store.StatsCounts, error) {
	if _, err := db.EndpointGet(ctx, orgID, endpointID); err != nil {
		return nil, err
	}
	c := &store.StatsCounts{Deliveries: map[string]int{}}
	rows, err := db.pool.Query(ctx, `SELECT status, count(*) FROM deliveries WHERE endpoint_id = $1 AND created_at >= $2 GROUP BY status`,
		endpointID, ts(since))
	if err != nil {
		return nil, translate(err)
	}
	var status string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error { c.Deliveries[status] = n; return nil }); err != nil {
		return nil, translate(err)
	}
	err = db.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE ok) FROM attempts WHERE endpoint_id = $1 AND started_at >= $2`,
		endpointID, ts(since)).Scan(&c.Attempts, &c.Succeeded)
	if err != nil {
		return nil, translate(err)
	}
	err = db.pool.QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM endpoint_filtered WHERE endpoint_id = $1 AND minute >= $2`,
		endpointID, ts(since.Truncate(time.Minute))).Scan(&c.Filtered)
	if err != nil {
		return nil, translate(err)
	}
	return c, nil
}

// EndpointAttemptDuration returns the duration of the endpoint's attempt since a time at
// a rank in order of duration.
func (db *DB) EndpointAttemptDuration(ctx context.Context, endpointID string, since time.Time, rank int) (int64, error) {
	var v int64
	err := db.pool.QueryRow(ctx, `SELECT duration_ms FROM attempts WHERE endpoint_id = $1 AND started_at >= $2
		ORDER BY duration_ms LIMIT 1 OFFSET $3`, endpointID, ts(since), rank).Scan(&v)
	return v, translate(err)
}
