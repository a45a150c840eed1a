// Package sqlite is the embedded store: one SQLite database file in WAL mode, written
// one transaction at a time and read by a small pool.
//
// Write transactions are serialised by a mutex in Go (SQLite allows one writer at a time
// anyway; queuing in Go is cheaper than SQLITE_BUSY retries). Event writes commit with
// synchronous=FULL, so a commit that returned is on disk; the dispatcher's bookkeeping
// commits with synchronous=NORMAL (see lightTx). Callers that need throughput batch their
// rows (ingest's group commit, the dispatcher's batched outcomes) rather than asking for
// many small transactions; statements are prepared once per query text. Reads use a
// separate pool and never wait behind a write.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file's name inside the data directory.
const FileName = "consign.db"

// pageSize is the page size of a new database (an existing one keeps its own: in WAL
// mode it cannot change): SQLite's default, 4 KiB, chosen over larger pages on purpose.
// Every commit writes each page it changed to the log whole, and a commit of one event
// with its delivery changes a dozen pages of different trees, so the bytes written grow
// with the page size: at 1,000 single events/s, 62 KB an event at 4 KiB, 111 at 8 KiB,
// 223 at 16 KiB, past the baseline throughput of common cloud volumes. 16 KiB pages
// took batch ingest from about 85,000 to 105,000 events/s here (fewer frames for the
// same rows); that is not worth tripling what every other workload writes
// (docs/performance.md, "16 KiB pages").
const pageSize = 4 << 10

// DB is the SQLite store.
type DB struct {
	wmu sync.Mutex // one write transaction at a time
	w   *sql.DB    // the writer connections
	r   *sql.DB    // readers
	ws  *stmts     // prepared statements of the writer
	rs  *stmts     // prepared statements of the readers
	// modes holds the synchronous setting each writer connection (its driver.Conn) was
	// last given, so that a transaction changes it only when it differs; guarded by wmu.
	modes map[any]string
	ck    *checkpointer
	// lastLight is when a bookkeeping transaction (lightTx) last asked for the writer,
	// as time since opened (WriterShared).
	opened    time.Time
	lastLight atomic.Int64
	engine    Engine
	chunk     int // rows a step of a bulk change takes (bulkChunk; tests lower it)
}

var (
	_ store.Store        = (*DB)(nil)
	_ store.SharedWriter = (*DB)(nil)
)

// Open opens (creating if needed) the database in dir with DefaultEngine and applies
// pending migrations.
func Open(ctx context.Context, dir string) (*DB, error) {
	return OpenEngine(ctx, dir, DefaultEngine)
}

// OpenEngine is Open with a chosen engine (one of Engines()).
func OpenEngine(ctx context.Context, dir string, e Engine) (*DB, error) {
	eng, ok := engines[e]
	if !ok {
		return nil, fmt.Errorf("SQLite engine %q is not in this build (it has %v)", e, Engines())
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// A URI filename: '?' and '#' in a directory's name would end its path, so they and
	// '%' are escaped (SQLite decodes %HH in the path). _mutex=no opens the C engine's
	// connections without SQLite's per-connection mutex, which every bind, step and reset
	// took (3 % of batch ingest's CPU): database/sql hands a connection to one goroutine
	// at a time, and sqlite3_interrupt, the one call made from another, needs no mutex.
	params := url.Values{"_txlock": {"immediate"}, "_mutex": {"no"}}
	if eng.setup != nil {
		eng.setup()
	}
	if eng.vfs != nil {
		vfs, err := eng.vfs()
		if err != nil {
			return nil, err
		}
		params.Set("vfs", vfs)
	}
	dsn := "file:" + uriPathEscaper.Replace(path) + "?" + params.Encode()
	open := func(extra ...string) *sql.DB {
		pragmas := append([]string{fmt.Sprintf("page_size(%d)", pageSize), "busy_timeout(10000)", "journal_mode(WAL)",
			"synchronous(FULL)", "foreign_keys(1)"}, extra...)
		return sql.OpenDB(connector{driver: eng.driver, dsn: dsn, pragmas: pragmas})
	}
	// Page caches: 32 MB for the writer, 8 MB for each reader; with a million queued
	// deliveries these, not the queue, are most of the memory.
	// The writer never checkpoints: the checkpointer does (checkpoint.go). Its temporary
	// storage is a file: a statement that changes many rows journals the pages it
	// touches, and in memory that journal grew by the gigabyte (bulk.go); SQLite
	// keeps it in memory up to 64 KiB and spills to the file past that. Readers sort
	// and group in memory.
	w := open("cache_size(-32000)", "wal_autocheckpoint(0)", "temp_store(FILE)")
	// Writes are serialised by wmu; the second connection only prepares statements (a
	// prepare on the pool must not wait for the connection a transaction holds).
	w.SetMaxOpenConns(2)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	r := open("query_only(1)", "cache_size(-8000)", "temp_store(MEMORY)")
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	ck := open("synchronous(NORMAL)")
	db := &DB{w: w, r: r, ws: newStmts(w), rs: newStmts(r), modes: map[any]string{}, engine: e, chunk: bulkChunk, opened: time.Now()}
	db.lastLight.Store(int64(-sharedFor))
	db.ck = newCheckpointer(ck, &db.wmu, path)
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.ck.committed() // migrations write outside txMode: copy what they logged
	if _, err := db.DeliveriesSettle(ctx, time.Now()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: finish pausing or resuming endpoints' deliveries: %w", path, err)
	}
	return db, nil
}

var uriPathEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// Engine reports the SQLite build the store runs on.
func (db *DB) Engine() Engine { return db.engine }

func (db *DB) migrate(ctx context.Context) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db.w, mustSub(migrations, "migrations"))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Close closes both pools.
func (db *DB) Close() error {
	db.rs.close()
	db.ws.close()
	return errors.Join(db.ck.close(), db.r.Close(), db.w.Close())
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// tx runs fn in a durable write transaction: when it returns nil, the data is on disk.
func (db *DB) tx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return db.txMode(ctx, "FULL", fn)
}

