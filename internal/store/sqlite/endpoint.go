package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

func configOf(e *store.EndpointRow) string { return string(store.EncodeEndpointConfig(e)) }

const endpointColumns = `id, org_id, url, config, token_sealed, active, health, disabled_at, disabled_reason, failing_since,
	reactivated_at, version, created_at, updated_at`

func scanEndpoint(row interface{ Scan(...any) error }) (*store.EndpointRow, error) {
	var r store.EndpointRow
	var cfg string
	var disabled, failing, reactivated sql.NullInt64
	var created, updated int64
	if err := row.Scan(&r.ID, &r.OrgID, &r.URL, &cfg, &r.TokenSealed, &r.Active, &r.Health, &disabled,
		&r.DisabledReason, &failing, &reactivated, &r.Version, &created, &updated); err != nil {
		return nil, err
	}
	if err := store.DecodeEndpointConfig([]byte(cfg), &r); err != nil {
		return nil, err
	}
	r.DisabledAt, r.FailingSince, r.ReactivatedAt = fromNullMS(disabled), fromNullMS(failing), fromNullMS(reactivated)
	r.CreatedAt, r.UpdatedAt = fromMS(created), fromMS(updated)
	return &r, nil
}

// EndpointInsert stores an endpoint and its first secrets.
func (db *DB) EndpointInsert(ctx context.Context, e *store.EndpointRow, secrets []*store.SecretRow) error {
	e.Version = 1
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := db.txExec(ctx, tx, `INSERT INTO endpoints (`+endpointColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.OrgID, e.URLKey(), configOf(e), e.TokenSealed, e.Active, e.Health, nullMS(e.DisabledAt),
			e.DisabledReason, nullMS(e.FailingSince), nullMS(e.ReactivatedAt), e.Version, ms(e.CreatedAt), ms(e.UpdatedAt))
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if err := db.insertSecretRow(ctx, tx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if consign.ErrorCode(err) == consign.ECONFLICT {
		return consign.Errorf(consign.ECONFLICT, "an endpoint for %s exists already in this org", e.URL)
	}
	return err
}

// EndpointGet returns one endpoint.
func (db *DB) EndpointGet(ctx context.Context, orgID, id string) (*store.EndpointRow, error) {
	var row row
	if orgID == "" {
		row = db.queryRow(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE id = ?`, id)
	} else {
		row = db.queryRow(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE id = ? AND org_id = ?`, id, orgID)
	}
	e, err := scanEndpoint(row)
	if err != nil {
		return nil, notFound(err, "endpoint", id)
	}
	return e, nil
}

// EndpointList lists an org's endpoints newest first.
func (db *DB) EndpointList(ctx context.Context, orgID string, p store.Page) ([]*store.EndpointRow, error) {
	rows, err := db.query(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE org_id = ? AND id < ? ORDER BY id DESC LIMIT ?`,
		orgID, p.Below(), p.Size())
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanEndpoint)
}

// EndpointListAll returns the org's endpoints in ID order.
func (db *DB) EndpointListAll(ctx context.Context, orgID string) ([]*store.EndpointRow, error) {
	rows, err := db.query(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE org_id = ? ORDER BY id`, orgID)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanEndpoint)
}

// OrgEndpointsVersion returns the org's endpoints_version (migration 7).
func (db *DB) OrgEndpointsVersion(ctx context.Context, orgID string) (int64, error) {
	var v int64
	err := db.queryRow(ctx, `SELECT endpoints_version FROM orgs WHERE id = ?`, orgID).Scan(&v)
	return v, notFound(err, "org", orgID)
}

