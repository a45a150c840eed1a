package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/postgres"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
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
	db, err := sqlite.Open(t.Context(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	orgID, os := seedOutcomes(t, db, 1)
	return &failingRecords{Store: db}, orgID, os[0]
}

// seedOutcomes stores n pending deliveries of one endpoint, with ordering keys, and
// returns their org and their outcomes: a first attempt that succeeded.
func seedOutcomes(t *testing.T, db store.Store, n int) (string, []*store.Outcome) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC()
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleSeller, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, db.OrgInsert(ctx, org))
	ep := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, now), OrgID: org.ID,
		URL: "https://erp.example.com/hooks", Topics: []string{"*"}, Active: true, Ordering: consign.OrderingKey,
		CreatedAt: now, UpdatedAt: now}}
	require.NoError(t, ep.Normalize())
	require.NoError(t, db.EndpointInsert(ctx, ep, nil))
	var os []*store.Outcome
	for i := range n {
		ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: org.ID, Type: "order.created",
			Payload: []byte(`{}`), OrderingKey: fmt.Sprintf("order-%d", 1001+i), CreatedAt: now}
		d := store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, now), EndpointID: ep.ID, OrderingKey: ev.OrderingKey,
			Deadline: now.Add(time.Hour)}
		require.NoError(t, db.EventsInsert(ctx, []*store.EventWrite{{Event: ev, Deliveries: []store.NewDelivery{d}}}))
		at := now.Add(time.Millisecond)
		os = append(os, &store.Outcome{DeliveryID: d.ID, EndpointID: ep.ID, Status: consign.StatusSucceeded, At: at,
			Attempt: &consign.Attempt{N: 1, StartedAt: at, DurationMS: 2, Request: consign.AttemptRequest{Method: "POST", URL: ep.URL},
				Response: &consign.AttemptResponse{Status: 200, Headers: map[string]string{"Content-Type": "text/plain"}, Body: "ok"}}})
	}
	return org.ID, os
}

// TestRecorderOutlastsStoreOutage: while the store cannot write, the recorder keeps the
// outcome and tries again for as long as the outage lasts, not a few tries (under a second):
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

// TestRecorderWritesAroundRefusedOutcome: one outcome the store refuses (here, of a
// delivery that does not exist: its attempt row fails the foreign key) does not stop the
// attempt log. The outcomes that shared its batch are written, the refused one is left
// without its attempt (its state alone changes nothing here) with an error in the log,
// and the batch's keys are woken.
func TestRecorderWritesAroundRefusedOutcome(t *testing.T) {
	t.Parallel()
	st, orgID, o := recordSetup(t)
	missing := *o
	missing.DeliveryID = consign.NewID(consign.PrefixDelivery, time.Now())
	other := *o // a second outcome of the same delivery: its retry, say
	other.Attempt = &consign.Attempt{N: 2, StartedAt: o.At, DurationMS: 1, Request: o.Attempt.Request, Response: &consign.AttemptResponse{Status: 204}}

	var log syncBuffer
	woken := make(chan []string, 1)
	r := newRecorder(st, slog.New(slog.NewTextHandler(&log, nil)), func(_ []store.HealthChange, wake []string) { woken <- wake })
	// The three are queued before the recorder runs, so that they form one batch.
	r.add(o, true)
	r.add(&missing, false)
	r.add(&other, false)
	stopping := make(chan struct{})
	go r.run(stopping)
	t.Cleanup(func() { close(stopping); r.close() })

	select {
	case wake := <-woken:
		require.Equal(t, []string{o.EndpointID}, wake)
	case <-time.After(10 * time.Second):
		t.Fatalf("the batch was not reported written within 10 s; log:\n%s", log.String())
	}
	d, err := st.DeliveryGet(t.Context(), orgID, o.DeliveryID)
	require.NoError(t, err)
	require.Equal(t, consign.StatusSucceeded, d.Status)
	require.Len(t, d.Attempts, 2, "both attempts of the delivery that exists")
	require.Equal(t, 204, d.Attempts[1].Response.Status)
	require.Contains(t, log.String(), "the store refused a delivery's outcome")
	require.Contains(t, log.String(), missing.DeliveryID)
	_, err = st.DeliveryGet(t.Context(), orgID, missing.DeliveryID)
	require.Error(t, err, "nothing is stored for the delivery that does not exist")
	require.Less(t, st.tries.Load(), int64(10), "store calls: the batch, its halves, and the refused outcome in three forms")
}

// TestRecorderKeepsStateOfRefusedAttempt: PostgreSQL cannot hold a NUL character in
// text, and here the response's headers carry one. The delivery's new state is recorded
// all the same, with an attempt that keeps what Consign sent, the response's status, and
// a note of why the rest is missing; the batch's other outcome is recorded in full.
func TestRecorderKeepsStateOfRefusedAttempt(t *testing.T) {
	t.Parallel()
	db, err := postgres.Open(t.Context(), pgtest.DSN(t))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	orgID, os := seedOutcomes(t, db, 2)
	os[0].Attempt.Response.Headers["X-Trace"] = "a\x00b"
	ref := "PO-1001"
	os[0].ResponseReference = &ref

	r := newRecorder(db, slog.New(slog.DiscardHandler), nil)
	for _, o := range os {
		r.add(o, false)
	}
	stopping := make(chan struct{})
	go r.run(stopping)
	close(stopping) // close writes what is queued; the refused outcome is not a store that is away
	r.close()

	d, err := db.DeliveryGet(t.Context(), orgID, os[0].DeliveryID)
	require.NoError(t, err)
	require.Equal(t, consign.StatusSucceeded, d.Status)
	require.Len(t, d.Attempts, 1)
	a := d.Attempts[0]
	require.Equal(t, os[0].Attempt.Request.URL, a.Request.URL)
	require.Equal(t, 200, a.Response.Status)
	require.Empty(t, a.Response.Headers)
	require.Empty(t, a.Response.Body)
	require.NotNil(t, a.Error)
	require.Contains(t, *a.Error, "the attempt's record could not be stored")
	require.NotNil(t, d.ResponseReference)
	require.Equal(t, ref, *d.ResponseReference)

	d, err = db.DeliveryGet(t.Context(), orgID, os[1].DeliveryID)
	require.NoError(t, err)
	require.Equal(t, consign.StatusSucceeded, d.Status)
	require.Len(t, d.Attempts, 1)
	require.Equal(t, "ok", d.Attempts[0].Response.Body)
}
