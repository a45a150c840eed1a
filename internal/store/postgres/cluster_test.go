package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/postgres"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
)

func heartbeat(t *testing.T, db *postgres.DB, node string, ttl time.Duration, want ...string) *store.HeartbeatResult {
	t.Helper()
	res, err := db.Heartbeat(t.Context(), store.HeartbeatParams{Node: node, TTL: ttl, Now: time.Now(), Want: want})
	require.NoError(t, err)
	slices.Sort(res.Owned)
	slices.Sort(res.Taken)
	return res
}

// TestHeartbeatShares: endpoints with work are divided between live nodes; a node never
// takes an endpoint another live node owns, and takes what is given up.
func TestHeartbeatShares(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	t.Cleanup(func() { a.Close(); b.Close() })
	want := []string{"ep_1", "ep_2", "ep_3", "ep_4"}

	ra := heartbeat(t, a, "node-a", time.Minute, want...)
	require.Equal(t, want, ra.Owned, "alone, a node takes every endpoint with work")
	require.Equal(t, want, ra.Taken)
	require.Equal(t, 1, ra.Nodes)

	rb := heartbeat(t, b, "node-b", time.Minute, want...)
	require.Empty(t, rb.Owned, "endpoints a live node owns are not taken")
	require.Equal(t, 2, rb.Nodes)
	require.Equal(t, 2, rb.Share)

	ra = heartbeat(t, a, "node-a", time.Minute, want...)
	require.Equal(t, want, ra.Owned, "renewed")
	require.Empty(t, ra.Taken)
	require.Equal(t, 2, ra.Share, "a sees it owns more than its share")
	require.NoError(t, a.EndpointsDisown(t.Context(), "node-a", []string{"ep_3", "ep_4"}))
	require.NoError(t, b.EndpointsDisown(t.Context(), "node-b", []string{"ep_1"}), "disowning another node's endpoint does nothing")

	rb = heartbeat(t, b, "node-b", time.Minute, want...)
	require.Equal(t, []string{"ep_3", "ep_4"}, rb.Owned)
	require.Equal(t, []string{"ep_3", "ep_4"}, rb.Taken)
	ra = heartbeat(t, a, "node-a", time.Minute, append(want, "ep_5")...)
	require.Equal(t, []string{"ep_1", "ep_2", "ep_5"}, ra.Owned, "a's share of five endpoints over two nodes is three")
}

