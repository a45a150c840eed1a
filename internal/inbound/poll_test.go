package inbound_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// shipmentAPI is a fake provider's shipment list: items filtered by a time window
// (?since=&until=, RFC 3339, or ?after=&before= in unix seconds), two per page, with
// the next page as a relative URL ("next") or a cursor ("meta.next_cursor").
type shipmentAPI struct {
	*httptest.Server
	mu      sync.Mutex
	items   []shipment
	windows [][2]time.Time // each first page's window, in order
	served  map[string]int // id → times it was listed
	// onWindowDone runs (under mu) after the last page of each window was served.
	onWindowDone func(a *shipmentAPI, until time.Time)
}

type shipment struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

func newShipmentAPI(tb testing.TB, items ...shipment) *shipmentAPI {
	a := &shipmentAPI{items: items, served: map[string]int{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var since, until time.Time
		var err error
		if q.Has("since") {
			since, err = time.Parse(time.RFC3339, q.Get("since"))
			require.NoError(tb, err)
			until, err = time.Parse(time.RFC3339, q.Get("until"))
			require.NoError(tb, err)
		} else {
			s, _ := strconv.ParseInt(q.Get("after"), 10, 64)
			u, _ := strconv.ParseInt(q.Get("before"), 10, 64)
			since, until = time.Unix(s, 0), time.Unix(u, 0)
		}
		page := 0
		if v := q.Get("page") + q.Get("cursor"); v != "" {
			page, _ = strconv.Atoi(v)
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if page == 0 {
			a.windows = append(a.windows, [2]time.Time{since, until})
		}
		var in []shipment
		for _, s := range a.items {
			if !s.At.Before(since) && s.At.Before(until) {
				in = append(in, s)
			}
		}
		from, to := min(2*page, len(in)), min(2*page+2, len(in))
		for _, s := range in[from:to] {
			a.served[s.ID]++
		}
		reply := map[string]any{"shipments": in[from:to], "next": nil, "meta": map[string]any{"next_cursor": nil}}
		if to < len(in) {
			nq := r.URL.Query()
			nq.Set("page", strconv.Itoa(page+1))
			reply["next"] = r.URL.Path + "?" + nq.Encode()
			reply["meta"] = map[string]any{"next_cursor": page + 1}
		} else if a.onWindowDone != nil {
			a.onWindowDone(a, until)
		}
		_ = json.NewEncoder(w).Encode(reply)
	}))
	tb.Cleanup(a.Close)
	return a
}

func (a *shipmentAPI) seen() (windows [][2]time.Time, served map[string]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	served = map[string]int{}
	for k, v := range a.served {
		served[k] = v
	}
	return append([][2]time.Time(nil), a.windows...), served
}

func syncedUntil(tb testing.TB, st store.Store, org, id string) (*time.Time, string) {
	tb.Helper()
	row, err := st.SourceGet(context.Background(), org, id)
	require.NoError(tb, err)
	return row.PollStatus.SyncedUntil, row.PollStatus.LastError
}

