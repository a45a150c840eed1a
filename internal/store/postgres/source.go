package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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

func sourceConfigOf(s *consign.Source) json.RawMessage {
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
	return b
}

const sourceColumns = `id, org_id, name, topic, config, token_hash, token_sealed, sealed, version, poll_next_at,
	poll_last_at, poll_last_error, poll_last_new, poll_synced_until, created_at, updated_at`

func scanSource(row scanner) (*store.SourceRow, error) {
	var r store.SourceRow
	var cfg []byte
	var next, last, synced *time.Time
	var lastErr string
	var lastNew int
	if err := row.Scan(&r.ID, &r.OrgID, &r.Name, &r.Topic, &cfg, &r.TokenHash, &r.TokenSealed, &r.Sealed, &r.Version,
		&next, &last, &lastErr, &lastNew, &synced, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return nil, err
	}
	var c sourceConfig
	if err := json.Unmarshal(cfg, &c); err != nil {
		return nil, fmt.Errorf("source %s config: %w", r.ID, err)
	}
	r.Verify, r.Dedupe, r.Poll, r.From, r.TypePointer, r.TypeHeader = c.Verify, c.Dedupe, c.Poll, c.From, c.TypePointer, c.TypeHeader
	next, last = utc(next), utc(last)
	if next != nil {
		r.NextPollAt = *next
	}
	if r.Poll != nil {
		r.PollStatus = &consign.PollStatus{NextRunAt: next, LastRunAt: last, LastError: lastErr, LastNewItems: lastNew,
			SyncedUntil: utc(synced)}
	}
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return &r, nil
}

// SourceInsert stores a new source.
func (db *DB) SourceInsert(ctx context.Context, s *store.SourceRow) error {
	s.Version = 1
	_, err := db.pool.Exec(ctx, `INSERT INTO sources (id, org_id, name, topic, config, token_hash, token_sealed, sealed,
		version, poll_next_at, poll_last_error, poll_last_new, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', 0, $11, $12)`,
		s.ID, s.OrgID, s.Name, s.Topic, sourceConfigOf(&s.Source), s.TokenHash, s.TokenSealed, s.Sealed,
		s.Version, zeroNull(s.NextPollAt), ts(s.CreatedAt), ts(s.UpdatedAt))
	return translate(err)
}

// SourceGet returns one source of an org.
func (db *DB) SourceGet(ctx context.Context, orgID, id string) (*store.SourceRow, error) {
	s, err := scanSource(db.pool.QueryRow(ctx, `SELECT `+sourceColumns+` FROM sources WHERE id = $1 AND org_id = $2`, id, orgID))
	if err != nil {
		return nil, notFound(err, "source", id)
	}
	return s, nil
}

// SourceByTokenHash finds a source by the hash of its ingest token.
func (db *DB) SourceByTokenHash(ctx context.Context, hash []byte) (*store.SourceRow, error) {
	s, err := scanSource(db.pool.QueryRow(ctx, `SELECT `+sourceColumns+` FROM sources WHERE token_hash = $1`, hash))
	if err != nil {
		return nil, notFound(err, "source", "")
	}
	return s, nil
}

