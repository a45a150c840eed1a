package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/brokertest"
	"github.com/consign-dev/consign/internal/schema"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
	"github.com/consign-dev/consign/internal/testlog"
)

// tiny is a benchmark small enough for a test: every scenario, a few hundred units.
func tiny(tb testing.TB) Config {
	tb.Helper()
	return Config{
		Events: 200, Duration: 30 * time.Second, Concurrency: 8, Fanout: 3, BatchSize: 50, BatchClients: 2, Warmup: 100,
		Rate: 400, Backlog: 3000, SearchEvents: 3000, SearchQueries: 40, Logger: testlog.New(tb, "server"),
	}
}

func TestRunEndToEnd(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	rep, err := Run(context.Background(), tiny(t), &out)
	t.Log("\n" + out.String())
	require.NoError(t, err)

	rates := map[string]*Throughput{
		"loopback": rep.Loopback, "d11": rep.Deliver, "d11burst": rep.DeliverBurst, "d11f": rep.FilterDeliver, "d11t": rep.TransformDeliver, "fanout": rep.FanoutDeliver, "single": rep.Single, "batch": rep.Batch,
	}
	for name, th := range rates {
		require.NotNil(t, th, name)
		require.Positive(t, th.PerSecond, name)
		require.Positive(t, th.Seconds, name)
		require.Equal(t, th.Want, th.Done, "%s: all units done", name)
		require.Zero(t, th.Errors, "%s: %s", name, th.FirstError)
		require.Positive(t, th.CPUPerUnit, "%s: CPU per unit (this test runs on Linux)", name)
		require.Positive(t, th.AllocsPerUnit, "%s: allocations per unit", name)
		require.GreaterOrEqual(t, th.AllocBytesPerUnit, th.AllocsPerUnit, "%s: bytes allocated per unit", name)
	}
	// The filter run delivers every event (its filter passes them all) and is set beside
	// the plain one.
	require.Equal(t, 200, rep.FilterDeliver.Want)
	require.InDelta(t, rep.FilterDeliver.PerSecond/rep.Deliver.PerSecond, rep.FilterShare, 1e-9)
	require.Regexp(t, `deliveries/s 1→1 with a filter on the payload \(batch-fed\): [\d,]+ /s`, out.String())
	require.Regexp(t, `\d+ % of the plain 1→1 rate \(target ≥ 95 %\): (met|missed)`, out.String())
	require.Regexp(t, ` d11f=\d+/s d11f_share=\d+%`, rep.Summary())
	// Likewise the transformation run, whose receiver gets the transformed webhooks.
	require.Equal(t, 200, rep.TransformDeliver.Want)
	require.InDelta(t, rep.TransformDeliver.PerSecond/rep.Deliver.PerSecond, rep.TransformShare, 1e-9)
	require.Regexp(t, `deliveries/s 1→1 with a small transformation \(batch-fed\): [\d,]+ /s`, out.String())
	require.Regexp(t, `\d+ % of the plain 1→1 rate \(target ≥ 50 %\): (met|missed)`, out.String())
	require.Regexp(t, ` d11t=\d+/s d11t_share=\d+%`, rep.Summary())
	require.Regexp(t, `deliveries/s 1→1 \(batch-fed\): [\d,]+ /s \(.*µs of CPU each.*, \d+ allocations \([\d,]+ bytes\)`, out.String())
	require.Equal(t, 1000, rep.Loopback.Want, "loopback sends 5×events requests")
	require.Equal(t, 200, rep.Deliver.Want)
	require.Equal(t, 200, rep.DeliverBurst.Want)
	require.Positive(t, rep.Deliver.MostAhead, "d11 is paced")
	require.Zero(t, rep.DeliverBurst.MostAhead, "d11burst is published flat out")
	require.Contains(t, out.String(), "settings: 200 events of order.fulfilled (schema-checked) per scenario")
	require.Regexp(t, `deliveries/s 1→1 \(batch-fed, burst: published flat out\): [\d,]+ /s \(target ≥ 20,000`, out.String())
	require.Equal(t, 600, rep.FanoutDeliver.Want, "200 events × 3 endpoints")
	require.Equal(t, 1000, rep.Batch.Want, "batch ingest sends 5×events events")
	// The delivery runs are measured after their warm-up: whole events' worth of at
	// least 100 deliveries, published first in the same stream.
	require.Equal(t, 100, rep.Deliver.Warmup)
	require.Equal(t, 300, rep.Deliver.PublishedEvents)
	require.Equal(t, 102, rep.FanoutDeliver.Warmup, "34 events × 3 endpoints")
	require.Equal(t, 234, rep.FanoutDeliver.PublishedEvents)
	for _, th := range []*Throughput{rep.Deliver, rep.FanoutDeliver} {
		require.Positive(t, th.StreamPerSecond)
		// The measured part is the stream's tail: fewer deliveries than the whole, in less
		// time than the whole took.
		whole := float64(th.Done+th.Warmup) / th.StreamPerSecond
		require.Less(t, th.Seconds, whole)
	}
	require.Contains(t, out.String(), "measured after the first 100 deliveries, the whole stream ")
	require.Positive(t, rep.Deliver.ShareOfLoopback)
	require.InDelta(t, rep.Deliver.ShareOfLoopback*referenceCeiling, rep.Deliver.AtReference, 1e-6)
	require.NotNil(t, rep.Deliver.MetAtReference)
	require.Equal(t, rep.Deliver.AtReference >= 20_000, *rep.Deliver.MetAtReference)
	require.Zero(t, rep.FanoutDeliver.Target, "the spec's fan-out target is for 1 → 10, not 1 → 3")
	require.Nil(t, rep.FanoutDeliver.MetAtReference)

	l := rep.Latency
	require.NotNil(t, l)
	require.Equal(t, 200, l.Accepted, l.FirstError)
	require.Equal(t, l.Accepted, l.Received)
	require.Positive(t, l.SendP50)
	require.GreaterOrEqual(t, l.SendP99, l.SendP50)
	require.GreaterOrEqual(t, l.SendMax, l.SendP99)
	require.GreaterOrEqual(t, l.AckP99, l.AckP50)
	require.Positive(t, l.AchievedRate)

	bl := rep.Backlog
	require.NotNil(t, bl)
	require.Equal(t, 3000, bl.Queued, "every delivery of the backlog queued: %s", bl.FirstError)
	require.Zero(t, bl.Errors)
	for _, th := range []*Throughput{bl.Alone, bl.Beside} {
		require.Equal(t, 200, th.Want)
		require.Equal(t, th.Want, th.Done, "the healthy endpoint got every delivery")
		require.Positive(t, th.PerSecond)
	}
	require.InDelta(t, bl.Beside.PerSecond/bl.Alone.PerSecond, bl.Share, 1e-9)
	require.Positive(t, bl.PeakRSSBytes, "in-process: the peak is measured")
	require.Empty(t, bl.RSSError)

	requireSearch(t, rep.Search, out.String())

	require.NotNil(t, rep.Memory)
	require.Empty(t, rep.Memory.Error)
	require.Positive(t, rep.Memory.RSSBytes)
	require.GreaterOrEqual(t, rep.Memory.HWMBytes, rep.Memory.RSSBytes)

	text := strings.TrimRight(out.String(), "\n")
	for _, want := range []string{
		"loopback ceiling", "deliveries/s 1→1 (batch-fed): ", "deliveries/s 1→3 (batch-fed): ",
		" /s at the reference ceiling (the target is 43 % of it): ",
		"events accepted/s, single-event POSTs", "events accepted/s, batch API", "latency send → receipt",
		"latency ack → receipt", "3,000 deliveries queued for a down endpoint: a healthy endpoint keeps ",
		"the spec's ≤ 300 MB target is the backlog figure's", "memory after the runs: RSS ",
	} {
		require.Contains(t, text, want)
	}
	lines := strings.Split(text, "\n")
	last := lines[len(lines)-1]
	require.Equal(t, rep.Summary(), last, "the summary is the last line")
	for _, key := range []string{"loopback=", "d11=", "d11burst=", "type=order.fulfilled", "d13=", "single=", "batch=", "p50=", "p99=", "ack_p50=", "ack_p99=", "backlog=", "backlog_hwm=", "search_p99=", "keyed_ingest_cpu=", "rss=", "hwm=", "missed=", "missed_at_reference="} {
		require.Contains(t, last, " "+key)
	}
	require.NotRegexp(t, `missed\S*=\S*d13`, last, "1 → 3 has no target to miss")
	require.NotContains(t, last, "incomplete=")
}

