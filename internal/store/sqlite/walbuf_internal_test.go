//go:build cgo && !consign_stdlib

package sqlite

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// snapshot copies the database and its log, as they are in the files now, into a new
// directory, as a process killed at this moment would leave them (without the
// wal-index, which SQLite rebuilds from the log, checking each frame's checksum), and
// opens the copy through SQLite's default VFS.
func snapshot(t *testing.T, path string) *sql.DB {
	t.Helper()
	dir := t.TempDir()
	for _, suffix := range []string{"", "-wal"} {
		src, err := os.Open(path + suffix)
		require.NoError(t, err)
		dst, err := os.Create(filepath.Join(dir, "copy.db"+suffix))
		require.NoError(t, err)
		_, err = io.Copy(dst, src)
		require.NoError(t, err)
		require.NoError(t, src.Close())
		require.NoError(t, dst.Close())
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "copy.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	var check string
	require.NoError(t, db.QueryRow(`PRAGMA integrity_check`).Scan(&check))
	require.Equal(t, "ok", check)
	return db
}

// TestWALBufferCommitsReachTheFile: every commit's frames are in the log file when the
// commit returns, with checksums that hold, both for durable commits (ingest,
// synchronous=FULL) and for the dispatcher's (synchronous=NORMAL): a copy of the files
// taken then, as a crash would leave them, has all of it.
func TestWALBufferCommitsReachTheFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	db, err := OpenEngine(ctx, dir, EngineC)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	path := filepath.Join(dir, FileName)

	now := time.Now().UTC()
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleSeller, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, db.OrgInsert(ctx, org))
	ep := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, now), OrgID: org.ID,
		URL: "https://erp.example.com/hooks", Topics: []string{"*"}, Active: true, CreatedAt: now, UpdatedAt: now}}
	require.NoError(t, ep.Normalize())
	require.NoError(t, db.EndpointInsert(ctx, ep, nil))

	payload := []byte(`{"note":"` + strings.Repeat("x", 1000) + `"}`)
	gathered := walBufferGathered()
	var ids []string
	for batch := range 20 {
		// Batches of 1 to 96 events: commits of a frame or two and commits larger
		// than the buffer.
		n := 1 + batch*5
		var ws []*store.EventWrite
		for i := range n {
			at := now.Add(time.Duration(len(ids)+i) * time.Millisecond)
			id := consign.NewID(consign.PrefixDelivery, at)
			ids = append(ids, id)
			ws = append(ws, &store.EventWrite{
				Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.created",
					Payload: payload, CreatedAt: at},
				Deliveries: []store.NewDelivery{{ID: id, EndpointID: ep.ID, Deadline: at.Add(time.Hour)}},
			})
		}
		require.NoError(t, db.EventsInsert(ctx, ws))
		var events int
		require.NoError(t, snapshot(t, path).QueryRow(`SELECT count(*) FROM events`).Scan(&events))
		require.Equal(t, len(ids), events, "events in the files after durable commit %d", batch+1)

		// The dispatcher's commit: the batch's deliveries succeeded.
		var outcomes []*store.Outcome
		for _, id := range ids[len(ids)-n:] {
			outcomes = append(outcomes, &store.Outcome{DeliveryID: id, EndpointID: ep.ID, Status: consign.StatusSucceeded, At: now,
				Attempt: &consign.Attempt{N: 1, StartedAt: now, DurationMS: 1, Request: consign.AttemptRequest{Method: "POST", URL: ep.URL},
					Response: &consign.AttemptResponse{Status: 200}}})
		}
		require.NoError(t, db.DeliveriesRecord(ctx, store.RecordParams{Outcomes: outcomes}))
		var succeeded int
		require.NoError(t, snapshot(t, path).QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'succeeded'`).Scan(&succeeded))
		require.Equal(t, len(ids), succeeded, "deliveries recorded in the files after commit %d", batch+1)
	}
	// The store's log went through the buffer (a log that cannot find its database file
	// is written unbuffered, correct but slower).
	require.Greater(t, walBufferGathered()-gathered, uint64(1000), "log writes gathered")
}

// TestWALBufferLargeTransaction runs a transaction far larger than its page cache and
// than the buffer, which writes pages twice: SQLite spills frames to the log before the
// commit, reads them back, overwrites them in place and rewrites their checksums. The
// database reads back what was written, live and from a copy of the files.
func TestWALBufferLargeTransaction(t *testing.T) {
	t.Parallel()
	vfs, err := registerWALBuffer()
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "large.db")
	params := url.Values{"_txlock": {"immediate"}, "vfs": {vfs}}
	db := sql.OpenDB(connector{driver: &sqlite3.SQLiteDriver{}, dsn: "file:" + path + "?" + params.Encode(),
		pragmas: []string{"journal_mode(WAL)", "synchronous(NORMAL)", "cache_size(-64)", "wal_autocheckpoint(0)"}})
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)

	const rows = 4000
	_, err = db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`)
	require.NoError(t, err)
	tx, err := db.Begin()
	require.NoError(t, err)
	for i := range rows {
		_, err := tx.Exec(`INSERT INTO t (id, body) VALUES (?, ?)`, i, strings.Repeat("a", 1000))
		require.NoError(t, err)
	}
	// Every page again, in the same transaction.
	_, err = tx.Exec(`UPDATE t SET body = printf('%d-', id) || substr(body, 1, 900)`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())

	check := func(db *sql.DB, where string) {
		var n, total int
		require.NoError(t, db.QueryRow(`SELECT count(*), sum(length(body)) FROM t`).Scan(&n, &total), where)
		require.Equal(t, rows, n, where)
		want := 0
		for i := range rows {
			want += len(strconv.Itoa(i)) + len("-") + 900
		}
		require.Equal(t, want, total, where)
	}
	// The copy first: a read through the live connection would write the buffer out.
	check(snapshot(t, path), "a copy of the files")
	check(db, "live")
}

