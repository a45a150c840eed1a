package sqlite

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// TestDeliveryRowids checks that each endpoint's deliveries are stored together, in the
// order they were created, across transactions and a reopen, and that endpoints sharing
// a range (more endpoints than ranges ever created) never collide.
func TestDeliveryRowids(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	db, org, at := openWithOrg(t, dir)
	var eps []*store.EndpointRow
	for i := range 3 {
		eps = append(eps, addEndpoint(t, db, org, at, "https://example.com/hooks/"+strconv.Itoa(i)))
	}
	// The third endpoint shares the first one's range.
	_, err := db.w.ExecContext(ctx, `UPDATE endpoints SET rowid = ? WHERE id = ?`, rowidRanges+1, eps[2].ID)
	require.NoError(t, err)

	var created []string // delivery IDs in creation order
	publish := func(events int) {
		ws := make([]*store.EventWrite, events)
		for i := range ws {
			ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.created",
				Payload: []byte(`{}`), CreatedAt: at}
			w := &store.EventWrite{Event: ev}
			for j, ep := range eps {
				d := store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, at), EndpointID: ep.ID, Endpoint: ep,
					Deadline: at.Add(time.Hour)}
				if i%2 == 1 && j == 1 {
					d.OrderingKey, d.Ordered = "sku-1", true // through the one-row insert
				}
				w.Deliveries = append(w.Deliveries, d)
				created = append(created, d.ID)
			}
			ws[i] = w
		}
		require.NoError(t, db.EventsInsert(ctx, ws))
	}
	publish(5)
	publish(4)
	require.NoError(t, db.Close())
	db, err = Open(ctx, dir)
	require.NoError(t, err)
	defer db.Close()
	publish(3)

	rows, err := db.r.QueryContext(ctx, `SELECT d.rowid, d.id, e.rowid FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id ORDER BY d.rowid`)
	require.NoError(t, err)
	defer rows.Close()
	var stored []string
	lastOf := map[int64]int64{} // endpoint rowid → last delivery rowid seen
	for rows.Next() {
		var rowid, epRowid int64
		var id string
		require.NoError(t, rows.Scan(&rowid, &id, &epRowid))
		slot := (epRowid-1)%rowidRanges + 1
		require.Equal(t, slot, rowid>>rowidRangeBits, "delivery %s lies in its endpoint's range", id)
		require.Greater(t, rowid, lastOf[epRowid])
		lastOf[epRowid] = rowid
		stored = append(stored, id)
	}
	require.NoError(t, rows.Err())
	require.Len(t, stored, len(created))
	// In rowid order: the first range (the first and third endpoints), then the second,
	// each in creation order.
	var wantSorted []string
	for _, slotEps := range [][]int{{0, 2}, {1}} {
		for i, id := range created {
			for _, e := range slotEps {
				if i%len(eps) == e {
					wantSorted = append(wantSorted, id)
				}
			}
		}
	}
	require.Equal(t, wantSorted, stored)
}

// openWithOrg opens a store in dir with one org, and closes it when the test ends unless
// the test closed it.
func openWithOrg(t *testing.T, dir string) (*DB, *consign.Org, time.Time) {
	t.Helper()
	db, err := Open(t.Context(), dir)
	require.NoError(t, err)
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, at), Name: "Acme", Role: consign.RoleBoth, CreatedAt: at, UpdatedAt: at}
	require.NoError(t, db.OrgInsert(t.Context(), org))
	return db, org, at
}

// addEndpoint adds an active endpoint for url.
func addEndpoint(t *testing.T, db *DB, org *consign.Org, at time.Time, url string, mods ...func(*consign.Endpoint)) *store.EndpointRow {
	t.Helper()
	ep := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, at), OrgID: org.ID,
		URL: url, Topics: []string{"order.*"}, Active: true, CreatedAt: at, UpdatedAt: at}}
	for _, m := range mods {
		m(&ep.Endpoint)
	}
	require.NoError(t, ep.Normalize())
	require.NoError(t, db.EndpointInsert(t.Context(), ep, nil))
	return ep
}
