package bench

import (
	"fmt"
	"io"
	"math"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/consign-dev/consign/internal/cputime"
)

// Report holds the figures of one run; a figure is nil when its scenario did not run.
type Report struct {
	Config Config `json:"config"`
	// Server is the URL of the server measured; InProcess says it ran in this process.
	Server    string `json:"server"`
	InProcess bool   `json:"in_process"`
	// Store is the store the server ran on: StoreEmbedded, StorePostgres or, for a
	// server given by --url, StoreExternal.
	Store string `json:"store"`
	// Database names the PostgreSQL database (user@host:port/name, no password) when
	// Store is StorePostgres.
	Database string `json:"database,omitempty"`
	// Engine is the SQLite engine (sqlite.Engine) of the embedded store.
	Engine string `json:"sqlite_engine,omitempty"`
	// DataDir is the in-process server's data directory (with PostgreSQL, it holds only
	// the encryption key file).
	DataDir   string `json:"data_dir,omitempty"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	// LoadBefore is the machine's 1-minute load average when the run started: other
	// work on the machine shares the CPUs with the figures.
	LoadBefore float64 `json:"load_before"`
	// Fanout is the number of endpoints per event of the fan-out figure.
	Fanout int `json:"fanout"`
	// ServerPID is the process of the server at --url whose CPU time the figures'
	// ServerCPUPerUnit is read from (0: not read).
	ServerPID int `json:"server_pid,omitempty"`

	// Loopback is the ceiling: requests/s of a bare client and server.
	Loopback *Throughput `json:"loopback,omitempty"`
	// Deliver is deliveries/s, 1 event → 1 endpoint, batch-fed, paced.
	Deliver *Throughput `json:"deliveries_1_1,omitempty"`
	// DeliverBurst is the same with the events published flat out: the rate at which
	// a backlog in the store drains.
	DeliverBurst *Throughput `json:"deliveries_1_1_burst,omitempty"`
	// FilterDeliver is deliveries/s, 1 event → 1 endpoint with a filter, batch-fed;
	// FilterShare its share of Deliver's rate (0 when either is missing).
	FilterDeliver *Throughput `json:"deliveries_1_1_filter,omitempty"`
	FilterShare   float64     `json:"filter_share_of_1_1,omitempty"`
	// TransformDeliver is deliveries/s, 1 event → 1 endpoint with a small
	// transformation, batch-fed; TransformShare its share of Deliver's rate.
	TransformDeliver *Throughput `json:"deliveries_1_1_transformation,omitempty"`
	TransformShare   float64     `json:"transformation_share_of_1_1,omitempty"`
	// FanoutDeliver is deliveries/s, 1 event → Fanout endpoints, batch-fed.
	FanoutDeliver *Throughput `json:"deliveries_1_n,omitempty"`
	// NATS is deliveries/s 1 → 1 to a NATS JetStream stream (scenario nats).
	NATS *Throughput `json:"deliveries_1_1_nats,omitempty"`
	// Single is events accepted/s through single-event POSTs, no endpoints.
	Single *Throughput `json:"accepted_single,omitempty"`
	// Batch is events accepted/s through the batch API, no endpoints.
	Batch *Throughput `json:"accepted_batch,omitempty"`
	// Latency is publish → receipt at a steady rate.
	Latency *Latency `json:"latency,omitempty"`
	// Backlog is the isolation figure: a backlog queued for a down endpoint.
	Backlog *Backlog `json:"backlog,omitempty"`
	// Search is the business-key index figure: ?key= latency and ingest cost.
	Search *Search `json:"search,omitempty"`
	// Memory is the process's memory after the runs (in-process server only).
	Memory *Memory `json:"memory,omitempty"`
	// Problems are scenarios that could not run.
	Problems []string `json:"problems,omitempty"`
}

// The values of Report.Store.
const (
	StoreEmbedded = "embedded"
	StorePostgres = "postgresql"
	StoreExternal = "the server's own" // --url: the bench cannot see which
)

// storeText names the store in the header line; dataNote says where the data directory
// is and whether it is kept.
func (r *Report) storeText(dataNote string) string {
	switch r.Store {
	case StorePostgres:
		return fmt.Sprintf("postgresql store, database %s; encryption key file%s", r.Database, dataNote)
	case StoreEmbedded:
		return "embedded store, SQLite engine " + r.Engine + dataNote
	default:
		return r.Store + " store"
	}
}

// Throughput is a rate figure: units (requests, deliveries or events) per second.
type Throughput struct {
	// StreamMessages is what the broker's stream held at the end (the nats scenario).
	StreamMessages int     `json:"stream_messages,omitempty"`
	PerSecond      float64 `json:"per_second"`
	// Done is the units done; Want those asked for.
	Done int `json:"done"`
	Want int `json:"want"`
	// Seconds is the time the rate is over: from the start to the last unit done, or to
	// the cap when the run was cut short.
	Seconds float64 `json:"seconds"`
	// Capped says the run hit Config.Duration before all units were done.
	Capped bool `json:"capped,omitempty"`
	// Interrupted says the run was stopped (Ctrl-C) before all units were done.
	Interrupted bool `json:"interrupted,omitempty"`
	// GaveUp says the run stopped after too many errors.
	GaveUp     bool   `json:"gave_up,omitempty"`
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	// Duplicates counts deliveries that arrived more than once.
	Duplicates int `json:"duplicates,omitempty"`
	// PublishedEvents and PublishSeconds describe the publishing of a delivery run.
	PublishedEvents int     `json:"published_events,omitempty"`
	PublishSeconds  float64 `json:"publish_seconds,omitempty"`
	// Warmup is, in a delivery run, the deliveries that came before the measured part
	// (Done, Want and Seconds count from the arrival of the last of them).
	Warmup int `json:"warmup,omitempty"`
	// StreamPerSecond is, after a warm-up, the rate of the whole stream, warm-up
	// included: from the start of the first publish to the last arrival.
	StreamPerSecond float64 `json:"stream_per_second,omitempty"`
	// Drained is, in a run published flat out, the deliveries that had not arrived when
	// the publisher finished, and DrainPerSecond the rate at which they then arrived:
	// the store's backlog draining with nothing else to do.
	Drained        int     `json:"drained,omitempty"`
	DrainPerSecond float64 `json:"drain_per_second,omitempty"`
	// MostAhead is, in a paced delivery run, the most deliveries published and not yet
	// arrived when a batch went out (0: published flat out).
	MostAhead int `json:"most_ahead,omitempty"`
	// ShareOfLoopback is PerSecond / the loopback ceiling (0: not meaningful or not
	// measured).
	ShareOfLoopback float64 `json:"share_of_loopback,omitempty"`
	// AtReference is that share of the spec's reference ceiling: the rate read the way
	// the spec states its targets, for a machine whose bare loopback does about 46,000
	// requests/s (0: no share).
	AtReference float64 `json:"at_reference_per_second,omitempty"`
	// Target is the spec's target (0: none); Met says PerSecond reached it, and
	// MetAtReference (absent without a target or a share) says AtReference did.
	Target         float64 `json:"target,omitempty"`
	Met            bool    `json:"met"`
	MetAtReference *bool   `json:"met_at_reference,omitempty"`
	// CPUPerUnit is the CPU time this process used over the run, in microseconds per
	// unit done: with the in-process server, server, receiver and clients together. It
	// varies less from run to run than the rate on a machine shared with other work.
	CPUPerUnit float64 `json:"cpu_us_per_unit,omitempty"`
	// AllocsPerUnit and AllocBytesPerUnit are the Go heap allocations of this process
	// over the run per unit done (SQLite's C allocations not included). Unlike CPU time
	// they do not depend on what else the machine runs: the figure to compare two builds
	// by when the rates move with the machine.
	AllocsPerUnit     float64 `json:"allocs_per_unit,omitempty"`
	AllocBytesPerUnit float64 `json:"alloc_bytes_per_unit,omitempty"`
	// ServerCPUPerUnit is the CPU time the server's process used over the run, in
	// microseconds per unit done, when the server is a process of its own (--url) whose
	// CPU time this machine shows (see servercpu.go); CPUPerUnit is then the bench's own.
	ServerCPUPerUnit float64 `json:"server_cpu_us_per_unit,omitempty"`
	// BrokerCPUPerUnit is, in the nats scenario, the CPU time the NATS server's process
	// used over the run in microseconds per unit done, when the bench finds that process
	// by its port (0: not read); Broker is the process's name.
	BrokerCPUPerUnit float64 `json:"broker_cpu_us_per_unit,omitempty"`
	Broker           string  `json:"broker,omitempty"`
	// GCPerUnit is the part of CPUPerUnit the Go garbage collector spent (the runtime's
	// estimate), in microseconds.
	GCPerUnit float64 `json:"gc_us_per_unit,omitempty"`
	// IOStall is the share of the run's wall time in which every task of the machine
	// waited for I/O (Linux pressure stall information; 0 when unknown): a disk that
	// stalls slows every acknowledged write.
	IOStall float64 `json:"io_stall_share,omitempty"`
}

// meter measures the CPU time and the I/O stalls of a run; its zero value measures
// nothing.
type meter struct {
	start  time.Duration
	ok     bool
	allocs heapAllocs
	io     ioMeter
	// server is the server's process when it is not this one, serverStart its CPU time
	// at the start; broker, brokerStart likewise for a broker's process.
	server      *serverProc
	serverStart time.Duration
	serverOK    bool
	broker      *serverProc
	brokerStart time.Duration
	brokerOK    bool
}

// startMeter starts measuring this process, and server and broker when they are not nil.
func startMeter(server, broker *serverProc) meter {
	m := meter{server: server, broker: broker}
	m.serverStart, m.serverOK = server.cpu()
	m.brokerStart, m.brokerOK = broker.cpu()
	m.start, m.ok = cputime.Process()
	m.allocs, m.io = readHeapAllocs(), startIO()
	return m
}

// stop sets t's CPU per unit done and its I/O stall share.
func (m meter) stop(t *Throughput) {
	if d, ok := cputime.Process(); ok && m.ok && t.Done > 0 {
		t.CPUPerUnit = float64((d - m.start).Microseconds()) / float64(t.Done)
	}
	if d, ok := m.server.cpu(); ok && m.serverOK && t.Done > 0 {
		t.ServerCPUPerUnit = float64((d - m.serverStart).Microseconds()) / float64(t.Done)
	}
	if d, ok := m.broker.cpu(); ok && m.brokerOK && t.Done > 0 {
		t.BrokerCPUPerUnit = float64((d - m.brokerStart).Microseconds()) / float64(t.Done)
		t.Broker = m.broker.name
	}
	if a := readHeapAllocs(); t.Done > 0 {
		t.AllocsPerUnit = float64(a.objects-m.allocs.objects) / float64(t.Done)
		t.AllocBytesPerUnit = float64(a.bytes-m.allocs.bytes) / float64(t.Done)
		t.GCPerUnit = 1e6 * (a.gcSeconds - m.allocs.gcSeconds) / float64(t.Done)
	}
	t.IOStall = m.io.share()
}

func (t *Throughput) finish() {
	if t.Seconds > 0 {
		t.PerSecond = float64(t.Done) / t.Seconds
	}
	t.Met = t.Target > 0 && t.PerSecond >= t.Target
}

// scale sets t's share of the loopback ceiling measured beside it (in /s; none when not
// positive) and what the share comes to at the reference ceiling.
func (t *Throughput) scale(ceiling float64) {
	if ceiling <= 0 {
		return
	}
	t.ShareOfLoopback = t.PerSecond / ceiling
	t.AtReference = t.ShareOfLoopback * referenceCeiling
	t.MetAtReference = nil
	if t.Target > 0 {
		met := t.AtReference >= t.Target
		t.MetAtReference = &met
	}
}

// Latency is the latency figure: publish → receipt at a steady rate, in milliseconds.
type Latency struct {
	// Rate is the pace asked for (events/s); AchievedRate the one kept.
	Rate         int     `json:"rate"`
	AchievedRate float64 `json:"achieved_rate"`
	// MaxLagMS is how far behind its schedule the publisher fell at worst.
	MaxLagMS float64 `json:"max_lag_ms"`
	// Want events were to be sent; Sent were, Accepted got a 202, Received arrived.
	Want        int  `json:"want"`
	Sent        int  `json:"sent"`
	Accepted    int  `json:"accepted"`
	Received    int  `json:"received"`
	Capped      bool `json:"capped,omitempty"`
	Interrupted bool `json:"interrupted,omitempty"`
	Duplicates  int  `json:"duplicates,omitempty"`
	// SendP50, SendP99, SendMax: arrival − just before the POST was sent.
	SendP50 float64 `json:"send_p50_ms"`
	SendP99 float64 `json:"send_p99_ms"`
	SendMax float64 `json:"send_max_ms"`
	// AckP50, AckP99: arrival − when the 202 was read; AckNegative deliveries arrived
	// before it.
	AckP50      float64 `json:"ack_p50_ms"`
	AckP99      float64 `json:"ack_p99_ms"`
	AckNegative int     `json:"ack_negative"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	// IOStall is the share of the run in which every task waited for I/O (see
	// Throughput.IOStall); each event's acknowledgement waits for an fsync.
	IOStall float64 `json:"io_stall_share,omitempty"`
	// Met says send → receipt p50 and p99 are within the spec's targets.
	Met bool `json:"met"`
}

