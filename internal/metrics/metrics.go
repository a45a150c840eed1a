// Package metrics is Consign's Prometheus instrumentation. Components declare the small
// Metrics interfaces they call (dispatch.Metrics, ingest.Metrics, inbound.Metrics,
// guard.Metrics);
// Metrics implements them all on a registry of its own, never the global default, so
// two apps in one process (tests) do not collide.
//
// Label cardinality is bounded by design: no label carries an org, an event type or a
// source. The one exception is consign_deliveries_total's endpoint_id, which has one
// series per endpoint and outcome (at most 4 outcomes): keep it in mind with many
// thousands of endpoints. Series of deleted endpoints stay until the process restarts.
package metrics

//go:generate go run ./storegen

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// Metrics holds Consign's metrics.
type Metrics struct {
	reg        *prometheus.Registry
	events     *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	receipts   *prometheus.CounterVec
	refused    *prometheus.CounterVec
	storeOps   map[string]prometheus.Observer
	// attempts caches the series of each (outcome, endpoint) an attempt counts in: a
	// vector's WithLabelValues hashes the values and takes a lock, twice an attempt.
	attempts sync.Map // attemptSeriesKey → attemptSeries
}

type attemptSeriesKey struct{ outcome, endpointID string }

type attemptSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// New returns Metrics registered on a new registry, with the Go runtime and process
// collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consign_events_total",
			Help: "Events accepted by publish, by result (accepted; duplicate: an earlier event had its idempotency key).",
		}, []string{"result"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consign_deliveries_total",
			Help: "Delivery attempts by outcome (succeeded; retry: failed, to be tried again; failed: no attempts left; paused) and endpoint. One series per endpoint and outcome.",
		}, []string{"outcome", "endpoint_id"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "consign_attempt_duration_seconds",
			Help:    "Duration of delivery attempts' HTTP requests, by outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consign_inbound_receipts_total",
			Help: "Requests to sources' ingest URLs by result (accepted, duplicate, unverified, rejected, or the error code when nothing was stored: not_found, too_large, unavailable).",
		}, []string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consign_requests_refused_total",
			Help: "Requests refused to protect the server, by reason (body_budget: 503, the bodies in flight hold the whole budget; slow_body: 408, the body arrived too slowly; throttled: 429, too many bad keys from the client's address).",
		}, []string{"reason"}),
		storeOps: map[string]prometheus.Observer{},
	}
	ops := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "consign_store_operation_duration_seconds",
		Help:    "Duration of store operations, by method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
	}, []string{"method"})
	for _, name := range storeMethods {
		m.storeOps[name] = ops.WithLabelValues(name)
	}
	m.reg.MustRegister(m.events, m.deliveries, m.latency, m.receipts, m.refused, ops,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry the metrics are on, for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Accepted implements ingest.Metrics.
func (m *Metrics) Accepted(events, duplicates int) {
	if events > 0 {
		m.events.WithLabelValues("accepted").Add(float64(events))
	}
	if duplicates > 0 {
		m.events.WithLabelValues("duplicate").Add(float64(duplicates))
	}
}

// Attempted implements dispatch.Metrics.
func (m *Metrics) Attempted(endpointID, status string, took time.Duration) {
	outcome := status
	if status == consign.StatusPending {
		outcome = "retry"
	}
	k := attemptSeriesKey{outcome, endpointID}
	v, ok := m.attempts.Load(k)
	if !ok {
		v, _ = m.attempts.LoadOrStore(k, attemptSeries{
			count:   m.deliveries.WithLabelValues(outcome, endpointID),
			latency: m.latency.WithLabelValues(outcome),
		})
	}
	series := v.(attemptSeries)
	series.count.Inc()
	series.latency.Observe(took.Seconds())
}

// Received implements inbound.Metrics.
func (m *Metrics) Received(result string) {
	m.receipts.WithLabelValues(result).Inc()
}

// Refused implements guard.Metrics.
func (m *Metrics) Refused(reason string) {
	m.refused.WithLabelValues(reason).Inc()
}

// WatchBodies adds a gauge of the bytes of request bodies held by requests in flight.
func (m *Metrics) WatchBodies(held func() int64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "consign_request_body_bytes",
		Help: "Bytes of request bodies held by the requests in flight (at most the body budget, --body-budget).",
	}, func() float64 { return float64(held()) }))
}