func TestRunJSONAndOnly(t *testing.T) {
	t.Parallel()
	cfg := tiny(t)
	cfg.Only, cfg.JSON = []string{ScenarioLoopback, ScenarioSingle}, true
	var out bytes.Buffer
	rep, err := Run(context.Background(), cfg, &out)
	require.NoError(t, err)
	require.Nil(t, rep.Deliver)
	require.Nil(t, rep.Latency)

	var doc map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc), "the output is one JSON document: %s", out.String())
	require.Contains(t, doc, "loopback")
	require.Contains(t, doc, "accepted_single")
	require.NotContains(t, doc, "deliveries_1_1")
	require.Contains(t, doc, "memory")
	require.Equal(t, rep.Summary(), doc["summary"])
	require.Regexp(t, `^summary: loopback=\d+/s single=\d+/s rss=\d+MB hwm=\d+MB type=order.fulfilled missed=(none|single) missed_at_reference=(none|single)$`, doc["summary"])
	single := doc["accepted_single"].(map[string]any)
	require.Contains(t, single, "at_reference_per_second")
	require.Contains(t, single, "met_at_reference")
}

// TestDeliveriesPaced: the delivery scenarios' publisher stays within Ahead batches
// (and the batches its other clients hold) of the deliveries that arrived; flat out, it
// does not wait and says so.
func TestDeliveriesPaced(t *testing.T) {
	t.Parallel()
	for _, flat := range []bool{false, true} {
		cfg := tiny(t)
		cfg.Events, cfg.Only, cfg.FlatOut = 1000, []string{ScenarioDeliver}, flat
		if flat {
			cfg.Warmup = -1       // none: the whole stream is measured
			cfg.Type = TypeCustom // and the type without a schema, which the bench adds
		}
		var out bytes.Buffer
		rep, err := Run(context.Background(), cfg, &out)
		require.NoError(t, err)
		th := rep.Deliver
		require.Equal(t, th.Want, th.Done, out.String())
		if flat {
			require.Zero(t, th.Warmup)
			require.Zero(t, th.StreamPerSecond)
			require.Equal(t, 1000, th.PublishedEvents)
			require.NotContains(t, out.String(), "measured after")
			require.Zero(t, th.MostAhead)
			require.Regexp(t, `/s, flat out(\)|; the [\d,]+ deliveries left when it finished drained at [\d,]+ /s\))`, out.String())
			require.Contains(t, out.String(), "deliveries/s 1→1 (batch-fed, flat out): ")
			require.Contains(t, out.String(), "events of bench.event (no schema) per scenario")
			require.Contains(t, rep.Summary(), " type=custom")
			if th.Drained > 0 { // what was still in the store when the publisher finished
				require.Positive(t, th.DrainPerSecond)
				require.Contains(t, out.String(), " deliveries left when it finished drained at ")
			}
			continue
		}
		// 20 batches of 50; Ahead 2 and two clients: at most 4 batches out at once.
		require.Positive(t, th.MostAhead)
		require.LessOrEqual(t, th.MostAhead, (cfg.WithDefaults().Ahead+cfg.BatchClients)*cfg.BatchSize, out.String())
		require.Contains(t, out.String(), "deliveries ahead of the arrivals; measured after the first 100 deliveries")
	}
}

