// Package bench is the benchmark behind `consign bench`: the figures of the spec's
// performance table, measured the same way on any machine, in one run.
//
// # Method
//
// One process holds everything, all on loopback: a Consign server started in-process
// (app.Start on 127.0.0.1:0, insecure targets allowed; embedded store in a temporary
// directory, or the PostgreSQL database given by --database) — or an existing server
// given by --url and --key —, a receiver (a plain net/http server that answers 204,
// counts requests per webhook-id and endpoint, and records when each delivery arrived),
// and the clients. All traffic to the server goes through the public HTTP API with one
// http.Transport whose keep-alive pool holds every client's connection; bodies are built
// once per scenario and every response body is drained. Setup (one org with its own key
// per scenario, endpoints pointing at the receiver, and for --type custom an event type)
// goes through the same API. What is published is what users publish: the built-in
// order.fulfilled, each payload an order valid against the type's schema, which the
// server checks; --type custom publishes bench.event, a type without a schema.
//
// Every figure gives the CPU time per unit of this process and, with --url and a server
// on this machine, of the server's process alone (servercpu.go).
//
// The scenarios, in the order they run (names for --only in brackets):
//
//  1. [loopback] the ceiling: Concurrency clients POST PayloadSize bodies to the
//     receiver directly, 5×Events requests; requests/s. Everything else that ends in an
//     HTTP request per unit reads as a share of it, because it ran on the same machine
//     in the same minute.
//  2. [d11] deliveries/s, 1 event → 1 endpoint: Events events published in batches of
//     BatchSize by BatchClients clients, after Warmup deliveries' worth of events in the
//     same stream; the rate is deliveries / (arrival of the last delivery − arrival of
//     the warm-up's last). The spec's figure is a sustained rate, so the warm-up's
//     one-time work stays out of it, and the publisher keeps pace with the deliveries:
//     a batch goes out once all but Ahead batches' worth of deliveries before it have
//     arrived (a closed loop, as a load generator finds the highest rate a system keeps
//     up with): the events go from ingest to the dispatcher in memory. With FlatOut it
//     publishes as fast as the API accepts instead.
//  3. [d11burst] the same stream published flat out, as a burst arrives: the events
//     then mostly wait in the store, and the figure is the rate at which that backlog
//     drains.
//  4. [d11f] the same with a filter on the endpoint that looks into every payload (and
//     passes each event, so the work is the same but for the filter); beside d11 it
//     gives the share of the plain rate kept (the spec's target: at least 95 %).
//     [d11t] the same with a small transformation on the endpoint (JavaScript that adds
//     a payload field and a header to every webhook); beside d11 the share of the plain
//     rate kept (the spec's target: at least 50 %).
//  5. [fanout] deliveries/s, 1 event → Fanout endpoints, likewise (Events × Fanout
//     deliveries).
//  6. [single] events accepted/s: Events single-event POSTs from Concurrency clients to
//     an org without endpoints; accepted / (last 202 − start).
//  7. [batch] events accepted/s through the batch API, no endpoints: 5×Events events in
//     batches of BatchSize from BatchClients clients.
//  8. [latency] a paced publisher sends single-event POSTs at Rate events/s (Events of
//     them) to an org with one endpoint; for each delivery, its arrival at the receiver
//     minus the moment just before its POST was sent (send → receipt, the figure in the
//     summary), and minus the moment its 202 was read (ack → receipt; it can be negative
//     when the delivery overtakes the reply); p50 and p99, nearest rank.
//  9. [backlog] isolation and memory: a healthy endpoint's deliveries/s (Events events,
//     batch-fed, in an org of its own) alone, after a warm-up run of the same size; then
//     Backlog events published through the batch API to another org whose one endpoint
//     refuses every connection (each a delivery to it, attempted and retried as the
//     server's policies say), and the healthy figure again next to that backlog (after a
//     run of the same size in which the store settles from the queueing's writes); the
//     share of its rate it kept, and (in-process server) the process's peak RSS from the
//     start of the queueing to the end (VmHWM, reset through /proc/self/clear_refs).
//     Queueing is capped at 4×Duration.
//  10. [search] the business-key index: batch ingest of orders without keys and with
//     order.fulfilled's (events/s and CPU per event), then SearchEvents orders published
//     to search over and SearchQueries searches of ?key= on events and deliveries,
//     p50/p99 (search.go).
//  11. the process's memory (VmRSS now, VmHWM peak, from /proc/self/status) after the
//     runs: with an in-process server it is the whole of server, receiver and clients
//     (with --database, not PostgreSQL's own processes).
//
// Every scenario stops at Duration, whatever it has done by then (the figure then counts
// what was done in that time and says it was cut short); a delivery scenario cut short
// deactivates its endpoints so that its leftovers do not run into the next scenario.
// The latency run waits at most 5 s more for its last deliveries. Nothing here tunes the
// server: the figures are what it does. Client, receiver and server share the machine's
// CPUs, as they do on the spec's reference machine; the header gives the load average
// before the run, because anything else running shares them too. --cpuprofile records
// where the time went.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/store/sqlite"
)

