package sqlite_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/sqlite"
	"github.com/consign-dev/consign/internal/store/storetest"
)

// TestConformance runs the store contract's tests on every engine in this build (with
// cgo, which the race detector needs, both).
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, e := range sqlite.Engines() {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) store.Store {
				db, err := sqlite.OpenEngine(t.Context(), t.TempDir(), e)
				require.NoError(t, err)
				require.Equal(t, e, db.Engine())
				return db
			})
		})
	}
}

var now = time.Date(2025, time.March, 14, 15, 9, 26, 535_000_000, time.UTC)

func open(tb testing.TB, dir string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(tb.Context(), dir)
	require.NoError(tb, err)
	return db
}

// TestReopen checks that everything written is still there after the database is closed
// and opened again, as after a restart, also by a binary built with the other engine.
func TestReopen(t *testing.T) {
	t.Parallel()
	engines := sqlite.Engines()
	if len(engines) < 2 && os.Getenv("CI") != "" {
		t.Fatalf("this test binary has only the %v engine: CI builds with cgo (go test -race) and must test both", engines)
	}
	for _, w := range engines {
		for _, r := range engines {
			t.Run(string(w)+"→"+string(r), func(t *testing.T) {
				t.Parallel()
				testReopen(t, w, r)
			})
		}
	}
}

func testReopen(t *testing.T, writer, reader sqlite.Engine) {
	ctx := t.Context()
	dir := t.TempDir()
	db, err := sqlite.OpenEngine(ctx, dir, writer)
	require.NoError(t, err)

	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleSeller, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, db.OrgInsert(ctx, org))
	key := &consign.APIKey{ID: consign.NewID(consign.PrefixKey, now), OrgID: org.ID, Name: "ci", CreatedAt: now}
	require.NoError(t, db.KeyInsert(ctx, key, []byte("hash")))
	et := &consign.EventType{Name: "order.created", Description: "Placed.", Schema: json.RawMessage(`{"type":"object"}`),
		AvailableFor: []consign.Role{consign.RoleBuyer}, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, db.EventTypeInsert(ctx, et))

	ep := &store.EndpointRow{Endpoint: consign.Endpoint{
		ID: consign.NewID(consign.PrefixEndpoint, now), OrgID: org.ID, URL: "https://erp.example.com/hooks",
		Topics: []string{"order.*"}, Headers: map[string]string{"X-Tenant": "acme"}, Auth: consign.Auth{Type: consign.AuthToken},
		RateLimit: 5, BurstLimit: 2, Active: true, CreatedAt: now, UpdatedAt: now,
	}, TokenSealed: []byte("sealed token")}
	require.NoError(t, ep.Normalize())
	expires := now.Add(time.Hour)
	secrets := []*store.SecretRow{
		{Secret: consign.Secret{ID: consign.NewID(consign.PrefixSecret, now), EndpointID: ep.ID, CreatedAt: now, ExpiresAt: &expires}, Sealed: []byte("s1")},
		{Secret: consign.Secret{ID: consign.NewID(consign.PrefixSecret, now.Add(time.Millisecond)), EndpointID: ep.ID, PublicKey: "whpk_x", CreatedAt: now.Add(time.Millisecond)}, Sealed: []byte("s2")},
	}
	require.NoError(t, db.EndpointInsert(ctx, ep, secrets))

	ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: org.ID, Type: "order.created",
		Payload: json.RawMessage(`{"id":1}`), IdempotencyKey: "k", OrderingKey: "o", CreatedAt: now}
	dlv := consign.NewID(consign.PrefixDelivery, now)
	require.NoError(t, db.EventsInsert(ctx, []*store.EventWrite{{Event: ev, Deliveries: []store.NewDelivery{{ID: dlv, EndpointID: ep.ID, Deadline: now.Add(time.Hour)}}}}))
	errText := "timeout"
	attempt := consign.Attempt{N: 1, StartedAt: now, DurationMS: 5000, Request: consign.AttemptRequest{Method: "POST", URL: ep.URL, Headers: map[string]string{"Webhook-Id": ev.ID}},
		Response: &consign.AttemptResponse{Status: 503, Headers: map[string]string{"Retry-After": "1"}, Body: "busy"}, Error: &errText}
	require.NoError(t, db.DeliveriesRecord(ctx, store.RecordParams{
		Outcomes: []*store.Outcome{{DeliveryID: dlv, EndpointID: ep.ID, Attempt: &attempt, Status: consign.StatusPending, NextAttemptAt: now.Add(time.Minute), At: now}},
		Health:   []store.HealthChange{{EndpointID: ep.ID, FailingSince: now}},
	}))
	ep.Health, ep.FailingSince = consign.HealthFailing, &now
	wantDelivery, err := db.DeliveryGet(ctx, org.ID, dlv)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	db, err = sqlite.OpenEngine(ctx, dir, reader)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })

	gotOrg, err := db.OrgGet(ctx, org.ID)
	require.NoError(t, err)
	require.Equal(t, org, gotOrg)
	gotKey, err := db.KeyByHash(ctx, []byte("hash"))
	require.NoError(t, err)
	require.Equal(t, key, gotKey)
	gotType, err := db.EventTypeGet(ctx, et.Name)
	require.NoError(t, err)
	require.Equal(t, et, gotType)
	gotEP, err := db.EndpointGet(ctx, org.ID, ep.ID)
	require.NoError(t, err)
	require.Equal(t, ep, gotEP)
	gotSecrets, err := db.SecretList(ctx, ep.ID)
	require.NoError(t, err)
	require.Equal(t, secrets, gotSecrets)
	gotEvent, err := db.EventGet(ctx, org.ID, ev.ID)
	require.NoError(t, err)
	require.Equal(t, ev, gotEvent)
	gotDelivery, err := db.DeliveryGet(ctx, org.ID, dlv)
	require.NoError(t, err)
	require.Equal(t, wantDelivery, gotDelivery)
	require.Equal(t, []consign.Attempt{attempt}, gotDelivery.Attempts)

	// The queue survives too: the delivery comes due when it was scheduled.
	due, err := db.DeliveriesDue(ctx)
	require.NoError(t, err)
	require.Len(t, due, 1)
	require.True(t, now.Add(time.Minute).Equal(due[ep.ID]))
	failures, err := db.EndpointFailures(ctx, []store.FailureQuery{{EndpointID: ep.ID, Since: now, Max: 10}})
	require.NoError(t, err)
	require.Equal(t, 1, failures[0].Failures)
	// And so does the idempotency key.
	dup := &store.EventWrite{Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: org.ID, Type: "order.created",
		Payload: json.RawMessage(`{}`), IdempotencyKey: "k", CreatedAt: now.Add(time.Second)}}
	require.NoError(t, db.EventsInsert(ctx, []*store.EventWrite{dup}))
	require.True(t, dup.Duplicate)
}

