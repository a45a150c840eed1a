package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// testRetention checks the purges of old history: attempts by age, events (with their
// deliveries) only once none of their deliveries is waiting, and inbound receipts once
// settled, a batch at a time.
func testRetention(t *testing.T, open opener) {
	ctx := t.Context()
	s := open(t)
	p, ok := s.(store.Purger)
	require.True(t, ok, "the store must implement store.Purger")

	old, cutoff := now.Add(-40*24*time.Hour), now.Add(-30*24*time.Hour)
	o := insertOrg(t, s, old)
	ep := insertEndpoint(t, s, o.ID, old)
	attempt := func(at time.Time) *consign.Attempt {
		return &consign.Attempt{N: 1, StartedAt: at, DurationMS: 3,
			Request:  consign.AttemptRequest{Method: "POST", URL: ep.URL, Headers: map[string]string{}},
			Response: &consign.AttemptResponse{Status: 500, Headers: map[string]string{}}}
	}
	// Three old finished events, one old event still waiting (after a failed attempt),
	// one new finished event.
	var finished []string
	for i := range 3 {
		at := old.Add(time.Duration(i) * time.Second)
		ev := newEvent(o.ID, "order.created", at)
		d := insertEvent(t, s, ev, ep.ID)[0]
		record(t, s, &store.Outcome{DeliveryID: d, EndpointID: ep.ID, Attempt: attempt(at), Status: consign.StatusFailed, At: at})
		finished = append(finished, ev.ID)
	}
	waiting := newEvent(o.ID, "order.created", old.Add(time.Minute))
	waitingDlv := insertEvent(t, s, waiting, ep.ID)[0]
	record(t, s, &store.Outcome{DeliveryID: waitingDlv, EndpointID: ep.ID, Attempt: attempt(old.Add(time.Minute)),
		Status: consign.StatusPending, NextAttemptAt: now, At: old.Add(time.Minute)})
	fresh := newEvent(o.ID, "order.created", now)
	freshDlv := insertEvent(t, s, fresh, ep.ID)[0]
	record(t, s, &store.Outcome{DeliveryID: freshDlv, EndpointID: ep.ID, Attempt: attempt(now), Status: consign.StatusSucceeded, At: now})

	n, err := p.AttemptsPurge(ctx, cutoff, 3)
	require.NoError(t, err)
	require.Equal(t, 3, n, "a batch is at most limit rows")
	n, err = p.AttemptsPurge(ctx, cutoff, 3)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the old attempts left")
	require.Empty(t, getDelivery(t, s, o.ID, waitingDlv).Attempts)
	require.Len(t, getDelivery(t, s, o.ID, freshDlv).Attempts, 1, "a new attempt is kept")

	n, err = p.EventsPurge(ctx, cutoff, 2)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = p.EventsPurge(ctx, cutoff, 2)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the waiting event is kept")
	n, err = p.EventsPurge(ctx, cutoff, 2)
	require.NoError(t, err)
	require.Zero(t, n)
	for _, id := range finished {
		_, err := s.EventGet(ctx, o.ID, id)
		requireCode(t, consign.ENOTFOUND, err)
		ds, err := s.DeliveryList(ctx, o.ID, store.DeliveryFilter{EventID: id})
		require.NoError(t, err)
		require.Empty(t, ds, "an event's deliveries go with it")
	}
	for _, id := range []string{waiting.ID, fresh.ID} {
		_, err := s.EventGet(ctx, o.ID, id)
		require.NoError(t, err)
	}
	require.Equal(t, consign.StatusPending, getDelivery(t, s, o.ID, waitingDlv).Status)

	// Inbound receipts: old ones go once settled (processed, rejected, duplicate); a
	// pending one stays, however old, and so do new ones.
	src := insertSource(t, s, o.ID, old)
	processed, rejected, dup := newReceipt(src, "k1", old), newReceipt(src, "k2", old.Add(time.Second)), newReceipt(src, "k1", old.Add(2*time.Second))
	pending, recent := newReceipt(src, "k3", old.Add(3*time.Second)), newReceipt(src, "k4", now)
	insertReceipts(t, s, false, processed, rejected, dup, pending, recent)
	require.Equal(t, consign.ReceiptDuplicate, dup.Status)
	require.NoError(t, s.ReceiptsSettle(ctx, []store.ReceiptSettlement{
		{ID: processed.ID, EventID: "evt_1"}, {ID: rejected.ID, Reason: "schema"}, {ID: recent.ID, EventID: "evt_2"}}))
	n, err = p.ReceiptsPurge(ctx, cutoff, 2)
	require.NoError(t, err)
	require.Equal(t, 2, n, "a batch is at most limit rows")
	n, err = p.ReceiptsPurge(ctx, cutoff, 2)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the old settled receipt left")
	n, err = p.ReceiptsPurge(ctx, cutoff, 2)
	require.NoError(t, err)
	require.Zero(t, n)
	for _, r := range []*consign.Receipt{processed, rejected, dup} {
		_, err := s.ReceiptGet(ctx, o.ID, src.ID, r.ID)
		requireCode(t, consign.ENOTFOUND, err)
	}
	for _, r := range []*consign.Receipt{pending, recent} {
		_, err := s.ReceiptGet(ctx, o.ID, src.ID, r.ID)
		require.NoError(t, err, "a pending or recent receipt is kept")
	}
}
