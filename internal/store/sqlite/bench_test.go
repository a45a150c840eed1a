package sqlite_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/cputime"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/sqlite"
	"github.com/consign-dev/consign/internal/store/storetest"
)

// BenchmarkDeliveryCycle measures the writer's share of one delivery as the dispatcher
// drives it on a healthy endpoint: the event and its delivery written leased (one durable
// transaction per batch of 500), then the first attempt's success recorded (one light
// transaction per batch). ns/op is per delivery.
func BenchmarkDeliveryCycle(b *testing.B) { deliveryCycle(b, 500) }

// BenchmarkDeliveryCycleSmallRecords is BenchmarkDeliveryCycle with the outcomes
// recorded 50 to a transaction, as the recorder wrote them in a paced d11 run (56 a
// batch at load 15 before it waited longer for outcomes), so each transaction's own work
// (its statements, its commit) weighs as it does in the server. ns/op is per delivery.
func BenchmarkDeliveryCycleSmallRecords(b *testing.B) { deliveryCycle(b, 50) }

// deliveryCycle runs BenchmarkDeliveryCycle with outcomes recorded perRecord to a
// transaction.
func deliveryCycle(b *testing.B, perRecord int) {
	ctx := b.Context()
	db, org, eps, start := benchStore(b, 1)
	ep := eps[0]

	const batch = 500
	b.ResetTimer()
	defer reportCPU(b)()
	for done := 0; done < b.N; done += batch {
		now := start.Add(time.Duration(done) * time.Millisecond)
		ws := make([]*store.EventWrite, batch)
		outcomes := make([]*store.Outcome, batch)
		for i := range ws {
			ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: org.ID, Type: "order.created", Payload: benchPayload, CreatedAt: now}
			d := store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, now), EndpointID: ep.ID, Endpoint: ep,
				Deadline: now.Add(72 * time.Hour), LeaseUntil: now.Add(time.Minute)}
			ws[i] = &store.EventWrite{Event: ev, Deliveries: []store.NewDelivery{d}}
			outcomes[i] = &store.Outcome{DeliveryID: d.ID, EndpointID: ep.ID, Status: consign.StatusSucceeded, At: now,
				Attempt: &consign.Attempt{N: 1, StartedAt: now, DurationMS: 1,
					Request: consign.AttemptRequest{Method: "POST", URL: ep.URL, Headers: map[string]string{
						"Content-Type": "application/json", "User-Agent": consign.UserAgent, "Webhook-Id": ev.ID,
						"Webhook-Timestamp": strconv.FormatInt(now.Unix(), 10),
						"Webhook-Signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
					}},
					Response: &consign.AttemptResponse{Status: 204, Headers: map[string]string{"Date": now.Format(time.RFC1123)}}}}
		}
		require.NoError(b, db.EventsInsert(ctx, ws))
		for i := 0; i < len(outcomes); i += perRecord {
			require.NoError(b, db.DeliveriesRecord(ctx, store.RecordParams{Outcomes: outcomes[i:min(i+perRecord, len(outcomes))]}))
		}
	}
}