// TestMigrateTwice checks that opening an existing database applies no migration twice
// and loses nothing.
func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	db := open(t, dir)
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleBoth, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, db.OrgInsert(ctx, org))
	require.NoError(t, db.Close())

	for range 2 {
		db = open(t, dir)
		require.NoError(t, db.Ping(ctx))
		got, err := db.OrgGet(ctx, org.ID)
		require.NoError(t, err)
		require.Equal(t, org, got)
		require.NoError(t, db.Close())
	}
}

// TestWALStaysBounded writes about 100 MB through the store in durable transactions and
// checks that the write-ahead log was restarted along the way instead of growing with
// everything written (checkpoints run in the background, see checkpoint.go).
func TestWALStaysBounded(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	db := open(t, dir)
	defer db.Close()
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleSeller, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, db.OrgInsert(ctx, org))
	payload := json.RawMessage(`{"note":"` + strings.Repeat("x", 8<<10) + `"}`)
	const batches, perBatch = 24, 500
	for b := range batches {
		ws := make([]*store.EventWrite, perBatch)
		for i := range ws {
			at := now.Add(time.Duration(b*perBatch+i) * time.Millisecond)
			ws[i] = &store.EventWrite{Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID,
				Type: "order.created", Payload: payload, CreatedAt: at}}
		}
		require.NoError(t, db.EventsInsert(ctx, ws))
	}
	fi, err := os.Stat(filepath.Join(dir, sqlite.FileName+"-wal"))
	require.NoError(t, err)
	require.Less(t, fi.Size(), int64(64<<20), "the log holds %d MB after %d MB written", fi.Size()>>20, batches*perBatch*8>>10)
}

// TestDataDirName checks that the database goes inside a data directory whose name holds
// characters that end or escape the path of a URI filename.
func TestDataDirName(t *testing.T) {
	t.Parallel()
	for _, e := range sqlite.Engines() {
		for _, name := range []string{"a b", "hooks#1", "what?now", "100%", "x%3fy"} {
			t.Run(string(e)+"/"+name, func(t *testing.T) {
				t.Parallel()
				parent := t.TempDir()
				dir := filepath.Join(parent, name)
				db, err := sqlite.OpenEngine(t.Context(), dir, e)
				require.NoError(t, err)
				org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleBoth, CreatedAt: now, UpdatedAt: now}
				require.NoError(t, db.OrgInsert(t.Context(), org))
				require.NoError(t, db.Close())

				st, err := os.Stat(filepath.Join(dir, sqlite.FileName))
				require.NoError(t, err, "the database is not in the data directory")
				require.True(t, st.Mode().IsRegular())
				entries, err := os.ReadDir(parent)
				require.NoError(t, err)
				require.Len(t, entries, 1, "files written next to the data directory: %v", entries)
			})
		}
	}
}