// SourceList lists an org's sources newest first.
func (db *DB) SourceList(ctx context.Context, orgID string, p store.Page) ([]*store.SourceRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sourceColumns+` FROM sources WHERE org_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
		orgID, p.Below(), p.Size())
	return collect(rows, err, scanSource)
}

// SourcesFrom returns every source that reads from a broker, across orgs.
func (db *DB) SourcesFrom(ctx context.Context) ([]*store.SourceRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sourceColumns+` FROM sources WHERE config -> 'from' IS NOT NULL ORDER BY id`)
	return collect(rows, err, scanSource)
}

// SourceUpdate saves a source and bumps its version.
func (db *DB) SourceUpdate(ctx context.Context, s *store.SourceRow) error {
	err := db.pool.QueryRow(ctx, `UPDATE sources SET name = $1, topic = $2, config = $3, token_hash = $4, token_sealed = $5,
		sealed = $6, poll_next_at = $7, version = version + 1, updated_at = $8 WHERE id = $9 AND org_id = $10 RETURNING version`,
		s.Name, s.Topic, sourceConfigOf(&s.Source), s.TokenHash, s.TokenSealed, s.Sealed, zeroNull(s.NextPollAt),
		ts(s.UpdatedAt), s.ID, s.OrgID).Scan(&s.Version)
	return notFound(err, "source", s.ID)
}

// SourceDelete removes a source; its receipts cascade.
func (db *DB) SourceDelete(ctx context.Context, orgID, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM sources WHERE org_id = $1 AND id = $2`, orgID, id)
	return translate(mustAffect(tag, err, "source", id))
}

// ReceiptsInsert stores receipts, marking (or dropping) duplicates. A pending receipt
// with a dedupe key is inserted with ON CONFLICT DO NOTHING on the dedupe index, so two
// nodes receiving the same item at once agree on which one is the duplicate.
func (db *DB) ReceiptsInsert(ctx context.Context, rs []*consign.Receipt, dropDuplicates bool) error {
	const insert = `INSERT INTO receipts (id, org_id, source_id, via, status, topic, verified, reason,
		dedupe_key, duplicate, event_id, headers, body, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`
	return db.tx(ctx, func(tx pgx.Tx) error {
		for _, r := range rs {
			headers, err := json.Marshal(r.Headers)
			if err != nil {
				return err
			}
			args := func() []any {
				return []any{r.ID, r.OrgID, r.SourceID, r.Via, r.Status, r.Topic, r.Verified, r.Reason,
					nullString(r.DedupeKey), r.Duplicate, nullString(r.EventID), json.RawMessage(headers), []byte(r.Body), ts(r.ReceivedAt)}
			}
			if r.Status == consign.ReceiptPending && r.DedupeKey != "" {
				tag, err := tx.Exec(ctx, insert+` ON CONFLICT (source_id, dedupe_key)
					WHERE status IN ('pending', 'processed') AND dedupe_key IS NOT NULL DO NOTHING`, args()...)
				if err != nil {
					return err
				}
				if tag.RowsAffected() == 1 {
					continue
				}
				r.Status, r.Duplicate = consign.ReceiptDuplicate, true
				if dropDuplicates {
					continue
				}
			}
			if _, err := tx.Exec(ctx, insert, args()...); err != nil {
				return err
			}
		}
		return nil
	})
}

const receiptColumns = `id, org_id, source_id, via, status, topic, verified, reason, dedupe_key, duplicate, event_id, headers, body, received_at`

func scanReceipt(row scanner) (*consign.Receipt, error) {
	var r consign.Receipt
	var key, event *string
	var headers, body []byte
	if err := row.Scan(&r.ID, &r.OrgID, &r.SourceID, &r.Via, &r.Status, &r.Topic, &r.Verified, &r.Reason, &key,
		&r.Duplicate, &event, &headers, &body, &r.ReceivedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(headers, &r.Headers); err != nil {
		return nil, fmt.Errorf("receipt %s headers: %w", r.ID, err)
	}
	if key != nil {
		r.DedupeKey = *key
	}
	if event != nil {
		r.EventID = *event
	}
	r.Body, r.ReceivedAt = string(body), r.ReceivedAt.UTC()
	return &r, nil
}

// ReceiptGet returns one receipt.
func (db *DB) ReceiptGet(ctx context.Context, orgID, sourceID, id string) (*consign.Receipt, error) {
	r, err := scanReceipt(db.pool.QueryRow(ctx, `SELECT `+receiptColumns+` FROM receipts WHERE id = $1 AND org_id = $2 AND source_id = $3`,
		id, orgID, sourceID))
	if err != nil {
		return nil, notFound(err, "receipt", id)
	}
	return r, nil
}

// ReceiptList lists a source's receipts newest first.
func (db *DB) ReceiptList(ctx context.Context, orgID, sourceID string, f store.ReceiptFilter) ([]*consign.Receipt, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+receiptColumns+` FROM receipts WHERE source_id = $1 AND org_id = $2 AND id < $3
		AND ($4::boolean IS NULL OR verified = $4) AND ($5::boolean IS NULL OR duplicate = $5)
		AND ($6 = '' OR via = $6) AND ($7 = '' OR status = $7) ORDER BY id DESC LIMIT $8`,
		sourceID, orgID, f.Page.Below(), f.Verified, f.Duplicate, f.Via, f.Status, f.Page.Size())
	return collect(rows, err, scanReceipt)
}

