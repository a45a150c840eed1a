package sqlite

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// syncRecorder wraps a logSync's fsync of the real file and records, for each fsync,
// how many commits had been numbered when it began.
type syncRecorder struct {
	mu      sync.Mutex
	covered []uint64 // per finished fsync: the commits numbered before it began
	delay   time.Duration
	fail    error // returned once, by the next fsync
}

func (r *syncRecorder) install(l *logSync) {
	fsync := l.fsync
	l.fsync = func(dbPath string) error {
		l.mu.Lock()
		began := l.commits
		l.mu.Unlock()
		time.Sleep(r.delay)
		err := fsync(dbPath)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail != nil {
			err, r.fail = r.fail, nil
		}
		if err == nil {
			r.covered = append(r.covered, began)
		}
		return err
	}
}

// synced reports how many fsyncs finished, and whether one that began after commit n
// was numbered has finished.
func (r *syncRecorder) synced(n uint64) (count int, covers bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.covered {
		covers = covers || c >= n
	}
	return len(r.covered), covers
}

// TestLogSyncGroupCommit checks the group fsync of the write-ahead log on a real database:
// a durable commit's wait returns only after an fsync that began after the commit, many
// concurrent commits share few fsyncs, and commits that are not durable cause none.
func TestLogSyncGroupCommit(t *testing.T) {
	t.Parallel()
	db, _, _ := openWithOrg(t, t.TempDir())
	defer db.Close()
	rec := &syncRecorder{delay: 5 * time.Millisecond}
	rec.install(db.log)

	for range 20 {
		db.log.commit(false)
	}
	require.NoError(t, db.log.settle())
	count, _ := rec.synced(0)
	require.Zero(t, count, "commits that are not durable are not waited for")

	const writers = 64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			n := db.log.commit(true)
			if err := db.log.wait(n); err != nil {
				errs <- err
				return
			}
			if _, ok := rec.synced(n); !ok {
				errs <- errors.New("a durable commit's wait returned before an fsync that began after it")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	count, _ = rec.synced(0)
	require.Positive(t, count)
	require.Less(t, count, writers/4, "%d fsyncs for %d concurrent durable commits", count, writers)

	before := count
	light := db.log.commit(false)
	require.NoError(t, db.log.wait(light-1), "already on disk")
	count, _ = rec.synced(0)
	require.Equal(t, before, count, "a wait for what is on disk starts no fsync")
}

// TestLogSyncFailureSticks checks that after an fsync fails, the commits it was to cover
// and every later durable write fail with an error saying what to do, while what was on
// disk before still counts as on disk.
func TestLogSyncFailureSticks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, org, at := openWithOrg(t, t.TempDir())
	defer db.Close()
	rec := &syncRecorder{}
	rec.install(db.log)
	first := db.log.commit(true)
	require.NoError(t, db.log.wait(first))

	rec.fail = errors.New("input/output error")
	err := db.log.wait(db.log.commit(true))
	require.ErrorContains(t, err, "input/output error")
	require.ErrorContains(t, err, "restart consign")
	require.NoError(t, db.log.wait(first), "synced before the failure")

	ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.created",
		Payload: []byte(`{}`), CreatedAt: at}
	err = db.EventsInsert(ctx, []*store.EventWrite{{Event: ev}})
	require.ErrorContains(t, err, "restart consign", "the failure sticks: later durable writes fail too")
}

// TestClaimWaitsForDurableWrites checks that a claim returns only once the durable
// writes before it are on disk: the dispatcher sends what it claims, and must not send a
// delivery whose event a crash could still take back.
func TestClaimWaitsForDurableWrites(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, org, at := openWithOrg(t, t.TempDir())
	defer db.Close()
	ep := addEndpoint(t, db, org, at, "https://example.com/hooks")

	release := make(chan struct{})
	fsync := db.log.fsync
	db.log.fsync = func(dbPath string) error {
		<-release
		return fsync(dbPath)
	}
	ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.created",
		Payload: []byte(`{}`), CreatedAt: at}
	d := store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, at), EndpointID: ep.ID, Endpoint: ep,
		Deadline: at.Add(time.Hour)}
	inserted := make(chan error, 1)
	go func() {
		inserted <- db.EventsInsert(ctx, []*store.EventWrite{{Event: ev, Deliveries: []store.NewDelivery{d}}})
	}()

	// The insert has committed (its delivery is visible) but waits for its fsync.
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.r.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE id = ?`, d.ID).Scan(&n))
		return n == 1
	}, 5*time.Second, time.Millisecond)
	claimed := make(chan *store.ClaimResult, 1)
	go func() {
		res, err := db.DeliveriesClaim(ctx, store.ClaimParams{Now: at.Add(time.Second), LeaseUntil: at.Add(time.Minute),
			Quotas: []store.Quota{{EndpointID: ep.ID, Limit: 10}}})
		if err != nil {
			t.Error(err)
		}
		claimed <- res
	}()
	select {
	case <-claimed:
		t.Fatal("the claim returned while the write of what it claimed was not on disk")
	case <-inserted:
		t.Fatal("the insert returned before its fsync")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-inserted)
	res := <-claimed
	require.NotNil(t, res)
	require.Len(t, res.Claims, 1)
	require.Equal(t, d.ID, res.Claims[0].DeliveryID)
}
