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
