package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// The search scenario ([search]): the business-key index at scale, and what it costs
// at publish.
//
//  1. Ingest cost: 5×Events events of PayloadSize bytes through the batch API (no
//     endpoints), once to a type with order.fulfilled's schema and no keys, once to one
//     with its schema and its keys (copied from the server's catalog, so the built-in
//     type is left as it is), each payload holding an order id, a PO number and two line
//     items' SKUs; events/s and CPU per event of each (with --url the server's process
//     alone, else this process, which holds the in-process server).
//  2. Search: SearchEvents events of a type with order.fulfilled's keys and the line
//     items' SKUs (order id unique per event, a PO number per 10 events, SKUs from a list
//     of 1,000, so that a SKU is a key some 2,000 of a million orders share) published as fast as the batch API takes
//     them, in batches of 1,000 from BatchClients clients, to an org whose one endpoint
//     is inactive, so that each event also has a (paused) delivery and nothing is sent;
//     then SearchQueries searches one after another, alternating GET …/events?key= and
//     GET …/deliveries?key=, half of them for a key that exists (a random order id, PO
//     number or SKU of what was published), half for one that does not; p50, p99 and
//     the largest per route, nearest rank. Every answer is checked: an order id finds
//     its one event (and delivery), a missing key nothing. The spec's target: p99 ≤
//     50 ms over a million events. Seeding is capped at 10×Duration; the figure says
//     how many events were searched over.

// searchTargetMS is the spec's target for the p99 of a ?key= search.
const searchTargetMS = 50

// searchSKUs is how many distinct SKUs the seeded orders use.
const searchSKUs = 1000

// Search is the search scenario's figure.
type Search struct {
	// IngestPlain and IngestKeyed are the batch ingest of PayloadSize-byte orders to a
	// type without keys and to one with order.fulfilled's keys; KeyedCPUShare is the
	// keyed run's server CPU per event over the plain run's (0 when not measured).
	IngestPlain   *Throughput `json:"ingest_plain"`
	IngestKeyed   *Throughput `json:"ingest_keyed"`
	KeyedCPUShare float64     `json:"keyed_cpu_share,omitempty"`
	KeyedRate     float64     `json:"keyed_rate_share,omitempty"`
	// Seed is the publishing of the events searched over.
	Seed *Throughput `json:"seed"`
	// Events and Deliveries are the latencies of GET …/events?key= and
	// GET …/deliveries?key=.
	Events     SearchLatency `json:"events"`
	Deliveries SearchLatency `json:"deliveries"`
	// Wrong counts answers that did not hold what the key finds (a missing event, a
	// found missing key); FirstWrong describes the first.
	Wrong      int     `json:"wrong"`
	FirstWrong string  `json:"first_wrong,omitempty"`
	TargetMS   float64 `json:"target_p99_ms"`
	Met        bool    `json:"met"`
}