// Scenario names, for Config.Only.
const (
	ScenarioLoopback  = "loopback"
	ScenarioDeliver   = "d11"
	ScenarioBurst     = "d11burst"
	ScenarioFilter    = "d11f"
	ScenarioTransform = "d11t"
	ScenarioFanout    = "fanout"
	ScenarioSingle    = "single"
	ScenarioBatch     = "batch"
	ScenarioLatency   = "latency"
	ScenarioBacklog   = "backlog"
	ScenarioSearch    = "search"
	// ScenarioNATS runs only when named in Only: it needs a NATS server (NATSURL).
	ScenarioNATS = "nats"
)

// Scenarios are all scenario names in the order they run.
var Scenarios = []string{ScenarioLoopback, ScenarioDeliver, ScenarioBurst, ScenarioFilter, ScenarioTransform, ScenarioFanout, ScenarioSingle, ScenarioBatch, ScenarioLatency,
	ScenarioBacklog, ScenarioSearch, ScenarioNATS}

// Config is what a benchmark run is told. Zero values mean the default.
type Config struct {
	// Events is the number of events each scenario publishes; default 20,000. The
	// loopback ceiling sends 5× as many requests and the batch-ingest run 5× as many
	// events, because they are the fastest paths and need that many to last a second.
	Events int `json:"events"`
	// Duration caps each scenario (publishing and waiting for deliveries); default 30 s.
	Duration time.Duration `json:"duration_ns"`
	// Concurrency is the number of concurrent keep-alive clients of the loopback
	// ceiling and of the single-event ingest run, and the least size of the latency
	// publisher's pool (at least Rate/10); default 64.
	Concurrency int `json:"concurrency"`
	// Fanout is the number of endpoints every event goes to in the fan-out scenario;
	// default 10.
	Fanout int `json:"fanout"`
	// PayloadSize is the size of each event's JSON payload in bytes (and of the loopback
	// request bodies); default 1024.
	PayloadSize int `json:"payload_size"`
	// BatchSize is the number of events in one batch request; default 500, at most 1000.
	BatchSize int `json:"batch_size"`
	// BatchClients is the number of concurrent clients posting batches; default 4.
	BatchClients int `json:"batch_clients"`
	// Ahead is how many batches the publisher of a delivery scenario may be ahead of
	// the deliveries that have arrived; default 2. The delivery figures are sustained
	// rates: events arrive as fast as they are delivered, not faster.
	Ahead int `json:"ahead"`
	// Warmup is how many deliveries a delivery scenario sends before the part it
	// measures, in the same stream; default 20,000, negative for none. A fresh server
	// spends part of its first second on one-time work (compiling statements, growing
	// the write-ahead log and the heap, opening connections, the first batch's trip
	// through the pipeline); the spec's delivery figures are sustained rates.
	Warmup int `json:"warmup"`
	// FlatOut publishes the paced delivery scenarios' events (d11, d11f, fan-out) as
	// fast as the API takes them too: most of them then wait in the store, and the figure
	// is the rate at which that backlog drains. d11burst is always published so.
	FlatOut bool `json:"flat_out,omitempty"`
	// Type is what the bench publishes: TypeOrder (default), the built-in commerce type
	// order.fulfilled with payloads valid against its schema, or TypeCustom, a type of
	// the bench's own without a schema.
	Type string `json:"type"`
	// ServerPID is the process of the server at URL, whose CPU time the bench reads from
	// /proc/<pid>/stat to give the server's CPU per unit; 0: the process listening on
	// URL's port, found through /proc, when this machine shows it. Only with URL.
	ServerPID int `json:"server_pid,omitempty"`
	// Rate is the pace of the latency run in events per second; default 1,000.
	Rate int `json:"rate"`
	// Backlog is the number of deliveries the backlog scenario queues for an endpoint
	// that is down; default 1,000,000.
	Backlog int `json:"backlog"`
	// SearchEvents is the number of events the search scenario publishes to search
	// over; default 1,000,000.
	SearchEvents int `json:"search_events"`
	// SearchQueries is the number of searches it times; default 2,000.
	SearchQueries int `json:"search_queries"`
	// Only lists the scenarios to run (see Scenarios; the fan-out figure's summary key,
	// such as "d110", names it too); default all. The memory figure is always read.
	Only []string `json:"only,omitempty"`
	// NATSURL is the NATS server (with JetStream) of the nats scenario; default
	// nats://127.0.0.1:4222.
	NATSURL string `json:"nats_url,omitempty"`
	// URL is an existing Consign server on this machine to measure instead of an
	// in-process one; it must allow loopback targets (--insecure-targets).
	URL string `json:"url,omitempty"`
	// Key is the admin API key of the server at URL.
	Key string `json:"-"`
	// DataDir keeps the in-process server's store (with Database, only its encryption
	// key file) in this directory instead of a temporary one that is removed afterwards.
	DataDir string `json:"data_dir,omitempty"`
	// Database, when set, is a PostgreSQL address (postgres://user:pass@host/db) the
	// in-process server uses instead of the embedded store, as `consign serve --database`
	// does. It is migrated first; the bench adds its orgs to what the database holds, so
	// a fresh database gives figures that do not depend on earlier runs. Not in the JSON
	// report, which may be shared: Report.Database names it without a password.
	Database string `json:"-"`
	// CPUProfile, if set, is a file that receives a CPU profile (pprof) of the
	// scenarios: with an in-process server it shows where the server spends its time.
	CPUProfile string `json:"cpu_profile,omitempty"`
	// MemProfile, if set, is a file that receives an allocation profile (pprof "allocs":
	// every sampled allocation since the process started) written after the scenarios.
	MemProfile string `json:"mem_profile,omitempty"`
	// Repeat runs the scenarios this many times, each round on a fresh in-process
	// embedded store, and ends with each figure's median and range; default 1.
	Repeat int `json:"repeat,omitempty"`
	// JSON prints the report as one JSON document instead of lines of text.
	JSON bool `json:"-"`
	// Logger receives the in-process server's log; default: nothing.
	Logger *slog.Logger `json:"-"`
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Events == 0 {
		c.Events = 20_000
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.Concurrency == 0 {
		c.Concurrency = 64
	}
	if c.Fanout == 0 {
		c.Fanout = 10
	}
	if c.PayloadSize == 0 {
		c.PayloadSize = 1024
	}
	if c.Type == "" {
		c.Type = TypeOrder
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.BatchClients == 0 {
		c.BatchClients = 4
	}
	if c.Ahead == 0 {
		c.Ahead = 2
	}
	switch {
	case c.Warmup == 0:
		c.Warmup = 20_000
	case c.Warmup < 0:
		c.Warmup = -1
	}
	if c.Rate == 0 {
		c.Rate = 1000
	}
	if c.Backlog == 0 {
		c.Backlog = 1_000_000
	}
	if c.Repeat == 0 {
		c.Repeat = 1
	}
	if c.SearchEvents == 0 {
		c.SearchEvents = 1_000_000
	}
	if c.SearchQueries == 0 {
		c.SearchQueries = 2000
	}
	if c.NATSURL == "" {
		c.NATSURL = "nats://127.0.0.1:4222"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Only = slices.Clone(c.Only)
	for i, s := range c.Only {
		if s == fmt.Sprintf("d1%d", c.Fanout) { // the fan-out figure's summary key
			c.Only[i] = ScenarioFanout
		}
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Events < 1 || c.Events > 10_000_000 {
		bad("--events must be from 1 to 10,000,000, not %d", c.Events)
	}
	if c.Duration <= 0 || c.Duration > time.Hour {
		bad("--duration must be more than 0 and at most 1h, not %s", c.Duration)
	}
	if c.Concurrency < 1 || c.Concurrency > 4096 {
		bad("--concurrency must be from 1 to 4096, not %d", c.Concurrency)
	}
	if c.Fanout < 2 || c.Fanout > 100 {
		bad("--fanout must be from 2 to 100 (1 → 1 is its own scenario), not %d", c.Fanout)
	}
	if c.Type != TypeOrder && c.Type != TypeCustom {
		bad("--type must be %s (the built-in type, schema-checked) or %s (a type without a schema), not %q", TypeOrder, TypeCustom, c.Type)
	} else if least := minPayload(c.Type); c.PayloadSize < least || c.PayloadSize > 256<<10 {
		bad("--payload-size must be from %d to %d bytes for --type %s, not %d", least, 256<<10, c.Type, c.PayloadSize)
	}
	if c.ServerPID < 0 {
		bad("--server-pid must be a process id, not %d", c.ServerPID)
	}
	if c.BatchSize < 1 || c.BatchSize > 1000 {
		bad("--batch-size must be from 1 to 1000 (the API's limit), not %d", c.BatchSize)
	}
	if c.BatchClients < 1 || c.BatchClients > 256 {
		bad("--batch-clients must be from 1 to 256, not %d", c.BatchClients)
	}
	if c.Ahead < 1 || c.Ahead > 1000 {
		bad("--ahead must be from 1 to 1000 batches, not %d", c.Ahead)
	}
	if c.Warmup > 10_000_000 {
		bad("--warmup must be at most 10,000,000 deliveries, not %d", c.Warmup)
	}
	if c.Rate < 1 || c.Rate > 100_000 {
		bad("--rate must be from 1 to 100,000 events/s, not %d", c.Rate)
	}
	if c.Backlog < 1 || c.Backlog > 10_000_000 {
		bad("--backlog must be from 1 to 10,000,000, not %d", c.Backlog)
	}
	if c.SearchEvents < 1 || c.SearchEvents > 10_000_000 {
		bad("--search-events must be from 1 to 10,000,000, not %d", c.SearchEvents)
	}
	if c.SearchQueries < 2 || c.SearchQueries > 1_000_000 {
		bad("--search-queries must be from 2 to 1,000,000, not %d", c.SearchQueries)
	}
	if c.Repeat < 1 || c.Repeat > 50 {
		bad("--repeat must be from 1 to 50, not %d", c.Repeat)
	}
	if c.Repeat > 1 {
		for flag, set := range map[string]bool{"--url": c.URL != "", "--data": c.DataDir != "", "--database": c.Database != "",
			"--cpuprofile": c.CPUProfile != "", "--memprofile": c.MemProfile != ""} {
			if set {
				bad("--repeat runs every round on a fresh in-process embedded store; it cannot be combined with %s", flag)
			}
		}
	}
	for _, s := range c.Only {
		if !slices.Contains(Scenarios, s) {
			bad("--only: unknown scenario %q; choose from %s", s, strings.Join(Scenarios, ", "))
		}
	}
	if c.Database != "" {
		if _, err := pgxpool.ParseConfig(c.Database); err != nil {
			bad("--database: %v", err)
		}
	}
	if c.URL != "" {
		if err := loopbackURL(c.URL); err != nil {
			errs = append(errs, err)
		}
		if c.Key == "" {
			bad("--url needs --key, the server's admin API key (the bench creates orgs and an event type)")
		}
		if c.DataDir != "" {
			bad("--data is for the in-process server; it cannot be combined with --url")
		}
		if c.Database != "" {
			bad("--database is for the in-process server; it cannot be combined with --url")
		}
	} else {
		if c.Key != "" {
			bad("--key is for an existing server given with --url")
		}
		if c.ServerPID != 0 {
			bad("--server-pid is for an existing server given with --url (the in-process server is this process)")
		}
	}
	return errors.Join(errs...)
}

// loopbackURL checks that raw is an http(s) URL of this machine: the receiver listens on
// 127.0.0.1 only, and a benchmark floods what it targets.
func loopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want the base URL of a Consign server, such as http://127.0.0.1:8700", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--url %q: the bench runs on loopback only (its receiver listens on 127.0.0.1); point it at a server on this machine", raw)
	}
	return nil
}

// latencyWorkers is the pool of the latency run's publisher: enough for every POST to
// take 100 ms at the asked rate before the publisher falls behind its schedule (which
// the figure reports).
func (c Config) latencyWorkers() int {
	return max(c.Concurrency, c.Rate/10)
}

func (c Config) selected(name string) bool {
	if name == ScenarioNATS { // it needs a NATS server: only when asked for
		return slices.Contains(c.Only, name)
	}
	return len(c.Only) == 0 || slices.Contains(c.Only, name)
}

// Run runs the selected scenarios and writes each figure to out as soon as it is
// measured (or, with cfg.JSON, the whole report at the end). It returns an error when
// the run could not be set up or a scenario could not start; figures already measured
// are in the report. With cfg.Repeat above 1 it runs that many rounds and returns the
// median report (see repeat.go).
func Run(ctx context.Context, cfg Config, out io.Writer) (*Report, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Repeat > 1 {
		return runRounds(ctx, cfg, out)
	}
	return runOnce(ctx, cfg, out)
}

// runOnce is one round: a server, a receiver, the scenarios.
func runOnce(ctx context.Context, cfg Config, out io.Writer) (*Report, error) {
	rep := &Report{Config: cfg, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Fanout: cfg.Fanout}
	p := &printer{w: out, quiet: cfg.JSON}

	rcv, err := startReceiver()
	if err != nil {
		return nil, err
	}
	defer rcv.close()

	tr := newTransport(max(cfg.Concurrency, cfg.latencyWorkers()) + cfg.BatchClients)
	defer tr.CloseIdleConnections()

	srv, err := startServer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	rep.Server, rep.InProcess, rep.DataDir = srv.url, srv.inProcess, srv.dataDir
	switch {
	case cfg.URL != "":
		rep.Store = StoreExternal
	case cfg.Database != "":
		rep.Store, rep.Database = StorePostgres, databaseName(cfg.Database)
	default:
		rep.Store, rep.Engine = StoreEmbedded, string(sqlite.DefaultEngine)
	}

	rep.LoadBefore = loadAverage()
	r := &runner{cfg: cfg, api: &client{hc: newHTTPClient(tr), base: srv.url}, rcv: rcv, admin: srv.key, p: p, rep: rep}
	p.printf("consign bench: %s server at %s (%s), receiver at %s, %d CPUs, load average %.2f before the run, %s\n",
		srv.describe, srv.url, rep.storeText(srv.dataNote), rcv.url, rep.CPUs, rep.LoadBefore, rep.GoVersion)
	if cfg.URL != "" {
		proc, err := findServer(cfg.URL, cfg.ServerPID)
		if err != nil {
			p.printf("note: the server's CPU time is not read (%v): its figures give the bench's own CPU only\n", err)
		} else {
			r.server, rep.ServerPID = proc, proc.pid
			p.printf("server process %d (%s): its CPU time is read from /proc/%d/stat for the server's CPU per unit\n", proc.pid, proc.found, proc.pid)
		}
	}
	if rep.LoadBefore > 0.5*float64(rep.CPUs) {
		p.printf("note: this machine is already busy (load %.2f on %d CPUs); the figures share it with whatever else runs\n", rep.LoadBefore, rep.CPUs)
	}
	pace := fmt.Sprintf("at most %d ahead of the deliveries; d11burst flat out", cfg.Ahead)
	if cfg.FlatOut {
		pace = "flat out"
	}
	if cfg.Warmup > 0 {
		pace += fmt.Sprintf(", after %s warm-up deliveries", commas(int64(cfg.Warmup)))
	}
	p.printf("settings: %s events of %s per scenario, %s-byte payloads, %d clients, batches of %d from %d clients (%s), fan-out %d, latency at %s events/s, cap %s per scenario\n",
		commas(int64(cfg.Events)), typeText(cfg.Type), commas(int64(cfg.PayloadSize)), cfg.Concurrency, cfg.BatchSize, cfg.BatchClients, pace,
		cfg.Fanout, commas(int64(cfg.Rate)), cfg.Duration)

	if err := r.setup(ctx); err != nil {
		return rep, err
	}
	stopProfile, err := startProfile(cfg.CPUProfile)
	if err != nil {
		return rep, err
	}
	err = r.run(ctx)
	err = errors.Join(err, stopProfile(), writeAllocs(cfg.MemProfile))
	if cfg.URL != "" {
		r.cleanup()
	}
	rep.Memory = srv.memory()
	if rep.Memory != nil {
		p.printf("%s\n", rep.Memory.line(rep.Store, rep.Backlog != nil))
	}
	if cfg.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(jsonReport{Report: rep, Summary: rep.Summary()}); jerr != nil {
			return rep, errors.Join(err, jerr)
		}
	} else {
		p.printf("%s\n", rep.Summary())
	}
	return rep, err
}

// server is the Consign server under test.
type server struct {
	url, key, dataDir  string
	describe, dataNote string
	stop               func()
	inProcess          bool
}

func startServer(ctx context.Context, cfg Config) (*server, error) {
	if cfg.URL != "" {
		return &server{url: strings.TrimRight(cfg.URL, "/"), key: cfg.Key, describe: "existing", stop: func() {}}, nil
	}
	s := &server{inProcess: true, describe: "in-process"}
	dir, removeDir := cfg.DataDir, func() {}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "consign-bench-")
		if err != nil {
			return nil, fmt.Errorf("temporary data directory: %w", err)
		}
		dir, removeDir = tmp, func() { os.RemoveAll(tmp) }
		s.dataNote = " in " + tmp + ", removed afterwards"
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("--data %s: %w", dir, err)
		}
		s.dataNote = " in " + dir + ", kept"
	}
	s.dataDir = dir
	s.key = randomKey()
	a, err := app.Start(ctx, app.Config{
		Addr: "127.0.0.1:0", DataDir: dir, Database: cfg.Database, InsecureTargets: true, AdminKey: s.key, Logger: cfg.Logger,
	})
	if err != nil {
		removeDir()
		return nil, fmt.Errorf("start the in-process server: %w", err)
	}
	s.url = a.URL()
	s.stop = func() {
		if err := a.Close(); err != nil {
			cfg.Logger.Warn("bench: closing the in-process server", "err", err)
		}
		removeDir()
	}
	return s, nil
}

