package sqlite

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// TestWaitingBehindKey checks the stored side of ordered deliveries (the conformance
// suite checks what callers see): one created behind an unfinished delivery of its key is
// stored with next_attempt_at at waiting, keeps it through a pause and a resume, and is
// due when its key's head finishes.
func TestWaitingBehindKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, org, at := openWithOrg(t, t.TempDir())
	defer db.Close()
	require.Equal(t, strconv.FormatInt(waiting, 10), waitingSQL)
	ep := addEndpoint(t, db, org, at, "https://example.com/hooks", func(e *consign.Endpoint) { e.Ordering = consign.OrderingKey })
	var ids []string
	for i := range 3 {
		created := at.Add(time.Duration(i) * time.Millisecond)
		ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, created), OrgID: org.ID, Type: "order.updated",
			Payload: []byte(`{}`), OrderingKey: "order-1", CreatedAt: created}
		d := store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, created), EndpointID: ep.ID, Endpoint: ep,
			OrderingKey: "order-1", Ordered: true, Deadline: created.Add(time.Hour)}
		require.NoError(t, db.EventsInsert(ctx, []*store.EventWrite{{Event: ev, Deliveries: []store.NewDelivery{d}}}))
		ids = append(ids, d.ID)
	}
	next := func(id string) int64 {
		t.Helper()
		var n int64
		require.NoError(t, db.w.QueryRowContext(ctx, `SELECT next_attempt_at FROM deliveries WHERE id = ?`, id).Scan(&n))
		return n
	}
	require.Equal(t, ms(at), next(ids[0]))
	require.Equal(t, waiting, next(ids[1]))
	require.Equal(t, waiting, next(ids[2]))
	d, err := db.DeliveryGet(ctx, org.ID, ids[1])
	require.NoError(t, err)
	require.Nil(t, d.NextAttemptAt, "no due time while it waits for its key")
	due, err := db.DeliveriesDue(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]time.Time{ep.ID: at}, due)

	later := at.Add(time.Minute)
	ep.Active, ep.UpdatedAt = false, later
	require.NoError(t, db.EndpointUpdate(ctx, ep))
	ep.Active = true
	require.NoError(t, db.EndpointUpdate(ctx, ep))
	require.Equal(t, ms(later), next(ids[0]), "resumed: due now")
	require.Equal(t, waiting, next(ids[1]), "resumed, and still waiting for its key")

	done := later.Add(time.Second)
	require.NoError(t, db.DeliveriesRecord(ctx, store.RecordParams{Outcomes: []*store.Outcome{
		{DeliveryID: ids[0], EndpointID: ep.ID, Status: consign.StatusSucceeded, At: done}}}))
	require.Equal(t, ms(done), next(ids[1]), "due when the head has finished")
	require.Equal(t, waiting, next(ids[2]))
}