// The spec's latency targets in milliseconds.
const (
	targetP50 = 5
	targetP99 = 25
)

func (l *Latency) finish() {
	l.Met = l.Received > 0 && l.SendP50 <= targetP50 && l.SendP99 <= targetP99
}

// Memory is the process's memory after the runs.
type Memory struct {
	RSSBytes int64  `json:"rss_bytes"`
	HWMBytes int64  `json:"hwm_bytes"`
	Error    string `json:"error,omitempty"`
}

// figure names and targets a rate figure.
type figure struct {
	key    string
	target float64
}

var (
	figLoopback  = figure{key: "loopback"}
	figDeliver   = figure{key: "d11", target: 20_000}
	figBurst     = figure{key: "d11burst", target: 20_000} // the same row, published flat out
	figFanout    = figure{key: "fanout", target: 25_000}   // for 1 → 10
	figFilter    = figure{key: "d11f"}                     // its target is a share of d11's
	figTransform = figure{key: "d11t"}                     // likewise
	figSingle    = figure{key: "single", target: 10_000}
	figBatch     = figure{key: "batch", target: 100_000}
	figNATS      = figure{key: "nats", target: 20_000} // 1 → 1 to a JetStream stream
)

// filterShareTarget is the spec's target for the filter figure: this share of the plain
// 1 → 1 rate measured beside it.
const filterShareTarget = 0.95

