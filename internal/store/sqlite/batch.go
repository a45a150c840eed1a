package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
)

// rows collects the rows of one multi-row INSERT and writes them in statements of up to
// max rows: one statement per 200 rows instead of 200, which is most of the cost of
// writing small rows through database/sql (200 rather than 50: 2 % less CPU per delivery
// in the benchmark; each row count is its own prepared statement, so at most 200 of them
// per table stay cached).
type rows struct {
	db      *DB
	tx      *sql.Tx
	head    string // "INSERT INTO t (a, b) VALUES "
	tuple   string // "(?, ?)"
	perRow  int
	max     int
	after   *rows // rows these refer to, written first
	args    []any
	n       int
	queries map[int]string
	// shared values (newSharedRows) are bound once per statement, as ?1 … ?shared, for
	// every row of it: the first shared places of args hold them.
	shared int
}

func (db *DB) newRows(tx *sql.Tx, head, tuple string, perRow int) *rows {
	return &rows{db: db, tx: tx, head: head, tuple: tuple, perRow: perRow, max: 200, queries: map[int]string{}}
}

// newSharedRows is newRows for rows that share their first values with the rows around
// them (an event's org, type and time, the same for all of a request): the tuple names
// those values as ?1 … ?shared and leaves a bare ? for each value of its own, and
// addShared starts a new statement when the shared values change. Each value bound is a
// cgo call and a copy: a batch of one org's events binds its org once, not per event.
func (db *DB) newSharedRows(tx *sql.Tx, head, tuple string, shared, perRow int) *rows {
	r := db.newRows(tx, head, tuple, perRow)
	r.shared = shared
	r.args = make([]any, shared)
	return r
}

// addShared appends a row whose shared values are shared, writing what was collected
// first when they differ from those of the rows collected so far.
func (r *rows) addShared(ctx context.Context, shared []any, args ...any) error {
	if r.n > 0 && !slices.Equal(r.args[:r.shared], shared) {
		if err := r.flush(ctx); err != nil {
			return err
		}
	}
	copy(r.args, shared)
	return r.add(ctx, args...)
}

// add appends a row, writing the batch when it is full.
func (r *rows) add(ctx context.Context, args ...any) error {
	r.args = append(r.args, args...)
	if r.n++; r.n == r.max {
		return r.flush(ctx)
	}
	return nil
}

// flush writes the rows collected so far, after those of r.after.
func (r *rows) flush(ctx context.Context) error {
	if r.after != nil {
		if err := r.after.flush(ctx); err != nil {
			return err
		}
	}
	if r.n == 0 {
		return nil
	}
	q, ok := r.queries[r.n]
	if !ok {
		q = r.head + strings.TrimSuffix(strings.Repeat(r.tuple+", ", r.n), ", ")
		if r.shared > 0 {
			q = numberParams(q, r.shared)
		}
		r.queries[r.n] = q
	}
	_, err := r.db.txExec(ctx, r.tx, q, r.args...)
	r.args, r.n = r.args[:r.shared], 0
	return err
}

// numberParams numbers the bare ? of q from shared+1 on. SQLite would number a bare ?
// one past the largest number used before it, which after ?1 … ?shared is not the
// order the values are given in.
func numberParams(q string, shared int) string {
	var b strings.Builder
	next := shared + 1
	for i := 0; i < len(q); i++ {
		b.WriteByte(q[i])
		if q[i] == '?' && (i+1 == len(q) || q[i+1] < '0' || q[i+1] > '9') {
			b.WriteString(strconv.Itoa(next))
			next++
		}
	}
	return b.String()
}
