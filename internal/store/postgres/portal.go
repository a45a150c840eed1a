package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consign-dev/consign"
)

// PortalLinkInsert stores a new portal link and deletes those that expired before
// purgeBefore.
func (db *DB) PortalLinkInsert(ctx context.Context, l *consign.PortalLink, hash []byte, purgeBefore time.Time) error {
	return db.retryTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM portal_links WHERE expires_at < $1`, ts(purgeBefore)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO portal_links (id, org_id, hash, read_only, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			l.ID, l.OrgID, hash, l.ReadOnly, ts(l.ExpiresAt), ts(l.CreatedAt))
		return err
	})
}

// PortalLinkUse claims an unused, unexpired link; see store.Store. The UPDATE's row lock
// makes one of two concurrent uses the one that claims it.
func (db *DB) PortalLinkUse(ctx context.Context, hash []byte, now time.Time) (*consign.PortalLink, bool, error) {
	var l *consign.PortalLink
	var claimed bool
	err := db.retryTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE portal_links SET used_at = $1 WHERE hash = $2 AND used_at IS NULL AND expires_at > $1`, ts(now), hash)
		if err != nil {
			return err
		}
		claimed = tag.RowsAffected() == 1
		l = &consign.PortalLink{}
		err = tx.QueryRow(ctx, `SELECT id, org_id, read_only, expires_at, used_at, created_at FROM portal_links WHERE hash = $1`, hash).
			Scan(&l.ID, &l.OrgID, &l.ReadOnly, &l.ExpiresAt, &l.UsedAt, &l.CreatedAt)
		if err != nil {
			return notFound(err, "portal link", "")
		}
		l.ExpiresAt, l.CreatedAt, l.UsedAt = l.ExpiresAt.UTC(), l.CreatedAt.UTC(), utc(l.UsedAt)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return l, claimed, nil
}
