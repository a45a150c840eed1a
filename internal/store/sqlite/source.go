package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// sourceConfig is the part of a source kept as one JSON document. Credentials never go
// in it: they are in the sealed column.
type sourceConfig struct {
	Verify consign.SourceVerify `json:"verify"`
	Dedupe consign.SourceDedupe `json:"dedupe"`
	Poll   *consign.SourcePoll  `json:"poll,omitempty"`
	// From's URL is kept without its credentials (they are sealed).
	From        *consign.SourceFrom `json:"from,omitempty"`
	TypePointer string              `json:"type_pointer,omitempty"`
	TypeHeader  string              `json:"type_header,omitempty"`
}

func sourceConfigOf(s *consign.Source) string {
	c := sourceConfig{Verify: s.Verify, Dedupe: s.Dedupe, TypePointer: s.TypePointer, TypeHeader: s.TypeHeader}
	if s.From != nil {
		c.From = s.From.Storable()
	}
	c.Verify.Secret, c.Verify.Token, c.Verify.Password = "", "", ""
	if s.Poll != nil {
		p := *s.Poll
		p.Headers = nil
		c.Poll = &p
	}
	b, _ := json.Marshal(c)
	return string(b)
}

const sourceColumns = `id, org_id, name, topic, config, token_hash, token_sealed, sealed, version, poll_next_at,
	poll_last_at, poll_last_error, poll_last_new, poll_synced_until, created_at, updated_at`

func scanSource(row interface{ Scan(...any) error }) (*store.SourceRow, error) {
	var r store.SourceRow
	var cfg string
	var next, last, synced sql.NullInt64
	var lastErr string
	var lastNew int
	var created, updated int64
	if err := row.Scan(&r.ID, &r.OrgID, &r.Name, &r.Topic, &cfg, &r.TokenHash, &r.TokenSealed, &r.Sealed, &r.Version,
		&next, &last, &lastErr, &lastNew, &synced, &created, &updated); err != nil {
		return nil, err
	}
	var c sourceConfig
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		return nil, fmt.Errorf("source %s config: %w", r.ID, err)
	}
	r.Verify, r.Dedupe, r.Poll, r.From, r.TypePointer, r.TypeHeader = c.Verify, c.Dedupe, c.Poll, c.From, c.TypePointer, c.TypeHeader
	if next.Valid {
		r.NextPollAt = fromMS(next.Int64)
	}
	if r.Poll != nil {
		r.PollStatus = &consign.PollStatus{NextRunAt: fromNullMS(next), LastRunAt: fromNullMS(last), LastError: lastErr, LastNewItems: lastNew,
			SyncedUntil: fromNullMS(synced)}
	}
	r.CreatedAt, r.UpdatedAt = fromMS(created), fromMS(updated)
	return &r, nil
}

func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: ms(t), Valid: true}
}