func TestBucketAwait(t *testing.T) {
	t.Parallel()
	b := newBucket(0)
	require.NoError(t, b.await(t.Context(), 0), "nothing to wait for")
	got := make(chan int, 2)
	for _, n := range []int{2, 3} {
		go func() {
			if b.await(t.Context(), n) == nil {
				got <- n
			}
		}()
	}
	require.Eventually(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 2 }, 5*time.Second, time.Millisecond)
	b.record("evt_1", 1, time.Now())
	b.record("evt_1", 1, time.Now()) // a duplicate does not count
	require.Never(t, func() bool { return len(got) > 0 }, 50*time.Millisecond, time.Millisecond)
	b.record("evt_2", 1, time.Now())
	require.Equal(t, 2, <-got)
	b.record("evt_3", 1, time.Now())
	require.Equal(t, 3, <-got)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, b.await(ctx, 10), context.Canceled)
}

// TestBucketMark: the mark is the arrival of the n-th new delivery, duplicates aside.
func TestBucketMark(t *testing.T) {
	t.Parallel()
	b := newBucket(0)
	b.markAfter(2)
	t0 := time.Now()
	b.record("evt_1", 1, t0)
	b.record("evt_1", 1, t0.Add(time.Millisecond)) // a duplicate
	require.True(t, b.marked().IsZero())
	b.record("evt_1", 2, t0.Add(2*time.Millisecond)) // the same event at another endpoint
	require.Equal(t, t0.Add(2*time.Millisecond), b.marked())
	b.record("evt_2", 1, t0.Add(3*time.Millisecond))
	require.Equal(t, t0.Add(2*time.Millisecond), b.marked(), "later arrivals leave it")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*Config)
		want string // in the error; "" for none
	}{
		{"defaults", func(*Config) {}, ""},
		{"database", func(c *Config) { c.Database = "postgres://u@localhost/db" }, ""},
		{"bad database", func(c *Config) { c.Database = "postgres://u@localhost:port/db" }, "--database"},
		{"url and database", func(c *Config) { c.URL, c.Key, c.Database = "http://localhost:8700", "k", "postgres://localhost/db" }, "--database is for"},
		{"remote url", func(c *Config) { c.URL, c.Key = "http://10.1.2.3:8700", "k" }, "loopback only"},
		{"url without key", func(c *Config) { c.URL = "http://127.0.0.1:8700" }, "--url needs --key"},
		{"url and data", func(c *Config) { c.URL, c.Key, c.DataDir = "http://localhost:8700", "k", "/tmp/x" }, "--data"},
		{"loopback url", func(c *Config) { c.URL, c.Key = "http://[::1]:8700", "k" }, ""},
		{"key without url", func(c *Config) { c.Key = "k" }, "--key is for"},
		{"unknown scenario", func(c *Config) { c.Only = []string{"d11", "warp"} }, `unknown scenario "warp"`},
		{"fanout 1", func(c *Config) { c.Fanout = 1 }, "--fanout"},
		{"batch too big", func(c *Config) { c.BatchSize = 1001 }, "--batch-size"},
		{"payload too small", func(c *Config) { c.PayloadSize = 8 }, "--payload-size"},
		{"payload too small for an order", func(c *Config) { c.PayloadSize = 100 }, "for --type order.fulfilled"},
		{"small custom payload", func(c *Config) { c.PayloadSize, c.Type = 100, TypeCustom }, ""},
		{"unknown type", func(c *Config) { c.Type = "order.created" }, "--type must be"},
		{"server pid", func(c *Config) { c.URL, c.Key, c.ServerPID = "http://127.0.0.1:8700", "k", 42 }, ""},
		{"server pid without url", func(c *Config) { c.ServerPID = 42 }, "--server-pid is for"},
		{"negative events", func(c *Config) { c.Events = -1 }, "--events"},
		{"backlog too big", func(c *Config) { c.Backlog = 10_000_001 }, "--backlog must be"},
		{"ahead negative", func(c *Config) { c.Ahead = -1 }, "--ahead must be"},
		{"no warm-up", func(c *Config) { c.Warmup = -1 }, ""},
		{"warm-up too long", func(c *Config) { c.Warmup = 10_000_001 }, "--warmup must be"},
		{"flat out", func(c *Config) { c.FlatOut = true }, ""},
		{"repeat", func(c *Config) { c.Repeat = 5 }, ""},
		{"repeat too often", func(c *Config) { c.Repeat = 51 }, "--repeat must be"},
		{"repeat with data", func(c *Config) { c.Repeat, c.DataDir = 2, "/tmp/x" }, "cannot be combined with --data"},
		{"repeat with database", func(c *Config) { c.Repeat, c.Database = 2, "postgres://localhost/db" }, "cannot be combined with --database"},
		{"repeat with profile", func(c *Config) { c.Repeat, c.CPUProfile = 2, "/tmp/cpu" }, "cannot be combined with --cpuprofile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Config{}
			tt.mod(&c)
			err := c.WithDefaults().validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestRunRefusesBeforeStarting(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, err := Run(context.Background(), Config{Database: "postgres://localhost:port/consign"}, &out)
	require.ErrorContains(t, err, "--database")
	require.Empty(t, out.String())
}

// TestRunPostgres runs the delivery scenarios and single ingest on a fresh PostgreSQL
// database: the report names the store and the database, never its password.
func TestRunPostgres(t *testing.T) {
	t.Parallel()
	cfg := tiny(t)
	u, err := url.Parse(pgtest.DSN(t))
	require.NoError(t, err)
	secret, ok := u.User.Password()
	if !ok {
		secret = "not-shown" // trust or peer authentication ignores it
		u.User = url.UserPassword(u.User.Username(), secret)
	}
	port := cmp.Or(u.Port(), "5432")
	cfg.Database, cfg.Only = u.String(), []string{ScenarioDeliver, ScenarioFanout, ScenarioSingle}
	var out bytes.Buffer
	rep, err := Run(context.Background(), cfg, &out)
	t.Log("\n" + out.String())
	require.NoError(t, err)

	require.Equal(t, StorePostgres, rep.Store)
	require.Equal(t, u.User.Username()+"@"+net.JoinHostPort(u.Hostname(), port)+u.Path, rep.Database)
	for name, th := range map[string]*Throughput{"d11": rep.Deliver, "fanout": rep.FanoutDeliver, "single": rep.Single} {
		require.NotNil(t, th, name)
		require.Equal(t, th.Want, th.Done, "%s: all units done", name)
		require.Zero(t, th.Errors, "%s: %s", name, th.FirstError)
		require.Zero(t, th.Duplicates, name)
	}
	require.Equal(t, 600, rep.FanoutDeliver.Want, "200 events × 3 endpoints")
	// The spec's one PostgreSQL row: deliveries/s on one node, whatever the fan-out.
	require.Equal(t, float64(targetPostgres), rep.Deliver.Target)
	require.Equal(t, float64(targetPostgres), rep.FanoutDeliver.Target)
	require.Zero(t, rep.Single.Target, "the ingest targets are the embedded store's")
	text := out.String()
	require.Contains(t, text, "deliveries/s 1→1 (batch-fed): ")
	require.Contains(t, text, "(target ≥ 5,000 on PostgreSQL, one node: ")
	require.Contains(t, text, "no endpoints: ")
	require.Contains(t, text, "(the spec's ingest targets are for the embedded store; ")
	require.NotRegexp(t, `missed\S*=\S*single`, text)
	require.Contains(t, text, "(postgresql store, database "+rep.Database+"; ")
	require.Contains(t, text, "not PostgreSQL's own processes")
	require.NotContains(t, text, ":"+secret+"@")

	cfg.JSON, cfg.Only = true, []string{ScenarioSingle}
	out.Reset()
	_, err = Run(context.Background(), cfg, &out)
	require.NoError(t, err, "a second run on the same database")
	var doc struct {
		Store    string         `json:"store"`
		Database string         `json:"database"`
		Config   map[string]any `json:"config"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc), out.String())
	require.Equal(t, StorePostgres, doc.Store)
	require.Equal(t, rep.Database, doc.Database)
	require.NotContains(t, doc.Config, "database", "the address stays out of the report's config")
	require.NotContains(t, out.String(), ":"+secret+"@")
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 50, 7 * time.Millisecond},
		{"one p99", ms(7), 99, 7 * time.Millisecond},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 of 1..100", hundred, 100, 100 * time.Millisecond},
		{"p50 of four", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of four", ms(1, 2, 3, 4), 99, 4 * time.Millisecond},
		{"tiny p", ms(1, 2, 3, 4), 0.001, time.Millisecond},
		{"negatives", ms(-3, -1, 2), 50, -time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, percentile(tt.sorted, tt.p))
		})
	}

	p50, p99, maxMS := percentiles(ms(9, 1, 5, 3, 7)) // sorts in place
	require.Equal(t, []float64{5, 9, 9}, []float64{p50, p99, maxMS})
}

func TestRate(t *testing.T) {
	t.Parallel()
	require.InDelta(t, 20_000.0, rate(10_000, 500*time.Millisecond), 1e-9)
	require.InDelta(t, 1.0, rate(1, time.Second), 1e-9)
	require.Zero(t, rate(10, 0))
	require.Zero(t, rate(10, -time.Second))

	th := &Throughput{Done: 46_100, Seconds: 2, Target: 20_000}
	th.finish()
	require.InDelta(t, 23_050.0, th.PerSecond, 1e-9)
	require.True(t, th.Met)
	th = &Throughput{Done: 10, Seconds: 0, Target: 1}
	th.finish()
	require.Zero(t, th.PerSecond)
	require.False(t, th.Met)
}

func TestPayloadAndBatches(t *testing.T) {
	t.Parallel()
	var orderSchema *schema.Schema
	for _, et := range consign.BuiltinEventTypes() {
		if et.Name == TypeOrder {
			var err error
			orderSchema, err = schema.Compile(et.Schema)
			require.NoError(t, err)
		}
	}
	require.NotNil(t, orderSchema, "order.fulfilled is built in, with a schema")
	for _, typ := range []string{TypeOrder, TypeCustom} {
		for _, size := range []int{minPayload(typ), minPayload(typ) + 1, 400, 1024, 4096} {
			p := payload(size, typ)
			require.Len(t, p, size)
			require.True(t, json.Valid(p), "%d: %s", size, p)
			if typ == TypeOrder {
				require.NoError(t, orderSchema.Validate(p), "the order payload is valid against order.fulfilled's schema")
			}
		}
		b := newBatches(typ, 1024, 50, 120) // 50, 50, 20
		require.Equal(t, 3, b.count)
		var total int
		for i := range b.count {
			body, n := b.get(i)
			var in struct {
				Events []struct {
					Type    string          `json:"type"`
					Payload json.RawMessage `json:"payload"`
				} `json:"events"`
			}
			require.NoError(t, json.Unmarshal(body, &in))
			require.Len(t, in.Events, n)
			require.Equal(t, publishedType(typ), in.Events[0].Type)
			require.Len(t, in.Events[0].Payload, 1024)
			total += n
		}
		require.Equal(t, 120, total)
	}
	require.Equal(t, "bench.event", publishedType(TypeCustom))
	b := newBatches(TypeCustom, 64, 50, 30) // one short batch
	require.Equal(t, 1, b.count)
	_, n := b.get(0)
	require.Equal(t, 30, n)
}

func TestCommas(t *testing.T) {
	t.Parallel()
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 46100: "46,100", 1234567: "1,234,567", -1500: "-1,500"} {
		require.Equal(t, want, commas(in))
	}
}

func TestReadMemory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "status")
	require.NoError(t, os.WriteFile(path, []byte("Name:\tconsign\nVmPeak:\t 999 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  184320 kB\nThreads:\t9\n"), 0o600))
	rss, hwm, err := readMemory(path)
	require.NoError(t, err)
	require.Equal(t, int64(180<<20), rss)
	require.Equal(t, int64(200<<20), hwm)

	require.NoError(t, os.WriteFile(path, []byte("Name:\tx\n"), 0o600))
	_, _, err = readMemory(path)
	require.ErrorContains(t, err, "no VmRSS")
}

func TestSummary(t *testing.T) {
	t.Parallel()
	rep := &Report{
		Fanout:        10,
		Loopback:      &Throughput{PerSecond: 46_100.4, Done: 1, Want: 1},
		Deliver:       &Throughput{PerSecond: 21_400, Done: 1, Want: 1},
		FanoutDeliver: &Throughput{PerSecond: 26_000, Done: 5, Want: 10, Capped: true},
		Single:        &Throughput{PerSecond: 11_000, Done: 1, Want: 1},
		Batch:         &Throughput{PerSecond: 120_000, Done: 1, Want: 1},
		Latency:       &Latency{Want: 3, Received: 3, SendP50: 2.1, SendP99: 9.8, AckP50: 1.234, AckP99: 12.34},
		Backlog:       &Backlog{Queued: 1_000_000, Want: 1_000_000, Share: 0.954, PeakRSSBytes: 140 << 20},
		Memory:        &Memory{RSSBytes: 180 << 20, HWMBytes: 210 << 20},
	}
	require.Equal(t, "summary: loopback=46100/s d11=21400/s d110=26000/s single=11000/s batch=120000/s "+
		"p50=2.10ms p99=9.80ms ack_p50=1.23ms ack_p99=12.3ms backlog=95% backlog_hwm=140MB rss=180MB hwm=210MB "+
		"missed=latency,backlog missed_at_reference=latency,backlog incomplete=d110",
		rep.Summary())
	rep.Backlog = &Backlog{Queued: 10, Want: 20, Share: 1.01}
	require.Contains(t, rep.Summary(), " backlog=101% rss=180MB hwm=210MB missed=latency,backlog missed_at_reference=latency,backlog incomplete=d110,backlog")

	rep.Latency, rep.Backlog = nil, nil
	require.Equal(t, "summary: loopback=46100/s d11=21400/s d110=26000/s single=11000/s batch=120000/s "+
		"rss=180MB hwm=210MB incomplete=d110", rep.Summary(), "no figure with a target: nothing to miss")
}

// TestMissed: the summary names the targets missed as measured and with the rates read
// at the reference ceiling, as the spec states them.
func TestMissed(t *testing.T) {
	t.Parallel()
	// rate is a rate figure of target at perSecond beside a loopback ceiling (0: none).
	rate := func(perSecond, target, ceiling float64) *Throughput {
		th := &Throughput{PerSecond: perSecond, Target: target, Done: 1, Want: 1}
		th.Met = perSecond >= target
		th.scale(ceiling)
		return th
	}
	tests := []struct {
		name        string
		rep         Report
		missed, ref string
	}{
		{"all met", Report{Fanout: 10, Deliver: rate(21_000, 20_000, 40_000), FanoutDeliver: rate(26_000, 25_000, 40_000)},
			"none", "none"},
		// 23,000 of 31,000 is 74 %, ≈ 34,129 /s at 46,000: above the target's 54 %.
		{"missed on a slow machine", Report{Fanout: 10, Deliver: rate(21_000, 20_000, 31_000), FanoutDeliver: rate(23_000, 25_000, 31_000)},
			"d110", "none"},
		// 26,000 of 52,000 is 50 %, ≈ 23,000 /s at 46,000.
		{"met only on a fast machine", Report{Fanout: 10, FanoutDeliver: rate(26_000, 25_000, 52_000)},
			"none", "d110"},
		{"no share: as measured", Report{Single: rate(9_000, 10_000, 0), Batch: rate(120_000, 100_000, 0)},
			"single", "single"},
		{"no target: not counted", Report{Fanout: 3, Deliver: rate(15_000, 20_000, 31_000), FanoutDeliver: rate(9_000, 0, 31_000)},
			"d11", "none"},
		{"latency and backlog as measured", Report{Latency: &Latency{Met: false}, Backlog: &Backlog{Met: true}},
			"latency", "latency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			missed, ref, targets := tt.rep.missed()
			require.True(t, targets)
			require.Equal(t, tt.missed, missed)
			require.Equal(t, tt.ref, ref)
			require.Contains(t, tt.rep.Summary(), " missed="+tt.missed+" missed_at_reference="+tt.ref)
		})
	}
}

// TestProfiles checks that --cpuprofile and --memprofile leave pprof files (gzip'd
// protocol buffers) behind.
func TestProfiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := tiny(t)
	cfg.Only = []string{"d11"}
	cfg.CPUProfile, cfg.MemProfile = filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "allocs.pprof")
	_, err := Run(context.Background(), cfg, &bytes.Buffer{})
	require.NoError(t, err)
	for _, path := range []string{cfg.CPUProfile, cfg.MemProfile} {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Greater(t, len(b), 100, path)
		require.Equal(t, []byte{0x1f, 0x8b}, b[:2], "%s is gzip'd as pprof writes it", path)
	}
}

// TestRunRepeated runs two rounds: each prints its own figures and summary, then the
// median of each figure with its range, and a last summary line that says so.
func TestRunRepeated(t *testing.T) {
	t.Parallel()
	cfg := tiny(t)
	cfg.Only, cfg.Repeat = []string{ScenarioLoopback, ScenarioDeliver, ScenarioLatency}, 2
	var out bytes.Buffer
	rep, err := Run(context.Background(), cfg, &out)
	t.Log("\n" + out.String())
	require.NoError(t, err)
	require.NotNil(t, rep.Deliver)
	require.NotNil(t, rep.Latency)
	require.Equal(t, rep.Deliver.Want, rep.Deliver.Done)
	text := strings.TrimRight(out.String(), "\n")
	require.Equal(t, 1, strings.Count(text, "round 1 of 2\n"))
	require.Equal(t, 1, strings.Count(text, "round 2 of 2\n"))
	require.Equal(t, 3, strings.Count(text, "summary: "), "each round's, then the median's")
	require.Contains(t, text, "median of 2 rounds, with the range over them:\n")
	require.Regexp(t, `deliveries/s 1→1 \(batch-fed\): [\d,]+ /s .*\[2 rounds: [\d,]+–[\d,]+ /s, \d+–\d+ µs of CPU each\]`, text)
	lines := strings.Split(text, "\n")
	last := lines[len(lines)-1]
	require.Equal(t, rep.Summary(), last)
	require.Regexp(t, `^summary: loopback=\d+/s d11=\d+/s p50=\S+ms p99=\S+ms ack_p50=\S+ms ack_p99=\S+ms rss=\d+MB hwm=\d+MB type=order.fulfilled missed=\S+ missed_at_reference=\S+ rounds=2$`, last)
}

// TestMedianReport checks which round each figure of the median report comes from: the
// middle one, and of two the less favourable (lower rate, higher CPU, higher latency).
func TestMedianReport(t *testing.T) {
	t.Parallel()
	round := func(loopback, d11, cpu, p99 float64) *Report {
		return &Report{
			Loopback: &Throughput{PerSecond: loopback, Done: 1, Want: 1},
			Deliver:  &Throughput{PerSecond: d11, CPUPerUnit: cpu, Done: 1, Want: 1},
			Latency:  &Latency{SendP99: p99},
		}
	}
	tests := []struct {
		name               string
		rounds             []*Report
		loopback, d11, cpu float64
		p99                float64
	}{
		{"one", []*Report{round(40_000, 12_000, 130, 4)}, 40_000, 12_000, 130, 4},
		{"three", []*Report{round(40_000, 12_000, 130, 4), round(30_000, 15_000, 110, 9), round(50_000, 9_000, 170, 2)},
			40_000, 12_000, 130, 4},
		{"two", []*Report{round(40_000, 12_000, 130, 4), round(30_000, 15_000, 110, 9)}, 30_000, 12_000, 130, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := medianReport(tt.rounds)
			require.Equal(t, tt.loopback, m.Loopback.PerSecond)
			require.Equal(t, tt.d11, m.Deliver.PerSecond)
			require.Equal(t, tt.cpu, m.Deliver.CPUPerUnit)
			require.Equal(t, tt.p99, m.Latency.SendP99)
			require.InDelta(t, tt.d11/tt.loopback, m.Deliver.ShareOfLoopback, 1e-9)
			require.Nil(t, m.FanoutDeliver, "a figure no round measured")
			require.Nil(t, m.Backlog, "a figure no round measured")
		})
	}
	t.Run("backlog", func(t *testing.T) {
		t.Parallel()
		share := func(v float64) *Report { return &Report{Backlog: &Backlog{Share: v}} }
		require.Equal(t, 0.97, medianReport([]*Report{share(0.97), share(0.91), {}, share(0.99)}).Backlog.Share)
		require.Equal(t, 0.91, medianReport([]*Report{share(0.97), share(0.91)}).Backlog.Share, "of two, the lower")
	})
}

// TestRunRepeatedJSON checks the --json document of several rounds: each round's
// report, the median report and its summary.
func TestRunRepeatedJSON(t *testing.T) {
	t.Parallel()
	cfg := tiny(t)
	cfg.Only, cfg.Repeat, cfg.JSON = []string{ScenarioLoopback}, 2, true
	var out bytes.Buffer
	rep, err := Run(context.Background(), cfg, &out)
	require.NoError(t, err)
	var doc struct {
		Rounds  []Report `json:"rounds"`
		Median  Report   `json:"median"`
		Summary string   `json:"summary"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc), "the output is one JSON document: %s", out.String())
	require.Len(t, doc.Rounds, 2)
	require.NotNil(t, doc.Median.Loopback)
	require.Equal(t, rep.Loopback.PerSecond, doc.Median.Loopback.PerSecond)
	require.Equal(t, rep.Summary(), doc.Summary)
	require.True(t, strings.HasSuffix(doc.Summary, " rounds=2"), doc.Summary)
}

func TestParsePressureFull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		want       time.Duration
		ok         bool
	}{
		{"kernel format", "some avg10=4.36 avg60=15.58 avg300=14.36 total=406186953\nfull avg10=3.44 avg60=13.34 avg300=11.28 total=286172231\n",
			286172231 * time.Microsecond, true},
		{"no full line", "some avg10=0.00 avg60=0.00 avg300=0.00 total=12\n", 0, false},
		{"bad total", "full avg10=0.00 avg60=0.00 avg300=0.00 total=-5\n", 0, false},
		{"not a number", "full avg10=0.00 total=lots\n", 0, false},
		{"empty", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parsePressureFull(tt.text)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

// TestIOStallInLines checks that a figure whose run stalled on I/O says so, and one that
// did not stays as it was.
func TestIOStallInLines(t *testing.T) {
	t.Parallel()
	cfg := Config{}.WithDefaults()
	th := &Throughput{PerSecond: 12_000, Done: 10, Want: 10, Target: 10_000, Met: true, IOStall: 0.13}
	require.Contains(t, th.line(figSingle, cfg), "; all work waited for I/O 13 % of the time)")
	th.IOStall = 0.004
	require.NotContains(t, th.line(figSingle, cfg), "waited for I/O")
	l := &Latency{Rate: 1000, Want: 10, Sent: 10, Accepted: 10, Received: 10, SendP50: 1, SendP99: 120, IOStall: 0.2}
	require.Contains(t, l.lines(cfg)[0], "[all work waited for I/O 20 % of the time: every event's 202 waits for an fsync]")
}

// TestCostInLines checks how a figure's line gives its cost per unit: CPU with the
// collector's part when it is worth saying, then the Go allocations.
func TestCostInLines(t *testing.T) {
	t.Parallel()
	cfg := Config{}.WithDefaults()
	th := &Throughput{PerSecond: 15_000, Done: 10, Want: 10, Target: 20_000, CPUPerUnit: 110, GCPerUnit: 9.6,
		AllocsPerUnit: 137.2, AllocBytesPerUnit: 15_773.4}
	require.Contains(t, th.line(figDeliver, cfg), "; 110 µs of CPU each (10 in the GC), 137 allocations (15,773 bytes))")
	th.GCPerUnit, th.AllocsPerUnit = 0.2, 0
	line := th.line(figDeliver, cfg)
	require.Contains(t, line, "; 110 µs of CPU each)")
	require.NotContains(t, line, "in the GC")
	require.NotContains(t, line, "allocations")
}

// TestBacklogLine checks the backlog figure's verdict and what its line says when memory
// could not be measured or the queueing was cut short.
func TestBacklogLine(t *testing.T) {
	t.Parallel()
	cfg := Config{}.WithDefaults()
	run := func(rate float64) *Throughput { return &Throughput{PerSecond: rate, Done: 100, Want: 100} }
	timed := func(rate, cpu float64) *Throughput { t := run(rate); t.CPUPerUnit = cpu; return t }
	tests := []struct {
		name string
		bl   Backlog
		met  bool
		want []string
	}{
		{"met", Backlog{Queued: 1_000_000, Want: 1_000_000, Alone: timed(10_000, 120), Beside: timed(9_500, 130), PeakRSSBytes: 140 << 20}, true,
			[]string{"1,000,000 deliveries queued for a down endpoint: a healthy endpoint keeps 95 % of its rate (9,500 /s at 130 µs of CPU each, against 10,000 /s at 120 µs of CPU each alone; target ≥ 90 %), peak RSS 140 MB", ": met"}},
		{"slowed", Backlog{Queued: 1_000_000, Want: 1_000_000, Alone: run(10_000), Beside: run(8_000), PeakRSSBytes: 140 << 20}, false,
			[]string{"keeps 80 % of its rate", ": missed"}},
		{"too much memory", Backlog{Queued: 1_000_000, Want: 1_000_000, Alone: run(10_000), Beside: run(9_900), PeakRSSBytes: 301 << 20}, false,
			[]string{"peak RSS 301 MB", ": missed"}},
		{"external server", Backlog{Queued: 5, Want: 5, Alone: run(10_000), Beside: run(9_900)}, true,
			[]string{"peak RSS not measured (the server runs in another process): met"}},
		{"no clear_refs", Backlog{Queued: 5, Want: 5, Alone: run(10_000), Beside: run(9_900), RSSError: "reset the peak RSS: permission denied"}, true,
			[]string{"peak RSS unknown (reset the peak RSS: permission denied)"}},
		{"cut short", Backlog{Queued: 400_000, Want: 1_000_000, Capped: true, Alone: run(10_000), Beside: run(9_900), PeakRSSBytes: 90 << 20}, false,
			[]string{": missed [queueing cut short at the 2m0s cap: 400,000 of 1,000,000 queued]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bl := tt.bl
			bl.finish()
			require.Equal(t, tt.met, bl.Met)
			line := bl.line(cfg)
			for _, w := range tt.want {
				require.Contains(t, line, w)
			}
		})
	}
}

func TestBucketFirstSeen(t *testing.T) {
	t.Parallel()
	long := "evt_" + strings.Repeat("x", 60)
	b := newBucket(4)
	for _, tc := range []struct {
		id    string
		ep    int
		first bool
	}{
		{"evt_01", 1, true},
		{"evt_01", 1, false}, // a repeat
		{"evt_01", 2, true},  // the same event at another endpoint
		{"evt_01\x00", 1, true},
		{"evt_0", 1, true},
		{long, 1, true},
		{long, 1, false},
		{long + "y", 1, true},
		{"evt_01", 1 << 40, true}, // past the key's int32: kept apart from ep 0
		{"evt_01", 0, true},
		{"evt_01", 1 << 40, false},
	} {
		require.Equal(t, tc.first, b.firstSeen(tc.id, tc.ep), "%q at %d", tc.id, tc.ep)
	}
}

// requireSearch checks the search scenario's figure of a tiny run: both ingest runs and
// the seeding done whole, every search answered and right.
func requireSearch(t *testing.T, s *Search, out string) {
	t.Helper()
	require.NotNil(t, s)
	for name, th := range map[string]*Throughput{"plain": s.IngestPlain, "keyed": s.IngestKeyed, "seed": s.Seed} {
		require.NotNil(t, th, name)
		require.Equal(t, th.Want, th.Done, "%s: %s", name, th.FirstError)
		require.Positive(t, th.PerSecond, name)
	}
	require.Equal(t, 1000, s.IngestKeyed.Want, "5×events orders")
	require.Equal(t, 3000, s.Seed.Done)
	require.Positive(t, cpuPerEvent(s.IngestKeyed), "CPU per event")
	require.Positive(t, s.KeyedCPUShare)
	for name, l := range map[string]SearchLatency{"events": s.Events, "deliveries": s.Deliveries} {
		require.Equal(t, 20, l.Searches, name)
		require.Zero(t, l.Errors, name)
		require.Positive(t, l.P50, name)
		require.GreaterOrEqual(t, l.Max, l.P99, name)
	}
	require.Zero(t, s.Wrong, s.FirstWrong)
	require.Equal(t, s.Events.P99 <= 50 && s.Deliveries.P99 <= 50, s.Met)
	require.Regexp(t, `search: GET …/events\?key=\s+over 3,000 events: p50 [\d.]+ ms, p99 [\d.]+ ms`, out)
	require.Contains(t, out, "search: batch ingest with order.fulfilled's keys:")
}

// TestSearchAgainstURL: the search scenario measures a server given by --url, twice.
func TestSearchAgainstURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const admin = "bench-test-admin-key-Qz8Lm3Vt6Wx1Ny4Kp0Rs"
	a, err := app.Start(ctx, app.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), InsecureTargets: true, AdminKey: admin,
		Logger: testlog.New(t, "server")})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	cfg := tiny(t)
	cfg.URL, cfg.Key, cfg.Only = a.URL(), admin, []string{ScenarioSearch}
	for round := range 2 { // the second finds the bench's event types made by the first
		var out bytes.Buffer
		rep, err := Run(ctx, cfg, &out)
		require.NoError(t, err, "round %d: %s", round, out.String())
		requireSearch(t, rep.Search, out.String())
		require.Contains(t, rep.Summary(), " search_p99=")
	}
}

