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
	st, err := sqlite.Open(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleSeller, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, st.OrgInsert(ctx, org))
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
