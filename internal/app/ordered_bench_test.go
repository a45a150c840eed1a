package app_test

import (
	"strconv"
	"strings"
	"testing"
)

// BenchmarkOrdered measures deliveries/s to an endpoint that orders by key, with events
// spread over 50 keys and published in batches of 500: each key's deliveries go one at a
// time, so what is measured is how fast the next of a key follows the one before it
// (claim, send, record, wake) across the keys.
//
//	go test -run '^$' -bench Ordered -benchtime 5x ./internal/app/
func BenchmarkOrdered(b *testing.B) {
	e := start(b)
	o := e.newOrg("ordered")
	sink, got := countingSink(b)
	e.createEndpoint(o, map[string]any{"url": sink, "topics": []string{"product.*"}, "ordering": "key"})
	const perRound, keys = 2000, 50
	events := make([]map[string]any, 500)
	for i := range events {
		events[i] = map[string]any{"type": "product.inventoryChanged", "ordering_key": "sku-" + strconv.Itoa(i%keys),
			"payload": map[string]any{"i": i, "pad": strings.Repeat("x", 900)}}
	}
	measureDeliveries(b, e, o, events, perRound, got)
}