// TestRunNATS: the nats scenario delivers every event to a JetStream stream once, and
// its figure carries the NATS server's CPU per message when the bench can read that
// process, or says why it cannot.
func TestRunNATS(t *testing.T) {
	t.Parallel()
	cfg := tiny(t)
	cfg.Only, cfg.NATSURL = []string{ScenarioNATS}, brokertest.NATSServer(t)
	var out bytes.Buffer
	rep, err := Run(context.Background(), cfg, &out)
	t.Log("\n" + out.String())
	require.NoError(t, err)
	th := rep.NATS
	require.NotNil(t, th)
	require.Equal(t, th.Want, th.Done, "all deliveries arrived")
	require.Zero(t, th.Errors, th.FirstError)
	require.Zero(t, th.Duplicates)
	require.Equal(t, th.Warmup+th.Want, th.StreamMessages, "the stream holds each event once")
	require.Regexp(t, `deliveries/s 1→1 to a NATS JetStream stream, file storage \(batch-fed; 300 messages on the stream\): [\d,]+ /s`, out.String())
	if th.BrokerCPUPerUnit == 0 {
		require.Contains(t, out.String(), "note: the NATS server's CPU time is not read (")
		return
	}
	require.Regexp(t, `NATS server process \d+ \(.+, found by its port\)`, out.String())
	require.NotEmpty(t, th.Broker)
	require.Contains(t, out.String(), "; "+th.Broker+" ")
	require.Regexp(t, ` nats_broker_us=[\d.]+`, rep.Summary())
}
