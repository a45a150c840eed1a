package store

import (
	"context"
	"time"

	"github.com/consign-dev/consign"
)

// SourceStore is the storage of inbound sources, their receipts and their polls.
//
// Receipts are the inbound queue: a receipt in status pending is waiting to become an
// event; ReceiptsSettle records what became of it. Dedupe is enforced here, in the
// transaction that stores a receipt: of the receipts of one source that share a dedupe
// key, at most one is ever pending or processed.
//
// A poll is due when poll_next_at has passed and no lease is held; claiming takes a lease
// so that one poll of a source runs at a time across processes.
type SourceStore interface {
	SourceInsert(ctx context.Context, s *SourceRow) error
	SourceGet(ctx context.Context, orgID, id string) (*SourceRow, error)
	// SourceByTokenHash finds the source whose ingest token hashes to hash.
	SourceByTokenHash(ctx context.Context, hash []byte) (*SourceRow, error)
	SourceList(ctx context.Context, orgID string, p Page) ([]*SourceRow, error)
	// SourcesFrom returns every source that reads from a broker (From set), across orgs.
	SourcesFrom(ctx context.Context) ([]*SourceRow, error)
	// SourceUpdate saves every field, NextPollAt included, and bumps Version.
	SourceUpdate(ctx context.Context, s *SourceRow) error
	// SourceDelete removes the source and its receipts.
	SourceDelete(ctx context.Context, orgID, id string) error

	// ReceiptsInsert stores receipts in one durable transaction. A pending receipt whose
	// DedupeKey was accepted (pending or processed) for its source before, or earlier in
	// the same call, becomes a duplicate: Status duplicate and Duplicate set. With
	// dropDuplicates such a receipt is not stored at all (a poll sees the same items
	// every time); its fields are set all the same.
	ReceiptsInsert(ctx context.Context, rs []*consign.Receipt, dropDuplicates bool) error
	// ReceiptGet returns one receipt of a source of the org.
	ReceiptGet(ctx context.Context, orgID, sourceID, id string) (*consign.Receipt, error)
	ReceiptList(ctx context.Context, orgID, sourceID string, f ReceiptFilter) ([]*consign.Receipt, error)
	// ReceiptsPending returns up to limit pending receipts with IDs above after, oldest
	// first, across orgs.
	ReceiptsPending(ctx context.Context, after string, limit int) ([]*consign.Receipt, error)
	// ReceiptsSettle records, for pending receipts, the event each became (processed)
	// or why none was made (rejected). Receipts no longer pending are left alone.
	ReceiptsSettle(ctx context.Context, ss []ReceiptSettlement) error

	// SourcePollsClaim leases, until leaseUntil, up to limit sources whose poll is due at
	// now, earliest first.
	SourcePollsClaim(ctx context.Context, now, leaseUntil time.Time, limit int) ([]*SourceRow, error)
	// SourcePollFinish ends a poll's lease and records how it went. The next run time is
	// written only if the source is still at the version that was claimed: a change made
	// meanwhile set its own schedule.
	SourcePollFinish(ctx context.Context, r PollResult) error
	// SourcePollNextDue returns when the earliest poll comes due (a leased one counts at
	// its lease's end); zero when no source polls.
	SourcePollNextDue(ctx context.Context) (time.Time, error)
}

// SourceRow is a source as stored. Credentials cross the seam sealed: Verify.Secret,
// Verify.Password and Poll.Headers are empty, and Sealed holds them; the ingest token is
// kept sealed (to show the URL again) and hashed (to find the source by it).
type SourceRow struct {
	consign.Source
	TokenHash   []byte
	TokenSealed []byte
	// Sealed is the sealed credentials document; nil when the source has none.
	Sealed []byte
	// NextPollAt is when the poll runs next; zero when the source does not poll.
	NextPollAt time.Time
	// Version counts updates; a poll's outcome only moves a schedule it claimed.
	Version int64
}

// ReceiptFilter selects receipts; nil and empty fields match all.
type ReceiptFilter struct {
	Page
	Verified  *bool
	Duplicate *bool
	Via       string
	Status    string
}

// ReceiptSettlement is what became of a pending receipt: the event it became, or (when
// EventID is empty) the reason it became none.
type ReceiptSettlement struct {
	ID      string
	EventID string
	Reason  string
}

// PollResult is the outcome of one poll of a source.
type PollResult struct {
	SourceID string
	Version  int64 // the source's version when it was claimed
	RanAt    time.Time
	NextAt   time.Time
	Error    string
	NewItems int
	// SyncedUntil, when not zero, is the end of the window this poll read whole; the
	// next poll's window starts there. Zero keeps the one before.
	SyncedUntil time.Time
}