// SourceInsert stores a new source.
func (db *DB) SourceInsert(ctx context.Context, s *store.SourceRow) error {
	s.Version = 1
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sources (id, org_id, name, topic, config, token_hash, token_sealed, sealed,
			version, poll_next_at, poll_last_error, poll_last_new, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, ?, ?)`,
			s.ID, s.OrgID, s.Name, s.Topic, sourceConfigOf(&s.Source), s.TokenHash, s.TokenSealed, s.Sealed,
			s.Version, nullTime(s.NextPollAt), ms(s.CreatedAt), ms(s.UpdatedAt))
		return err
	})
}

// SourceGet returns one source of an org.
func (db *DB) SourceGet(ctx context.Context, orgID, id string) (*store.SourceRow, error) {
	s, err := scanSource(db.r.QueryRowContext(ctx, `SELECT `+sourceColumns+` FROM sources WHERE id = ? AND org_id = ?`, id, orgID))
	if err != nil {
		return nil, notFound(err, "source", id)
	}
	return s, nil
}

// SourceByTokenHash finds a source by the hash of its ingest token.
func (db *DB) SourceByTokenHash(ctx context.Context, hash []byte) (*store.SourceRow, error) {
	s, err := scanSource(db.r.QueryRowContext(ctx, `SELECT `+sourceColumns+` FROM sources WHERE token_hash = ?`, hash))
	if err != nil {
		return nil, notFound(err, "source", "")
	}
	return s, nil
}

// SourceList lists an org's sources newest first.
func (db *DB) SourceList(ctx context.Context, orgID string, p store.Page) ([]*store.SourceRow, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+sourceColumns+` FROM sources WHERE org_id = ? AND id < ? ORDER BY id DESC LIMIT ?`,
		orgID, p.Below(), p.Size())
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanSource)
}

// SourcesFrom returns every source that reads from a broker, across orgs.
func (db *DB) SourcesFrom(ctx context.Context) ([]*store.SourceRow, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+sourceColumns+` FROM sources WHERE json_extract(config, '$.from') IS NOT NULL ORDER BY id`)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanSource)
}

// SourceUpdate saves a source and bumps its version.
func (db *DB) SourceUpdate(ctx context.Context, s *store.SourceRow) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE sources SET name = ?, topic = ?, config = ?, token_hash = ?, token_sealed = ?,
			sealed = ?, poll_next_at = ?, version = version + 1, updated_at = ? WHERE id = ? AND org_id = ? RETURNING version`,
			s.Name, s.Topic, sourceConfigOf(&s.Source), s.TokenHash, s.TokenSealed, s.Sealed, nullTime(s.NextPollAt),
			ms(s.UpdatedAt), s.ID, s.OrgID).Scan(&s.Version)
		return notFound(err, "source", s.ID)
	})
}

// SourceDelete removes a source; its receipts cascade.
func (db *DB) SourceDelete(ctx context.Context, orgID, id string) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sources WHERE org_id = ? AND id = ?`, orgID, id)
		return mustAffect(res, err, "source", id)
	})
}

// ReceiptsInsert stores receipts, marking (or dropping) duplicates.
func (db *DB) ReceiptsInsert(ctx context.Context, rs []*consign.Receipt, dropDuplicates bool) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		seen, err := tx.PrepareContext(ctx, `SELECT 1 FROM receipts WHERE source_id = ? AND dedupe_key = ? AND status IN ('pending', 'processed')`)
		if err != nil {
			return err
		}
		defer seen.Close()
		ins, err := tx.PrepareContext(ctx, `INSERT INTO receipts (id, org_id, source_id, via, status, topic, verified, reason,
			dedupe_key, duplicate, event_id, headers, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, r := range rs {
			if r.Status == consign.ReceiptPending && r.DedupeKey != "" {
				var one int
				switch err := seen.QueryRowContext(ctx, r.SourceID, r.DedupeKey).Scan(&one); err {
				case sql.ErrNoRows:
				case nil:
					r.Status, r.Duplicate = consign.ReceiptDuplicate, true
					if dropDuplicates {
						continue
					}
				default:
					return err
				}
			}
			headers, err := json.Marshal(r.Headers)
			if err != nil {
				return err
			}
			if _, err := ins.ExecContext(ctx, r.ID, r.OrgID, r.SourceID, r.Via, r.Status, r.Topic, r.Verified, r.Reason,
				nullString(r.DedupeKey), r.Duplicate, nullString(r.EventID), string(headers), []byte(r.Body), ms(r.ReceivedAt)); err != nil {
				return err
			}
		}
		return nil
	})
}

const receiptColumns = `id, org_id, source_id, via, status, topic, verified, reason, dedupe_key, duplicate, event_id, headers, body, received_at`

func scanReceipt(row interface{ Scan(...any) error }) (*consign.Receipt, error) {
	var r consign.Receipt
	var key, event sql.NullString
	var headers string
	var body []byte
	var received int64
	if err := row.Scan(&r.ID, &r.OrgID, &r.SourceID, &r.Via, &r.Status, &r.Topic, &r.Verified, &r.Reason, &key,
		&r.Duplicate, &event, &headers, &body, &received); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(headers), &r.Headers); err != nil {
		return nil, fmt.Errorf("receipt %s headers: %w", r.ID, err)
	}
	r.DedupeKey, r.EventID, r.Body, r.ReceivedAt = key.String, event.String, string(body), fromMS(received)
	return &r, nil
}

