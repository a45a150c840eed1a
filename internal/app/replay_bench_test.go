package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/store"
)

// BenchmarkReplay measures a new partner's backfill: a replay of 100,000 past events to
// an endpoint without limits of its own, on each store, while another endpoint takes
// live events paced at 1,000 a second. It reports the replay's time and deliveries/s,
// and the live endpoint's deliveries/s and latency (publish to receipt) beside it; the
// live-alone cases are the same live traffic for 10 s without a replay.
//
//	go test -run '^$' -bench Replay -benchtime 1x ./internal/app/
//
// CONSIGN_BENCH_REPLAY sets the number of past events (default 100,000; -short 10,000).
func BenchmarkReplay(b *testing.B) {
	past := 100_000
	if testing.Short() {
		past = 10_000
	}
	if v := os.Getenv("CONSIGN_BENCH_REPLAY"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err, "CONSIGN_BENCH_REPLAY")
		past = n
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name+"/live-alone", func(b *testing.B) {
			var mods []func(*app.Config)
			if name == "postgres" {
				mods = append(mods, stores(b)["postgres"])
			}
			e := start(b, mods...)
			o := e.newOrg("live")
			live := newLatencySink(b)
			e.createEndpoint(o, map[string]any{"url": live.URL, "topics": []string{"order.updated"}})
			b.ResetTimer()
			for range b.N {
				stop := make(chan struct{})
				var published atomic.Int64
				var wg sync.WaitGroup
				wg.Go(func() { publishPaced(b, e, o, stop, &published) })
				start := time.Now()
				time.Sleep(10 * time.Second)
				close(stop)
				wg.Wait()
				took := time.Since(start)
				b.ReportMetric(float64(published.Load())/took.Seconds(), "live-published/s")
				b.ReportMetric(float64(live.n.Load())/took.Seconds(), "live-deliveries/s")
				b.ReportMetric(float64(live.worst().Milliseconds()), "live-worst-ms")
				b.ReportMetric(float64(live.p99().Milliseconds()), "live-p99-ms")
			}
		})
		b.Run(name+"/replay", func(b *testing.B) {
			var mods []func(*app.Config)
			if name == "postgres" {
				mods = append(mods, stores(b)["postgres"])
			}
			e := start(b, mods...)
			o := e.newOrg("backfill")
			since := time.Now().UTC().Add(-time.Duration(past+1000) * time.Millisecond)
			writePast(b, e, o.id, since, past)
			live := newLatencySink(b)
			e.createEndpoint(o, map[string]any{"url": live.URL, "topics": []string{"order.updated"}})
			b.ResetTimer()
			for range b.N {
				partner, got := countingSink(b)
				ep := e.createEndpoint(o, map[string]any{"url": partner, "topics": []string{"order.created"}})["id"].(string)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var published atomic.Int64
				wg.Go(func() { publishPaced(b, e, o, stop, &published) })
				liveBefore := live.n.Load()
				start := time.Now()
				j := e.replay(o, ep, map[string]any{"since": since})
				deadline := time.Now().Add(10 * time.Minute)
				for got.Load() < int64(past) && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				took := time.Since(start)
				close(stop)
				wg.Wait()
				require.EqualValues(b, past, got.Load(), "every past event replayed")
				e.waitJob(o, j.ID, consign.JobCompleted, time.Minute)
				b.ReportMetric(took.Seconds(), "replay-s")
				b.ReportMetric(float64(past)/took.Seconds(), "replay-deliveries/s")
				b.ReportMetric(float64(published.Load())/took.Seconds(), "live-published/s")
				b.ReportMetric(float64(live.n.Load()-liveBefore)/took.Seconds(), "live-deliveries/s")
				b.ReportMetric(float64(live.worst().Milliseconds()), "live-worst-ms")
				b.ReportMetric(float64(live.p99().Milliseconds()), "live-p99-ms")
			}
		})
	}
}

// writePast writes n order.created events a millisecond apart from since, without
// deliveries, straight into the store (setup, not measured).
func writePast(b *testing.B, e *env, orgID string, since time.Time, n int) {
	b.Helper()
	const batch = 5000
	for done := 0; done < n; done += batch {
		ws := make([]*store.EventWrite, 0, batch)
		for i := range min(batch, n-done) {
			at := since.Add(time.Duration(done+i) * time.Millisecond)
			ws = append(ws, &store.EventWrite{Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: orgID,
				Type: "order.created", Payload: []byte(`{"order_id":"` + strconv.Itoa(done+i) + `","total":"19.90"}`), CreatedAt: at}})
		}
		require.NoError(b, e.app.Store.EventsInsert(context.Background(), ws))
	}
}

// publishPaced publishes order.updated events carrying their publish time, ten every
// 10 ms (1,000 a second, fewer when a publish takes longer), until stop is closed, and
// counts them in published.
func publishPaced(b *testing.B, e *env, o org, stop chan struct{}, published *atomic.Int64) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		events := make([]map[string]any, 10)
		for i := range events {
			events[i] = map[string]any{"type": "order.updated", "payload": map[string]any{"sent": time.Now().UnixNano()}}
		}
		if r, err := e.c.send("POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": events}, o.key, nil); err != nil || r.status != http.StatusAccepted {
			b.Errorf("publish live events: %v", err)
			return
		}
		published.Add(int64(len(events)))
	}
}

// latencySink counts deliveries and keeps each one's latency from the publish time in
// its payload.
type latencySink struct {
	*httptest.Server
	n    atomic.Int64
	mu   sync.Mutex
	lats []time.Duration
}

func newLatencySink(b *testing.B) *latencySink {
	s := &latencySink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			Data struct{ Sent int64 } `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&env)
		s.n.Add(1)
		s.mu.Lock()
		s.lats = append(s.lats, time.Since(time.Unix(0, env.Data.Sent)))
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(s.Close)
	return s
}

func (s *latencySink) sorted() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := slices.Clone(s.lats)
	slices.Sort(l)
	return l
}

func (s *latencySink) worst() time.Duration {
	l := s.sorted()
	if len(l) == 0 {
		return 0
	}
	return l[len(l)-1]
}

func (s *latencySink) p99() time.Duration {
	l := s.sorted()
	if len(l) == 0 {
		return 0
	}
	return l[len(l)*99/100]
}