// BenchmarkDrainCycle is BenchmarkDeliveryCycle for a backlog: the same 1 → 1
// deliveries written pending (no room in the dispatcher's buffer), then claimed a
// buffer's worth at a time, as the dispatcher drains a backlog, and recorded. Beside
// BenchmarkDeliveryCycle it is what reading a delivery back from the store costs over
// handing it over in memory. ns/op is per delivery.
func BenchmarkDrainCycle(b *testing.B) {
	ctx := b.Context()
	db, org, eps, start := benchStore(b, 1)
	ep := eps[0]
	const batch, quota = 500, 1024
	headers := map[string]string{"Content-Type": "application/json", "User-Agent": consign.UserAgent,
		"Webhook-Signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}
	b.ResetTimer()
	defer reportCPU(b)()
	for done := 0; done < b.N; done += 4 * batch {
		now := start.Add(time.Duration(done) * time.Millisecond)
		for range 4 {
			ws := make([]*store.EventWrite, batch)
			for i := range ws {
				ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: org.ID, Type: "order.created", Payload: benchPayload, CreatedAt: now}
				ws[i] = &store.EventWrite{Event: ev, Deliveries: []store.NewDelivery{{ID: consign.NewID(consign.PrefixDelivery, now),
					EndpointID: ep.ID, Endpoint: ep, Deadline: now.Add(72 * time.Hour)}}}
			}
			require.NoError(b, db.EventsInsert(ctx, ws))
		}
		for claimed := 0; claimed < 4*batch; {
			res, err := db.DeliveriesClaim(ctx, store.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Quotas: []store.Quota{{EndpointID: ep.ID, Limit: quota}}})
			require.NoError(b, err)
			require.NotEmpty(b, res.Claims)
			claimed += len(res.Claims)
			outcomes := make([]*store.Outcome, len(res.Claims))
			for i, c := range res.Claims {
				outcomes[i] = &store.Outcome{DeliveryID: c.DeliveryID, EndpointID: c.EndpointID, Status: consign.StatusSucceeded, At: now,
					Attempt: &consign.Attempt{N: 1, StartedAt: now, DurationMS: 1,
						Request:  consign.AttemptRequest{Method: "POST", URL: ep.URL, Headers: headers},
						Response: &consign.AttemptResponse{Status: 204, Headers: map[string]string{"Date": now.Format(time.RFC1123)}}}}
			}
			require.NoError(b, db.DeliveriesRecord(ctx, store.RecordParams{Outcomes: outcomes}))
		}
	}
}

// BenchmarkDrainBesideIngest drains a 1 → 1 backlog (claims of a buffer's worth,
// each recorded) while another goroutine commits batches of 500 events durably, as
// ingest does while a burst is being delivered: the writer is shared, so what a claim
// holds it for is time the other waits. It reports the drain's deliveries/s and the
// ingest's events/s over the same wall time; ns/op is per delivery.
func BenchmarkDrainBesideIngest(b *testing.B) {
	ctx := b.Context()
	db, org, eps, start := benchStore(b, 2)
	ep, other := eps[0], eps[1]
	const batch, quota = 500, 1024
	write := func(now time.Time, to *store.EndpointRow, deliveries bool) {
		ws := make([]*store.EventWrite, batch)
		for i := range ws {
			ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: org.ID, Type: "order.created", Payload: benchPayload, CreatedAt: now}
			ws[i] = &store.EventWrite{Event: ev}
			if deliveries {
				ws[i].Deliveries = []store.NewDelivery{{ID: consign.NewID(consign.PrefixDelivery, now), EndpointID: to.ID, Endpoint: to, Deadline: now.Add(72 * time.Hour)}}
			}
		}
		require.NoError(b, db.EventsInsert(ctx, ws))
	}
	for range (b.N + batch - 1) / batch {
		write(start, ep, true)
	}
	headers := map[string]string{"Content-Type": "application/json", "User-Agent": consign.UserAgent}
	stop := make(chan struct{})
	ingested := make(chan int)
	go func() {
		n := 0
		defer func() { ingested <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			write(start, other, false)
			n += batch
		}
	}()
	b.ResetTimer()
	began := time.Now()
	defer reportCPU(b)()
	now := start.Add(time.Second)
	for claimed := 0; claimed < b.N; {
		res, err := db.DeliveriesClaim(ctx, store.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Quotas: []store.Quota{{EndpointID: ep.ID, Limit: quota}}})
		require.NoError(b, err)
		require.NotEmpty(b, res.Claims)
		claimed += len(res.Claims)
		outcomes := make([]*store.Outcome, len(res.Claims))
		for i, c := range res.Claims {
			outcomes[i] = &store.Outcome{DeliveryID: c.DeliveryID, EndpointID: c.EndpointID, Status: consign.StatusSucceeded, At: now,
				Attempt: &consign.Attempt{N: 1, StartedAt: now, DurationMS: 1,
					Request:  consign.AttemptRequest{Method: "POST", URL: ep.URL, Headers: headers},
					Response: &consign.AttemptResponse{Status: 204}}}
		}
		require.NoError(b, db.DeliveriesRecord(ctx, store.RecordParams{Outcomes: outcomes}))
	}
	elapsed := time.Since(began).Seconds()
	close(stop)
	b.ReportMetric(float64(b.N)/elapsed, "deliveries/s")
	b.ReportMetric(float64(<-ingested)/elapsed, "events/s")
}

