package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// bulkFixture is two orgs: in org, endpoints gone and kept; in other, endpoint other.
type bulkFixture struct {
	db               *DB
	org, otherOrg    *consign.Org
	gone, kept, away *store.EndpointRow
	at               time.Time
}

func newBulkFixture(t *testing.T) *bulkFixture {
	t.Helper()
	db, org, at := openWithOrg(t, t.TempDir())
	t.Cleanup(func() { db.Close() })
	other := &consign.Org{ID: consign.NewID(consign.PrefixOrg, at), Name: "Other", Role: consign.RoleBoth, CreatedAt: at, UpdatedAt: at}
	require.NoError(t, db.OrgInsert(t.Context(), other))
	return &bulkFixture{db: db, org: org, otherOrg: other, at: at,
		gone: addEndpoint(t, db, org, at, "https://example.com/gone"),
		kept: addEndpoint(t, db, org, at, "https://example.com/kept"),
		away: addEndpoint(t, db, other, at, "https://example.com/other")}
}

// publish stores n events of org, each with two business keys and one delivery to
// every endpoint of eps; deliveries to leased are stored as being delivered.
func (f *bulkFixture) publish(t *testing.T, org *consign.Org, n int, leased *store.EndpointRow, eps ...*store.EndpointRow) []string {
	t.Helper()
	var ws []*store.EventWrite
	var ids []string
	for i := range n {
		created := f.at.Add(time.Duration(i) * time.Microsecond)
		w := &store.EventWrite{Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, created), OrgID: org.ID,
			Type: "order.updated", Payload: []byte(`{"n":1}`), CreatedAt: created}, Keys: []string{fmt.Sprint(i), "PO-1"}}
		for _, ep := range eps {
			d := store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, created), EndpointID: ep.ID, Endpoint: ep,
				Deadline: created.Add(time.Hour)}
			if ep == leased {
				d.LeaseUntil = created.Add(time.Minute)
			}
			w.Deliveries = append(w.Deliveries, d)
			ids = append(ids, d.ID)
		}
		ws = append(ws, w)
	}
	require.NoError(t, f.db.EventsInsert(t.Context(), ws))
	return ids
}

// attempt records a successful attempt of each delivery of ep in ids.
func (f *bulkFixture) attempt(t *testing.T, ep *store.EndpointRow, ids []string) {
	t.Helper()
	var os []*store.Outcome
	for _, id := range ids {
		os = append(os, &store.Outcome{DeliveryID: id, EndpointID: ep.ID, Status: consign.StatusSucceeded, At: f.at,
			Attempt: &consign.Attempt{N: 1, StartedAt: f.at, DurationMS: 1, Request: consign.AttemptRequest{Method: "POST", URL: ep.URL},
				Response: &consign.AttemptResponse{Status: 204}}})
	}
	require.NoError(t, f.db.DeliveriesRecord(t.Context(), store.RecordParams{Outcomes: os}))
}

// count returns the rows of query (a SELECT count(*)) for args.
func (f *bulkFixture) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, f.db.w.QueryRowContext(t.Context(), query, args...).Scan(&n))
	return n
}

func (f *bulkFixture) deliveriesOf(t *testing.T, ep *store.EndpointRow) int {
	return f.count(t, `SELECT count(*) FROM deliveries WHERE endpoint_id = ?`, ep.ID)
}