// EndpointUpdate saves an endpoint, pausing or resuming its deliveries when it is
// deactivated or activated, or cancelling its paused ones when it is activated with
// e.DiscardPaused. The endpoint's row changes first and its deliveries follow in steps
// (flipBacklog), since an endpoint that failed for days may hold millions; those to
// cancel go in steps before it, while it is still inactive, the rest with the row's
// change (discardStep).
func (db *DB) EndpointUpdate(ctx context.Context, e *store.EndpointRow) error {
	if e.Active && e.DiscardPaused {
		if err := db.stepBacklog(ctx, discardStep, e.ID, e.UpdatedAt); err != nil {
			return err
		}
	}
	var wasActive bool
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := db.txQueryRow(ctx, tx, `SELECT active FROM endpoints WHERE id = ? AND org_id = ?`, e.ID, e.OrgID).Scan(&wasActive); err != nil {
			return notFound(err, "endpoint", e.ID)
		}
		if !wasActive && e.Active && e.DiscardPaused {
			// What the steps left (written since), with the activation: nothing that
			// waited is sent.
			if _, err := db.txExec(ctx, tx, discardStep, e.ID, -1, ms(e.UpdatedAt)); err != nil {
				return err
			}
		}
		var version int64
		err := db.txQueryRow(ctx, tx, `UPDATE endpoints SET url = ?, config = ?, token_sealed = ?, active = ?, health = ?,
			disabled_at = ?, disabled_reason = ?, failing_since = ?, reactivated_at = ?, version = version + 1, updated_at = ?
			WHERE id = ? RETURNING version`,
			e.URLKey(), configOf(e), e.TokenSealed, e.Active, e.Health, nullMS(e.DisabledAt), e.DisabledReason,
			nullMS(e.FailingSince), nullMS(e.ReactivatedAt), ms(e.UpdatedAt), e.ID).Scan(&version)
		if err != nil {
			return err
		}
		e.Version = version
		return nil
	})
	if consign.ErrorCode(err) == consign.ECONFLICT {
		return consign.Errorf(consign.ECONFLICT, "an endpoint for %s exists already in this org", e.URL)
	}
	if err != nil || wasActive == e.Active {
		return err
	}
	// The endpoint's row has changed: its deliveries follow even when the caller goes
	// away meanwhile (a client that hung up), rather than at the next settle.
	return db.flipBacklog(context.WithoutCancel(ctx), e.ID, e.Active, e.UpdatedAt)
}

// EndpointDelete removes an endpoint; secrets, deliveries and attempts cascade.
func (db *DB) EndpointDelete(ctx context.Context, orgID, id string) error {
	// The org's own endpoint only: the steps below go by the endpoint's id.
	var one int
	if err := db.queryRow(ctx, `SELECT 1 FROM endpoints WHERE org_id = ? AND id = ?`, orgID, id).Scan(&one); err != nil {
		return notFound(err, "endpoint", id)
	}
	// Its deliveries (with their attempts) in steps (bulk.go), then the endpoint.
	if err := db.deleteInSteps(ctx, id, endpointDeliveries); err != nil {
		return err
	}
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.txExec(ctx, tx, `DELETE FROM endpoints WHERE org_id = ? AND id = ?`, orgID, id)
		if err := mustAffect(res, err, "endpoint", id); err != nil {
			return err
		}
		_, err = db.txExec(ctx, tx, `DELETE FROM endpoint_filtered WHERE endpoint_id = ?`, id)
		return err
	})
}

func (db *DB) insertSecret(ctx context.Context, tx *sql.Tx, s *store.SecretRow) error {
	if err := db.insertSecretRow(ctx, tx, s); err != nil {
		return err
	}
	return db.bumpVersion(ctx, tx, s.EndpointID)
}

