package storetest

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// BenchClaimOrderedBacklog measures a claim on an ordered endpoint whose 50,000 queued
// deliveries wait behind the heads of their 500 keys, all in flight: what the dispatcher
// pays each time it looks for more work there. No delivery may be claimed, and finding
// that out must not read the backlog. ns/op is per claim. s must be empty.
func BenchClaimOrderedBacklog(b *testing.B, s store.Store) {
	ctx := b.Context()
	start := time.Now().UTC().Truncate(time.Millisecond)
	org := insertOrg(b, s, start)
	ep := insertEndpoint(b, s, org.ID, start, func(e *store.EndpointRow) { e.Ordering = consign.OrderingKey })
	payload := []byte(`{"order_id":1001}`)
	const backlog, keys, batch = 50_000, 500, 1000
	for done := 0; done < backlog; done += batch {
		ws := make([]*store.EventWrite, batch)
		for i := range ws {
			at := start.Add(time.Duration(done+i) * time.Millisecond)
			key := "order-" + strconv.Itoa((done+i)%keys)
			ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.updated",
				Payload: payload, OrderingKey: key, CreatedAt: at}
			ws[i] = &store.EventWrite{Event: ev, Deliveries: []store.NewDelivery{{ID: consign.NewID(consign.PrefixDelivery, at),
				EndpointID: ep.ID, Endpoint: ep, OrderingKey: key, Ordered: true, Deadline: at.Add(72 * time.Hour)}}}
		}
		require.NoError(b, s.EventsInsert(ctx, ws))
	}
	now := start.Add(time.Hour)
	claim := func(limit int) int {
		res, err := s.DeliveriesClaim(ctx, store.ClaimParams{Now: now, LeaseUntil: now.Add(time.Hour),
			Quotas: []store.Quota{{EndpointID: ep.ID, Limit: limit}}})
		require.NoError(b, err)
		return len(res.Claims)
	}
	require.Equal(b, keys, claim(2*keys), "the head of every key")
	b.ResetTimer()
	for b.Loop() {
		require.Zero(b, claim(64))
	}
}
