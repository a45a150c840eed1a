package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/consign-dev/consign"
)

// PortalLinkInsert stores a new portal link and deletes those that expired before
// purgeBefore.
func (db *DB) PortalLinkInsert(ctx context.Context, l *consign.PortalLink, hash []byte, purgeBefore time.Time) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := db.txExec(ctx, tx, `DELETE FROM portal_links WHERE expires_at < ?`, ms(purgeBefore)); err != nil {
			return err
		}
		_, err := db.txExec(ctx, tx, `INSERT INTO portal_links (id, org_id, hash, read_only, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			l.ID, l.OrgID, hash, l.ReadOnly, ms(l.ExpiresAt), ms(l.CreatedAt))
		return err
	})
}

// PortalLinkUse claims an unused, unexpired link; see store.Store.
func (db *DB) PortalLinkUse(ctx context.Context, hash []byte, now time.Time) (*consign.PortalLink, bool, error) {
	var l *consign.PortalLink
	var claimed bool
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.txExec(ctx, tx, `UPDATE portal_links SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ?`,
			ms(now), hash, ms(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		claimed = n == 1
		var used sql.NullInt64
		var expires, created int64
		l = &consign.PortalLink{}
		err = db.txQueryRow(ctx, tx, `SELECT id, org_id, read_only, expires_at, used_at, created_at FROM portal_links WHERE hash = ?`, hash).
			Scan(&l.ID, &l.OrgID, &l.ReadOnly, &expires, &used, &created)
		if err != nil {
			return notFound(err, "portal link", "")
		}
		l.ExpiresAt, l.CreatedAt = fromMS(expires), fromMS(created)
		if used.Valid {
			t := fromMS(used.Int64)
			l.UsedAt = &t
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return l, claimed, nil
}
