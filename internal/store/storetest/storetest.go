// Package storetest is the conformance suite of the storage contract. Run exercises every
// method of store.Store against a driver, so that the embedded SQLite driver and the
// PostgreSQL driver are held to the very same behaviour (the pattern of River's
// riverdrivertest).
//
// Every subtest opens its own empty store and runs in parallel. The suite's clock is fixed
// (now) at whole milliseconds in UTC, and it expects times back exactly so: drivers keep
// millisecond precision and return times in UTC.
package storetest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// Run runs the conformance suite. newStore returns a fresh, empty, migrated store for one
// test (each subtest gets its own, so subtests can run in parallel); the suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	open := func(t *testing.T) store.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() { assert.NoError(t, s.Close(), "close store") })
		return s
	}
	groups := []struct {
		name string
		run  func(*testing.T, opener)
	}{
		{"Ping", testPing},
		{"Org", testOrg},
		{"Key", testKey},
		{"EventType", testEventType},
		{"Endpoint", testEndpoint},
		{"Secret", testSecret},
		{"Event", testEvent},
		{"Keys", testKeys},
		{"Delivery", testDelivery},
		{"Queue", testQueue},
		{"Ordering", testOrdering},
		{"Record", testRecord},
		{"Health", testHealth},
		{"Source", testSource},
		{"Retention", testRetention},
		{"Paused", testPaused},
		{"Job", testJob},
		{"Portal", testPortal},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, open)
		})
	}
}

// opener returns a fresh store for one test and closes it when the test ends.
type opener func(t *testing.T) store.Store

func testPing(t *testing.T, open opener) {
	require.NoError(t, open(t).Ping(t.Context()))
}

// now is the suite's fixed clock: whole milliseconds, UTC, as stores keep times.
var now = time.Date(2025, time.March, 14, 15, 9, 26, 535_000_000, time.UTC)

// deadlineAfter is how long after its event a fixture delivery may be retried.
const deadlineAfter = 72 * time.Hour

func ptr[T any](v T) *T { return &v }

// requireCode asserts that err is a *consign.Error with the given code.
func requireCode(tb testing.TB, code string, err error) {
	tb.Helper()
	require.Error(tb, err, "want %s", code)
	require.Equal(tb, code, consign.ErrorCode(err), "error: %v", err)
}

// requireTime asserts that two instants are the same, whatever their locations.
func requireTime(tb testing.TB, want, got time.Time, msgAndArgs ...any) {
	tb.Helper()
	require.True(tb, want.Equal(got), append([]any{"want %s, got %s", want, got}, msgAndArgs...)...)
}

func insertOrg(tb testing.TB, s store.Store, at time.Time) *consign.Org {
	tb.Helper()
	o := &consign.Org{ID: consign.NewID(consign.PrefixOrg, at), Name: "Acme Dropship", Role: consign.RoleBoth, CreatedAt: at, UpdatedAt: at}
	require.NoError(tb, s.OrgInsert(tb.Context(), o))
	return o
}

func insertKey(tb testing.TB, s store.Store, orgID string, at time.Time) (*consign.APIKey, []byte) {
	tb.Helper()
	k := &consign.APIKey{ID: consign.NewID(consign.PrefixKey, at), OrgID: orgID, Name: "ci", CreatedAt: at}
	hash := []byte("sha256:" + k.ID)
	require.NoError(tb, s.KeyInsert(tb.Context(), k, hash))
	return k, hash
}

// newEndpointRow returns an active endpoint as the manage layer would create it (defaults
// filled), not yet stored. Its URL is unique.
func newEndpointRow(tb testing.TB, orgID string, at time.Time) *store.EndpointRow {
	tb.Helper()
	id := consign.NewID(consign.PrefixEndpoint, at)
	e := &store.EndpointRow{Endpoint: consign.Endpoint{
		ID: id, OrgID: orgID, URL: "https://hooks.example.com/" + id, Topics: []string{"*"},
		Active: true, CreatedAt: at, UpdatedAt: at,
	}}
	require.NoError(tb, e.Normalize())
	return e
}

func newSecretRow(endpointID string, at time.Time) *store.SecretRow {
	id := consign.NewID(consign.PrefixSecret, at)
	return &store.SecretRow{
		Secret: consign.Secret{ID: id, EndpointID: endpointID, CreatedAt: at},
		Sealed: []byte("sealed:" + id),
	}
}

