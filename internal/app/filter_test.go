package app_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
)

// TestFilters: two endpoints on the same topic with different filters each receive only
// the events their filter passes; the others make no delivery for them and show in their
// stats as filtered; a malformed filter is refused with a field error; a filter changed
// or removed applies to the next event. On SQLite and on PostgreSQL.
func TestFilters(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			var mods []func(*app.Config)
			if db == "postgres" {
				dsn := pgtest.DSN(t)
				key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
				mods = append(mods, func(c *app.Config) { c.Database, c.EncryptionKey = dsn, key })
			}
			testFilters(t, start(t, mods...))
		})
	}
}

func testFilters(t *testing.T, e *env) {
	o := e.newOrg("acme")
	big, wh2 := newReceiver(t, nil), newReceiver(t, nil)
	bigFilter := map[string]any{"payload": map[string]any{"total": map[string]any{"$gte": 500}, "country": map[string]any{"$in": []string{"US", "CA"}}}}
	epBig := e.createEndpoint(o, map[string]any{"url": big.URL, "topics": []string{"order.*"}, "filter": bigFilter})
	epWH2 := e.createEndpoint(o, map[string]any{"url": wh2.URL, "topics": []string{"order.*"},
		"filter": map[string]any{"payload": map[string]any{"warehouse": map[string]any{"id": "WH-2"}}}})
	bigID, wh2ID := epBig["id"].(string), epWH2["id"].(string)
	require.JSONEq(t, `{"payload": {"total": {"$gte": 500}, "country": {"$in": ["US", "CA"]}}}`, jsonOf(t, epBig["filter"]))

	events := []struct {
		payload map[string]any
		to      []string
	}{
		{map[string]any{"total": 750, "country": "US", "warehouse": map[string]any{"id": "WH-1"}}, []string{bigID}},
		{map[string]any{"total": 100, "country": "US", "warehouse": map[string]any{"id": "WH-2"}}, []string{wh2ID}},
		{map[string]any{"total": 900.5, "country": "CA", "warehouse": map[string]any{"id": "WH-2"}}, []string{bigID, wh2ID}},
		{map[string]any{"total": 50, "country": "MX", "warehouse": map[string]any{"id": "WH-3"}}, nil},
		{map[string]any{"total": "5000", "country": "US"}, nil}, // a string is not a number
	}
	want := map[string][]string{} // receiver URL → event ids
	for _, ev := range events {
		id := e.publish(o, "order.created", ev.payload)
		var got []string
		for _, d := range e.deliveries(o, "event_id="+id) {
			got = append(got, d.EndpointID)
		}
		slices.Sort(got)
		wantTo := slices.Clone(ev.to)
		slices.Sort(wantTo)
		require.Equal(t, wantTo, got, "deliveries of %v", ev.payload)
		for _, ep := range ev.to {
			want[ep] = append(want[ep], id)
		}
	}
	for ep, rc := range map[string]*receiver{bigID: big, wh2ID: wh2} {
		var ids []string
		for range want[ep] {
			ids = append(ids, rc.next(t).Header.Get("webhook-id"))
		}
		require.ElementsMatch(t, want[ep], ids)
	}

	stats := func(id string) map[string]any {
		return e.c.must(http.StatusOK, "GET", "/v1/orgs/"+o.id+"/endpoints/"+id+"/stats?window=1h", nil, o.key)
	}
	require.EqualValues(t, 3, stats(bigID)["filtered"])
	require.EqualValues(t, 3, stats(wh2ID)["filtered"])

	// Malformed filters are refused, on creation and on change, naming the field and
	// what is wrong; nothing changes.
	for _, tc := range []struct {
		filter any
		want   string
	}{
		{map[string]any{"payload": map[string]any{"total": map[string]any{"$gtt": 5}}}, `at payload.total.$gtt: unknown operator "$gtt"`},
		{map[string]any{"total": 5}, `unknown field "total"`},
		{map[string]any{"payload": map[string]any{"country": map[string]any{"$in": "US"}}}, "$in takes an array"},
		{[]any{1}, "must be a JSON object"},
	} {
		for _, r := range []*reply{
			e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints", map[string]any{"url": big.URL + "/other", "topics": []string{"order.*"}, "filter": tc.filter}, o.key, nil),
			e.c.raw("PATCH", "/v1/orgs/"+o.id+"/endpoints/"+bigID, map[string]any{"filter": tc.filter}, o.key, nil),
		} {
			require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
			p := requireProblem(t, r)
			require.Equal(t, []string{"filter"}, p.fields(), "%s", r.body)
			require.Contains(t, p.Errors[0].Message, tc.want)
		}
	}
	got := e.c.must(http.StatusOK, "GET", "/v1/orgs/"+o.id+"/endpoints/"+bigID, nil, o.key)
	require.JSONEq(t, `{"payload": {"total": {"$gte": 500}, "country": {"$in": ["US", "CA"]}}}`, jsonOf(t, got["filter"]))

	// A changed filter applies to the next event; a removed one lets everything through.
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+bigID, map[string]any{"filter": map[string]any{"payload": map[string]any{"country": "MX"}}}, o.key)
	id := e.publish(o, "order.created", map[string]any{"total": 1, "country": "MX"})
	require.Equal(t, id, big.next(t).Header.Get("webhook-id"))
	got = e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+wh2ID, map[string]any{"filter": nil}, o.key)
	require.NotContains(t, got, "filter")
	id = e.publish(o, "order.created", map[string]any{"total": 2})
	require.Equal(t, id, wh2.next(t).Header.Get("webhook-id"))
	require.EqualValues(t, 4, stats(bigID)["filtered"], "the last event did not pass big's new filter")
	require.EqualValues(t, 4, stats(wh2ID)["filtered"])
	time.Sleep(100 * time.Millisecond) // a stray delivery would arrive about now
	require.Len(t, big.all(), len(want[bigID])+1)
	require.Len(t, wh2.all(), len(want[wh2ID])+1)
}

func jsonOf(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	require.NoError(tb, err)
	return string(b)
}