// ReceiptsPending returns pending receipts oldest first.
func (db *DB) ReceiptsPending(ctx context.Context, after string, n int) ([]*consign.Receipt, error) {
	if n <= 0 {
		n = 100
	}
	rows, err := db.pool.Query(ctx, `SELECT `+receiptColumns+` FROM receipts WHERE status = 'pending' AND id > $1 ORDER BY id LIMIT $2`, after, n)
	return collect(rows, err, scanReceipt)
}

// ReceiptsSettle records what became of pending receipts.
func (db *DB) ReceiptsSettle(ctx context.Context, ss []store.ReceiptSettlement) error {
	if len(ss) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, s := range ss {
		if s.EventID != "" {
			b.Queue(`UPDATE receipts SET status = 'processed', event_id = $1 WHERE id = $2 AND status = 'pending'`, s.EventID, s.ID)
		} else {
			b.Queue(`UPDATE receipts SET status = 'rejected', reason = $1 WHERE id = $2 AND status = 'pending'`, s.Reason, s.ID)
		}
	}
	return db.tx(ctx, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
}

// SourcePollsClaim leases due polls; SKIP LOCKED lets nodes claim side by side.
func (db *DB) SourcePollsClaim(ctx context.Context, now, leaseUntil time.Time, n int) ([]*store.SourceRow, error) {
	rows, err := db.pool.Query(ctx, `UPDATE sources SET poll_lease_until = $1 WHERE id IN (
		SELECT id FROM sources WHERE poll_next_at IS NOT NULL AND poll_next_at <= $2
			AND (poll_lease_until IS NULL OR poll_lease_until <= $2)
		ORDER BY poll_next_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING `+sourceColumns, ts(leaseUntil), ts(now), n)
	out, err := collect(rows, err, scanSource)
	slices.SortStableFunc(out, func(a, b *store.SourceRow) int {
		if c := a.NextPollAt.Compare(b.NextPollAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}

// SourcePollFinish ends a poll's lease and records its outcome.
func (db *DB) SourcePollFinish(ctx context.Context, r store.PollResult) error {
	_, err := db.pool.Exec(ctx, `UPDATE sources SET poll_lease_until = NULL, poll_last_at = $1, poll_last_error = $2,
		poll_last_new = $3, poll_next_at = CASE WHEN version = $4 AND poll_next_at IS NOT NULL THEN $5 ELSE poll_next_at END,
		poll_synced_until = coalesce($6, poll_synced_until)
		WHERE id = $7`, ts(r.RanAt), r.Error, r.NewItems, r.Version, ts(r.NextAt), zeroNull(r.SyncedUntil), r.SourceID)
	return translate(err)
}

// SourcePollNextDue returns when the earliest poll comes due.
func (db *DB) SourcePollNextDue(ctx context.Context) (time.Time, error) {
	var next *time.Time
	// greatest ignores NULLs: an unleased source counts at poll_next_at.
	err := db.pool.QueryRow(ctx, `SELECT min(greatest(poll_next_at, poll_lease_until)) FROM sources
		WHERE poll_next_at IS NOT NULL`).Scan(&next)
	if err != nil || next == nil {
		return time.Time{}, translate(err)
	}
	return next.UTC(), nil
}
