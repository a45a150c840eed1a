package sqlite

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLogHeader checks the checkpointer's reading of the log's page size and length
// against SQLite's own answers, on every engine linked in.
func TestLogHeader(t *testing.T) {
	t.Parallel()
	for _, e := range Engines() {
		t.Run(string(e), func(t *testing.T) {
			ctx := t.Context()
			db, err := OpenEngine(ctx, t.TempDir(), e)
			require.NoError(t, err)
			defer db.Close()
			// Under the write lock, so that neither a write nor the checkpointer's pass
			// moves the log between the two readings.
			db.wmu.Lock()
			defer db.wmu.Unlock()
			_, err = db.w.ExecContext(ctx, `INSERT INTO orgs (id, name, role, created_at, updated_at) VALUES ('org_1', 'Acme', 'seller', 0, 0)`)
			require.NoError(t, err)
			// -1 while the checkpointer's own pass runs: one checkpoint at a time.
			frames := -1
			require.Eventually(t, func() bool {
				var busy, copied int
				require.NoError(t, db.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied))
				return frames >= 0
			}, 5*time.Second, time.Millisecond)
			require.Positive(t, frames)
			var size int
			require.NoError(t, db.w.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size))
			require.Equal(t, pageSize, size, "a new database's page size")
			// A reader of its own: the checkpointer's goroutine uses db.ck's file.
			ck := &checkpointer{shmPath: db.ck.shmPath}
			defer func() { ck.shm.Close() }()
			gotSize, gotFrames := ck.header()
			require.Equal(t, size, gotSize)
			require.Equal(t, frames, gotFrames)
			require.Equal(t, size*frames, ck.logBytes())
		})
	}
}