// insertEndpoint stores an endpoint made by newEndpointRow, changed by mods, with one
// secret.
func insertEndpoint(tb testing.TB, s store.Store, orgID string, at time.Time, mods ...func(*store.EndpointRow)) *store.EndpointRow {
	tb.Helper()
	e := newEndpointRow(tb, orgID, at)
	for _, mod := range mods {
		mod(e)
	}
	require.NoError(tb, s.EndpointInsert(tb.Context(), e, []*store.SecretRow{newSecretRow(e.ID, at)}))
	return e
}

func getEndpoint(tb testing.TB, s store.Store, id string) *store.EndpointRow {
	tb.Helper()
	e, err := s.EndpointGet(tb.Context(), "", id)
	require.NoError(tb, err)
	return e
}

func newEvent(orgID, typ string, at time.Time) *consign.Event {
	id := consign.NewID(consign.PrefixEvent, at)
	return &consign.Event{
		ID: id, OrgID: orgID, Type: typ, CreatedAt: at,
		Payload: json.RawMessage(`{"order_id":"` + id + `","total":"19.90","lines":[1,2]}`),
	}
}

// newDeliveries returns one delivery per endpoint with IDs increasing in the endpoints'
// order, retried until deadlineAfter.
func newDeliveries(at time.Time, endpointIDs ...string) []store.NewDelivery {
	ids := make([]string, len(endpointIDs))
	for i := range ids {
		ids[i] = consign.NewID(consign.PrefixDelivery, at)
	}
	slices.Sort(ids)
	ds := make([]store.NewDelivery, len(endpointIDs))
	for i, ep := range endpointIDs {
		ds[i] = store.NewDelivery{ID: ids[i], EndpointID: ep, Deadline: at.Add(deadlineAfter)}
	}
	return ds
}

// insertEvent stores ev with one delivery, due at once, to each endpoint and returns the
// deliveries' IDs in the endpoints' order.
func insertEvent(tb testing.TB, s store.Store, ev *consign.Event, endpointIDs ...string) []string {
	tb.Helper()
	w := &store.EventWrite{Event: ev, Deliveries: newDeliveries(ev.CreatedAt, endpointIDs...)}
	require.NoError(tb, s.EventsInsert(tb.Context(), []*store.EventWrite{w}))
	require.False(tb, w.Duplicate, "event %s stored as a duplicate", ev.ID)
	ids := make([]string, len(w.Deliveries))
	for i, d := range w.Deliveries {
		ids[i] = d.ID
	}
	return ids
}

// record writes outcomes in one batch, without health changes.
func record(tb testing.TB, s store.Store, os ...*store.Outcome) {
	tb.Helper()
	require.NoError(tb, s.DeliveriesRecord(tb.Context(), store.RecordParams{Outcomes: os}))
}

// setStatus records an outcome without an attempt, as the dispatcher does when it finds
// nothing to send.
func setStatus(tb testing.TB, s store.Store, endpointID, deliveryID, status string, at time.Time) {
	tb.Helper()
	record(tb, s, &store.Outcome{DeliveryID: deliveryID, EndpointID: endpointID, Status: status, At: at})
}

func getDelivery(tb testing.TB, s store.Store, orgID, id string) *consign.Delivery {
	tb.Helper()
	d, err := s.DeliveryGet(tb.Context(), orgID, id)
	require.NoError(tb, err)
	return d
}

// claim leases, for a minute, up to 100 deliveries of each endpoint due at at.
func claim(tb testing.TB, s store.Store, at time.Time, endpointIDs ...string) []*store.Claim {
	tb.Helper()
	p := store.ClaimParams{Now: at, LeaseUntil: at.Add(time.Minute)}
	for _, ep := range endpointIDs {
		p.Quotas = append(p.Quotas, store.Quota{EndpointID: ep, Limit: 100})
	}
	res, err := s.DeliveriesClaim(tb.Context(), p)
	require.NoError(tb, err)
	return res.Claims
}

func claimIDs(cs []*store.Claim) []string {
	ids := []string{}
	for _, c := range cs {
		ids = append(ids, c.DeliveryID)
	}
	return ids
}

// requireDue asserts what DeliveriesDue reports: per endpoint, when its work comes due.
func requireDue(tb testing.TB, s store.Store, want map[string]time.Time) {
	tb.Helper()
	got, err := s.DeliveriesDue(tb.Context())
	require.NoError(tb, err)
	require.Len(tb, got, len(want), "endpoints with waiting work: %v", got)
	for ep, at := range want {
		require.Contains(tb, got, ep)
		requireTime(tb, at, got[ep], "endpoint %s", ep)
	}
}