// TestWALBufferRollbackThenAnotherWriter: a transaction spills frames to the log and rolls
// back; another connection then writes and commits at the same place in the log; the
// first connection's next use of the log must not write its rolled-back frames over the
// second's. The buffer is written out when a connection releases the log's write lock,
// before anyone else may write.
func TestWALBufferRollbackThenAnotherWriter(t *testing.T) {
	t.Parallel()
	vfs, err := registerWALBuffer()
	require.NoError(t, err)
	for _, spill := range []int{20, 40, 80} {
		t.Run(strconv.Itoa(spill)+" rows", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "two.db")
			dsn := "file:" + path + "?" + url.Values{"_txlock": {"immediate"}, "vfs": {vfs}}.Encode()
			open := func(cache string) *sql.DB {
				db := sql.OpenDB(connector{driver: &sqlite3.SQLiteDriver{}, dsn: dsn,
					pragmas: []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "cache_size(" + cache + ")",
						"wal_autocheckpoint(0)"}})
				db.SetMaxOpenConns(1)
				t.Cleanup(func() { db.Close() })
				return db
			}
			a, b := open("-16"), open("-2000")
			_, err := a.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`)
			require.NoError(t, err)
			// An empty log: the rollback below then reads nothing back from it (a read
			// would write the buffer out while the write lock is still held).
			_, err = a.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
			require.NoError(t, err)

			tx, err := a.Begin()
			require.NoError(t, err)
			for i := range spill {
				_, err := tx.Exec(`INSERT INTO t (body) VALUES (?)`, strings.Repeat("r", 3000+i))
				require.NoError(t, err)
			}
			require.NoError(t, tx.Rollback())

			for i := range 5 {
				_, err := b.Exec(`INSERT INTO t (body) VALUES (?)`, "kept-"+strconv.Itoa(i))
				require.NoError(t, err)
			}
			var n int
			require.NoError(t, a.QueryRow(`SELECT count(*) FROM t`).Scan(&n)) // a reads the log again
			require.Equal(t, 5, n)
			_, err = a.Exec(`INSERT INTO t (body) VALUES ('after')`) // and writes it
			require.NoError(t, err)

			for _, db := range []*sql.DB{b, snapshot(t, path)} {
				var bodies []string
				rows, err := db.Query(`SELECT body FROM t ORDER BY id`)
				require.NoError(t, err)
				for rows.Next() {
					var s string
					require.NoError(t, rows.Scan(&s))
					bodies = append(bodies, s)
				}
				require.NoError(t, rows.Err())
				require.Equal(t, []string{"kept-0", "kept-1", "kept-2", "kept-3", "kept-4", "after"}, bodies)
			}
		})
	}
}

// TestWALBufferCheckpointReachesTheFile: a checkpoint's copies into the database file
// are gathered too; once it has returned, the database file alone (the log truncated)
// holds everything, whether the checkpoint synced (synchronous=NORMAL, as the store's
// checkpointer) or not (OFF: written out when it releases the checkpoint lock).
func TestWALBufferCheckpointReachesTheFile(t *testing.T) {
	t.Parallel()
	vfs, err := registerWALBuffer()
	require.NoError(t, err)
	for _, sync := range []string{"NORMAL", "OFF"} {
		t.Run(sync, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "ck.db")
			dsn := "file:" + path + "?" + url.Values{"_txlock": {"immediate"}, "vfs": {vfs}}.Encode()
			open := func(synchronous string) *sql.DB {
				db := sql.OpenDB(connector{driver: &sqlite3.SQLiteDriver{}, dsn: dsn,
					pragmas: []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(" + synchronous + ")", "wal_autocheckpoint(0)"}})
				db.SetMaxOpenConns(1)
				t.Cleanup(func() { db.Close() })
				return db
			}
			w, ck := open("FULL"), open(sync)
			_, err := w.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`)
			require.NoError(t, err)
			const rows = 600
			for i := range rows {
				_, err := w.Exec(`INSERT INTO t (body) VALUES (?)`, strings.Repeat(strconv.Itoa(i%10), 1000))
				require.NoError(t, err)
			}
			var busy, logged, copied int
			require.NoError(t, ck.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &copied))
			require.Equal(t, []int{0, 0, 0}, []int{busy, logged, copied}, "a complete checkpoint, the log truncated")

			src, err := os.ReadFile(path)
			require.NoError(t, err)
			copyPath := filepath.Join(t.TempDir(), "copy.db")
			require.NoError(t, os.WriteFile(copyPath, src, 0o600))
			c, err := sql.Open("sqlite3", "file:"+copyPath)
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			var check string
			require.NoError(t, c.QueryRow(`PRAGMA integrity_check`).Scan(&check))
			require.Equal(t, "ok", check)
			var n, total int
			require.NoError(t, c.QueryRow(`SELECT count(*), sum(length(body)) FROM t`).Scan(&n, &total))
			require.Equal(t, rows, n)
			require.Equal(t, rows*1000, total)
		})
	}
}

// TestIngestKeepsStatementJournalsInMemory: a commit of ingest's size (2,000 events of
// 1 KiB with a business key each, in multi-row statements) moves no statement journal
// to a temporary file, where each page journaled costs two write system calls on the
// committer's path; with SQLite's default threshold (64 KiB) it did. Not parallel: the
// count is the process's.
func TestIngestKeepsStatementJournalsInMemory(t *testing.T) {
	db, org, at := openWithOrg(t, t.TempDir())
	payload := json.RawMessage(`{"order_id":1001,"note":"` + strings.Repeat("x", 1000) + `"}`)
	before := walBufferSubjournals()
	for range 3 {
		ws := make([]*store.EventWrite, 2000)
		for i := range ws {
			ws[i] = &store.EventWrite{Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID,
				Type: "order.created", Payload: payload, CreatedAt: at}, Keys: []string{"ord_10442"}}
		}
		require.NoError(t, db.EventsInsert(t.Context(), ws))
	}
	require.Equal(t, before, walBufferSubjournals(), "statement journals opened as files")
	events, err := db.EventList(t.Context(), org.ID, store.EventFilter{Key: "ord_10442"})
	require.NoError(t, err)
	require.NotEmpty(t, events)
}
