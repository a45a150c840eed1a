// Package postgres is the PostgreSQL store: any number of Consign processes share one
// database, and the delivery queue is shared with row locks.
//
// Queries go through a pgxpool; migrations run once through database/sql (pgx's stdlib
// adapter, which goose needs) under goose's session advisory lock, so that several nodes
// starting at once apply each migration once. Claims take due deliveries with
// SELECT … FOR UPDATE SKIP LOCKED, so concurrent dispatchers never lease the same row and
// never wait for each other. Times are timestamptz, written in UTC at millisecond
// precision (the precision of the embedded store) and read back in UTC.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the PostgreSQL store.
type DB struct {
	pool  *pgxpool.Pool
	chunk int // rows a step of a bulk change takes (bulkChunk; tests lower it)
}

var _ store.Store = (*DB)(nil)

// Open connects to the database named by dsn (a postgres:// URL or key=value string) and
// applies pending migrations. pgxpool's settings may ride in the address, e.g.
// pool_max_conns=16 (default: 4 or the number of CPUs, whichever is more).
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database address: %w", err)
	}
	if err := Migrate(ctx, dsn); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &DB{pool: pool, chunk: bulkChunk}, nil
}

// Migrate applies pending migrations to the database named by dsn. It holds goose's
// session advisory lock meanwhile, so several processes may call it at once.
func Migrate(ctx context.Context, dsn string) error {
	// Parsed as the pool parses it, so pool settings in the address (pool_max_conns…)
	// are not sent to the server as run-time parameters.
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("database address: %w", err)
	}
	sqldb := stdlib.OpenDB(*cfg.ConnConfig)
	defer sqldb.Close()
	return migrate(ctx, sqldb)
}

func migrate(ctx context.Context, sqldb *sql.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqldb, sub, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Close closes the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return translate(db.pool.Ping(ctx))
}

// tx runs fn in a transaction, committed when fn returns nil.
func (db *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return translate(pgx.BeginFunc(ctx, db.pool, fn))
}

// retryTx runs fn in a transaction like tx, and runs it again (up to three times in all)
// when PostgreSQL aborted it to break a deadlock or a serialization conflict (cascading
// deletes of an org or endpoint can cross the dispatchers' updates of the same rows), or
// because another node's event with the same idempotency key committed first (run again,
// fn finds that event). fn must be safe to run again.
func (db *DB) retryTx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for range 3 {
		err = pgx.BeginFunc(ctx, db.pool, fn)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || !(pe.Code == "40P01" || pe.Code == "40001" ||
			(pe.Code == "23505" && pe.ConstraintName == "events_idempotency")) {
			break
		}
	}
	return translate(err)
}

// translate turns PostgreSQL errors into *consign.Error where a client can act on them.
// It is the one place where this driver's errors are classified.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var ce *consign.Error
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return consign.Errorf(consign.ENOTFOUND, "not found")
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return &consign.Error{Code: consign.ECONFLICT, Message: "already exists"}
		case "23503": // foreign_key_violation
			return &consign.Error{Code: consign.ENOTFOUND, Message: "a referenced object does not exist"}
		}
		// Other integrity violations, and data exceptions such as text PostgreSQL cannot
		// hold (a NUL byte, invalid UTF-8).
		if strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23") {
			return &consign.Error{Code: consign.EINVALID, Message: "the database refused a value: " + pe.Message}
		}
	}
	return err
}

// notFound wraps a missing row as ENOTFOUND naming what was looked for.
func notFound(err error, what, id string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return consign.Errorf(consign.ENOTFOUND, "%s %q not found", what, id)
	}
	return translate(err)
}

// mustAffect turns "no row changed" into ENOTFOUND.
func mustAffect(tag pgconn.CommandTag, err error, what, id string) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return consign.Errorf(consign.ENOTFOUND, "%s %q not found", what, id)
	}
	return nil
}

// ts is a time as stored: UTC, whole milliseconds.
func ts(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

// nullTS is a nullable time as stored.
func nullTS(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := ts(*t)
	return &v
}

// zeroNull stores the zero time as NULL.
func zeroNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return nullTS(&t)
}

// utc returns a nullable time read back, in UTC.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type scanner interface{ Scan(...any) error }

// collect scans every row with scan.
func collect[T any](rows pgx.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, v)
	}
	return out, translate(rows.Err())
}