// TestEndpointDeleteInSteps: an endpoint's deliveries go a chunk at a time, every one of
// them with their attempts in the end, and nothing of another endpoint or org.
func TestEndpointDeleteInSteps(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newBulkFixture(t)
	f.db.chunk = 7
	ids := f.publish(t, f.org, 40, nil, f.gone, f.kept)
	f.attempt(t, f.gone, []string{ids[0], ids[2], ids[4]})
	f.publish(t, f.org, 5, f.gone, f.gone) // in flight: left to the last step
	f.publish(t, f.otherOrg, 10, nil, f.away)
	require.Equal(t, 45, f.deliveriesOf(t, f.gone))

	err := f.db.EndpointDelete(ctx, f.otherOrg.ID, f.gone.ID)
	require.Equal(t, consign.ENOTFOUND, consign.ErrorCode(err), "another org's endpoint: %v", err)
	require.Equal(t, 45, f.deliveriesOf(t, f.gone), "nothing deleted through another org")

	require.NoError(t, f.db.EndpointDelete(ctx, f.org.ID, f.gone.ID))
	require.Zero(t, f.deliveriesOf(t, f.gone))
	require.Zero(t, f.count(t, `SELECT count(*) FROM attempts WHERE endpoint_id = ?`, f.gone.ID))
	require.Zero(t, f.count(t, `SELECT count(*) FROM endpoints WHERE id = ?`, f.gone.ID))
	require.Equal(t, 40, f.deliveriesOf(t, f.kept))
	require.Equal(t, 10, f.deliveriesOf(t, f.away))
	require.Equal(t, 55, f.count(t, `SELECT count(*) FROM events`), "events stay with their other deliveries")

	err = f.db.EndpointDelete(ctx, f.org.ID, f.gone.ID)
	require.Equal(t, consign.ENOTFOUND, consign.ErrorCode(err), "%v", err)
}

// TestOrgDeleteInSteps: an org's deliveries, events and receipts go a chunk at a time,
// everything of the org in the end, and nothing of another org.
func TestOrgDeleteInSteps(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newBulkFixture(t)
	f.db.chunk = 7
	ids := f.publish(t, f.org, 30, nil, f.gone, f.kept)
	f.attempt(t, f.kept, []string{ids[1], ids[3]})
	f.publish(t, f.org, 4, f.gone, f.gone) // in flight: their events go with the org
	f.publish(t, f.otherOrg, 10, nil, f.away)
	f.publish(t, f.org, 9, nil) // events without deliveries
	var sources []*store.SourceRow
	for _, org := range []*consign.Org{f.org, f.otherOrg} {
		src := &store.SourceRow{Source: consign.Source{ID: consign.NewID(consign.PrefixSource, f.at), OrgID: org.ID, Name: "shipments",
			Topic: "shipment.created", CreatedAt: f.at, UpdatedAt: f.at}, TokenHash: []byte("hash " + org.ID), TokenSealed: []byte("t")}
		require.NoError(t, f.db.SourceInsert(ctx, src))
		var rs []*consign.Receipt
		for i := range 20 {
			rs = append(rs, &consign.Receipt{ID: consign.NewID(consign.PrefixReceipt, f.at), OrgID: org.ID, SourceID: src.ID,
				Via: consign.ViaWebhook, Status: consign.ReceiptRejected, Topic: src.Topic, DedupeKey: fmt.Sprint(i),
				Headers: map[string]string{}, Body: "{}", ReceivedAt: f.at})
		}
		require.NoError(t, f.db.ReceiptsInsert(ctx, rs, false))
		sources = append(sources, src)
	}

	require.NoError(t, f.db.OrgDelete(ctx, f.org.ID))
	for table, query := range map[string]string{
		"deliveries": `SELECT count(*) FROM deliveries WHERE org_id = ?`,
		"events":     `SELECT count(*) FROM events WHERE org_id = ?`,
		"event_keys": `SELECT count(*) FROM event_keys WHERE org_id = ?`,
		"attempts":   `SELECT count(*) FROM attempts a JOIN endpoints e ON e.id = a.endpoint_id WHERE e.org_id = ?`,
		"receipts":   `SELECT count(*) FROM receipts WHERE org_id = ?`,
		"endpoints":  `SELECT count(*) FROM endpoints WHERE org_id = ?`,
		"sources":    `SELECT count(*) FROM sources WHERE org_id = ?`,
		"orgs":       `SELECT count(*) FROM orgs WHERE id = ?`,
	} {
		require.Zero(t, f.count(t, query, f.org.ID), "%s of the deleted org", table)
	}
	require.Equal(t, 10, f.deliveriesOf(t, f.away))
	require.Equal(t, 10, f.count(t, `SELECT count(*) FROM events WHERE org_id = ?`, f.otherOrg.ID))
	require.Equal(t, 20, f.count(t, `SELECT count(*) FROM event_keys WHERE org_id = ?`, f.otherOrg.ID))
	require.Equal(t, 20, f.count(t, `SELECT count(*) FROM receipts WHERE source_id = ?`, sources[1].ID))

	err := f.db.OrgDelete(ctx, f.org.ID)
	require.Equal(t, consign.ENOTFOUND, consign.ErrorCode(err), "%v", err)
}