// memory reads this process's memory; it is the server's only when the server runs in it.
func (s *server) memory() *Memory {
	if !s.inProcess {
		return nil
	}
	rss, hwm, err := readMemory("/proc/self/status")
	if err != nil {
		return &Memory{Error: err.Error()}
	}
	return &Memory{RSSBytes: rss, HWMBytes: hwm}
}

// startProfile starts a CPU profile into path ("" for none); the function it returns
// stops it.
func startProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// writeAllocs writes the allocation profile into path ("" for none).
func writeAllocs(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("--memprofile: %w", err)
	}
	return f.Close()
}

// databaseName describes the PostgreSQL database at dsn without its password:
// user@host:port/database.
func databaseName(dsn string) string {
	c, err := pgxpool.ParseConfig(dsn)
	if err != nil { // validate parsed it already
		return "?"
	}
	cc := c.ConnConfig
	return fmt.Sprintf("%s@%s/%s", cc.User, net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), cc.Database)
}

// typeText describes Config.Type in the settings line.
func typeText(typ string) string {
	if typ == TypeCustom {
		return customType + " (no schema)"
	}
	return typ + " (schema-checked)"
}

// loadAverage is the 1-minute load average of the machine (0 when unknown).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), " ")
	v, _ := strconv.ParseFloat(first, 64)
	return v
}

func randomKey() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "bench_" + hex.EncodeToString(b)
}