// ReceiptGet returns one receipt.
func (db *DB) ReceiptGet(ctx context.Context, orgID, sourceID, id string) (*consign.Receipt, error) {
	r, err := scanReceipt(db.r.QueryRowContext(ctx, `SELECT `+receiptColumns+` FROM receipts WHERE id = ? AND org_id = ? AND source_id = ?`,
		id, orgID, sourceID))
	if err != nil {
		return nil, notFound(err, "receipt", id)
	}
	return r, nil
}

// ReceiptList lists a source's receipts newest first.
func (db *DB) ReceiptList(ctx context.Context, orgID, sourceID string, f store.ReceiptFilter) ([]*consign.Receipt, error) {
	q := `SELECT ` + receiptColumns + ` FROM receipts WHERE source_id = ? AND org_id = ? AND id < ?`
	args := []any{sourceID, orgID, f.Page.Below()}
	if f.Verified != nil {
		q += ` AND verified = ?`
		args = append(args, *f.Verified)
	}
	if f.Duplicate != nil {
		q += ` AND duplicate = ?`
		args = append(args, *f.Duplicate)
	}
	if f.Via != "" {
		q += ` AND via = ?`
		args = append(args, f.Via)
	}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, f.Status)
	}
	rows, err := db.r.QueryContext(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, f.Page.Size())...)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanReceipt)
}

// ReceiptsPending returns pending receipts oldest first.
func (db *DB) ReceiptsPending(ctx context.Context, after string, n int) ([]*consign.Receipt, error) {
	if n <= 0 {
		n = 100
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+receiptColumns+` FROM receipts WHERE status = 'pending' AND id > ? ORDER BY id LIMIT ?`, after, n)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanReceipt)
}

// ReceiptsSettle records what became of pending receipts.
func (db *DB) ReceiptsSettle(ctx context.Context, ss []store.ReceiptSettlement) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, s := range ss {
			var err error
			if s.EventID != "" {
				_, err = tx.ExecContext(ctx, `UPDATE receipts SET status = 'processed', event_id = ? WHERE id = ? AND status = 'pending'`, s.EventID, s.ID)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE receipts SET status = 'rejected', reason = ? WHERE id = ? AND status = 'pending'`, s.Reason, s.ID)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// SourcePollsClaim leases due polls.
func (db *DB) SourcePollsClaim(ctx context.Context, now, leaseUntil time.Time, n int) ([]*store.SourceRow, error) {
	var out []*store.SourceRow
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE sources SET poll_lease_until = ?1 WHERE id IN (
			SELECT id FROM sources WHERE poll_next_at IS NOT NULL AND poll_next_at <= ?2
				AND (poll_lease_until IS NULL OR poll_lease_until <= ?2)
			ORDER BY poll_next_at LIMIT ?3) RETURNING `+sourceColumns, ms(leaseUntil), ms(now), n)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanSource)
		return err
	})
	return out, err
}

// SourcePollFinish ends a poll's lease and records its outcome.
func (db *DB) SourcePollFinish(ctx context.Context, r store.PollResult) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sources SET poll_lease_until = NULL, poll_last_at = ?, poll_last_error = ?,
			poll_last_new = ?, poll_next_at = CASE WHEN version = ? AND poll_next_at IS NOT NULL THEN ? ELSE poll_next_at END,
			poll_synced_until = coalesce(?, poll_synced_until)
			WHERE id = ?`, ms(r.RanAt), r.Error, r.NewItems, r.Version, ms(r.NextAt), nullTime(r.SyncedUntil), r.SourceID)
		return err
	})
}

// SourcePollNextDue returns when the earliest poll comes due.
func (db *DB) SourcePollNextDue(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT min(max(poll_next_at, coalesce(poll_lease_until, 0))) FROM sources
		WHERE poll_next_at IS NOT NULL`).Scan(&next)
	if err != nil || !next.Valid {
		return time.Time{}, translate(err)
	}
	return fromMS(next.Int64), nil
}