// BenchmarkEventsInsertOne measures a durable write of one event without deliveries, as
// ingest commits it when single-event requests do not overlap.
func BenchmarkEventsInsertOne(b *testing.B) {
	ctx := b.Context()
	db, org, _, start := benchStore(b, 0)
	payload := json.RawMessage(`{"order_id":1001}`)
	for b.Loop() {
		ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, start), OrgID: org.ID, Type: "order.created", Payload: payload, CreatedAt: start}
		require.NoError(b, db.EventsInsert(ctx, []*store.EventWrite{{Event: ev}}))
	}
}

// BenchmarkEventsInsertBatch measures the writer's share of batch ingest with no
// endpoints: events of 1 KiB written 500 to a durable transaction, as ingest's group
// commit writes them. ns/op is per event.
func BenchmarkEventsInsertBatch(b *testing.B) {
	ctx := b.Context()
	db, org, _, start := benchStore(b, 0)
	const batch = 500
	b.ResetTimer()
	defer reportCPU(b)()
	for done := 0; done < b.N; done += batch {
		now := start.Add(time.Duration(done) * time.Millisecond)
		ws := make([]*store.EventWrite, batch)
		for i := range ws {
			ws[i] = &store.EventWrite{Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: org.ID,
				Type: "order.created", Payload: benchPayload, CreatedAt: now}}
		}
		require.NoError(b, db.EventsInsert(ctx, ws))
	}
}

// BenchmarkEventsInsertKeys is BenchmarkEventsInsertBatch with business keys: "shared",
// one key every event has (the bench's batch scenario publishes one order again and
// again), and "orders", an order id and a PO number each, both rising with the events
// as a shop's do (two index rows an event; the search scenario's keys). ns/op and
// cpu-ns/op are per event.
func BenchmarkEventsInsertKeys(b *testing.B) {
	for _, tc := range []struct {
		name string
		keys func(i int) []string
	}{
		{"none", func(int) []string { return nil }},
		{"shared", func(int) []string { return []string{"ord_10442"} }},
		{"orders", func(i int) []string { return []string{fmt.Sprintf("ORD-%07d", i), fmt.Sprintf("PO-%06d", i/10)} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := b.Context()
			db, org, _, start := benchStore(b, 0)
			const batch = 500
			b.ResetTimer()
			defer reportCPU(b)()
			for done := 0; done < b.N; done += batch {
				now := start.Add(time.Duration(done) * time.Millisecond)
				ws := make([]*store.EventWrite, batch)
				for i := range ws {
					ws[i] = &store.EventWrite{Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: org.ID,
						Type: "order.created", Payload: benchPayload, CreatedAt: now}, Keys: tc.keys(done + i)}
				}
				require.NoError(b, db.EventsInsert(ctx, ws))
			}
		})
	}
}

// BenchmarkFanoutCycle measures the writer's share of one delivery when events wait in
// the store, as in a fan-out backlog: each event (one durable transaction per batch of
// 100) goes to ten endpoints as pending deliveries, the dispatcher claims them 64 per
// endpoint at a time and records each success. ns/op is per delivery.
func BenchmarkFanoutCycle(b *testing.B) {
	ctx := b.Context()
	const fanout, batch, quota = 10, 100, 64
	db, org, eps, start := benchStore(b, fanout)
	headers := map[string]string{"Content-Type": "application/json", "User-Agent": consign.UserAgent,
		"Webhook-Signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}

	b.ResetTimer()
	defer reportCPU(b)()
	for done := 0; done < b.N; done += batch * fanout {
		now := start.Add(time.Duration(done) * time.Millisecond)
		ws := make([]*store.EventWrite, batch)
		for i := range ws {
			ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: org.ID, Type: "order.created", Payload: benchPayload, CreatedAt: now}
			w := &store.EventWrite{Event: ev}
			for _, ep := range eps {
				w.Deliveries = append(w.Deliveries, store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, now),
					EndpointID: ep.ID, Endpoint: ep, Deadline: now.Add(72 * time.Hour)})
			}
			ws[i] = w
		}
		require.NoError(b, db.EventsInsert(ctx, ws))
		quotas := make([]store.Quota, fanout)
		for i, ep := range eps {
			quotas[i] = store.Quota{EndpointID: ep.ID, Limit: quota}
		}
		for claimed := 0; claimed < batch*fanout; {
			res, err := db.DeliveriesClaim(ctx, store.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Quotas: quotas})
			require.NoError(b, err)
			require.NotEmpty(b, res.Claims)
			claimed += len(res.Claims)
			outcomes := make([]*store.Outcome, len(res.Claims))
			for i, c := range res.Claims {
				outcomes[i] = &store.Outcome{DeliveryID: c.DeliveryID, EndpointID: c.EndpointID, Status: consign.StatusSucceeded, At: now,
					Attempt: &consign.Attempt{N: 1, StartedAt: now, DurationMS: 1,
						Request:  consign.AttemptRequest{Method: "POST", URL: "http://127.0.0.1:9000/hooks", Headers: headers},
						Response: &consign.AttemptResponse{Status: 204, Headers: map[string]string{"Date": now.Format(time.RFC1123)}}}}
			}
			require.NoError(b, db.DeliveriesRecord(ctx, store.RecordParams{Outcomes: outcomes}))
		}
	}
}