// insertSecretRow stores a secret without bumping its endpoint's version: a new
// endpoint's first secrets belong to its version 1.
func (db *DB) insertSecretRow(ctx context.Context, tx *sql.Tx, s *store.SecretRow) error {
	_, err := db.txExec(ctx, tx, `INSERT INTO secrets (id, endpoint_id, sealed, public_key, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		s.ID, s.EndpointID, s.Sealed, s.PublicKey, ms(s.CreatedAt), nullMS(s.ExpiresAt))
	return err
}

// bumpVersion marks an endpoint changed so that the dispatcher reloads its signing keys.
func (db *DB) bumpVersion(ctx context.Context, tx *sql.Tx, endpointID string) error {
	_, err := db.txExec(ctx, tx, `UPDATE endpoints SET version = version + 1 WHERE id = ?`, endpointID)
	return err
}

// SecretInsert adds a secret to an endpoint.
func (db *DB) SecretInsert(ctx context.Context, s *store.SecretRow) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error { return db.insertSecret(ctx, tx, s) })
}

func scanSecret(row interface{ Scan(...any) error }) (*store.SecretRow, error) {
	var s store.SecretRow
	var created int64
	var expires sql.NullInt64
	if err := row.Scan(&s.ID, &s.EndpointID, &s.Sealed, &s.PublicKey, &created, &expires); err != nil {
		return nil, err
	}
	s.CreatedAt, s.ExpiresAt = fromMS(created), fromNullMS(expires)
	return &s, nil
}

// SecretList returns an endpoint's secrets, oldest first.
func (db *DB) SecretList(ctx context.Context, endpointID string) ([]*store.SecretRow, error) {
	rows, err := db.query(ctx, `SELECT id, endpoint_id, sealed, public_key, created_at, expires_at
		FROM secrets WHERE endpoint_id = ? ORDER BY id`, endpointID)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanSecret)
}

// SecretUpdate saves a secret's expiry (its value never changes).
func (db *DB) SecretUpdate(ctx context.Context, s *store.SecretRow) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.txExec(ctx, tx, `UPDATE secrets SET expires_at = ? WHERE endpoint_id = ? AND id = ?`,
			nullMS(s.ExpiresAt), s.EndpointID, s.ID)
		if err := mustAffect(res, err, "secret", s.ID); err != nil {
			return err
		}
		return db.bumpVersion(ctx, tx, s.EndpointID)
	})
}

// SecretDelete removes a secret.
func (db *DB) SecretDelete(ctx context.Context, endpointID, id string) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.txExec(ctx, tx, `DELETE FROM secrets WHERE endpoint_id = ? AND id = ?`, endpointID, id)
		if err := mustAffect(res, err, "secret", id); err != nil {
			return err
		}
		return db.bumpVersion(ctx, tx, endpointID)
	})
}

// SecretRotate adds s and shortens the others' lives to expireAt.
func (db *DB) SecretRotate(ctx context.Context, s *store.SecretRow, expireAt time.Time) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := db.txExec(ctx, tx, `UPDATE secrets SET expires_at = ? WHERE endpoint_id = ? AND (expires_at IS NULL OR expires_at > ?)`,
			ms(expireAt), s.EndpointID, ms(expireAt)); err != nil {
			return err
		}
		return db.insertSecret(ctx, tx, s)
	})
}

// failuresSQL is what the failure policy asks of endpoint ?1: its state, and its failed
// attempts from ?2 on (and from its last reactivation), up to ?3 of them.
const failuresSQL = `SELECT e.active, e.failing_since, CASE WHEN ?3 > 0 THEN (SELECT count(*) FROM (
		SELECT 1 FROM attempts INDEXED BY attempts_failed WHERE endpoint_id = e.id AND ok = 0
		AND started_at >= max(?2, coalesce(e.reactivated_at, 0)) LIMIT ?3)) ELSE 0 END
	FROM endpoints e WHERE e.id = ?1`

// EndpointFailures answers the failure policy's questions, one read per endpoint (in
// process, a read costs no round trip), through attempts_failed (migration 10).
func (db *DB) EndpointFailures(ctx context.Context, qs []store.FailureQuery) ([]store.FailureCount, error) {
	out := make([]store.FailureCount, 0, len(qs))
	for _, q := range qs {
		c := store.FailureCount{EndpointID: q.EndpointID}
		var failing sql.NullInt64
		err := db.queryRow(ctx, failuresSQL, q.EndpointID, ms(q.Since), q.Max).Scan(&c.Active, &failing, &c.Failures)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue
		case err != nil:
			return nil, translate(err)
		}
		c.FailingSince = fromNullMS(failing)
		out = append(out, c)
	}
	return out, nil
}

// EndpointListFailing returns active endpoints with a run of failures.
func (db *DB) EndpointListFailing(ctx context.Context) ([]*store.EndpointRow, error) {
	rows, err := db.query(ctx, `SELECT `+endpointColumns+` FROM endpoints WHERE active = 1 AND failing_since IS NOT NULL`)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanEndpoint)
}

// EndpointStatsCounts counts an endpoint's deliveries and attempts since a time.
func (db *DB) EndpointStatsCounts(ctx context.Context, orgID, endpointID string, since time.Time) (*store.StatsCounts, error) {
	if _, err := db.EndpointGet(ctx, orgID, endpointID); err != nil {
		return nil, err
	}
	c := &store.StatsCounts{Deliveries: map[string]int{}}
	rows, err := db.query(ctx, `SELECT status, count(*) FROM deliveries WHERE endpoint_id = ? AND created_at >= ? GROUP BY status`,
		endpointID, ms(since))
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return nil, translate(err)
		}
		c.Deliveries[status] = n
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	err = db.queryRow(ctx, `SELECT count(*), coalesce(sum(ok), 0) FROM attempts WHERE endpoint_id = ? AND started_at >= ?`,
		endpointID, ms(since)).Scan(&c.Attempts, &c.Succeeded)
	if err != nil {
		return nil, translate(err)
	}
	err = db.queryRow(ctx, `SELECT coalesce(sum(count), 0) FROM endpoint_filtered WHERE endpoint_id = ? AND minute >= ?`,
		endpointID, ms(since.Truncate(time.Minute))).Scan(&c.Filtered)
	if err != nil {
		return nil, translate(err)
	}
	return c, nil
}

// EndpointAttemptDuration returns the duration of the endpoint's attempt since a time at
// a rank in order of duration.
func (db *DB) EndpointAttemptDuration(ctx context.Context, endpointID string, since time.Time, rank int) (int64, error) {
	var v int64
	err := db.queryRow(ctx, `SELECT duration_ms FROM attempts WHERE endpoint_id = ? AND started_at >= ?
		ORDER BY duration_ms LIMIT 1 OFFSET ?`, endpointID, ms(since), rank).Scan(&v)
	return v, translate(err)
}
