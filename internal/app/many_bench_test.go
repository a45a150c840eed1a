package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/cputime"
)

// BenchmarkManyEndpoints measures deliveries when each event goes to one of many
// endpoints (a marketplace telling each of its vendors about its own orders): the
// dispatcher then holds state for every endpoint with recent work, and its loop must not
// cost in proportion to them. Reports deliveries/s and the process's CPU per delivery.
//
//	go test -run '^$' -bench ManyEndpoints -benchtime 4x ./internal/app/
func BenchmarkManyEndpoints(b *testing.B) {
	for _, n := range []int{10, 300, 3000} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			e := start(b)
			o := e.newOrg("marketplace")
			sink, got := countingSink(b)
			for i := range n {
				e.c.must(http.StatusCreated, "POST", "/v1/event-types", map[string]any{"name": fmt.Sprintf("vendor%d.order.created", i)}, adminKey)
				e.createEndpoint(o, map[string]any{"url": sink + "/v" + fmt.Sprint(i), "topics": []string{fmt.Sprintf("vendor%d.*", i)}})
			}
			const perRound = 6000
			batches := make([][]map[string]any, perRound/500)
			k := 0
			for j := range batches {
				batches[j] = make([]map[string]any, 500)
				for i := range batches[j] {
					batches[j][i] = map[string]any{"type": fmt.Sprintf("vendor%d.order.created", k%n),
						"payload": map[string]any{"i": k, "pad": strings.Repeat("x", 900)}}
					k++
				}
			}
			cpu0, _ := cputime.Process()
			b.ResetTimer()
			began := time.Now()
			for range b.N {
				want := got.Load() + perRound
				for _, events := range batches {
					e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": events}, o.key)
				}
				deadline := time.Now().Add(2 * time.Minute)
				for got.Load() < want && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				require.GreaterOrEqual(b, got.Load(), want, "not every delivery arrived in time")
			}
			took := time.Since(began)
			cpu1, _ := cputime.Process()
			b.ReportMetric(float64(b.N*perRound)/took.Seconds(), "deliveries/s")
			b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N*perRound), "cpu-µs/delivery")
		})
	}
}

// BenchmarkIngestLargeOrg measures single-event POSTs from 64 clients into an org with
// no endpoints and into one with 3,000 (none of which takes the events' type, so the
// figure is ingest's own): each group commit fans out against the org's endpoints and
// must not pay for all of them every time. Reports events/s and the process's CPU per
// event.
//
//	go test -run '^$' -bench IngestLargeOrg -benchtime 20000x ./internal/app/
func BenchmarkIngestLargeOrg(b *testing.B) {
	for _, n := range []int{0, 3000} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			e := start(b)
			o := e.newOrg("large")
			for i := range n {
				e.createEndpoint(o, map[string]any{"url": fmt.Sprintf("http://127.0.0.1:9/v%d", i), "topics": []string{"inventory.*"}})
			}
			body := map[string]any{"type": "order.created", "payload": map[string]any{"pad": strings.Repeat("x", 900)}}
			path := "/v1/orgs/" + o.id + "/events"
			cpu0, _ := cputime.Process()
			b.ResetTimer()
			began := time.Now()
			b.SetParallelism(32) // 64 clients on 2 CPUs
			// Failures are counted here and reported after: require's FailNow may not
			// run on RunParallel's goroutines.
			var failed atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if r, err := e.c.send("POST", path, body, o.key, nil); err != nil || r.status != http.StatusAccepted {
						failed.Add(1)
					}
				}
			})
			took := time.Since(began)
			require.Zero(b, failed.Load(), "events not accepted with 202")
			cpu1, _ := cputime.Process()
			b.ReportMetric(float64(b.N)/took.Seconds(), "events/s")
			b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
		})
	}
}