// TestPollWindowsAndPages: the daily sync of a real provider. The first poll asks for
// now − lookback to now and follows every page; each later poll starts where the last
// successful one ended, less the overlap, so an item the provider listed late is found,
// and the items seen twice in the overlap are duplicates, not new events.
func TestPollWindowsAndPages(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.service(h.pub)
	run(t, s)
	t0 := time.Now().UTC()
	var items []shipment
	for i, ago := range []time.Duration{50 * time.Minute, 10 * time.Minute, 2 * time.Minute, 20 * time.Second, 10 * time.Second} {
		items = append(items, shipment{ID: fmt.Sprintf("shp_%d", i+1), At: t0.Add(-ago)})
	}
	items = append(items, shipment{ID: "shp_old", At: t0.Add(-2 * time.Hour)}) // before the first window
	api := newShipmentAPI(t, items...)
	windowsDone := 0
	api.onWindowDone = func(a *shipmentAPI, until time.Time) {
		if windowsDone++; windowsDone == 1 {
			// Listed late: it happened inside the first window, which has been read.
			a.items = append(a.items, shipment{ID: "shp_late", At: until.Add(-15 * time.Second)}, shipment{ID: "shp_new", At: until.Add(200 * time.Millisecond)})
		}
	}
	src := create(t, s, h.org, `{"name": "Deposco", "topic": "shipment.created", "dedupe": {"json_pointer": "/id"},
		"poll": {"url": "`+api.URL+`/shipments?since={since}&until={until}", "items_pointer": "/shipments", "id_pointer": "/id",
		"next_pointer": "/next", "lookback": "1h", "overlap": "30s", "interval": "1s"}}`)
	require.Equal(t, consign.Duration(time.Hour), src.Poll.Lookback)
	require.Equal(t, 100, src.Poll.MaxPages, "the default")

	require.Eventually(t, func() bool { return len(pollReceipts(t, h.st, h.org, src.ID)) == 7 }, waitFor, tick)
	windows, served := api.seen()
	require.GreaterOrEqual(t, len(windows), 2)
	first, second := windows[0], windows[1]
	require.WithinDuration(t, first[1].Add(-time.Hour), first[0], time.Second, "the first window: now − lookback")
	require.WithinDuration(t, t0, first[1], 5*time.Second)
	require.WithinDuration(t, first[1].Add(-30*time.Second), second[0], time.Second, "the next window starts at the last one's end, less the overlap")
	require.Zero(t, served["shp_old"], "never asked for")
	require.Equal(t, 1, served["shp_1"], "outside the overlap: listed once")
	require.GreaterOrEqual(t, served["shp_5"], 2, "inside the overlap: listed again")
	var keys []string
	for _, r := range pollReceipts(t, h.st, h.org, src.ID) {
		keys = append(keys, r.DedupeKey)
	}
	require.ElementsMatch(t, []string{"shp_1", "shp_2", "shp_3", "shp_4", "shp_5", "shp_late", "shp_new"}, keys,
		"every item once: pages followed, the late one found, the overlap deduplicated")
	require.Eventually(t, func() bool { return h.pub.events() == 7 }, waitFor, tick)
	require.Eventually(t, func() bool {
		synced, lastErr := syncedUntil(t, h.st, h.org, src.ID)
		require.Empty(t, lastErr)
		return synced != nil && !synced.Before(second[1].Truncate(time.Second))
	}, waitFor, tick, "synced_until moves with each successful poll")
}

// TestPollPagesByCursor: a cursor in the reply goes into the URL's {cursor}; unix
// placeholders; a poll that stops at max_pages with pages left fails and does not move
// the window on.
func TestPollPagesByCursor(t *testing.T) {
	t.Parallel()
	t0 := time.Now().UTC()
	var items []shipment
	for i := range 5 {
		items = append(items, shipment{ID: fmt.Sprintf("c_%d", i), At: t0.Add(-time.Duration(i+1) * time.Minute)})
	}
	for _, tc := range []struct {
		name     string
		maxPages int
		want     int
		err      string
	}{
		{"all pages", 3, 5, ""},
		{"max_pages reached", 2, 4, "stopped after 2 pages (max_pages) with more to read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			s := h.service(h.pub)
			run(t, s)
			api := newShipmentAPI(t, items...)
			src := create(t, s, h.org, fmt.Sprintf(`{"name": "Deposco", "topic": "shipment.created",
				"poll": {"url": "%s/v2/shipments?after={since_unix}&before={until_unix}&cursor={cursor}", "items_pointer": "/shipments",
				"id_pointer": "/id", "next_pointer": "/meta/next_cursor", "max_pages": %d, "interval": "1s"}}`, api.URL, tc.maxPages))
			require.Eventually(t, func() bool {
				_, lastErr := syncedUntil(t, h.st, h.org, src.ID)
				row, err := h.st.SourceGet(context.Background(), h.org, src.ID)
				require.NoError(t, err)
				return row.PollStatus.LastRunAt != nil || lastErr != ""
			}, waitFor, tick)
			require.Len(t, pollReceipts(t, h.st, h.org, src.ID), tc.want)
			synced, lastErr := syncedUntil(t, h.st, h.org, src.ID)
			if tc.err == "" {
				require.Empty(t, lastErr)
				require.NotNil(t, synced)
				return
			}
			require.Contains(t, lastErr, tc.err)
			require.Nil(t, synced, "the window stays: the next poll reads it again")
		})
	}
}
