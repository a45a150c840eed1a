package storetest

import (
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// BenchClaimOrderedBacklog measures a claim on an ordered endpoint whose 50,000 queued
// deliveries wait behind the heads of their 500 keys, all in flight: what the dispatcher
// pays each time it looks for more work there. No delivery may be claimed, and finding
// that out must not read the backlog. ns/op is per claim. s must be empty.
func BenchClaimOrderedBacklog(b *testing.B, s store.Store) {
	ctx := b.Context()
	start := time.Now().UTC().Truncate(time.Millisecond)
	org := insertOrg(b, s, start)
	ep := insertEndpoint(b, s, org.ID, start, func(e *store.EndpointRow) { e.Ordering = consign.OrderingKey })
	payload := []byte(`{"order_id":1001}`)
	const backlog, keys, batch = 50_000, 500, 1000
	for done := 0; done < backlog; done += batch {
		ws := make([]*store.EventWrite, batch)
		for i := range ws {
			at := start.Add(time.Duration(done+i) * time.Millisecond)
			key := "order-" + strconv.Itoa((done+i)%keys)
			ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.updated",
				Payload: payload, OrderingKey: key, CreatedAt: at}
			ws[i] = &store.EventWrite{Event: ev, Deliveries: []store.NewDelivery{{ID: consign.NewID(consign.PrefixDelivery, at),
				EndpointID: ep.ID, Endpoint: ep, OrderingKey: key, Ordered: true, Deadline: at.Add(72 * time.Hour)}}}
		}
		require.NoError(b, s.EventsInsert(ctx, ws))
	}
	now := start.Add(time.Hour)
	claim := func(limit int) int {
		res, err := s.DeliveriesClaim(ctx, store.ClaimParams{Now: now, LeaseUntil: now.Add(time.Hour),
			Quotas: []store.Quota{{EndpointID: ep.ID, Limit: limit}}})
		require.NoError(b, err)
		return len(res.Claims)
	}
	require.Equal(b, keys, claim(2*keys), "the head of every key")
	b.ResetTimer()
	for b.Loop() {
		require.Zero(b, claim(64))
	}
}

// BenchPausedBacklog measures what a large backlog of an inactive endpoint costs everyone
// else. In one org, endpoint down gets backlog deliveries; every event also goes to
// endpoint up. It reports:
//   - pause_s, resume_s: how long deactivating down (pausing its backlog) and activating
//     it again (making every paused delivery due) take;
//   - pause_write_max_ms, resume_write_max_ms (and _p99_ms): the latency of the other
//     writes made meanwhile, one after the other: a publish of one event to both
//     endpoints (durable) and the record of an outcome of endpoint up (light);
//   - publish_alone_ev/s, publish_beside_ev/s: events per second published in batches of
//     100 (each event one delivery to up and one to down) on the store as it was before
//     the backlog (after a warm-up run) and with the paused backlog present.
//
// One run does all of it (use -benchtime=1x); s must be empty.
func BenchPausedBacklog(b *testing.B, s store.Store, backlog int) {
	ctx := b.Context()
	start := time.Now().UTC().Truncate(time.Millisecond)
	org := insertOrg(b, s, start)
	down := insertEndpoint(b, s, org.ID, start)
	up := insertEndpoint(b, s, org.ID, start)
	payload := []byte(`{"order_id":1001,"status":"updated"}`)
	var n atomic.Int64 // events made, for increasing times and IDs
	events := func(k int, eps ...*store.EndpointRow) []*store.EventWrite {
		ws := make([]*store.EventWrite, k)
		for i := range ws {
			at := start.Add(time.Duration(n.Add(1)) * time.Microsecond)
			ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, at), OrgID: org.ID, Type: "order.updated", Payload: payload, CreatedAt: at}
			w := &store.EventWrite{Event: ev}
			for _, ep := range eps {
				w.Deliveries = append(w.Deliveries, store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, at), EndpointID: ep.ID,
					Endpoint: ep, Deadline: at.Add(72 * time.Hour)})
			}
			ws[i] = w
		}
		return ws
	}
	// publishRate publishes batches of 100 events for two seconds and returns events/s.
	publishRate := func() float64 {
		t0, done := time.Now(), 0
		for time.Since(t0) < 2*time.Second {
			require.NoError(b, s.EventsInsert(ctx, events(100, up, down)))
			done += 100
		}
		return float64(done) / time.Since(t0).Seconds()
	}
	// writesDuring runs change while it writes, one after the other, a publish of one
	// event (to up, and to down, which change pauses or resumes) and a successful outcome
	// of its delivery to up; it returns how long change took and the writes' latencies,
	// sorted.
	writesDuring := func(change func() error) (time.Duration, []time.Duration) {
		done := make(chan error, 1)
		t0 := time.Now()
		go func() { done <- change() }()
		var lat []time.Duration
		for {
			select {
			case err := <-done:
				require.NoError(b, err)
				took := time.Since(t0)
				slices.Sort(lat)
				return took, lat
			default:
			}
			ws := events(1, up, down)
			w0 := time.Now()
			require.NoError(b, s.EventsInsert(ctx, ws))
			lat = append(lat, time.Since(w0))
			at := ws[0].Event.CreatedAt
			w0 = time.Now()
			require.NoError(b, s.DeliveriesRecord(ctx, store.RecordParams{Outcomes: []*store.Outcome{{
				DeliveryID: ws[0].Deliveries[0].ID, EndpointID: up.ID, Status: consign.StatusSucceeded, At: at,
				Attempt: &consign.Attempt{N: 1, StartedAt: at, DurationMS: 1, Request: consign.AttemptRequest{Method: "POST", URL: up.URL},
					Response: &consign.AttemptResponse{Status: 204}}}}}))
			lat = append(lat, time.Since(w0))
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	p99 := func(lat []time.Duration) time.Duration { return lat[len(lat)*99/100] }

	publishRate() // warms the store up (caches, prepared statements, the pool)
	b.ResetTimer()
	for b.Loop() {
		alone := publishRate()
		for done := 0; done < backlog; done += 5000 {
			require.NoError(b, s.EventsInsert(ctx, events(min(5000, backlog-done), down)))
		}
		d := *down
		d.Active, d.UpdatedAt = false, time.Now().UTC()
		pause, pauseLat := writesDuring(func() error { return s.EndpointUpdate(ctx, &d) })
		beside := publishRate()
		d.Active, d.UpdatedAt = true, time.Now().UTC()
		resume, resumeLat := writesDuring(func() error { return s.EndpointUpdate(ctx, &d) })

		b.ReportMetric(pause.Seconds(), "pause_s")
		b.ReportMetric(ms(pauseLat[len(pauseLat)-1]), "pause_write_max_ms")
		b.ReportMetric(ms(p99(pauseLat)), "pause_write_p99_ms")
		b.ReportMetric(resume.Seconds(), "resume_s")
		b.ReportMetric(ms(resumeLat[len(resumeLat)-1]), "resume_write_max_ms")
		b.ReportMetric(ms(p99(resumeLat)), "resume_write_p99_ms")
		b.ReportMetric(alone, "publish_alone_ev/s")
		b.ReportMetric(beside, "publish_beside_ev/s")
	}
}

// BenchBacklog returns the backlog size for BenchPausedBacklog: CONSIGN_BENCH_BACKLOG,
// or a million.
func BenchBacklog(b *testing.B) int {
	v := os.Getenv("CONSIGN_BENCH_BACKLOG")
	if v == "" {
		return 1_000_000
	}
	n, err := strconv.Atoi(v)
	require.NoError(b, err, "CONSIGN_BENCH_BACKLOG")
	return n
}