// WatchQueue adds gauges of the dispatcher's load, read at scrape.
func (m *Metrics) WatchQueue(load func() (queued, inflight int)) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "consign_dispatch_queued",
			Help: "Deliveries held in memory waiting for their turn (or reserved for ingest's hand-off).",
		}, func() float64 { q, _ := load(); return float64(q) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "consign_dispatch_inflight",
			Help: "Delivery attempts in flight.",
		}, func() float64 { _, n := load(); return float64(n) }),
	)
}

// WatchNarrowed adds a gauge of the endpoints whose in-flight window is below their
// burst limit because their answers queue.
func (m *Metrics) WatchNarrowed(narrowed func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "consign_dispatch_endpoints_narrowed",
		Help: "Endpoints sent fewer attempts at once than their burst limit allows, because their answers take longer than their quickest of late (requests queue there).",
	}, func() float64 { return float64(narrowed()) }))
}

// WatchOwned adds a gauge of the endpoints this node owns, for nodes that share a
// database: it shows how the cluster divides the sending.
func (m *Metrics) WatchOwned(owned func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "consign_cluster_endpoints_owned",
		Help: "Endpoints this node owns, and so alone sends to (several nodes on one PostgreSQL database).",
	}, func() float64 { return float64(owned()) }))
}

// WatchStore adds gauges read from the store at scrape, at most once per ttl (default
// 15 s), so frequent scrapes cost the store nothing more: endpoints with due work, and
// active endpoints by health (failing, failed; the rest are healthy).
func (m *Metrics) WatchStore(s store.Store, ttl time.Duration) {
	if ttl <= 0 {
		ttl = 15 * time.Second
	}
	m.reg.MustRegister(&storeCollector{store: s, ttl: ttl,
		due:    prometheus.NewDesc("consign_endpoints_with_due_work", "Endpoints with deliveries waiting in the store (due now or later).", nil, nil),
		health: prometheus.NewDesc("consign_endpoints_unhealthy", "Active endpoints whose attempts fail, by health (failing, failed).", []string{"health"}, nil),
	})
}

type storeCollector struct {
	store       store.Store
	ttl         time.Duration
	due, health *prometheus.Desc

	mu      sync.Mutex
	read    time.Time
	ok      bool
	dueN    float64
	byState map[string]float64
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.due; ch <- c.health }

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.read) >= c.ttl {
		c.refresh()
	}
	if !c.ok {
		return // the store did not answer: no sample rather than a wrong one
	}
	ch <- prometheus.MustNewConstMetric(c.due, prometheus.GaugeValue, c.dueN)
	for _, h := range []string{consign.HealthFailing, consign.HealthFailed} {
		ch <- prometheus.MustNewConstMetric(c.health, prometheus.GaugeValue, c.byState[h], h)
	}
}

func (c *storeCollector) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.read, c.ok = time.Now(), false
	due, err := c.store.DeliveriesDue(ctx)
	if err != nil {
		return
	}
	failing, err := c.store.EndpointListFailing(ctx)
	if err != nil {
		return
	}
	c.dueN, c.byState, c.ok = float64(len(due)), map[string]float64{}, true
	for _, e := range failing {
		h := e.Health
		if h != consign.HealthFailed {
			h = consign.HealthFailing
		}
		c.byState[h]++
	}
}

// Store times the operations of a store.Store.
type Store struct {
	store.Store
	ops map[string]prometheus.Observer
}

// Store returns s with every operation timed into
// consign_store_operation_duration_seconds.
func (m *Metrics) Store(s store.Store) *Store {
	return &Store{Store: s, ops: m.storeOps}
}

func (st *Store) observe(method string, start time.Time) {
	st.ops[method].Observe(time.Since(start).Seconds())
}