// transformShareTarget is the spec's target for the transformation figure.
const transformShareTarget = 0.50

// filterShare sets FilterShare and TransformShare from the rates, when they were
// measured.
func (r *Report) filterShare() {
	share := func(t *Throughput) float64 {
		if r.Deliver != nil && t != nil && r.Deliver.PerSecond > 0 {
			return t.PerSecond / r.Deliver.PerSecond
		}
		return 0
	}
	r.FilterShare, r.TransformShare = share(r.FilterDeliver), share(r.TransformDeliver)
}

// targetPostgres is the spec's target for deliveries/s on PostgreSQL, one node.
const targetPostgres = 5_000

// line is the text line of a rate figure.
func (t *Throughput) line(f figure, cfg Config) string {
	var title, target string
	switch f {
	case figLoopback:
		title = fmt.Sprintf("loopback ceiling (bare Go client → server, %d clients, %s-byte bodies)", cfg.Concurrency, commas(int64(cfg.PayloadSize)))
		target = fmt.Sprintf("the ceiling; ≈ %s on the spec's reference machine", commas(referenceCeiling))
	case figDeliver:
		title = "deliveries/s 1→1 (batch-fed)"
		if cfg.FlatOut {
			title = "deliveries/s 1→1 (batch-fed, flat out)"
		}
	case figBurst:
		title = "deliveries/s 1→1 (batch-fed, burst: published flat out)"
	case figFilter:
		title = "deliveries/s 1→1 with a filter on the payload (batch-fed)"
		target = "its target is a share of the plain 1→1 rate, below"
	case figTransform:
		title = "deliveries/s 1→1 with a small transformation (batch-fed)"
		target = "its target is a share of the plain 1→1 rate, below"
	case figFanout:
		title = fmt.Sprintf("deliveries/s 1→%d (batch-fed)", cfg.Fanout)
		if t.Target == 0 {
			target = "the target ≥ 25,000 is for 1→10"
		}
	case figSingle:
		title = fmt.Sprintf("events accepted/s, single-event POSTs, %d clients, no endpoints", cfg.Concurrency)
	case figBatch:
		title = fmt.Sprintf("events accepted/s, batch API (%d per batch, %d clients), no endpoints", cfg.BatchSize, cfg.BatchClients)
	case figNATS:
		title = fmt.Sprintf("deliveries/s 1→1 to a NATS JetStream stream, file storage (batch-fed; %s messages on the stream)", commas(int64(t.StreamMessages)))
	}
	if target == "" && t.Target == 0 && cfg.Database != "" && (f == figSingle || f == figBatch) {
		target = "the spec's ingest targets are for the embedded store"
	}
	if target == "" && t.Target > 0 {
		on := ""
		if cfg.Database != "" {
			on = " on PostgreSQL, one node"
		}
		target = fmt.Sprintf("target ≥ %s%s: %s", commas(int64(t.Target)), on, metText(t.Met))
	}
	if t.ShareOfLoopback > 0 {
		target += fmt.Sprintf("; %.0f %% of loopback", 100*t.ShareOfLoopback)
		if t.MetAtReference != nil {
			target += fmt.Sprintf(", ≈ %s /s at the reference ceiling (the target is %.0f %% of it): %s",
				commas(int64(math.Round(t.AtReference))), 100*t.Target/referenceCeiling, metText(*t.MetAtReference))
		}
	}
	if t.ServerCPUPerUnit > 0 {
		target += fmt.Sprintf("; server %.1f µs of CPU each", t.ServerCPUPerUnit)
	}
	if t.CPUPerUnit > 0 {
		of := ""
		if cfg.URL != "" {
			of = "the bench's own: "
		}
		target += fmt.Sprintf("; %s%.0f µs of CPU each", of, t.CPUPerUnit)
		if t.GCPerUnit >= 0.5 {
			target += fmt.Sprintf(" (%.0f in the GC)", t.GCPerUnit)
		}
	}
	if t.AllocsPerUnit > 0 {
		target += fmt.Sprintf(", %.0f allocations (%s bytes)", t.AllocsPerUnit, commas(int64(math.Round(t.AllocBytesPerUnit))))
	}
	if t.BrokerCPUPerUnit > 0 {
		target += fmt.Sprintf("; %s %.1f µs of CPU each", t.Broker, t.BrokerCPUPerUnit)
	}
	if t.IOStall >= ioStallNotable {
		target += fmt.Sprintf("; all work waited for I/O %.0f %% of the time", 100*t.IOStall)
	}
	s := fmt.Sprintf("%s: %s /s (%s)", title, commas(int64(math.Round(t.PerSecond))), target)
	switch {
	case t.Capped:
		s += fmt.Sprintf(" [cut short at the %s cap: %s of %s done]", cfg.Duration, commas(int64(t.Done)), commas(int64(t.Want)))
	case t.Interrupted:
		s += fmt.Sprintf(" [interrupted: %s of %s done]", commas(int64(t.Done)), commas(int64(t.Want)))
	case t.Done < t.Want:
		s += fmt.Sprintf(" [only %s of %s done]", commas(int64(t.Done)), commas(int64(t.Want)))
	}
	if t.Errors > 0 {
		gave := ""
		if t.GaveUp {
			gave = ", gave up"
		}
		s += fmt.Sprintf(" [%s errors%s; first: %s]", commas(int64(t.Errors)), gave, t.FirstError)
	}
	if t.Duplicates > 0 {
		s += fmt.Sprintf(" [%s duplicate deliveries]", commas(int64(t.Duplicates)))
	}
	if t.PublishedEvents > 0 {
		pace := "flat out"
		if t.MostAhead > 0 {
			pace = "at most " + commas(int64(t.MostAhead)) + " deliveries ahead of the arrivals"
		}
		warm := ""
		if t.Warmup > 0 {
			warm = "; measured after the first " + commas(int64(t.Warmup)) + " deliveries"
			if t.StreamPerSecond > 0 {
				warm += ", the whole stream " + commas(int64(math.Round(t.StreamPerSecond))) + " /s"
			}
		}
		if t.Drained > 0 {
			pace += fmt.Sprintf("; the %s deliveries left when it finished drained at %s /s", commas(int64(t.Drained)),
				commas(int64(math.Round(t.DrainPerSecond))))
		}
		s += fmt.Sprintf("\n  (%s events published in %.2f s, %s /s, %s%s)", commas(int64(t.PublishedEvents)),
			t.PublishSeconds, commas(int64(math.Round(float64(t.PublishedEvents)/max(t.PublishSeconds, 1e-9)))), pace, warm)
	}
	return s
}