// lightTx runs fn in a write transaction that is atomic but not fsync'd on commit: it
// reaches the disk with the next durable commit or checkpoint. It is for the dispatcher's
// bookkeeping (leases, attempt records, states), where losing the last instants in a power
// cut means only that some deliveries are sent once more, never that an event is lost.
// In WAL mode a durable commit syncs the whole log, these frames included.
func (db *DB) lightTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return db.txMode(ctx, "NORMAL", fn)
}

// txMode runs fn in a write transaction committed with the given synchronous mode. fn's
// statements get a context that cannot be canceled: a write transaction runs to its commit
// or rollback (a canceled caller still ends it between statements, as database/sql rolls
// back a transaction whose context ends), and the C engine's driver runs a statement under
// a cancelable context on a goroutine of its own, a goroutine and two hand-offs per
// statement.
func (db *DB) txMode(ctx context.Context, mode string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	sctx := context.WithoutCancel(ctx)
	if mode != "FULL" {
		db.lastLight.Store(int64(time.Since(db.opened)))
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return translate(err)
	}
	defer conn.Close()
	var dc any
	if err := conn.Raw(func(c any) error { dc = c; return nil }); err != nil {
		return translate(err)
	}
	if db.modes[dc] != mode {
		if _, err := conn.ExecContext(sctx, "PRAGMA synchronous = "+mode); err != nil {
			return translate(err)
		}
		db.modes[dc] = mode
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return translate(err)
	}
	if err := fn(sctx, tx); err != nil {
		_ = tx.Rollback()
		return translate(err)
	}
	err = tx.Commit()
	if err == nil {
		db.ck.committed()
	}
	return translate(err)
}

// sharedFor is how long after a bookkeeping transaction the writer counts as shared.
const sharedFor = time.Second

// WriterShared reports whether a bookkeeping transaction (a claim, a record…) asked for
// the writer within the last second (store.SharedWriter).
func (db *DB) WriterShared() bool {
	return time.Since(db.opened)-time.Duration(db.lastLight.Load()) < sharedFor
}

// translate turns SQLite errors into *consign.Error where a client can act on them.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return consign.Errorf(consign.ENOTFOUND, "not found")
	}
	for _, e := range engines { // each recognises only its own driver's errors
		code, ok := e.code(err)
		if !ok {
			continue
		}
		switch code {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &consign.Error{Code: consign.ECONFLICT, Message: "already exists"}
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return &consign.Error{Code: consign.ENOTFOUND, Message: "a referenced object does not exist"}
		}
		if code&0xff == sqlite3.SQLITE_CONSTRAINT || code == sqlite3.SQLITE_TOOBIG || code == sqlite3.SQLITE_MISMATCH {
			return &consign.Error{Code: consign.EINVALID, Message: "the database refused a value: " + err.Error()}
		}
	}
	return err
}

// notFound wraps a missing row as ENOTFOUND naming what was looked for.
func notFound(err error, what, id string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return consign.Errorf(consign.ENOTFOUND, "%s %q not found", what, id)
	}
	return translate(err)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: ms(*t), Valid: true}
}

func fromNullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}
