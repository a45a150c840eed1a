package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
)

// TestIdempotencyAcrossNodes: two nodes accept events with the same idempotency key at
// the same moment. Both succeed; one stores its event, the other answers with that event
// as a repeat, never with a conflict.
func TestIdempotencyAcrossNodes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	t.Cleanup(func() { a.Close(); b.Close() })
	at := time.Now().UTC().Truncate(time.Millisecond)
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, at), Name: "Acme", Role: consign.RoleBoth, CreatedAt: at, UpdatedAt: at}
	require.NoError(t, a.OrgInsert(ctx, org))

	for round := range 20 {
		key := "order-" + string(rune('a'+round))
		write := func() *store.EventWrite {
			return &store.EventWrite{Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID,
				Type: "order.created", Payload: []byte(`{}`), IdempotencyKey: key, CreatedAt: at}}
		}
		wa, wb := write(), write()
		var ea, eb error
		var wg sync.WaitGroup
		wg.Go(func() { ea = a.EventsInsert(ctx, []*store.EventWrite{wa}) })
		wg.Go(func() { eb = b.EventsInsert(ctx, []*store.EventWrite{wb}) })
		wg.Wait()
		require.NoError(t, ea, "round %d", round)
		require.NoError(t, eb, "round %d", round)
		require.True(t, wa.Duplicate != wb.Duplicate, "round %d: exactly one is a repeat", round)
		require.Equal(t, wa.Event.ID, wb.Event.ID, "round %d: both answer with the stored event", round)
	}
}
