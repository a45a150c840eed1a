// Package app is the composition root: it opens the store, builds every component with
// its configuration, starts the HTTP server and the dispatcher, and stops them in order.
// It is the only package that imports the store drivers.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/api"
	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/destination/amqpdest"
	"github.com/consign-dev/consign/internal/destination/kafkadest"
	"github.com/consign-dev/consign/internal/destination/natsdest"
	"github.com/consign-dev/consign/internal/destination/redisdest"
	"github.com/consign-dev/consign/internal/dispatch"
	"github.com/consign-dev/consign/internal/guard"
	"github.com/consign-dev/consign/internal/inbound"
	"github.com/consign-dev/consign/internal/ingest"
	"github.com/consign-dev/consign/internal/job"
	"github.com/consign-dev/consign/internal/maint"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/metrics"
	"github.com/consign-dev/consign/internal/secretbox"
	"github.com/consign-dev/consign/internal/sender"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/postgres"
	"github.com/consign-dev/consign/internal/store/sqlite"
	"github.com/consign-dev/consign/internal/web"
)

// Config is everything `consign serve` can be told. Zero fields take their defaults
// (WithDefaults); Start refuses settings that cannot work, alone or together (Validate).
type Config struct {
	// Addr is the listen address; default ":8700". Port 0 picks a free port.
	Addr string
	// DataDir holds the embedded database and the encryption key file; default
	// "./consign-data".
	DataDir string
	// Database, when set, is a PostgreSQL address (postgres://user:pass@host/db) used
	// instead of the embedded store; any number of nodes may share it (CONSIGN_DATABASE).
	// The encryption key file still lives in DataDir: nodes sharing a database must share
	// the key too (EncryptionKey).
	Database string
	// InsecureTargets allows http:// and non-public endpoint URLs (development, tests).
	InsecureTargets bool
	// AdminKey, if set, is accepted as an admin key (CONSIGN_ADMIN_KEY).
	AdminKey string
	// EncryptionKey is the 32-byte key (base64 or hex) sealing secrets at rest
	// (CONSIGN_ENCRYPTION_KEY); default: a key file in DataDir, created on first start.
	EncryptionKey string
	// Sender configures outbound HTTP (timeouts, response capture).
	Sender sender.Config
	// Dispatch configures the delivery engine.
	Dispatch dispatch.Config
	// API configures request limits.
	API api.Config
	// Guard bounds what clients can make the server hold: request bodies in flight
	// together, slow bodies.
	Guard guard.Config
	// Inbound configures sources: ingest limits, receipt processing, polls.
	Inbound inbound.Config
	// PublicURL is the base URL partners reach this server at, for sources' ingest URLs
	// (CONSIGN_PUBLIC_URL); default: the scheme and host of each API request.
	PublicURL string
	// UIFrameAncestors are the origins that may show the dashboard (and the partner
	// portal) in an iframe, such as "https://app.example.com"; default none.
	UIFrameAncestors []string
	// Retention is how long attempts, finished events (with their deliveries), settled
	// inbound receipts and finished jobs are kept; default 720h (30 days). Every node purges
	// hourly; negative disables it.
	Retention time.Duration
	// Jobs configures replays (how many deliveries a replay keeps queued, how it pages).
	Jobs job.Config
	// CertificateCheck is how often endpoints' client certificates are checked for
	// consign.endpoint.certificate_expiring (one node at a time); default 1h.
	CertificateCheck time.Duration
	// TracerProvider, if set, traces requests, publishes, fan-outs and attempts; default:
	// an OTLP/HTTP exporter when the OTEL_* environment asks for one (see
	// tracerFromEnv), else no tracing.
	TracerProvider trace.TracerProvider
	// Now is the clock of every component; default time.Now.
	Now func() time.Time
	// Logger; default a text logger on stderr.
	Logger *slog.Logger
}