// TestWritesGoOnDuringLargeDelete: a publish made while a large endpoint is being
// deleted is written before the delete ends, and a delivery it adds to that endpoint
// is deleted with it. Deleted in one statement, the endpoint's
// deliveries held the write lock until the end (about 28 s for a million).
func TestWritesGoOnDuringLargeDelete(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	f := newBulkFixture(t)
	f.db.chunk = 10
	const n = 5000
	f.publish(t, f.org, n, nil, f.gone)

	done := make(chan error, 1)
	go func() { done <- f.db.EndpointDelete(ctx, f.org.ID, f.gone.ID) }()
	// Once the delete has committed a part (a reader sees fewer deliveries), publish.
	for {
		var left int
		require.NoError(t, f.db.r.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE endpoint_id = ?`, f.gone.ID).Scan(&left))
		if left < n {
			break
		}
		select {
		case err := <-done:
			require.Failf(t, "the delete ended before any part of it was seen", "err: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	f.publish(t, f.org, 1, nil, f.kept, f.gone) // the endpoint's new delivery goes with it
	select {
	case err := <-done:
		require.Failf(t, "the publish waited for the whole delete", "err: %v", err)
	default:
	}
	require.NoError(t, <-done)
	require.Zero(t, f.deliveriesOf(t, f.gone))
	require.Equal(t, 1, f.deliveriesOf(t, f.kept))
}

// statuses returns how many deliveries of ep are in each status.
func (f *bulkFixture) statuses(t *testing.T, ep *store.EndpointRow) map[string]int {
	t.Helper()
	rows, err := f.db.w.QueryContext(t.Context(), `SELECT status, count(*) FROM deliveries WHERE endpoint_id = ? GROUP BY status`, ep.ID)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		require.NoError(t, rows.Scan(&s, &n))
		out[s] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// setActive deactivates or activates ep through EndpointUpdate, as the API does.
func (f *bulkFixture) setActive(t *testing.T, ep *store.EndpointRow, active bool, at time.Time) error {
	t.Helper()
	e := *ep
	e.Active, e.UpdatedAt = active, at
	return f.db.EndpointUpdate(t.Context(), &e)
}

// TestPauseResumeInSteps: deactivating pauses every pending delivery (not those being
// delivered), activating makes every paused one due at once, in steps.
func TestPauseResumeInSteps(t *testing.T) {
	t.Parallel()
	f := newBulkFixture(t)
	f.db.chunk = 7
	f.publish(t, f.org, 40, nil, f.gone, f.kept)
	f.publish(t, f.org, 3, f.gone, f.gone)

	off := f.at.Add(time.Minute)
	require.NoError(t, f.setActive(t, f.gone, false, off))
	require.Equal(t, map[string]int{"paused": 40, "delivering": 3}, f.statuses(t, f.gone))
	require.Equal(t, map[string]int{"pending": 40}, f.statuses(t, f.kept), "another endpoint's deliveries stay")

	on := off.Add(time.Minute)
	require.NoError(t, f.setActive(t, f.gone, true, on))
	require.Equal(t, map[string]int{"pending": 40, "delivering": 3}, f.statuses(t, f.gone))
	require.Equal(t, 40, f.count(t, `SELECT count(*) FROM deliveries WHERE endpoint_id = ? AND status = 'pending' AND next_attempt_at = ?`,
		f.gone.ID, ms(on)), "due at once")
}

// TestStaleFlipChangesNothing: the steps of a pause that a resume overtook (or of a
// resume that a pause overtook) change nothing, so the later of the two decides.
func TestStaleFlipChangesNothing(t *testing.T) {
	t.Parallel()
	f := newBulkFixture(t)
	f.db.chunk = 7
	f.publish(t, f.org, 30, nil, f.gone)
	ctx := t.Context()

	// Active: a step of an earlier pause pauses nothing.
	require.NoError(t, f.db.flipBacklog(ctx, f.gone.ID, false, f.at))
	require.Equal(t, map[string]int{"pending": 30}, f.statuses(t, f.gone))

	// Inactive: a step of an earlier resume resumes nothing.
	require.NoError(t, f.setActive(t, f.gone, false, f.at.Add(time.Minute)))
	require.NoError(t, f.db.flipBacklog(ctx, f.gone.ID, true, f.at))
	require.Equal(t, map[string]int{"paused": 30}, f.statuses(t, f.gone))
}

// TestOpenFinishesFlips: a pause or resume cut short (as by a crash) is finished when
// the store opens again.
func TestOpenFinishesFlips(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, org, at := openWithOrg(t, dir)
	f := &bulkFixture{db: db, org: org, at: at,
		gone: addEndpoint(t, db, org, at, "https://example.com/resumed"),
		kept: addEndpoint(t, db, org, at, "https://example.com/paused")}
	f.publish(t, org, 15, nil, f.gone, f.kept)
	ctx := t.Context()
	// As a crash would leave them: the resumed endpoint active with paused deliveries,
	// the paused one inactive with pending deliveries.
	_, err := db.w.ExecContext(ctx, `UPDATE deliveries SET status = 'paused' WHERE endpoint_id = ?`, f.gone.ID)
	require.NoError(t, err)
	_, err = db.w.ExecContext(ctx, `UPDATE endpoints SET active = 0 WHERE id = ?`, f.kept.ID)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	db, err = Open(ctx, dir)
	require.NoError(t, err)
	defer db.Close()
	f.db = db
	require.Equal(t, map[string]int{"pending": 15}, f.statuses(t, f.gone))
	require.Equal(t, map[string]int{"paused": 15}, f.statuses(t, f.kept))
}

// TestSettleFinishesFlips: a pause or resume cut short is finished by DeliveriesSettle,
// which the dispatcher runs periodically, without waiting for the store to open again.
func TestSettleFinishesFlips(t *testing.T) {
	t.Parallel()
	f := newBulkFixture(t)
	f.publish(t, f.org, 15, nil, f.gone, f.kept)
	ctx := t.Context()
	_, err := f.db.w.ExecContext(ctx, `UPDATE deliveries SET status = 'paused' WHERE endpoint_id = ?`, f.gone.ID)
	require.NoError(t, err)
	_, err = f.db.w.ExecContext(ctx, `UPDATE endpoints SET active = 0 WHERE id = ?`, f.kept.ID)
	require.NoError(t, err)

	n, err := f.db.DeliveriesSettle(ctx, f.at.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, map[string]int{"pending": 15}, f.statuses(t, f.gone))
	require.Equal(t, map[string]int{"paused": 15}, f.statuses(t, f.kept))
	n, err = f.db.DeliveriesSettle(ctx, f.at.Add(time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "settled already")
}

// TestDiscardInSteps: activating with DiscardPaused cancels every paused delivery, in
// steps of db.chunk while the endpoint is still inactive, and nothing of another endpoint.
func TestDiscardInSteps(t *testing.T) {
	t.Parallel()
	f := newBulkFixture(t)
	f.db.chunk = 7
	require.NoError(t, f.setActive(t, f.gone, false, f.at))
	require.NoError(t, f.setActive(t, f.kept, false, f.at))
	f.publish(t, f.org, 40, nil, f.gone, f.kept)
	require.Equal(t, map[string]int{"paused": 40}, f.statuses(t, f.gone))

	e := *f.gone
	e.Active, e.DiscardPaused, e.UpdatedAt = true, true, f.at.Add(time.Minute)
	require.NoError(t, f.db.EndpointUpdate(t.Context(), &e))
	require.Equal(t, map[string]int{"cancelled": 40}, f.statuses(t, f.gone))
	require.Equal(t, map[string]int{"paused": 40}, f.statuses(t, f.kept))
}