func (l *Latency) lines(cfg Config) []string {
	target := fmt.Sprintf("target p50 ≤ %d ms, p99 ≤ %d ms", targetP50, targetP99)
	first := fmt.Sprintf("latency send → receipt at %s events/s: p50 %s ms, p99 %s ms, max %s ms (%s: %s)",
		commas(int64(l.Rate)), msText(l.SendP50), msText(l.SendP99), msText(l.SendMax), target, metText(l.Met))
	switch {
	case l.Capped:
		first += fmt.Sprintf(" [cut short at the %s cap: %s of %s sent]", cfg.Duration, commas(int64(l.Sent)), commas(int64(l.Want)))
	case l.Interrupted:
		first += fmt.Sprintf(" [interrupted: %s of %s sent]", commas(int64(l.Sent)), commas(int64(l.Want)))
	}
	if l.Received < l.Accepted {
		first += fmt.Sprintf(" [only %s of %s accepted events arrived within %s of the last publish]",
			commas(int64(l.Received)), commas(int64(l.Accepted)), latencyGrace)
	}
	if l.Errors > 0 {
		first += fmt.Sprintf(" [%s errors; first: %s]", commas(int64(l.Errors)), l.FirstError)
	}
	if l.Duplicates > 0 {
		first += fmt.Sprintf(" [%s duplicate deliveries]", commas(int64(l.Duplicates)))
	}
	if l.IOStall >= ioStallNotable {
		first += fmt.Sprintf(" [all work waited for I/O %.0f %% of the time: every event's 202 waits for an fsync]", 100*l.IOStall)
	}
	ackMet := l.Received > 0 && l.AckP50 <= targetP50 && l.AckP99 <= targetP99
	second := fmt.Sprintf("latency ack → receipt (from the 202) at %s events/s: p50 %s ms, p99 %s ms (%s: %s; %s of %s arrived before their 202 was read)",
		commas(int64(l.Rate)), msText(l.AckP50), msText(l.AckP99), target, metText(ackMet), commas(int64(l.AckNegative)), commas(int64(l.Received)))
	pace := fmt.Sprintf("  (%s events paced at %s /s achieved; the publisher fell at most %s ms behind schedule)",
		commas(int64(l.Sent)), commas(int64(math.Round(l.AchievedRate))), msText(l.MaxLagMS))
	return []string{first, second, pace}
}