// App is a running Consign server.
type App struct {
	cfg        Config
	Store      store.Store
	Manage     *manage.Service
	Ingest     *ingest.Service
	Dispatcher *dispatch.Dispatcher
	Inbound    *inbound.Service
	Jobs       *job.Service
	Guard      *guard.Guard
	jobRunner  *job.Runner
	sender     *sender.Sender
	pollSender *sender.Sender
	brokers    []interface{ Close() } // the broker kinds' senders, closed with the app
	http       *http.Server
	listener   net.Listener
	// NewAdminKey is the admin key created on this start ("" if none was created).
	NewAdminKey string

	cancel context.CancelFunc
	done   sync.WaitGroup

	stopInbound context.CancelFunc
	inboundDone sync.WaitGroup

	metrics       *metrics.Metrics
	traceShutdown func(context.Context) error
}

// OpenStore opens (and migrates) the PostgreSQL store at database when it is set, else
// the embedded store in dataDir.
func OpenStore(ctx context.Context, database, dataDir string) (store.Store, error) {
	if database != "" {
		return postgres.Open(ctx, database)
	}
	return sqlite.Open(ctx, dataDir)
}

// WithDefaults returns c with each zero field set to its default. The components'
// settings get theirs when they are built.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = ":8700"
	}
	if c.DataDir == "" {
		c.DataDir = "consign-data"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return c
}

// Validate reports every setting that cannot work, its own and its components' (as
// Start will build them, defaults applied), and every combination of them that cannot,
// naming each setting as a path in Config (Dispatch.Lease). Start refuses to start
// with any.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("Addr (CONSIGN_ADDR) %q is not a listen address such as :8700 or 127.0.0.1:8700", c.Addr))
	}
	if c.AdminKey != "" {
		if err := manage.CheckAdminKey(c.AdminKey); err != nil {
			errs = append(errs, fmt.Errorf("AdminKey (CONSIGN_ADMIN_KEY) %w", err))
		}
	}
	if err := api.CheckPublicURL(c.PublicURL); err != nil {
		errs = append(errs, fmt.Errorf("PublicURL (CONSIGN_PUBLIC_URL) %w", err))
	}
	sc, dc, ic, ac := c.senderConfig(), c.dispatchConfig(), c.inboundConfig(), c.apiConfig()
	errs = append(errs, named("Sender.", sc.Validate())...)
	dispatchErr := dc.Validate()
	if c.Database != "" {
		// Several nodes may share the database: the ownership settings count too.
		dispatchErr = dc.ValidateCluster()
	}
	errs = append(errs, named("Dispatch.", dispatchErr)...)
	errs = append(errs, named("Inbound.", ic.Validate())...)
	if c.API.PublicURL == "" {
		ac.PublicURL = "" // taken from PublicURL, checked above
	}
	errs = append(errs, named("API.", ac.Validate())...)
	errs = append(errs, named("Guard.", c.guardConfig().Validate())...)
	errs = append(errs, named("Jobs.", c.jobConfig().Validate())...)
	if err := web.CheckFrameAncestors(c.UIFrameAncestors); err != nil {
		errs = append(errs, fmt.Errorf("UIFrameAncestors (CONSIGN_UI_FRAME_ANCESTORS) %w", err))
	}
	if c.CertificateCheck < 0 {
		errs = append(errs, fmt.Errorf("CertificateCheck is %s; it must be positive (or zero for the default, 1h)", c.CertificateCheck))
	}
	// A delivery's lease must outlast its attempt: a lease that ends while the attempt is
	// still waiting for the receiver makes the delivery due again, and it is sent twice.
	if dc.Lease > 0 && sc.Timeout > 0 && dc.Lease <= sc.Timeout {
		errs = append(errs, fmt.Errorf("Dispatch.Lease (%s) must be longer than Sender.Timeout (%s): a delivery whose lease ends while its attempt runs is sent again", dc.Lease, sc.Timeout))
	}
	// A receipt becomes an event through ingest: a body inbound accepts but ingest refuses
	// would be acknowledged to the partner and never become an event.
	if maxPayload := (ingest.Config{}).WithDefaults().MaxPayload; ic.MaxPayload > maxPayload {
		errs = append(errs, fmt.Errorf("Inbound.MaxPayload (%d) is larger than the largest event payload (%d): such receipts would be accepted and never become events", ic.MaxPayload, maxPayload))
	}
	return errors.Join(errs...)
}

