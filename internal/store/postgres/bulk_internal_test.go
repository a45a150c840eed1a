package postgres

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
)

// flipFixture is an org with two endpoints, on a store whose bulk steps are 7 rows.
type flipFixture struct {
	db          *DB
	org         *consign.Org
	flip, other *store.EndpointRow
	at          time.Time
}

func newFlipFixture(t *testing.T) *flipFixture {
	t.Helper()
	ctx := t.Context()
	db, err := Open(ctx, pgtest.DSN(t))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	db.chunk = 7
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, at), Name: "Acme", Role: consign.RoleBoth, CreatedAt: at, UpdatedAt: at}
	require.NoError(t, db.OrgInsert(ctx, org))
	f := &flipFixture{db: db, org: org, at: at}
	for _, ep := range []**store.EndpointRow{&f.flip, &f.other} {
		e := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, at), OrgID: org.ID,
			URL: "https://example.com/" + consign.NewID("", at), Topics: []string{"*"}, Active: true, CreatedAt: at, UpdatedAt: at}}
		require.NoError(t, e.Normalize())
		require.NoError(t, db.EndpointInsert(ctx, e, nil))
		*ep = e
	}
	return f
}

// publish stores n events, each with a delivery to every endpoint of eps; those to
// leased are stored as being delivered.
func (f *flipFixture) publish(t *testing.T, n int, leased *store.EndpointRow, eps ...*store.EndpointRow) {
	t.Helper()
	var ws []*store.EventWrite
	for i := range n {
		created := f.at.Add(time.Duration(i) * time.Microsecond)
		w := &store.EventWrite{Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, created), OrgID: f.org.ID,
			Type: "order.updated", Payload: []byte(`{"n":1}`), CreatedAt: created}}
		for _, ep := range eps {
			d := store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, created), EndpointID: ep.ID, Deadline: created.Add(time.Hour)}
			if ep == leased {
				d.LeaseUntil = created.Add(time.Minute)
			}
			w.Deliveries = append(w.Deliveries, d)
		}
		ws = append(ws, w)
	}
	require.NoError(t, f.db.EventsInsert(t.Context(), ws))
}

// statuses returns how many deliveries of ep are in each status.
func (f *flipFixture) statuses(t *testing.T, ep *store.EndpointRow) map[string]int {
	t.Helper()
	rows, err := f.db.pool.Query(t.Context(), `SELECT status, count(*) FROM deliveries WHERE endpoint_id = $1 GROUP BY status`, ep.ID)
	require.NoError(t, err)
	out := map[string]int{}
	var s string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&s, &n}, func() error { out[s] = n; return nil })
	require.NoError(t, err)
	return out
}

func (f *flipFixture) setActive(t *testing.T, ep *store.EndpointRow, active bool, at time.Time) {
	t.Helper()
	e := *ep
	e.Active, e.UpdatedAt = active, at
	require.NoError(t, f.db.EndpointUpdate(t.Context(), &e))
}

// TestPauseResumeInSteps: deactivating pauses every pending delivery (not those being
// delivered), activating makes every paused one due at once, in steps of db.chunk.
func TestPauseResumeInSteps(t *testing.T) {
	t.Parallel()
	f := newFlipFixture(t)
	f.publish(t, 40, nil, f.flip, f.other)
	f.publish(t, 3, f.flip, f.flip)

	off := f.at.Add(time.Minute)
	f.setActive(t, f.flip, false, off)
	require.Equal(t, map[string]int{"paused": 40, "delivering": 3}, f.statuses(t, f.flip))
	require.Equal(t, map[string]int{"pending": 40}, f.statuses(t, f.other), "another endpoint's deliveries stay")

	on := off.Add(time.Minute)
	f.setActive(t, f.flip, true, on)
	require.Equal(t, map[string]int{"pending": 40, "delivering": 3}, f.statuses(t, f.flip))
	var due int
	require.NoError(t, f.db.pool.QueryRow(t.Context(), `SELECT count(*) FROM deliveries WHERE endpoint_id = $1
		AND status = 'pending' AND next_attempt_at = $2`, f.flip.ID, on).Scan(&due))
	require.Equal(t, 40, due, "due at once")
}

// TestStaleFlipChangesNothing: the steps of a pause that a resume overtook (or of a
// resume that a pause overtook) change nothing, so the later of the two decides.
func TestStaleFlipChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFlipFixture(t)
	f.publish(t, 30, nil, f.flip)
	ctx := t.Context()

	require.NoError(t, f.db.flipBacklog(ctx, f.flip.ID, false, f.at))
	require.Equal(t, map[string]int{"pending": 30}, f.statuses(t, f.flip), "active: an earlier pause's step pauses nothing")

	f.setActive(t, f.flip, false, f.at.Add(time.Minute))
	require.NoError(t, f.db.flipBacklog(ctx, f.flip.ID, true, f.at))
	require.Equal(t, map[string]int{"paused": 30}, f.statuses(t, f.flip), "inactive: an earlier resume's step resumes nothing")
}

// TestSettleFinishesFlips: a pause or resume cut short (as by a crash) is finished by
// DeliveriesSettle.
func TestSettleFinishesFlips(t *testing.T) {
	t.Parallel()
	f := newFlipFixture(t)
	f.publish(t, 15, nil, f.flip, f.other)
	ctx := t.Context()
	// As a crash would leave them: one endpoint active with paused deliveries, the other
	// inactive with pending ones.
	_, err := f.db.pool.Exec(ctx, `UPDATE deliveries SET status = 'paused' WHERE endpoint_id = $1`, f.flip.ID)
	require.NoError(t, err)
	_, err = f.db.pool.Exec(ctx, `UPDATE endpoints SET active = false WHERE id = $1`, f.other.ID)
	require.NoError(t, err)

	n, err := f.db.DeliveriesSettle(ctx, f.at.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, map[string]int{"pending": 15}, f.statuses(t, f.flip))
	require.Equal(t, map[string]int{"paused": 15}, f.statuses(t, f.other))
	n, err = f.db.DeliveriesSettle(ctx, f.at.Add(time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "settled already")
}

// TestDiscardInSteps: activating with DiscardPaused cancels every paused delivery, in
// steps of db.chunk while the endpoint is still inactive, and nothing of another endpoint.
func TestDiscardInSteps(t *testing.T) {
	t.Parallel()
	f := newFlipFixture(t)
	f.setActive(t, f.flip, false, f.at)
	f.setActive(t, f.other, false, f.at)
	f.publish(t, 40, nil, f.flip, f.other)
	require.Equal(t, map[string]int{"paused": 40}, f.statuses(t, f.flip))

	e := *f.flip
	e.Active, e.DiscardPaused, e.UpdatedAt = true, true, f.at.Add(time.Minute)
	require.NoError(t, f.db.EndpointUpdate(t.Context(), &e))
	require.Equal(t, map[string]int{"cancelled": 40}, f.statuses(t, f.flip))
	require.Equal(t, map[string]int{"paused": 40}, f.statuses(t, f.other))
}
