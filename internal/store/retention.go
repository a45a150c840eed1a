package store

import (
	"context"
	"time"
)

// Purger deletes old history in batches. Both drivers implement it; it stands apart from
// Store so that wrappers of Store (metrics) need not know it, and retention asks for it
// where it is used.
type Purger interface {
	// AttemptsPurge deletes up to limit attempts that started before before and returns
	// how many it deleted.
	AttemptsPurge(ctx context.Context, before time.Time, limit int) (int, error)
	// EventsPurge deletes up to limit events created before before none of whose
	// deliveries is still to be sent (pending or delivering), with their deliveries and
	// attempts, and returns how many events it deleted. Paused deliveries (of an
	// inactive endpoint) are kept like any other for the retention period, no longer.
	EventsPurge(ctx context.Context, before time.Time, limit int) (int, error)
	// ReceiptsPurge deletes up to limit inbound receipts received before before that are
	// no longer pending (processed, rejected or duplicates), and returns how many it
	// deleted.
	ReceiptsPurge(ctx context.Context, before time.Time, limit int) (int, error)
	// FilteredPurge deletes up to limit minutes of filtered counts (endpoint_filtered)
	// that ended before before, and returns how many it deleted.
	FilteredPurge(ctx context.Context, before time.Time, limit int) (int, error)
	// JobsPurge deletes up to limit jobs that finished before before (running ones are
	// kept however old), and returns how many it deleted.
	JobsPurge(ctx context.Context, before time.Time, limit int) (int, error)
}
