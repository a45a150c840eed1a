package ingest_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/ingest"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/sqlite"
)

// TestEmitAfterClose: an event offered while ingest shuts down is refused as unavailable,
// never left waiting. (The dispatcher's last outcomes can trip a failure policy, whose
// operational event arrives after ingest has closed; the app's shutdown waited for it
// forever.)
func TestEmitAfterClose(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(t.Context(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	svc := ingest.New(st, ingest.Config{})
	svc.Close()
	for range 200 {
		done := make(chan error, 1)
		go func() { done <- svc.Emit(context.Background(), "org_1", "consign.endpoint.disabled", map[string]any{}) }()
		select {
		case err := <-done:
			require.Equal(t, consign.EUNAVAILABLE, consign.ErrorCode(err), "%v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("Emit after Close is still waiting after 5 s")
		}
	}
}

// TestCloseAnswersEveryPublish: with publishers in flight, Close leaves no caller
// waiting, and exactly the events that were acknowledged are in the store.
func TestCloseAnswersEveryPublish(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, org, _ := storeWithOrg(t)
	svc := ingest.New(st, ingest.Config{})

	const publishers, each = 32, 25
	var acked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, publishers*each)
	for range publishers {
		wg.Go(func() {
			for range each {
				err := svc.Emit(context.Background(), org.ID, "consign.endpoint.disabled", map[string]any{"n": 1})
				switch consign.ErrorCode(err) {
				case "":
					acked.Add(1)
				case consign.EUNAVAILABLE:
				default:
					errs <- err
				}
			}
		})
	}
	// Close once some events are acknowledged, with the publishers still going.
	require.Eventually(t, func() bool { return acked.Load() >= 10 }, 10*time.Second, time.Millisecond)
	svc.Close()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("publishers still waiting 10 s after Close")
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	stored := 0
	for cursor := ""; ; {
		page, err := st.EventList(ctx, org.ID, store.EventFilter{Page: store.Page{Limit: 1000, Cursor: cursor}})
		require.NoError(t, err)
		stored += len(page)
		if len(page) < 1000 {
			break
		}
		cursor = page[len(page)-1].ID
	}
	require.EqualValues(t, acked.Load(), stored, "events in the store against events acknowledged")
}

// TestFanOutFollowsEndpointChanges: fan-out keeps an org's endpoints between commits,
// yet every change to them counts for the next event at once: a topic added, an endpoint
// deactivated, created, activated again, deleted.
func TestFanOutFollowsEndpointChanges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, org, now := storeWithOrg(t)
	require.NoError(t, st.EventTypeInsert(ctx, &consign.EventType{Name: "order.created", CreatedAt: now, UpdatedAt: now}))
	newEndpoint := func(topic string) *store.EndpointRow {
		ep := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, now), OrgID: org.ID,
			URL: "https://erp.example.com/hooks/" + topic, Topics: []string{topic}, Active: true, CreatedAt: now, UpdatedAt: now}}
		require.NoError(t, ep.Normalize())
		require.NoError(t, st.EndpointInsert(ctx, ep, nil))
		return ep
	}
	update := func(ep *store.EndpointRow, change func(*store.EndpointRow)) {
		got, err := st.EndpointGet(ctx, org.ID, ep.ID)
		require.NoError(t, err)
		change(got)
		require.NoError(t, st.EndpointUpdate(ctx, got))
	}
	svc := ingest.New(st, ingest.Config{})
	t.Cleanup(svc.Close)
	// fannedOut publishes an event and returns the status of its delivery to each endpoint.
	fannedOut := func() map[string]string {
		t.Helper()
		res, err := svc.Publish(ctx, org.ID, []ingest.EventInput{{Type: "order.created", Payload: []byte(`{}`)}})
		require.NoError(t, err)
		ds, err := st.DeliveryList(ctx, org.ID, store.DeliveryFilter{EventID: res[0].Event.ID, Page: store.Page{Limit: 10}})
		require.NoError(t, err)
		got := map[string]string{}
		for _, d := range ds {
			got[d.EndpointID] = d.Status
		}
		return got
	}
	const pending, paused = consign.StatusPending, consign.StatusPaused

	a, b := newEndpoint("order.*"), newEndpoint("inventory.*")
	require.Equal(t, map[string]string{a.ID: pending}, fannedOut())
	require.Equal(t, map[string]string{a.ID: pending}, fannedOut(), "the same again, from what fan-out kept")
	update(b, func(e *store.EndpointRow) { e.Topics = []string{"inventory.*", "order.created"} })
	require.Equal(t, map[string]string{a.ID: pending, b.ID: pending}, fannedOut(), "a topic added")
	update(a, func(e *store.EndpointRow) { e.Active = false })
	require.Equal(t, map[string]string{a.ID: paused, b.ID: pending}, fannedOut(), "an endpoint deactivated: its delivery waits")
	c := newEndpoint("*")
	require.Equal(t, map[string]string{a.ID: paused, b.ID: pending, c.ID: pending}, fannedOut(), "an endpoint created")
	update(a, func(e *store.EndpointRow) { e.Active = true })
	require.Equal(t, map[string]string{a.ID: pending, b.ID: pending, c.ID: pending}, fannedOut(), "an endpoint activated again")
	require.NoError(t, st.EndpointDelete(ctx, org.ID, b.ID))
	require.Equal(t, map[string]string{a.ID: pending, c.ID: pending}, fannedOut(), "an endpoint deleted")
}

// storeWithOrg opens a real store in a temporary directory with one org.
func storeWithOrg(t testing.TB) (*sqlite.DB, *consign.Org, time.Time) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleSeller, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, st.OrgInsert(t.Context(), org))
	return st, org, now
}
