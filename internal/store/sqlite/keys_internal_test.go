package sqlite

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// TestKeyRowsGoWithTheirEvents: whichever way an event leaves the store, its rows in
// the business-key index go with it (event_keys has no foreign key: the trigger
// event_keys_delete removes them, up to the 16 indexed), and no other event's do.
func TestKeyRowsGoWithTheirEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		remove func(t *testing.T, db *DB, org *consign.Org, at time.Time)
	}{
		{"Retention", func(t *testing.T, db *DB, _ *consign.Org, at time.Time) {
			_, err := db.EventsPurge(t.Context(), at.Add(time.Hour), 1000)
			require.NoError(t, err)
		}},
		{"OrgDelete", func(t *testing.T, db *DB, org *consign.Org, _ time.Time) {
			require.NoError(t, db.OrgDelete(t.Context(), org.ID))
		}},
		{"CascadeFromOrgs", func(t *testing.T, db *DB, org *consign.Org, _ time.Time) {
			_, err := db.w.ExecContext(t.Context(), `DELETE FROM orgs WHERE id = ?`, org.ID)
			require.NoError(t, err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db, org, other, at := openWithTwoOrgs(t)
			write := func(orgID string, at time.Time, keys ...string) *consign.Event {
				ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: orgID, Type: "order.updated",
					Payload: []byte(`{"order_id":"1001"}`), CreatedAt: at}
				require.NoError(t, db.EventsInsert(ctx, []*store.EventWrite{{Event: ev, Keys: keys}}))
				return ev
			}
			// Keys JSON must escape in events.keys, where the trigger reads them back.
			many := []string{"1001", "PO-7", `q"uote`, `back\slash`, "line\nfeed\x01\x1f", "ünï😀", "</tag>&\u2028"}
			for i := range 10 {
				many = append(many, fmt.Sprint("k", i))
			}
			write(org.ID, at, many...) // 17 keys: the first 16 are indexed
			write(org.ID, at, "1001")
			write(org.ID, at) // no keys
			kept := write(other.ID, at.Add(2*time.Hour), "1001", "PO-7")
			rows := func(orgID string) int {
				var n int
				require.NoError(t, db.w.QueryRowContext(ctx, `SELECT count(*) FROM event_keys WHERE org_id = ?`, orgID).Scan(&n))
				return n
			}
			require.Equal(t, 17, rows(org.ID))

			tt.remove(t, db, org, at)
			require.Zero(t, rows(org.ID), "key rows of the events that went")
			require.Equal(t, 2, rows(other.ID), "key rows of the event that stays")
			evs, err := db.EventList(ctx, other.ID, store.EventFilter{Key: "PO-7"})
			require.NoError(t, err)
			require.Len(t, evs, 1)
			require.Equal(t, kept.ID, evs[0].ID)
		})
	}
}

// openWithTwoOrgs opens a store in a new directory with two orgs, closed when the test
// ends.
func openWithTwoOrgs(t *testing.T) (db *DB, org, other *consign.Org, at time.Time) {
	t.Helper()
	db, org, at = openWithOrg(t, t.TempDir())
	t.Cleanup(func() { db.Close() })
	other = &consign.Org{ID: consign.NewID(consign.PrefixOrg, at), Name: "Other", Role: consign.RoleBoth, CreatedAt: at, UpdatedAt: at}
	require.NoError(t, db.OrgInsert(t.Context(), other))
	return db, org, other, at
}

// TestMigrationKeepsEventKeys writes keyed events at schema version 16 (event_keys with
// its event index and foreign key), opens the database as a new version would, and
// checks that the keys still find their events, are recorded in the events' rows, and
// go with them.
func TestMigrationKeepsEventKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	raw := migratedTo(t, dir, 16)
	for _, q := range []string{
		`INSERT INTO orgs (id, name, role, created_at, updated_at) VALUES ('org_1', 'Acme', 'both', 1, 1)`,
		`INSERT INTO events VALUES ('evt_1', 'org_1', 'order.created', '{}', NULL, '', 1)`,
		`INSERT INTO events VALUES ('evt_2', 'org_1', 'order.created', '{}', NULL, '', 2)`,
		`INSERT INTO events VALUES ('evt_3', 'org_1', 'order.created', '{}', NULL, '', 3)`,
		`INSERT INTO event_keys VALUES ('org_1', '1001', 'evt_1'), ('org_1', 'PO-"7"', 'evt_1'), ('org_1', '1001', 'evt_2')`,
	} {
		_, err := raw.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	require.NoError(t, raw.Close())

	db, err := Open(ctx, dir)
	require.NoError(t, err)
	defer db.Close()
	ids := func(key string) []string {
		evs, err := db.EventList(ctx, "org_1", store.EventFilter{Key: key})
		require.NoError(t, err)
		out := []string{}
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	require.Equal(t, []string{"evt_2", "evt_1"}, ids("1001"))
	require.Equal(t, []string{"evt_1"}, ids(`PO-"7"`))
	var keys sql.NullString
	require.NoError(t, db.w.QueryRowContext(ctx, `SELECT keys FROM events WHERE id = 'evt_3'`).Scan(&keys))
	require.False(t, keys.Valid, "an event without keys records none")

	_, err = db.EventsPurge(ctx, time.UnixMilli(2), 10) // evt_1
	require.NoError(t, err)
	require.Equal(t, []string{"evt_2"}, ids("1001"))
	require.Empty(t, ids(`PO-"7"`))
	var n int
	require.NoError(t, db.w.QueryRowContext(ctx, `SELECT count(*) FROM event_keys`).Scan(&n))
	require.Equal(t, 1, n)
}