// benchPayload is a 1 KiB event payload.
var benchPayload = json.RawMessage(`{"order_id":1001,"note":"` + strings.Repeat("x", 1000) + `"}`)

// benchStore opens a store in a temporary directory with an org and n active endpoints.
func benchStore(b *testing.B, n int) (db *sqlite.DB, org *consign.Org, eps []*store.EndpointRow, start time.Time) {
	ctx := b.Context()
	db = open(b, b.TempDir())
	b.Cleanup(func() { require.NoError(b, db.Close()) })
	start = time.Now().UTC().Truncate(time.Millisecond)
	org = &consign.Org{ID: consign.NewID(consign.PrefixOrg, start), Name: "Acme", Role: consign.RoleBoth, CreatedAt: start, UpdatedAt: start}
	require.NoError(b, db.OrgInsert(ctx, org))
	for i := range n {
		ep := &store.EndpointRow{Endpoint: consign.Endpoint{
			ID: consign.NewID(consign.PrefixEndpoint, start), OrgID: org.ID, URL: "http://127.0.0.1:9000/hooks/" + strconv.Itoa(i),
			Topics: []string{"order.*"}, Active: true, CreatedAt: start, UpdatedAt: start,
		}}
		require.NoError(b, ep.Normalize())
		require.NoError(b, db.EndpointInsert(ctx, ep, nil))
		eps = append(eps, ep)
	}
	return db, org, eps, start
}

// reportCPU adds the process's CPU time per op (user and system, all threads) to a
// benchmark's figures, steadier than ns/op where fsync times vary, and its calls into C.
func reportCPU(b *testing.B) func() {
	before, ok := cputime.Process()
	calls := runtime.NumCgoCall()
	return func() {
		if after, _ := cputime.Process(); ok {
			b.ReportMetric(float64(after-before)/float64(b.N), "cpu-ns/op")
		}
		// Calls into C (the C engine: each bound value, each step, each read of a
		// column is one) do not move with the machine's load, as CPU time does.
		b.ReportMetric(float64(runtime.NumCgoCall()-calls)/float64(b.N), "cgo-calls/op")
	}
}

// BenchmarkClaimOrderedBacklog: see storetest.BenchClaimOrderedBacklog.
func BenchmarkClaimOrderedBacklog(b *testing.B) {
	db := open(b, b.TempDir())
	b.Cleanup(func() { require.NoError(b, db.Close()) })
	storetest.BenchClaimOrderedBacklog(b, db)
}

// BenchmarkPausedBacklog: see storetest.BenchPausedBacklog; the backlog is
// CONSIGN_BENCH_BACKLOG deliveries (default a million).
func BenchmarkPausedBacklog(b *testing.B) {
	db, err := sqlite.Open(b.Context(), b.TempDir())
	require.NoError(b, err)
	b.Cleanup(func() { db.Close() })
	storetest.BenchPausedBacklog(b, db, storetest.BenchBacklog(b))
}