// line is the memory figure's text line; store is Report.Store, backlog says whether the
// backlog scenario ran (it has the spec's memory figure).
func (m *Memory) line(store string, backlog bool) string {
	if m.Error != "" {
		return "memory after the runs: unknown (" + m.Error + ")"
	}
	what := "server, receiver and clients"
	if store == StorePostgres {
		what += "; not PostgreSQL's own processes"
	}
	spec := "the spec's ≤ 300 MB target is for 1,000,000 deliveries queued for a down endpoint, not run here"
	if backlog {
		spec = "the spec's ≤ 300 MB target is the backlog figure's"
	}
	return fmt.Sprintf("memory after the runs: RSS %s MB, peak %s MB (VmRSS, VmHWM of the whole process: %s; %s)",
		commas(m.RSSBytes>>20), commas(m.HWMBytes>>20), what, spec)
}

// missed lists the figures with a target that missed it, comma-separated ("none" when
// all were met), and again with the rates read at the reference ceiling, as the spec
// states its targets (a rate without a share of the loopback ceiling, the latency and
// the backlog count as measured); targets says some figure had a target.
func (r *Report) missed() (missed, atReference string, targets bool) {
	var abs, ref []string
	rate := func(key string, t *Throughput) {
		if t == nil || t.Target == 0 {
			return
		}
		targets = true
		if !t.Met {
			abs = append(abs, key)
		}
		met := t.Met
		if t.MetAtReference != nil {
			met = *t.MetAtReference
		}
		if !met {
			ref = append(ref, key)
		}
	}
	rate("d11", r.Deliver)
	rate("d11burst", r.DeliverBurst)
	rate(fmt.Sprintf("d1%d", r.Fanout), r.FanoutDeliver)
	rate("nats", r.NATS)
	rate("single", r.Single)
	rate("batch", r.Batch)
	other := func(key string, present, met bool) {
		if !present {
			return
		}
		targets = true
		if !met {
			abs, ref = append(abs, key), append(ref, key)
		}
	}
	other("d11f", r.FilterShare > 0, r.FilterShare >= filterShareTarget)
	other("d11t", r.TransformShare > 0, r.TransformShare >= transformShareTarget)
	other("latency", r.Latency != nil, r.Latency != nil && r.Latency.Met)
	other("backlog", r.Backlog != nil, r.Backlog != nil && r.Backlog.Met)
	other("search", r.Search != nil && r.Search.Seed != nil, r.Search != nil && r.Search.Met)
	list := func(keys []string) string {
		if len(keys) == 0 {
			return "none"
		}
		return strings.Join(keys, ",")
	}
	return list(abs), list(ref), targets
}

