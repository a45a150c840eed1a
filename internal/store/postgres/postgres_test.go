package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/postgres"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
	"github.com/consign-dev/consign/internal/store/storetest"
)

func open(tb testing.TB, dsn string) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(tb.Context(), dsn)
	require.NoError(tb, err)
	return db
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pgtest.DSN(t)) })
}

var now = time.Date(2025, time.March, 14, 15, 9, 26, 535_000_000, time.UTC)

// TestMigrateConcurrently starts several "nodes" on one empty database at once: the
// session lock lets exactly one apply each migration, and all of them work afterwards.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	const nodes = 4
	dbs := make([]*postgres.DB, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { dbs[i], errs[i] = postgres.Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i := range nodes {
		require.NoError(t, errs[i])
		t.Cleanup(func() { dbs[i].Close() })
	}
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleBoth, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, dbs[0].OrgInsert(t.Context(), org))
	got, err := dbs[nodes-1].OrgGet(t.Context(), org.ID)
	require.NoError(t, err)
	require.Equal(t, org, got)
	require.NoError(t, postgres.Migrate(t.Context(), dsn), "migrating again is a no-op")
}

// TestClaimAcrossNodes has two nodes (two pools on one database) claim one endpoint's
// queue at once: every delivery is leased exactly once, and of an ordered key only the
// head is ever out.
func TestClaimAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	t.Cleanup(func() { a.Close(); b.Close() })

	org, ep := orgEndpoint(t, a, now)

	const plain, ordered = 300, 20
	var ws []*store.EventWrite
	for i := range plain + ordered {
		at := now.Add(time.Duration(i) * time.Millisecond)
		ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.created",
			Payload: []byte(`{}`), CreatedAt: at}
		d := store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, at), EndpointID: ep.ID, Deadline: at.Add(time.Hour)}
		if i >= plain {
			d.OrderingKey, d.Ordered = "order-1", true
		}
		ws = append(ws, &store.EventWrite{Event: ev, Deliveries: []store.NewDelivery{d}})
	}
	require.NoError(t, a.EventsInsert(ctx, ws))

	claimedAt := now.Add(time.Second)
	claim := func(db *postgres.DB) []*store.Claim {
		res, err := db.DeliveriesClaim(ctx, store.ClaimParams{Now: claimedAt, LeaseUntil: claimedAt.Add(time.Minute),
			Quotas: []store.Quota{{EndpointID: ep.ID, Limit: 7}}})
		require.NoError(t, err)
		return res.Claims
	}
	seen := map[string]int{}
	var heads int
	for {
		var wg sync.WaitGroup
		var ca, cb []*store.Claim
		wg.Go(func() { ca = claim(a) })
		wg.Go(func() { cb = claim(b) })
		wg.Wait()
		if len(ca)+len(cb) == 0 {
			break
		}
		var done []*store.Outcome
		for _, c := range append(ca, cb...) {
			seen[c.DeliveryID]++
			if c.Sequence > 0 {
				heads++
			}
			done = append(done, &store.Outcome{DeliveryID: c.DeliveryID, EndpointID: ep.ID, Status: consign.StatusSucceeded, At: claimedAt})
		}
		var outHeads int
		for _, c := range append(ca, cb...) {
			if c.Sequence > 0 {
				outHeads++
			}
		}
		require.LessOrEqual(t, outHeads, 1, "only the head of an ordered key may be out")
		require.NoError(t, a.DeliveriesRecord(ctx, store.RecordParams{Outcomes: done}))
	}
	require.Len(t, seen, plain+ordered, "every delivery claimed")
	for id, n := range seen {
		require.Equal(t, 1, n, "delivery %s claimed %d times", id, n)
	}
	require.Equal(t, ordered, heads)
}