// TestHeartbeatTakeover: when a node's lease ends (it died), the next heartbeat of
// another node takes its endpoints and makes what it had leased due at once; a node that
// leaves hands its endpoints over the same way without waiting.
func TestHeartbeatTakeover(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	t.Cleanup(func() { a.Close(); b.Close() })

	at := time.Now().UTC().Truncate(time.Millisecond)
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, at), Name: "Acme", Role: consign.RoleBoth, CreatedAt: at, UpdatedAt: at}
	require.NoError(t, a.OrgInsert(ctx, org))
	var eps []string
	var ws []*store.EventWrite
	for i := range 2 {
		ep := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, at), OrgID: org.ID,
			URL: fmt.Sprintf("https://erp.example.com/hooks/%d", i), Topics: []string{"*"}, Active: true, CreatedAt: at, UpdatedAt: at}}
		require.NoError(t, ep.Normalize())
		require.NoError(t, a.EndpointInsert(ctx, ep, nil))
		eps = append(eps, ep.ID)
		ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.created", Payload: []byte(`{}`), CreatedAt: at}
		// Written leased for an hour, as ingest hands deliveries to its own dispatcher.
		ws = append(ws, &store.EventWrite{Event: ev, Deliveries: []store.NewDelivery{{ID: consign.NewID(consign.PrefixDelivery, at),
			EndpointID: ep.ID, Deadline: at.Add(time.Hour), LeaseUntil: at.Add(time.Hour)}}})
	}
	require.NoError(t, a.EventsInsert(ctx, ws))
	due := func() map[string]time.Time {
		d, err := a.DeliveriesDue(ctx)
		require.NoError(t, err)
		return d
	}
	require.True(t, due()[eps[0]].After(at.Add(59*time.Minute)), "leased: not due")

	// a owns the first endpoint; its last renewal is short, and it stops renewing. (The
	// lease is long while b checks it, so a slow machine cannot let it lapse early.)
	require.Equal(t, eps[:1], heartbeat(t, a, "node-a", time.Minute, eps[0]).Owned)
	require.Empty(t, heartbeat(t, b, "node-b", time.Minute, eps[0]).Owned, "a's lease is still running")
	require.Equal(t, eps[:1], heartbeat(t, a, "node-a", time.Millisecond, eps[0]).Owned)
	time.Sleep(50 * time.Millisecond)
	rb := heartbeat(t, b, "node-b", time.Minute, eps[0])
	require.Equal(t, eps[:1], rb.Taken, "a's lease ended: b takes the endpoint")
	require.False(t, due()[eps[0]].After(time.Now()), "what a leased is due now")
	require.Empty(t, heartbeat(t, a, "node-a", time.Minute, eps[0]).Owned, "a, back, does not own it any more")

	// With two live nodes each owns one endpoint. b claims its delivery again and leaves:
	// a takes the endpoint at its next heartbeat, and b's lease on the delivery ends.
	require.Equal(t, eps[:1], heartbeat(t, b, "node-b", time.Minute, eps...).Owned)
	require.Equal(t, eps[1:], heartbeat(t, a, "node-a", time.Minute, eps...).Taken)
	claimed, err := b.DeliveriesClaim(ctx, store.ClaimParams{Now: time.Now(), LeaseUntil: time.Now().Add(time.Hour),
		Quotas: []store.Quota{{EndpointID: eps[0], Limit: 10}}})
	require.NoError(t, err)
	require.Len(t, claimed.Claims, 1)
	require.True(t, due()[eps[0]].After(time.Now().Add(59*time.Minute)))
	require.NoError(t, b.NodeLeave(ctx, "node-b"))
	ra := heartbeat(t, a, "node-a", time.Minute, eps...)
	require.Equal(t, eps[:1], ra.Taken)
	require.Equal(t, 1, ra.Nodes, "a node that left is not counted")
	require.False(t, due()[eps[0]].After(time.Now()), "what b leased is due now")
}

// TestLeaseTake: a named lease has one holder at a time, renewable by it and free for
// another once it ends.
func TestLeaseTake(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	db := open(t, dsn)
	t.Cleanup(func() { db.Close() })
	take := func(holder string, ttl time.Duration) bool {
		ok, err := db.LeaseTake(t.Context(), "retention", holder, ttl)
		require.NoError(t, err)
		return ok
	}
	require.True(t, take("node-a", time.Minute))
	require.False(t, take("node-b", time.Minute))
	require.True(t, take("node-a", time.Millisecond), "the holder renews (here for the last time, briefly)")
	ok, err := db.LeaseTake(t.Context(), "policy-sweep", "node-b", time.Minute)
	require.NoError(t, err)
	require.True(t, ok, "leases are per name")
	time.Sleep(50 * time.Millisecond)
	require.True(t, take("node-b", time.Minute), "an ended lease is free")
	require.False(t, take("node-a", time.Minute))
}

// TestNotifyListen: a node hears the endpoints other nodes notify, however many, and not
// its own.
func TestNotifyListen(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	t.Cleanup(func() { a.Close(); b.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var heard []string
	ready := make(chan struct{})
	listened := make(chan error, 1)
	go func() {
		listened <- b.Listen(ctx, "node-b", func(ids []string) {
			if ids == nil {
				close(ready)
				return
			}
			mu.Lock()
			heard = append(heard, ids...)
			mu.Unlock()
		})
	}()
	<-ready
	var ids []string
	for i := range 400 {
		ids = append(ids, fmt.Sprintf("ep_%040d", i))
	}
	require.NoError(t, b.Notify(ctx, "node-b", []string{"ep_own"}))
	require.NoError(t, a.Notify(ctx, "node-a", ids))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(heard) >= len(ids)
	}, 5*time.Second, 10*time.Millisecond)
	mu.Lock()
	require.Equal(t, ids, heard, "every ID, in order, and not the node's own")
	mu.Unlock()
	cancel()
	require.Error(t, <-listened, "Listen ends with its context")
}