// Summary is the one-line summary of every figure measured, the last line of the text
// output: `summary: loopback=46100/s d11=21400/s d11burst=20100/s d110=26000/s
// single=11000/s batch=120000/s p50=2.1ms p99=9.8ms ack_p50=1.2ms ack_p99=8.1ms
// rss=180MB hwm=210MB type=order.fulfilled missed=d110 missed_at_reference=none`, with
// `d11_server_us=63.0` and the like (the server's CPU per unit) before type= when the
// server ran in a process of its own, then `incomplete=…` naming figures that did not
// get all their units done, and with --repeat `rounds=N` (the figures are then the
// median round's).
func (r *Report) Summary() string {
	var b strings.Builder
	b.WriteString("summary:")
	var capped []string
	rate := func(key string, t *Throughput) {
		if t == nil {
			return
		}
		fmt.Fprintf(&b, " %s=%.0f/s", key, t.PerSecond)
		if t.Done < t.Want {
			capped = append(capped, key)
		}
	}
	rate("loopback", r.Loopback)
	rate("d11", r.Deliver)
	rate("d11burst", r.DeliverBurst)
	rate("d11f", r.FilterDeliver)
	if r.FilterShare > 0 {
		fmt.Fprintf(&b, " d11f_share=%.0f%%", 100*r.FilterShare)
	}
	rate("d11t", r.TransformDeliver)
	if r.TransformShare > 0 {
		fmt.Fprintf(&b, " d11t_share=%.0f%%", 100*r.TransformShare)
	}
	rate(fmt.Sprintf("d1%d", r.Fanout), r.FanoutDeliver)
	rate("nats", r.NATS)
	rate("single", r.Single)
	rate("batch", r.Batch)
	if l := r.Latency; l != nil {
		fmt.Fprintf(&b, " p50=%sms p99=%sms ack_p50=%sms ack_p99=%sms", msText(l.SendP50), msText(l.SendP99), msText(l.AckP50), msText(l.AckP99))
		if l.Received < l.Want {
			capped = append(capped, "latency")
		}
	}
	if bl := r.Backlog; bl != nil {
		fmt.Fprintf(&b, " backlog=%.0f%%", 100*bl.Share)
		if bl.PeakRSSBytes > 0 {
			fmt.Fprintf(&b, " backlog_hwm=%dMB", bl.PeakRSSBytes>>20)
		}
		if bl.Queued < bl.Want {
			capped = append(capped, "backlog")
		}
	}
	if s := r.Search; s != nil && s.Seed != nil {
		fmt.Fprintf(&b, " search_p50=%sms search_p99=%sms search_deliveries_p99=%sms search_over=%d", msText(s.Events.P50), msText(s.Events.P99),
			msText(s.Deliveries.P99), s.Seed.Done)
		if s.KeyedCPUShare > 0 {
			fmt.Fprintf(&b, " keyed_ingest_cpu=%.0f%%", 100*s.KeyedCPUShare)
		}
		if s.Seed.Done < s.Seed.Want {
			capped = append(capped, "search")
		}
	}
	if m := r.Memory; m != nil && m.Error == "" {
		fmt.Fprintf(&b, " rss=%dMB hwm=%dMB", m.RSSBytes>>20, m.HWMBytes>>20)
	}
	// The server's own CPU per unit, when it ran in a process of its own.
	for _, f := range []struct {
		key string
		t   *Throughput
	}{{"d11", r.Deliver}, {"d11burst", r.DeliverBurst}, {"d11f", r.FilterDeliver}, {"d11t", r.TransformDeliver}, {fmt.Sprintf("d1%d", r.Fanout), r.FanoutDeliver},
		{"nats", r.NATS}, {"single", r.Single}, {"batch", r.Batch}} {
		if f.t != nil && f.t.ServerCPUPerUnit > 0 {
			fmt.Fprintf(&b, " %s_server_us=%.1f", f.key, f.t.ServerCPUPerUnit)
		}
	}
	if r.NATS != nil && r.NATS.BrokerCPUPerUnit > 0 {
		fmt.Fprintf(&b, " nats_broker_us=%.1f", r.NATS.BrokerCPUPerUnit)
	}
	if r.Config.Type != "" {
		fmt.Fprintf(&b, " type=%s", r.Config.Type)
	}
	if missed, scaled, targets := r.missed(); targets {
		fmt.Fprintf(&b, " missed=%s missed_at_reference=%s", missed, scaled)
	}
	if len(capped) > 0 {
		b.WriteString(" incomplete=" + strings.Join(capped, ","))
	}
	if r.Config.Repeat > 1 {
		fmt.Fprintf(&b, " rounds=%d", r.Config.Repeat)
	}
	return b.String()
}

// jsonReport is the --json output.
type jsonReport struct {
	*Report
	Summary string `json:"summary"`
}

// referenceCeiling is the spec's loopback ceiling on its reference machine (2 cores): the
// delivery targets are shares of it, which the report prints beside the share measured.
const referenceCeiling = 46000

func metText(met bool) string {
	if met {
		return "met"
	}
	return "missed"
}

// msText formats milliseconds with two decimals below 10 ms and one above.
func msText(v float64) string {
	if math.Abs(v) < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// printer writes text output unless the report goes out as JSON.
type printer struct {
	w     io.Writer
	quiet bool
}

func (p *printer) printf(format string, a ...any) {
	if !p.quiet {
		fmt.Fprintf(p.w, format, a...)
	}
}

// heapAllocs is what the Go heap has allocated since the process started, and the CPU
// time its collector has spent.
type heapAllocs struct {
	objects, bytes uint64
	gcSeconds      float64
}

func readHeapAllocs() heapAllocs {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return heapAllocs{objects: s[0].Value.Uint64(), bytes: s[1].Value.Uint64(), gcSeconds: s[2].Value.Float64()}
}