// SearchLatency is the latency of one search route, in milliseconds.
type SearchLatency struct {
	Searches int     `json:"searches"`
	Errors   int     `json:"errors"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
}

// orderPayload is a seeded order: order i of the run, its PO number and two SKUs, padded
// to at least size bytes.
func orderPayload(i, size int) []byte {
	b := fmt.Appendf(nil, `{"order_id":"ORD-%07d","po_number":"PO-%06d","lineItems":[{"sku":"SKU-%04d","quantity":1},{"sku":"SKU-%04d","quantity":2}],"total":"19.90"`,
		i, i/10, i%searchSKUs, (i*7+3)%searchSKUs)
	if pad := size - len(b) - len(`,"pad":""}`); pad > 0 {
		b = append(b, `,"pad":"`...)
		b = append(b, bytes.Repeat([]byte("x"), pad)...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// orderBatch is the body of a batch of n orders of type typ from order first on.
func orderBatch(typ string, first, n, size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"type":"` + typ + `","payload":`)
		b.Write(orderPayload(first+i, size))
		b.WriteByte('}')
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// searchTypes creates (or, made by an earlier run, updates) the scenario's three types,
// each with order.fulfilled's schema: without keys, with its keys, and with its keys and
// the line items' SKUs (the type of the orders searched over).
func (r *runner) searchTypes(ctx context.Context) (plain, keyed, search string, err error) {
	var of struct {
		Schema json.RawMessage `json:"schema"`
		Keys   []string        `json:"keys"`
	}
	if err := r.api.call(ctx, http.MethodGet, "/v1/event-types/order.fulfilled", r.admin, nil, &of); err != nil {
		return "", "", "", fmt.Errorf("read order.fulfilled: %w", err)
	}
	if len(of.Keys) == 0 {
		return "", "", "", errors.New("order.fulfilled names no keys on this server: nothing to measure")
	}
	plain, keyed, search = "bench.order_fulfilled.plain", "bench.order_fulfilled.keyed", "bench.order_fulfilled.search"
	for _, t := range []struct {
		name string
		keys []string
	}{{plain, []string{}}, {keyed, of.Keys}, {search, withSKUs(of.Keys)}} {
		in := map[string]any{"name": t.name, "description": "Published by consign bench: order.fulfilled's schema", "keys": t.keys}
		if len(of.Schema) > 0 {
			in["schema"] = of.Schema
		}
		err := r.api.call(ctx, http.MethodPost, "/v1/event-types", r.admin, in, nil)
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusConflict {
			delete(in, "name")
			err = r.api.call(ctx, http.MethodPatch, "/v1/event-types/"+t.name, r.admin, in, nil)
		}
		if err != nil {
			return "", "", "", fmt.Errorf("event type %s: %w", t.name, err)
		}
	}
	return plain, keyed, search, nil
}

// withSKUs is keys and the line items' SKUs: the searched orders are found by SKU too,
// a key thousands of them share.
func withSKUs(keys []string) []string {
	if slices.Contains(keys, skuKey) {
		return keys
	}
	return append(slices.Clone(keys), skuKey)
}

// skuKey is the pointer to an order's line items' SKUs.
const skuKey = "/lineItems/*/sku"

// ingestOrders publishes n orders of typ to a new org in batches and measures it.
func (r *runner) ingestOrders(ctx context.Context, typ string, n int) (*Throughput, error) {
	org, key, err := r.newOrg(ctx, ScenarioSearch)
	if err != nil {
		return nil, err
	}
	size, batch := r.cfg.PayloadSize, r.cfg.BatchSize
	count := (n + batch - 1) / batch
	url := r.api.base + "/v1/orgs/" + org + "/events/batch"
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	start, m := time.Now(), r.meter()
	t := drive(ctx, r.cfg.BatchClients, count, func(ctx context.Context, i int) (int, error) {
		k := min(batch, n-i*batch)
		_, err := post(ctx, r.api.hc, url, key, orderBatch(typ, i*batch, k, size), http.StatusAccepted, false)
		return k, err
	})
	th := t.throughput(start, n, ctx)
	m.stop(th)
	return th, nil
}

func (r *runner) search(ctx context.Context) error {
	s := &Search{TargetMS: searchTargetMS}
	r.rep.Search = s
	plain, keyed, searched, err := r.searchTypes(ctx)
	if err != nil {
		return err
	}
	n := 5 * r.cfg.Events
	if s.IngestPlain, err = r.ingestOrders(ctx, plain, n); err != nil {
		return err
	}
	r.p.printf("search: batch ingest of %s-byte orders without keys: %s events/s, %s %.1f µs/event%s\n",
		commas(int64(r.cfg.PayloadSize)), commas(int64(s.IngestPlain.PerSecond)), r.cpuWhose(), cpuPerEvent(s.IngestPlain), cutText(s.IngestPlain))
	if s.IngestKeyed, err = r.ingestOrders(ctx, keyed, n); err != nil {
		return err
	}
	if p, k := cpuPerEvent(s.IngestPlain), cpuPerEvent(s.IngestKeyed); p > 0 && k > 0 {
		s.KeyedCPUShare = k / p
	}
	if s.IngestPlain.PerSecond > 0 {
		s.KeyedRate = s.IngestKeyed.PerSecond / s.IngestPlain.PerSecond
	}
	r.p.printf("search: batch ingest with order.fulfilled's keys:          %s events/s (%.0f %% of the rate without), %s %.1f µs/event (%.0f %%)%s\n",
		commas(int64(s.IngestKeyed.PerSecond)), 100*s.KeyedRate, r.cpuWhose(), cpuPerEvent(s.IngestKeyed), 100*s.KeyedCPUShare, cutText(s.IngestKeyed))

	org, key, err := r.newOrg(ctx, ScenarioSearch)
	if err != nil {
		return err
	}
	eps, err := r.newEndpoints(ctx, org, key, ScenarioSearch, 1, map[string]any{"topics": []string{searched}})
	if err != nil {
		return err
	}
	r.deactivate(org, key, eps) // its deliveries wait, paused: nothing is sent
	if s.Seed, err = r.seedOrders(ctx, org, key, searched); err != nil {
		return err
	}
	r.p.printf("search: published %s orders to search over in %.1f s (%s events/s, batches of 1,000, order ids unique, a PO number per 10, %d SKUs)%s\n",
		commas(int64(s.Seed.Done)), s.Seed.Seconds, commas(int64(s.Seed.PerSecond)), searchSKUs, cutText(s.Seed))
	if s.Seed.Done == 0 {
		return fmt.Errorf("no order was published: %s", s.Seed.FirstError)
	}
	r.searchKeys(ctx, org, key, s.Seed.Done, s)
	s.Met = s.Events.Searches > 0 && s.Events.Errors == 0 && s.Deliveries.Errors == 0 && s.Wrong == 0 &&
		s.Events.P99 <= searchTargetMS && s.Deliveries.P99 <= searchTargetMS
	for _, l := range []struct {
		route string
		l     SearchLatency
	}{{"events?key=", s.Events}, {"deliveries?key=", s.Deliveries}} {
		r.p.printf("search: GET …/%-16s over %s events: p50 %s ms, p99 %s ms, max %s ms (%d searches, half of keys that exist, %d errors) — target p99 ≤ %d ms: %s\n",
			l.route, commas(int64(s.Seed.Done)), msText(l.l.P50), msText(l.l.P99), msText(l.l.Max), l.l.Searches, l.l.Errors, searchTargetMS,
			metText(l.l.P99 <= searchTargetMS && l.l.Searches > 0))
	}
	if s.Wrong > 0 {
		r.p.printf("search: %d answers were wrong; the first: %s\n", s.Wrong, s.FirstWrong)
	}
	return nil
}

// cpuPerEvent is the server's CPU per event when the bench could read it apart, else
// this process's (which holds the in-process server).
func cpuPerEvent(t *Throughput) float64 {
	if t.ServerCPUPerUnit > 0 {
		return t.ServerCPUPerUnit
	}
	return t.CPUPerUnit
}

// cpuWhose names whose CPU cpuPerEvent is.
func (r *runner) cpuWhose() string {
	if r.server != nil {
		return "server CPU"
	}
	return "CPU (this process: server and clients)"
}

// cutText notes a run cut short.
func cutText(t *Throughput) string {
	switch {
	case t.GaveUp:
		return fmt.Sprintf(" (gave up after %d errors: %s)", t.Errors, t.FirstError)
	case t.Capped:
		return fmt.Sprintf(" (cut short at the cap: %s of %s)", commas(int64(t.Done)), commas(int64(t.Want)))
	case t.Errors > 0:
		return fmt.Sprintf(" (%d errors: %s)", t.Errors, t.FirstError)
	}
	return ""
}

// seedOrders publishes SearchEvents orders as fast as the batch API takes them.
func (r *runner) seedOrders(ctx context.Context, org, key, typ string) (*Throughput, error) {
	n, batch := r.cfg.SearchEvents, 1000
	count := (n + batch - 1) / batch
	url := r.api.base + "/v1/orgs/" + org + "/events/batch"
	ctx, cancel := context.WithTimeout(ctx, 10*r.cfg.Duration)
	defer cancel()
	start := time.Now()
	var done sync.Map // batches written, so that only published orders are searched for
	t := drive(ctx, r.cfg.BatchClients, count, func(ctx context.Context, i int) (int, error) {
		k := min(batch, n-i*batch)
		_, err := post(ctx, r.api.hc, url, key, orderBatch(typ, i*batch, k, 0), http.StatusAccepted, false)
		if err == nil {
			done.Store(i, true)
		}
		return k, err
	})
	th := t.throughput(start, n, ctx)
	// Searches pick orders from the batches written in a row from the first.
	prefix := 0
	for ; prefix < count; prefix++ {
		if _, ok := done.Load(prefix); !ok {
			break
		}
	}
	th.Done = min(th.Done, prefix*batch)
	return th, nil
}

// searchKeys runs the searches over the first seeded orders and records their latency.
func (r *runner) searchKeys(ctx context.Context, org, key string, seeded int, s *Search) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	rng := rand.New(rand.NewPCG(uint64(seeded), 2026))
	var evLat, dlLat []time.Duration
	path := "/v1/orgs/" + org
	wrong := func(format string, a ...any) {
		s.Wrong++
		if s.FirstWrong == "" {
			s.FirstWrong = fmt.Sprintf(format, a...)
		}
	}
	for q := 0; q < r.cfg.SearchQueries && ctx.Err() == nil; q++ {
		deliveries := q%2 == 1
		var k string
		var want int // -1: at least one
		switch exists := q%4 < 2; {
		case !exists:
			k, want = fmt.Sprintf("ORD-%07d", r.cfg.SearchEvents+rng.IntN(1_000_000)), 0 // never published
		case rng.IntN(10) < 8:
			k, want = fmt.Sprintf("ORD-%07d", rng.IntN(seeded)), 1
		case rng.IntN(2) == 0:
			k, want = fmt.Sprintf("PO-%06d", rng.IntN(max(1, seeded/10))), -1
		default:
			k, want = fmt.Sprintf("SKU-%04d", rng.IntN(min(seeded, searchSKUs))), -1
		}
		route := "/events?key="
		if deliveries {
			route = "/deliveries?key="
		}
		t0 := time.Now()
		var page struct {
			Data []json.RawMessage `json:"data"`
		}
		err := r.api.call(ctx, http.MethodGet, path+route+url.QueryEscape(k), key, nil, &page)
		d := time.Since(t0)
		lat, l := &evLat, &s.Events
		if deliveries {
			lat, l = &dlLat, &s.Deliveries
		}
		l.Searches++
		if err != nil {
			if ctx.Err() == nil {
				l.Errors++
			}
			continue
		}
		*lat = append(*lat, d)
		switch got := len(page.Data); {
		case want >= 0 && got != want:
			wrong("GET …%s%s found %d, want %d", route, k, got, want)
		case want < 0 && got == 0:
			wrong("GET …%s%s found nothing", route, k)
		}
	}
	s.Events.P50, s.Events.P99, s.Events.Max = percentiles(evLat)
	s.Deliveries.P50, s.Deliveries.P99, s.Deliveries.Max = percentiles(dlLat)
}