// named prefixes each of a component's errors (errors.Join's, one a setting) with the
// component's place in Config.
func named(prefix string, err error) []error {
	if err == nil {
		return nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	out := make([]error, len(list))
	for i, e := range list {
		out[i] = fmt.Errorf("%s%w", prefix, e)
	}
	return out
}

// senderConfig is the delivery sender's settings, as Start builds it.
func (c Config) senderConfig() sender.Config {
	sc := c.Sender
	sc.InsecureTargets, sc.Now = c.InsecureTargets, c.Now
	return sc.WithDefaults()
}

// dispatchConfig is the dispatcher's settings, as Start builds it (but for the parts
// that exist only then: metrics, tracer, cluster).
func (c Config) dispatchConfig() dispatch.Config {
	dc := c.Dispatch
	dc.Now, dc.Logger = c.Now, c.Logger
	return dc.WithDefaults()
}

// inboundConfig is the inbound sources' settings, as Start builds them (but for metrics).
func (c Config) inboundConfig() inbound.Config {
	ic := c.Inbound
	ic.InsecureTargets, ic.ValidateURL, ic.Now, ic.Logger = c.InsecureTargets, sender.ValidateTargetURL, c.Now, c.Logger
	return ic.WithDefaults()
}

// jobConfig is the jobs' settings, as Start builds them: a replay reaches back no
// further than the retention.
func (c Config) jobConfig() job.Config {
	jc := c.Jobs
	jc.Retention, jc.Now, jc.Logger = c.Retention, c.Now, c.Logger
	return jc.WithDefaults()
}

// apiConfig is the API's settings, as Start builds them (but for the tracer).
func (c Config) apiConfig() api.Config {
	ac := c.API
	ac.Now, ac.Logger = c.Now, c.Logger
	if ac.PublicURL == "" {
		ac.PublicURL = c.PublicURL
	}
	return ac.WithDefaults()
}

// guardConfig is the guard's settings, as Start builds them.
func (c Config) guardConfig() guard.Config {
	gc := c.Guard
	gc.Now, gc.Logger = c.Now, c.Logger
	return gc.WithDefaults()
}

// Start checks the settings (Validate), opens the store, applies migrations and starts
// serving.
func Start(ctx context.Context, cfg Config) (*App, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid settings:\n%w", err)
	}
	log := cfg.Logger
	st, err := OpenStore(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, Store: st}
	if err := a.build(ctx); err != nil {
		if a.Ingest != nil {
			a.Ingest.Close()
		}
		st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		a.Ingest.Close()
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	a.listener = ln
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.done.Add(2)
	go func() {
		defer a.done.Done()
		a.Dispatcher.Run(runCtx)
	}()
	if p, ok := st.(store.Purger); ok && cfg.Retention >= 0 {
		r := maint.NewRetention(p, maint.RetentionConfig{Age: cfg.Retention, Now: cfg.Now, Logger: log,
			Turn: a.Dispatcher.Turn("retention", 50*time.Minute)})
		a.done.Go(func() { r.Run(runCtx) })
	}
	a.done.Go(func() { a.jobRunner.Run(runCtx) })
	cc := cfg.certExpiryConfig()
	cc.Turn = a.Dispatcher.Turn("certificate-expiry", 50*time.Minute)
	ce := maint.NewCertExpiry(a.Manage.AnnounceExpiringCertificates, cc)
	a.done.Go(func() { ce.Run(runCtx) })
	inboundCtx, stopInbound := context.WithCancel(context.WithoutCancel(ctx))
	a.stopInbound = stopInbound
	a.inboundDone.Go(func() { a.Inbound.Run(inboundCtx) })
	go func() {
		defer a.done.Done()
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	storeAttr := slog.String("store", "postgres")
	if db, ok := st.(*sqlite.DB); ok {
		storeAttr = slog.String("store", "sqlite ("+string(db.Engine())+" engine) in "+cfg.DataDir)
	}
	log.Info("consign serving", "addr", ln.Addr().String(), storeAttr, "node", a.Dispatcher.Node(), "insecure_targets", cfg.InsecureTargets)
	return a, nil
}

func (a *App) build(ctx context.Context) error {
	cfg := a.cfg
	if cfg.TracerProvider == nil {
		var err error
		if cfg.TracerProvider, a.traceShutdown, err = tracerFromEnv(ctx); err != nil {
			return err
		}
	}
	var tracer trace.Tracer
	if cfg.TracerProvider != nil {
		tracer = cfg.TracerProvider.Tracer("github.com/consign-dev/consign")
	}
	// Every component sees the store through the timing decorator. It hides the
	// driver's optional interfaces (store.Purger…): assert those on the driver's store.
	a.metrics = metrics.New()
	cluster, _ := a.Store.(store.Cluster)
	writer, _ := a.Store.(store.SharedWriter)
	a.Store = a.metrics.Store(a.Store)
	key, err := encryptionKey(cfg)
	if err != nil {
		return err
	}
	box, err := secretbox.New(key)
	if err != nil {
		return err
	}
	a.sender = sender.New(cfg.senderConfig())
	// Where deliveries go, by the endpoint URL's scheme (docs/delivery-pipeline.md).
	// HTTP, the first kind, is also the default: it words the refusal of any other scheme.
	// The brokers follow, each a package of its own.
	bc := destination.BrokerConfig{InsecureTargets: cfg.InsecureTargets, Now: cfg.Now,
		Timeout: a.cfg.senderConfig().Timeout, ConnectTimeout: a.cfg.senderConfig().ConnectTimeout}
	natsKind, natsSender := natsdest.Kind(bc)
	amqpKind, amqpSender := amqpdest.Kind(bc)
	kafkaKind, kafkaSender := kafkadest.Kind(bc)
	redisKind, redisSender := redisdest.Kind(bc)
	a.brokers = append(a.brokers, natsSender, amqpSender, kafkaSender, redisSender)
	dests, err := destination.NewRegistry(destination.Kind{Name: "HTTP", Schemes: []string{"https", "http"},
		Check: sender.ValidateTargetURL, Sender: a.sender}, natsKind, amqpKind, kafkaKind, redisKind)
	if err != nil {
		return err
	}
	// Ingest hands new deliveries to the dispatcher; the dispatcher and manage publish
	// operational events through ingest, which exists by the time they emit.
	emit := func(ctx context.Context, orgID, typ string, payload any) error {
		return a.Ingest.Emit(ctx, orgID, typ, payload)
	}
	a.Manage = manage.New(a.Store, box, manage.Config{InsecureTargets: cfg.InsecureTargets, Now: cfg.Now,
		ValidateURL: dests.CheckURL, Emit: emit, Logger: cfg.Logger, TypeChanged: func(name string) {
			a.Ingest.ForgetType(name)
			a.Dispatcher.ForgetType(name)
		}})
	dc := cfg.dispatchConfig()
	dc.Metrics, dc.Tracer = a.metrics, tracer
	dc.CheckURL = func(raw string) error { return dests.CheckURL(raw, cfg.InsecureTargets) }
	if cfg.Database != "" {
		// Several nodes may share the database: endpoints are divided between them.
		dc.Cluster = cluster
	}
	a.Dispatcher = dispatch.New(a.Store, a.Manage, dispatch.EmitterFunc(emit), dests, dc)
	a.Ingest = ingest.New(a.Store, ingest.Config{Now: cfg.Now, Logger: cfg.Logger, Dispatcher: a.Dispatcher, Metrics: a.metrics, Tracer: tracer,
		Writer: writer})
	a.metrics.WatchQueue(a.Dispatcher.Load)
	a.metrics.WatchNarrowed(a.Dispatcher.Narrowed)
	if dc.Cluster != nil {
		a.metrics.WatchOwned(a.Dispatcher.Owned)
	}
	a.metrics.WatchStore(a.Store, 0)
	if err := a.Manage.EnsureCatalog(ctx); err != nil {
		return fmt.Errorf("event-type catalog: %w", err)
	}
	// Endpoint headers written in clear by an older version are sealed now (once).
	if n, err := a.Manage.SealStoredHeaders(ctx); err != nil {
		return fmt.Errorf("seal endpoint headers: %w", err)
	} else if n > 0 {
		cfg.Logger.Info("sealed the headers of endpoints stored in clear", "endpoints", n)
	}
	if a.NewAdminKey, err = a.Manage.EnsureAdminKey(ctx, cfg.AdminKey); err != nil {
		return fmt.Errorf("admin key: %w", err)
	}
	// The embedded store has one process: leases still held are its previous life's,
	// cut short by a crash or a kill. Send those deliveries again now. A shared
	// PostgreSQL database holds other nodes' leases too: those are left alone, and a dead
	// node's come due again by themselves when they end.
	if cfg.Database == "" {
		if n, err := a.Store.DeliveriesReleaseLeases(ctx, cfg.Now()); err != nil {
			return fmt.Errorf("release leases: %w", err)
		} else if n > 0 {
			cfg.Logger.Info("deliveries in flight at the last stop are due again", "count", n)
		}
	}
	// Polls fetch whole lists: a longer timeout (each poll sets its own, at most 5m) and
	// a larger body than deliveries, behind the same SSRF guard.
	ps := cfg.Sender
	ps.InsecureTargets, ps.Now = cfg.InsecureTargets, cfg.Now
	ps.Timeout, ps.MaxResponseBody, ps.MaxIdleConnsPerHost = consign.MaxPollTimeout, 8<<20, 4
	a.pollSender = sender.New(ps)
	ic := cfg.inboundConfig()
	ic.Metrics = a.metrics
	a.Inbound = inbound.New(a.Store, box, a.Ingest, a.pollSender, ic)
	gc := cfg.guardConfig()
	gc.Metrics = a.metrics
	a.Guard = guard.New(gc)
	a.metrics.WatchBodies(a.Guard.Held)
	jc := cfg.jobConfig()
	a.jobRunner = job.NewRunner(a.Store, jc, func(id string) { a.Dispatcher.Wake(id) }, a.Dispatcher.Turn)
	a.Jobs = job.NewService(a.Store, jc, a.jobRunner.Kick)
	ac := cfg.apiConfig()
	ac.Tracer, ac.Throttle = tracer, a.Guard
	handler := api.New(a.Store, a.Manage, a.Ingest, a.Dispatcher, a.Inbound, a.Jobs, ac)
	// /metrics is public, like /healthz: it shows counts and endpoint IDs, no payloads
	// or credentials. Restrict it at the proxy if endpoint IDs should stay private.
	root := http.NewServeMux()
	root.Handle("GET /metrics", a.metrics.Handler())
	root.Handle("/", web.Mount(handler, web.New(a.Store, a.Manage, a.Dispatcher, a.Inbound, a.Jobs, web.Config{PublicURL: ac.PublicURL, Throttle: a.Guard,
		FrameAncestors: cfg.UIFrameAncestors, Now: cfg.Now, Logger: cfg.Logger})))
	// No ReadTimeout: the guard sets each body's read deadline (a fixed one would cut a
	// large batch on a slow link, and cancel a handler that outlives it).
	a.http = &http.Server{
		Handler:           a.Guard.Bodies(root),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return nil
}

func (c Config) certExpiryConfig() maint.CertExpiryConfig {
	return maint.CertExpiryConfig{Every: c.CertificateCheck, Logger: c.Logger}.WithDefaults()
}

func encryptionKey(cfg Config) ([]byte, error) {
	if cfg.EncryptionKey != "" {
		return secretbox.ParseKey(cfg.EncryptionKey)
	}
	// With PostgreSQL nothing else has created the data directory.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	return secretbox.LoadOrCreateKeyFile(filepath.Join(cfg.DataDir, "encryption.key"))
}

// URL is the base URL the server listens on, with a loopback host when it listens on
// every interface.
func (a *App) URL() string {
	addr := a.listener.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// Close stops accepting requests, lets requests in flight finish, stops the dispatcher
// (attempts in flight finish and are recorded), and closes the store.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.http.Shutdown(ctx)
	// Sources stop before ingest closes, so receipts being published finish; any left
	// pending are published at the next start.
	a.stopInbound()
	a.inboundDone.Wait()
	a.Ingest.Close()
	a.cancel()
	a.done.Wait()
	a.sender.Close()
	a.pollSender.Close()
	for _, b := range a.brokers {
		b.Close()
	}
	if a.traceShutdown != nil {
		err = errors.Join(err, a.traceShutdown(ctx))
	}
	return errors.Join(err, a.Store.Close())
}
