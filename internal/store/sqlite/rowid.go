package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/consign-dev/consign/internal/store"
)

// Delivery rows are stored endpoint by endpoint. A table's rows sit in the order of their
// rowid; left to SQLite, that is the order of insertion, so the ten deliveries of a
// fan-out event share a page, and every claim or outcome batch, which goes endpoint by
// endpoint, rewrites pages full of the other endpoints' rows. Instead each endpoint owns
// a range of rowids, rowidsPerEndpoint wide, starting at its own rowid in the endpoints
// table times that width, and its deliveries take the next rowid of its range: a
// claim's or an outcome batch's rows of one endpoint are neighbours. A fan-out then writes
// about a third fewer bytes per delivery (docs/performance.md, "delivery rows stored endpoint by endpoint"). Only
// locality depends on this; lookups go through the id and the indexes as before.
//
// The next rowid of a range is read from the table once per transaction (one seek to the
// range's last row) and counted up in memory while the transaction lasts: the single
// writer makes that safe, and nothing outlives the transaction to go stale. Rows numbered
// 1, 2, 3… (a database whose deliveries were written without ranges) lie in range 0,
// which no endpoint has.

const (
	rowidRangeBits    = 40 // a range holds 2^40 deliveries
	rowidsPerEndpoint = int64(1) << rowidRangeBits
	rowidRanges       = int64(1)<<(63-rowidRangeBits) - 2 // ranges 1 … rowidRanges; the last ends below 2^63
)

var (
	errRangeFull = errors.New("the endpoint's range of delivery row numbers is full")
	errGone      = errors.New("the endpoint no longer exists")
)

// rowidAllocator hands out the rowids of new deliveries within one write transaction.
type rowidAllocator struct {
	ctx   context.Context
	db    *DB
	tx    *sql.Tx
	slots map[string]int64 // endpoint id → its range; absent: the endpoint is gone
	count map[int64]int64  // range → next rowid, once read
	// inactive holds the endpoints that are inactive as the transaction writes: their
	// new deliveries are paused. The single writer orders this read and EndpointUpdate's
	// change of the endpoint: a pause's steps come after it and a resume's after it.
	inactive map[string]bool
}

// deliveryRowids looks up, in one query, the ranges and states of the endpoints the
// batch's deliveries go to; endpoints deleted since fan-out was computed have none.
func (db *DB) deliveryRowids(ctx context.Context, tx *sql.Tx, ws []*store.EventWrite) (*rowidAllocator, error) {
	a := &rowidAllocator{ctx: ctx, db: db, tx: tx, slots: map[string]int64{}, count: map[int64]int64{}, inactive: map[string]bool{}}
	ids := store.EndpointIDs(ws)
	if len(ids) == 0 {
		return a, nil
	}
	b, _ := json.Marshal(ids)
	rows, err := db.txQuery(ctx, tx, `SELECT id, rowid, active FROM endpoints WHERE id IN (SELECT value FROM json_each(?))`, string(b))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var rowid int64
		var active bool
		if err := rows.Scan(&id, &rowid, &active); err != nil {
			return nil, err
		}
		if !active {
			a.inactive[id] = true
		}
		// Endpoint rowids beyond the number of ranges (more endpoints than that ever
		// created) share ranges; the counter is per range, so they still never collide.
		a.slots[id] = (rowid-1)%rowidRanges + 1
	}
	return a, rows.Err()
}

// next returns the rowid for a new delivery to the endpoint, errGone when the endpoint
// no longer exists.
func (a *rowidAllocator) next(endpointID string) (int64, error) {
	slot, ok := a.slots[endpointID]
	if !ok {
		return 0, errGone
	}
	lo := slot << rowidRangeBits
	n, ok := a.count[slot]
	if !ok {
		var last sql.NullInt64
		err := a.db.txQueryRow(a.ctx, a.tx, `SELECT rowid FROM deliveries WHERE rowid >= ? AND rowid < ? ORDER BY rowid DESC LIMIT 1`,
			lo, lo+rowidsPerEndpoint).Scan(&last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			n = lo
		case err != nil:
			return 0, fmt.Errorf("read the endpoint's last delivery row: %w", err)
		default:
			n = last.Int64 + 1
		}
	}
	if n >= lo+rowidsPerEndpoint {
		return 0, fmt.Errorf("endpoint %s: %w", endpointID, errRangeFull)
	}
	a.count[slot] = n + 1
	return n, nil
}
