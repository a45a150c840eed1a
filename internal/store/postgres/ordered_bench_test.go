package postgres_test

import (
	"testing"

	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
	"github.com/consign-dev/consign/internal/store/storetest"
)

// BenchmarkClaimOrderedBacklog: see storetest.BenchClaimOrderedBacklog.
func BenchmarkClaimOrderedBacklog(b *testing.B) {
	db := open(b, pgtest.DSN(b))
	b.Cleanup(func() { db.Close() })
	storetest.BenchClaimOrderedBacklog(b, db)
}

// BenchmarkPausedBacklog: see storetest.BenchPausedBacklog; the backlog is
// CONSIGN_BENCH_BACKLOG deliveries (default a million).
func BenchmarkPausedBacklog(b *testing.B) {
	db := open(b, pgtest.DSN(b))
	b.Cleanup(func() { db.Close() })
	storetest.BenchPausedBacklog(b, db, storetest.BenchBacklog(b))
}
