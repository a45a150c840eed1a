package cli

import (
	"log/slog"
	"time"

	"github.com/consign-dev/consign/internal/bench"
)

// benchCmd is `consign bench`: it maps flags to bench.Config; the method is in package
// bench. Its flags deliberately read no CONSIGN_* variable: CONSIGN_URL, CONSIGN_KEY,
// CONSIGN_DATA and CONSIGN_DATABASE are set for client commands and `serve`, and must
// never point a benchmark at a real server or store.
type benchCmd struct {
	Events        int           `default:"20000" help:"Events per scenario (the loopback ceiling sends 5× as many requests, the batch-ingest run 5× as many events)."`
	Duration      time.Duration `default:"30s" help:"Cap on each scenario: it stops there and reports what it did."`
	Concurrency   int           `default:"64" help:"Concurrent keep-alive clients of the loopback ceiling and the single-event ingest run; also the least size of the latency publisher's pool."`
	Fanout        int           `default:"10" help:"Endpoints per event in the fan-out scenario."`
	PayloadSize   int           `default:"1024" help:"Size of each event's JSON payload in bytes."`
	BatchSize     int           `default:"500" help:"Events per batch request (at most 1000)."`
	BatchClients  int           `default:"4" help:"Concurrent clients posting batches."`
	Ahead         int           `default:"2" help:"Batches the delivery scenarios' publisher may be ahead of the deliveries that arrived: the figures are sustained rates."`
	Warmup        int           `default:"20000" help:"Deliveries each delivery scenario sends before the part it measures, in the same stream (0: none): a fresh server's first second goes partly to one-time work."`
	FlatOut       bool          `name:"flat-out" help:"Publish the paced delivery scenarios' events (d11, d11f, d11t, fanout) as fast as the API takes them too, as d11burst always does: the figure is then how fast the backlog this builds in the store drains."`
	Type          string        `default:"order.fulfilled" enum:"order.fulfilled,custom" help:"What to publish: order.fulfilled (the built-in commerce type, each payload checked against its schema) or custom (a type without a schema, bench.event)."`
	Rate          int           `default:"1000" help:"Events per second of the latency run."`
	Backlog       int           `default:"1000000" help:"Deliveries the backlog scenario queues for an endpoint that is down."`
	SearchEvents  int           `default:"1000000" help:"Events the search scenario publishes and then searches over by business key."`
	SearchQueries int           `default:"2000" help:"Searches the search scenario times (events and deliveries in turn, half for keys that exist)."`
	Only          []string      `sep:"," help:"Run only these scenarios: loopback, d11, d11burst, d11f, d11t, fanout, single, batch, latency, backlog, search (default all), and nats (1→1 to a NATS JetStream stream at --nats-url; only when named)."`
	NATSURL       string        `name:"nats-url" default:"nats://127.0.0.1:4222" help:"NATS server with JetStream for the nats scenario (the in-process server reaches it with insecure targets)."`
	URL           string        `name:"url" placeholder:"http://127.0.0.1:8700" help:"Measure an existing Consign server on this machine (run with --insecure-targets) instead of an in-process one."`
	Key           string        `help:"Admin API key of the server at --url."`
	ServerPID     int           `name:"server-pid" placeholder:"PID" help:"Process of the server at --url, whose CPU time per delivery and per event the bench reports (default: the process listening on --url's port, when this machine shows it)."`
	Data          string        `placeholder:"DIR" help:"Keep the in-process server's store (with --database, its encryption key file) in this directory (default: a temporary one, removed afterwards)."`
	Database      string        `placeholder:"postgres://…" help:"Run the in-process server on this PostgreSQL database instead of the embedded store, as serve --database does (use a fresh database: the bench adds to what it holds)."`
	Repeat        int           `default:"1" help:"Run the scenarios this many times, each round on a fresh in-process embedded store, and end with each figure's median and range."`
	JSON          bool          `name:"json" help:"Print the report as JSON."`
	CPUProfile    string        `name:"cpuprofile" placeholder:"FILE" help:"Write a CPU profile (pprof) of the scenarios to FILE; with the in-process server it shows the server's time."`
	MemProfile    string        `name:"memprofile" placeholder:"FILE" help:"Write an allocation profile (pprof allocs) to FILE after the scenarios."`
}

func (c *benchCmd) Run(env *runEnv) error {
	_, err := bench.Run(env.ctx, bench.Config{
		Events: c.Events, Duration: c.Duration, Concurrency: c.Concurrency, Fanout: c.Fanout,
		PayloadSize: c.PayloadSize, BatchSize: c.BatchSize, BatchClients: c.BatchClients, Ahead: c.Ahead, Warmup: warmup(c.Warmup), FlatOut: c.FlatOut, Type: c.Type, Rate: c.Rate,
		Backlog: c.Backlog, SearchEvents: c.SearchEvents, SearchQueries: c.SearchQueries, Only: c.Only, NATSURL: c.NATSURL, URL: c.URL, Key: c.Key, ServerPID: c.ServerPID, DataDir: c.Data, Database: c.Database, Repeat: c.Repeat, JSON: c.JSON, CPUProfile: c.CPUProfile, MemProfile: c.MemProfile,
		Logger: slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, env.stdout)
	return err
}

// warmup maps the flag's 0 (none) to bench.Config's negative: there zero is the default.
func warmup(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
