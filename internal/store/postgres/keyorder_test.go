package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
)

// TestOrderingKeysTakenInKeyOrder: a transaction that writes or finishes ordered
// deliveries of several keys takes their ordering_keys rows in key order, whatever the
// order of its events or outcomes. Another node's transaction (played here with plain
// SQL) holds key a and then asks for key b; the store's transaction, given key b's work
// before key a's, must be waiting for a without holding b. Taken in the work's order
// instead, the two wait on each other until PostgreSQL breaks the cycle after
// deadlock_timeout by aborting one (which, across nodes under load, held publishes up by
// a second each time).
func TestOrderingKeysTakenInKeyOrder(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// work runs the store's transaction; setup is what it needs written first.
		setup func(t *testing.T, db store.Store, f *keyFixture)
		work  func(ctx context.Context, db store.Store, f *keyFixture) error
	}{
		{
			name:  "ingest",
			setup: func(*testing.T, store.Store, *keyFixture) {},
			work: func(ctx context.Context, db store.Store, f *keyFixture) error {
				return db.EventsInsert(ctx, []*store.EventWrite{f.event("b"), f.event("a")})
			},
		},
		{
			name: "outcomes",
			setup: func(t *testing.T, db store.Store, f *keyFixture) {
				require.NoError(t, db.EventsInsert(t.Context(), []*store.EventWrite{f.event("b"), f.event("a")}))
			},
			work: func(ctx context.Context, db store.Store, f *keyFixture) error {
				// The setup's deliveries: the head of key b, then (a later ID) the head of a.
				var outcomes []*store.Outcome
				for _, w := range f.written[:2] {
					outcomes = append(outcomes, &store.Outcome{DeliveryID: w.Deliveries[0].ID, EndpointID: f.ep.ID,
						Status: consign.StatusSucceeded, At: f.at.Add(time.Second)})
				}
				return db.DeliveriesRecord(ctx, store.RecordParams{Outcomes: outcomes})
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			dsn := pgtest.DSN(t)
			db := open(t, dsn)
			t.Cleanup(func() { db.Close() })
			f := newKeyFixture(t, db)
			tc.setup(t, db, f)
			// Both keys' rows exist, as after earlier events.
			require.NoError(t, db.EventsInsert(ctx, []*store.EventWrite{f.event("a"), f.event("b")}))

			other, err := pgx.Connect(ctx, dsn)
			require.NoError(t, err)
			defer other.Close(context.Background())
			otx, err := other.Begin(ctx)
			require.NoError(t, err)
			defer otx.Rollback(context.Background())
			take := func(key string) error {
				_, err := otx.Exec(ctx, `UPDATE ordering_keys SET last_sequence = last_sequence WHERE endpoint_id = $1 AND ordering_key = $2`,
					f.ep.ID, key)
				return err
			}
			require.NoError(t, take("a"))

			done := make(chan error, 1)
			go func() { done <- tc.work(ctx, db, f) }()
			waitForLockWait(t, other)
			// Less than deadlock_timeout (a second): a cycle fails here, not in the store.
			_, err = otx.Exec(ctx, `SET LOCAL lock_timeout = '500ms'`)
			require.NoError(t, err)
			require.NoError(t, take("b"), "the store's transaction held key b while it waited for key a")
			require.NoError(t, otx.Commit(ctx))
			require.NoError(t, <-done)
		})
	}
}

// keyFixture is an org with one endpoint that orders by key, and events for it.
type keyFixture struct {
	at      time.Time
	org     *consign.Org
	ep      *store.EndpointRow
	written []*store.EventWrite
}

func newKeyFixture(t *testing.T, db store.Store) *keyFixture {
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Millisecond)
	f := &keyFixture{at: at}
	f.org = &consign.Org{ID: consign.NewID(consign.PrefixOrg, at), Name: "Acme", Role: consign.RoleBoth, CreatedAt: at, UpdatedAt: at}
	require.NoError(t, db.OrgInsert(ctx, f.org))
	f.ep = &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, at), OrgID: f.org.ID,
		URL: "https://erp.example.com/hooks", Topics: []string{"*"}, Active: true, Ordering: consign.OrderingKey,
		CreatedAt: at, UpdatedAt: at}}
	require.NoError(t, f.ep.Normalize())
	require.NoError(t, db.EndpointInsert(ctx, f.ep, nil))
	return f
}

// event returns a new event with key and its delivery to the fixture's endpoint, whose
// IDs sort after those of the events made before.
func (f *keyFixture) event(key string) *store.EventWrite {
	at := f.at.Add(time.Duration(len(f.written)) * time.Millisecond)
	ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: f.org.ID, Type: "order.updated",
		Payload: []byte(`{}`), OrderingKey: key, CreatedAt: f.at}
	w := &store.EventWrite{Event: ev, Deliveries: []store.NewDelivery{{ID: consign.NewID(consign.PrefixDelivery, at),
		EndpointID: f.ep.ID, Endpoint: f.ep, OrderingKey: key, Ordered: true, Deadline: f.at.Add(time.Hour)}}}
	f.written = append(f.written, w)
	return w
}

// waitForLockWait returns once a session of conn's database other than conn's waits for
// a lock.
func waitForLockWait(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`).Scan(&n)
		return err == nil && n > 0
	}, 10*time.Second, 5*time.Millisecond, "the store's transaction never waited for the key held")
}
