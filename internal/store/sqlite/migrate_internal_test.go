package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"
)

// migratedTo opens a store file in dir with the schema migrated up to version v only, as
// an older release left it, for a migration test to fill before opening it as this one.
func migratedTo(t *testing.T, dir string, v int64) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?_pragma=foreign_keys(1)")
	require.NoError(t, err)
	p, err := goose.NewProvider(goose.DialectSQLite3, raw, mustSub(migrations, "migrations"))
	require.NoError(t, err)
	_, err = p.UpTo(t.Context(), v)
	require.NoError(t, err)
	return raw
}

// TestMigrationKeepsAttempts writes a delivery with two attempts at schema version 4
// (attempts WITHOUT ROWID, deliveries_endpoint with status), then opens the database as a
// new version would, and checks that the attempt log and the per-endpoint lookups survive.
func TestMigrationKeepsAttempts(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	raw := migratedTo(t, dir, 4)
	for _, q := range []string{
		`INSERT INTO orgs VALUES ('org_1', 'Acme', 'both', 1, 1)`,
		`INSERT INTO endpoints (id, org_id, url, config, active, health, disabled_reason, version, created_at, updated_at)
			VALUES ('ep_1', 'org_1', 'https://example.com/hooks', '{}', 1, 'healthy', '', 1, 1, 1)`,
		`INSERT INTO events VALUES ('evt_1', 'org_1', 'order.created', '{}', NULL, '', 1)`,
		`INSERT INTO deliveries (id, org_id, event_id, endpoint_id, event_type, ordering_key, sequence, status,
			attempts_count, next_attempt_at, deadline_at, created_at, updated_at)
			VALUES ('dlv_1', 'org_1', 'evt_1', 'ep_1', 'order.created', '', 0, 'failed', 2, 5, 9, 1, 5)`,
		`INSERT INTO attempts VALUES ('dlv_1', 1, 'ep_1', 0, 2, 10, '{"method":"POST","url":"https://example.com/hooks","headers":{}}',
			500, '{}', 'boom', 0, NULL)`,
		`INSERT INTO attempts VALUES ('dlv_1', 2, 'ep_1', 0, 4, 12, '{"method":"POST","url":"https://example.com/hooks","headers":{}}',
			503, '{}', 'down', 0, NULL)`,
	} {
		_, err := raw.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	require.NoError(t, raw.Close())

	db, err := Open(ctx, dir)
	require.NoError(t, err)
	defer db.Close()
	d, err := db.DeliveryGet(ctx, "org_1", "dlv_1")
	require.NoError(t, err)
	require.Len(t, d.Attempts, 2)
	require.Equal(t, 500, d.Attempts[0].Response.Status)
	require.Equal(t, "down", d.Attempts[1].Response.Body)
	// Deleting the delivery still takes its attempts with it.
	_, err = db.w.ExecContext(ctx, `DELETE FROM deliveries WHERE id = 'dlv_1'`)
	require.NoError(t, err)
	var n int
	require.NoError(t, db.w.QueryRowContext(ctx, `SELECT count(*) FROM attempts`).Scan(&n))
	require.Zero(t, n)
}
