package app_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/brokertest"
)

// BenchmarkBrokerSourceNATS measures a broker source's ingestion: messages waiting in a
// JetStream stream (file storage) read by a new source and made receipts and events
// (SQLite store, no endpoint subscribed), timed from the source's creation until no
// receipt is pending. It reports messages/s.
//
//	go test -run '^$' -bench BrokerSourceNATS -benchtime 3x ./internal/app/
//
// CONSIGN_BENCH_MESSAGES sets the messages per round (default 20,000; -short 2,000).
func BenchmarkBrokerSourceNATS(b *testing.B) {
	n := 20_000
	if testing.Short() {
		n = 2_000
	}
	if v := os.Getenv("CONSIGN_BENCH_MESSAGES"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err, "CONSIGN_BENCH_MESSAGES")
	}
	// About 1 KiB, shaped like an order a warehouse publishes.
	pad := strings.Repeat("x", 900)
	var total time.Duration
	for i := range b.N {
		b.StopTimer()
		nb := brokertest.NATS(b)
		e := start(b)
		o := e.newOrg("bench")
		for j := range n {
			nb.Publish(b, "", nil, fmt.Appendf(nil, `{"order_id": %d, "status": "picked", "lines": [{"sku": "SKU-1", "qty": 2}], "note": %q}`, j, pad))
		}
		b.StartTimer()
		began := time.Now()
		src := e.c.must(201, "POST", "/v1/orgs/"+o.id+"/sources", map[string]any{
			"name": fmt.Sprintf("bench %d", i), "topic": "order.created", "from": nb.From}, o.key)
		id := src["id"].(string)
		var read time.Duration // until every message was a durable receipt
		for {
			st := e.brokerSource(o, id).FromStatus
			if read == 0 && st != nil && st.Messages >= int64(n) {
				read = time.Since(began)
			}
			if read > 0 && len(e.receipts(o, id, "status=pending&limit=1")) == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(began)
		b.Logf("%d messages: receipts in %s, events in %s", n, read.Round(time.Millisecond), took.Round(time.Millisecond))
		total += took
		b.StopTimer()
		e.close()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "msgs/s")
}
