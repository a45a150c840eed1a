package dispatch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/sqlite"
)

// failingRecords is a real store whose DeliveriesRecord fails while failing is set, as
// a store that is away for a while does.
type failingRecords struct {
	store.Store
	failing atomic.Bool
	tries   atomic.Int64
}

func (s *failingRecords) DeliveriesRecord(ctx context.Context, p store.RecordParams) error {
	s.tries.Add(1)
	if s.failing.Load() {
		return errors.New("the store is away")
	}
	return s.Store.DeliveriesRecord(ctx, p)
}

// syncBuffer is a log destination safe for the recorder's goroutine and the test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// recordSetup stores one pending delivery with an ordering key in a real SQLite store and
// returns the store wrapped to fail on demand, its org and the delivery's outcome.
func recordSetup(t *testing.T) (*failingRecords, string, *store.Outcome) {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	now := time.Now().UTC()
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleSeller, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, db.OrgInsert(ctx, org))
	ep := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, now), OrgID: org.ID,
		URL: "https://erp.example.com/hooks", Topics: []string{"*"}, Active: true, Ordering: consign.OrderingKey,
		CreatedAt: now, UpdatedAt: now}}
	require.NoError(t, ep.Normalize())
	require.NoError(t, db.EndpointInsert(ctx, ep, nil))
	ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: org.ID, Type: "order.created",
		Payload: []byte(`{}`), OrderingKey: "order-1001", CreatedAt: now}
	d := store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, now), EndpointID: ep.ID, OrderingKey: ev.OrderingKey,
		Deadline: now.Add(time.Hour)}
	require.NoError(t, db.EventsInsert(ctx, []*store.EventWrite{{Event: ev, Deliveries: []store.NewDelivery{d}}}))
	at := now.Add(time.Millisecond)
	o := &store.Outcome{DeliveryID: d.ID, EndpointID: ep.ID, Status: consign.StatusSucceeded, At: at,
		Attempt: &consign.Attempt{N: 1, StartedAt: at, DurationMS: 2, Request: consign.AttemptRequest{Method: "POST", URL: ep.URL},
			Response: &consign.AttemptResponse{Status: 200}}}
	return &failingRecords{Store: db}, org.ID, o
}

// TestRecorderOutlastsStoreOutage: while the store cannot write, the recorder keeps the
// outcome and tries again, past the few tries it used to give up after (under a second):
// once the store is back the delivery is recorded, and its endpoint woken so the key's
// next delivery goes out, instead of waiting for the lease to end and being sent again.
func TestRecorderOutlastsStoreOutage(t *testing.T) {
	t.Parallel()
	st, orgID, o := recordSetup(t)
	woken := make(chan []string, 1)
	r := newRecorder(st, slog.New(slog.DiscardHandler), func(_ []store.HealthChange, wake []string) { woken <- wake })
	stopping := make(chan struct{})
	go r.run(stopping)
	t.Cleanup(func() { close(stopping); r.close() })

	st.failing.Store(true)
	r.add(o, true)
	const outage = 2 * time.Second
	time.Sleep(outage)
	tries := st.tries.Load()
	require.GreaterOrEqual(t, tries, int64(5), "tries during the %s outage", outage)
	st.failing.Store(false)

	select {
	case wake := <-woken:
		require.Equal(t, []string{o.EndpointID}, wake, "the key's endpoint is woken once its outcome is written")
	case <-time.After(10 * time.Second):
		t.Fatalf("the outcome was not written within 10 s of the store coming back (%d tries)", st.tries.Load())
	}
	d, err := st.DeliveryGet(t.Context(), orgID, o.DeliveryID)
	require.NoError(t, err)
	require.Equal(t, consign.StatusSucceeded, d.Status)
	require.Len(t, d.Attempts, 1)
}

// TestRecorderGivesUpWhenStopping: with the store away for good, a dispatcher that stops
// is not held up by the outcome it cannot write: close returns after a few more tries,
// and the loss is in the log.
func TestRecorderGivesUpWhenStopping(t *testing.T) {
	t.Parallel()
	st, _, o := recordSetup(t)
	st.failing.Store(true)
	var log syncBuffer
	r := newRecorder(st, slog.New(slog.NewTextHandler(&log, nil)), func([]store.HealthChange, []string) {
		t.Error("a batch that was not written was reported written")
	})
	stopping := make(chan struct{})
	go r.run(stopping)
	r.add(o, true)
	require.Eventually(t, func() bool { return st.tries.Load() >= 2 }, 5*time.Second, 10*time.Millisecond)

	close(stopping)
	closed := make(chan struct{})
	go func() { r.close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("close still waits 5 s after the dispatcher stopped")
	}
	require.Equal(t, int64(recordTriesAtClose), st.tries.Load(), "tries in all")
	require.Contains(t, log.String(), "giving up as the dispatcher stops")
}
