// Package dispatch is the delivery engine: claim due deliveries, sign and send them,
// record each attempt, and reschedule or finish the delivery.
//
// Design. The store's deliveries table is the queue; this package keeps, per endpoint, a
// small in-memory view of it (epState): when the endpoint's next delivery comes due, a
// buffer of deliveries already leased from the store, the attempts in flight, a token
// bucket for rate_limit, and a hold time set by Retry-After.
//
// One loop goroutine owns that state. Each turn it
//  1. claims, in one transaction run in the background (the loop does not wait for the
//     store's writer), due deliveries for every endpoint that has due work and room in
//     its buffer (claims are per endpoint, so a backlog of a million deliveries for one
//     endpoint costs the others nothing; a lease makes work claimed by a process that
//     died come due again by itself);
//  2. starts attempts round-robin across endpoints while the global Concurrency, the
//     endpoint's burst_limit (0: no cap but Concurrency), its window (window.go: as
//     many as it answers without queueing) and its rate limit allow — a slow or failing
//     endpoint holds only its own slots;
//  3. sleeps until the next due time, a rate-limit token, a finished attempt, or a wake-up
//     from ingest or the API (a new event is claimed at once, not on a polling tick).
//
// Attempts run on long-lived worker goroutines (fewer than twice Concurrency), not one new
// goroutine each: a new goroutine starts on the runtime's smallest stack and copies it
// as an HTTP request grows it, every time (3 µs an attempt in profiles). After a success
// a worker goes on with its endpoint's next buffered delivery itself, under the loop's
// lock and by the loop's rules (take), when nothing else waits for its slot: under load
// the loop then turns for claims, failures and holds, not once per attempt. Outcomes go to one
// recorder that writes whatever has queued in one transaction (attempt rows, new states,
// endpoint health), then judges the failure policies of endpoints that failed (policy.go).
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/internal/store"
)

// Config configures the Dispatcher. Zero fields take their defaults (WithDefaults);
// Validate says which settings cannot work.
type Config struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Concurrency is the most attempts in flight at once; default 256.
	Concurrency int
	// EndpointConcurrency is the most attempts in flight to one endpoint that sets no
	// burst_limit (0, "no limit"); default Concurrency, so that such an endpoint is bounded
	// only by the node-wide limit (and its adaptive window).
	EndpointConcurrency int
	// ClaimBatch is the most deliveries leased for one endpoint per claim, and the size
	// of its buffer in memory; default 2048, so that an endpoint a few batches behind is
	// still served from memory (MaxQueued bounds the total).
	ClaimBatch int
	// MaxQueued caps the deliveries held in memory across all endpoints, waiting for
	// their turn; default 20,000 (about 25 MB with 1 KiB payloads).
	MaxQueued int
	// Lease is how long a claimed delivery is held before another claim may take it;
	// it must exceed the sender's timeout (internal/app checks it). Default 2 minutes.
	Lease time.Duration
	// Resync is how often the due times of all endpoints are read again from the store,
	// which bounds how late work written by another process is noticed; default 2 s.
	Resync time.Duration
	// PolicySweep is how often failing endpoints are checked against their failure
	// policy even without new attempts; default 30 s.
	PolicySweep time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Metrics, if set, observes each attempt.
	Metrics Metrics
	// Tracer, if set, gives each attempt a span, a child of the fan-out's when ingest
	// handed the delivery over in memory, and sends its traceparent to the endpoint.
	Tracer trace.Tracer
	// Cluster, when set, divides endpoints between the nodes sharing the store
	// (cluster.go); unset, this process owns every endpoint.
	Cluster store.Cluster
	// Node names this process in the cluster; default a fresh random ID.
	Node string
	// OwnerTTL is how long an endpoint's ownership lasts without a heartbeat (one per
	// Resync), which bounds how long a dead node's endpoints wait: OwnerTTL + Resync.
	// Default 5 s.
	OwnerTTL time.Duration
	// IdleRelease is how long an owned endpoint with no work stays owned; default 30 s.
	IdleRelease time.Duration
	// CheckURL, if set, checks a URL an endpoint's transformation chose by the rules of
	// endpoint URLs (the destination registry's, with the server's target policy).
	// Unset, such a URL meets only the sender's own guard.
	CheckURL func(raw string) error
}

// Metrics observes the dispatcher. It is called on the delivery path, so it must be
// cheap and must not block.
type Metrics interface {
	// Attempted is called after each attempt that made (or refused to make) a request:
	// the endpoint, the delivery's status after it (succeeded; pending: to be retried;
	// failed; paused) and how long the request took.
	Attempted(endpointID, status string, took time.Duration)
}

// Endpoints is what the dispatcher needs to know about, and do to, endpoints.
type Endpoints interface {
	// Endpoint returns an endpoint (orgID "" for any org) with its auth token opened.
	Endpoint(ctx context.Context, orgID, id string) (*consign.Endpoint, error)
	// SigningKeys returns the keys that sign at now and when each expires (zero: never).
	SigningKeys(ctx context.Context, endpointID string, now time.Time) ([]signing.Key, []time.Time, error)
	// Deactivate turns an endpoint off with a reason (410 Gone, failure policy).
	Deactivate(ctx context.Context, orgID, endpointID, reason string) error
}

// Emitter publishes Consign's operational events into an org.
type Emitter interface {
	Emit(ctx context.Context, orgID, typ string, payload any) error
}

// EmitterFunc adapts a function to Emitter.
type EmitterFunc func(ctx context.Context, orgID, typ string, payload any) error

// Emit calls f.
func (f EmitterFunc) Emit(ctx context.Context, orgID, typ string, payload any) error {
	return f(ctx, orgID, typ, payload)
}

// Sender is the send stage: it makes one attempt and says what became of it. The
// composition root passes a destination.Registry, which picks the kind of destination
// (HTTP first) by the endpoint URL's scheme.
type Sender interface {
	Send(ctx context.Context, r destination.Request) destination.Outcome
}

// pipeliner is a Sender that knows which URLs' attempts are pipelined on a shared
// connection (destination.Kind.Pipelined; the Registry is one). Their round trips do
// not feed the endpoint's window: a broker's acks come back in batches, and a round
// trip that lengthens there says that more attempts share a write, not that they queue
// for the partner; narrowing them would split the batches, and each smaller batch costs
// the broker (and this process) more per message. Such an endpoint keeps its burst limit.
type pipeliner interface {
	Pipelined(url string) bool
}

// Dispatcher delivers due deliveries until its context ends. It schedules per endpoint
// (this file); which endpoints are this node's to send to is its ownership's business
// (cluster.go), what one attempt goes through is deliver.go's, and writing outcomes the
// recorder's.
//
// Locks. Each mutex guards the fields listed under it, and nothing is read or written
// without it unless the comment says so:
//   - mu: the scheduling state, everything from eps to the end of the struct, every
//     epState (its window included) and clusterOwner.fence and .foreign. The loop holds
//     it while it decides, never while it waits for the store; ingest takes it briefly
//     (Reserve, Release, Handoff), a worker after a success (goOn), a finished claim or
//     load to take in their answer, and the read-outs (Load, Narrowed, EndpointState).
//   - wakeMu: the mailbox, woken, holds and resyncNow, and clusterOwner.wokenRemote and
//     .toNotify: what other goroutines tell the loop between two turns.
//   - trips.mu (policy.go), jitter.mu, cache.mu (cache.go), versions.mu (versions.go):
//     their own small maps, each taken alone for a moment.
//
// Order: mu before wakeMu (the loop takes its mailbox while it holds mu; nothing takes
// mu while holding wakeMu). The others are leaves: no lock is taken while one of them is
// held. The fields above wakeMu are set by New and not changed afterwards (cache, trips,
// tokens, jitter and wg synchronise themselves; signal, done and jobs are channels).
type Dispatcher struct {
	store     store.Store
	endpoints Endpoints
	emitter   Emitter
	sender    Sender
	own       ownership // soleOwner, or clusterOwner with Config.Cluster
	cfg       Config
	traced    bool // cfg.Tracer is set
	log       *slog.Logger
	recorder  *recorder
	cache     endpointCache
	versions  versionCache      // event types' payload versions (versions.go)
	tokens    *oauthTokens      // OAuth 2.0 access tokens of oauth2 endpoints (oauth.go)
	trips     tripper           // failure policies being applied (policy.go)
	jitter    jitter            // the retry schedule's randomness
	wg        sync.WaitGroup    // workers and the claim in the background, for Run's end
	signal    chan struct{}     // wakes the loop; one pending wake-up is enough
	done      chan finished     // attempts' ends, to the loop
	jobs      chan *store.Claim // to idle workers (unbuffered: a send finds one or none)

	wakeMu    sync.Mutex
	woken     map[string]bool // endpoints with new due work, since the loop last looked
	holds     []holdReq       // Retry-After holds, since the loop last looked
	resyncNow bool            // read every due time again at the next turn

	mu  sync.Mutex
	eps map[string]*epState
	// watch is what the loop's scans visit: every endpoint with buffered work, known due
	// work or a hold, and maybe some that have none left. Each turn's first scan drops
	// those (see idle); whatever gives an endpoint work again goes through ep, which adds
	// it back. A turn then costs the endpoints that have something going on, not every
	// endpoint with recent activity (thousands, for a marketplace of vendors).
	watch    map[*epState]struct{}
	inflight int
	queued   int             // deliveries in all buffers and reservations, against MaxQueued
	held     map[string]bool // delivery IDs queued or in flight, so a claim never doubles one
	claiming bool            // a claim runs in the background
}

// epState is the loop's view of one endpoint.
type epState struct {
	id       string
	watched  bool      // in the dispatcher's watch
	nextDue  time.Time // earliest due work in the store; zero: none known
	queue    []queued
	inflight int
	reserved int // buffer room promised to ingest for deliveries it is writing, or to a claim
	// claiming is set while a claim for the endpoint runs; dueSince is the earliest due
	// time learnt meanwhile, which the claim's answer must not hide.
	claiming bool
	dueSince time.Time
	// Delivery settings, once known (from ingest's fan-out, a claim, or a load).
	known      bool
	loading    bool
	burstLimit int
	coalesce   bool
	limiter    *rate.Limiter
	rateLimit  float64
	holdUntil  time.Time // Retry-After, or the circuit breaker
	notBefore  time.Time // next rate-limit token
	// failures counts attempts failed in a row; from circuitThreshold on, the endpoint
	// is held for backoff (doubling up to circuitMaxBackoff) between single probes, so a
	// dead endpoint with a large backlog does not burn the capacity the others need.
	failures int
	backoff  time.Duration
	// win adapts the endpoint's attempts in flight to its round-trip times (window.go).
	win window
	own epOwnership // the cluster's view of the endpoint (cluster.go); zero on one process
}

// Circuit breaker settings.
const (
	circuitThreshold  = 5
	circuitMinBackoff = time.Second
	circuitMaxBackoff = time.Minute
)

// minResyncGap is the least time between resyncs asked for by wake-ups.
const minResyncGap = 100 * time.Millisecond

type queued struct {
	claim    *store.Claim
	leaseEnd time.Time
}

type holdReq struct {
	endpointID string
	until      time.Time
}

// finished reports an attempt's end to the loop.
type finished struct {
	endpointID, deliveryID string
	nextDue                time.Time     // when the delivery is due again; zero if finished
	attempted, ok          bool          // whether an attempt was made, and succeeded
	took                   time.Duration // the request's round trip (0: nothing was sent)
}

// Defaults of Config.
const (
	DefaultConcurrency = 256
	DefaultClaimBatch  = 2048
	DefaultMaxQueued   = 20000
	DefaultLease       = 2 * time.Minute
	DefaultResync      = 2 * time.Second
	DefaultPolicySweep = 30 * time.Second
	DefaultOwnerTTL    = 5 * time.Second
	DefaultIdleRelease = 30 * time.Second
)

// WithDefaults returns c with each zero field set to its default (Node: a fresh random
// ID).
func (c Config) WithDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.EndpointConcurrency == 0 {
		c.EndpointConcurrency = c.Concurrency
	}
	if c.ClaimBatch == 0 {
		c.ClaimBatch = DefaultClaimBatch
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.Resync == 0 {
		c.Resync = DefaultResync
	}
	if c.PolicySweep == 0 {
		c.PolicySweep = DefaultPolicySweep
	}
	if c.OwnerTTL == 0 {
		c.OwnerTTL = DefaultOwnerTTL
	}
	if c.IdleRelease == 0 {
		c.IdleRelease = DefaultIdleRelease
	}
	if c.Node == "" {
		c.Node = consign.NewID("node_", c.Now())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every setting of c (with its defaults applied) that cannot work,
// naming each. With Cluster set, the ownership settings are checked too (ValidateCluster).
func (c Config) Validate() error {
	return c.validate(c.Cluster != nil)
}

// ValidateCluster is Validate for a dispatcher that will share its store with other
// nodes, whether or not Cluster is set yet.
func (c Config) ValidateCluster() error {
	return c.validate(true)
}

func (c Config) validate(cluster bool) error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"Concurrency", c.Concurrency}, {"EndpointConcurrency", c.EndpointConcurrency}, {"ClaimBatch", c.ClaimBatch}, {"MaxQueued", c.MaxQueued}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s is %d; it must be positive", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"Lease", c.Lease}, {"Resync", c.Resync}, {"PolicySweep", c.PolicySweep}, {"OwnerTTL", c.OwnerTTL}, {"IdleRelease", c.IdleRelease}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s is %s; it must be positive", f.name, f.v))
		}
	}
	// Each node renews its endpoints once per Resync: ownership lasting no longer than
	// that would lapse between two heartbeats of a live node.
	if cluster && c.Resync > 0 && c.OwnerTTL > 0 && c.OwnerTTL <= c.Resync {
		errs = append(errs, fmt.Errorf("OwnerTTL (%s) must be longer than Resync (%s), the time between two heartbeats", c.OwnerTTL, c.Resync))
	}
	return errors.Join(errs...)
}

// New returns a Dispatcher; Run starts it. cfg gets its defaults; New panics when it
// does not pass Validate (the composition root validates its settings first).
func New(s store.Store, eps Endpoints, em Emitter, snd Sender, cfg Config) *Dispatcher {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic("dispatch: invalid settings: " + err.Error())
	}
	// Without a tracer, attempts make no span at all (a no-op tracer's Start still costs
	// its options: five allocations an attempt).
	d := &Dispatcher{traced: cfg.Tracer != nil,
		store: s, endpoints: eps, emitter: em, sender: snd, own: soleOwner{}, cfg: cfg, log: cfg.Logger,
		woken: map[string]bool{}, signal: make(chan struct{}, 1), done: make(chan finished, cfg.Concurrency),
		jobs:   make(chan *store.Claim),
		jitter: jitter{rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))},
		trips:  tripper{tripping: map[string]bool{}},
		eps:    map[string]*epState{}, watch: map[*epState]struct{}{}, held: map[string]bool{},
	}
	if cfg.Cluster != nil {
		d.own = newClusterOwner(d, cfg.Cluster)
	}
	d.cache = endpointCache{eps: eps, entries: map[string]*endpointEntry{}}
	d.versions = versionCache{types: s, entries: map[string]*typeVersions{}}
	d.tokens = newOAuthTokens(snd)
	d.recorder = newRecorder(s, cfg.Logger, d.afterRecord)
	return d
}

// Wake tells the dispatcher that the given endpoints have new due work; with no
// endpoints, that anything may have changed (it then reads every due time again). It
// never blocks.
func (d *Dispatcher) Wake(endpointIDs ...string) {
	d.wake(d.woken, endpointIDs)
}

// wake marks the endpoints in set (woken, or the cluster's wokenRemote), or asks for a
// resync when there are none, and signals the loop.
func (d *Dispatcher) wake(set map[string]bool, endpointIDs []string) {
	d.wakeMu.Lock()
	if len(endpointIDs) == 0 {
		d.resyncNow = true
	}
	for _, id := range endpointIDs {
		set[id] = true
	}
	d.wakeMu.Unlock()
	select {
	case d.signal <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for attempts in flight and their records.
func (d *Dispatcher) Run(ctx context.Context) {
	go d.recorder.run(ctx.Done())
	defer func() {
		d.wg.Wait()
		d.recorder.close()
		d.trips.wg.Wait()
		d.own.leave()
	}()
	go d.sweepPolicies(ctx)
	d.own.run(ctx)
	var lastResync, nextResync time.Time
	// One timer for the loop's waits, reset each time: the loop waits a few times per
	// delivery under load, and a timer each time was a tenth of its allocations.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		now := d.cfg.Now()
		d.mu.Lock()
		d.drainFinished(now)
		resync, soon := d.takeWakes(now)
		d.mu.Unlock()
		if soon {
			// Rate-limited: wake-ups for unowned endpoints come with every event.
			if t := lastResync.Add(minResyncGap); t.Before(nextResync) {
				nextResync = t
			}
		}
		if resync || !now.Before(nextResync) {
			d.resync(ctx, now)
			lastResync, nextResync = now, now.Add(d.cfg.Resync)
		}
		d.mu.Lock()
		d.claim(ctx, now)
		started := d.start(ctx, now)
		var until time.Time
		if !started {
			until = d.sleepUntil(now, nextResync)
		}
		d.mu.Unlock()
		if !started {
			d.sleep(ctx, timer, until.Sub(now))
		}
	}
}

// Reserve promises ingest room for up to n new deliveries of an endpoint that it is
// about to write already leased until the returned time and hand over with Handoff. It
// returns how many it may lease (0 when the endpoint is held, limited or full).
func (d *Dispatcher) Reserve(ep *consign.Endpoint, n int, now time.Time) (int, time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.ep(ep.ID)
	d.learn(e, ep)
	if !d.own.mayClaim(e, now) || now.Before(e.holdUntil) || e.failures >= circuitThreshold {
		return 0, time.Time{}
	}
	_, buffer := d.limits(e)
	k := min(n, buffer-len(e.queue)-e.inflight-e.reserved, d.cfg.MaxQueued-d.queued)
	if k <= 0 {
		return 0, time.Time{}
	}
	e.reserved += k
	d.queued += k
	return k, now.Add(d.cfg.Lease)
}

// Release gives back room reserved for deliveries that were not written after all.
func (d *Dispatcher) Release(endpointID string, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.eps[endpointID]; ok {
		n = min(n, e.reserved)
		e.reserved -= n
		d.queued -= n
	}
}

// Handoff takes deliveries that ingest has written leased, and queues them to be sent,
// with no claim transaction: on one node the freshly written delivery is already here.
func (d *Dispatcher) Handoff(claims []*store.Claim, leaseEnd time.Time) {
	d.mu.Lock()
	for _, c := range claims {
		e := d.ep(c.EndpointID)
		if e.reserved > 0 {
			e.reserved--
			d.queued--
		}
		if d.held[c.DeliveryID] {
			continue
		}
		d.queued++
		d.held[c.DeliveryID] = true
		e.queue = append(e.queue, queued{claim: c, leaseEnd: leaseEnd})
	}
	d.mu.Unlock()
	select {
	case d.signal <- struct{}{}:
	default:
	}
}

// takeWakes marks woken endpoints due now and reports whether a full resync was asked,
// and whether one is wanted soon (for work on an endpoint no node is known to own).
func (d *Dispatcher) takeWakes(now time.Time) (resync, soon bool) {
	d.wakeMu.Lock()
	defer d.wakeMu.Unlock()
	for id := range d.woken {
		d.ep(id).due(now)
	}
	soon = d.own.wakes(d.woken, now)
	clear(d.woken)
	for _, h := range d.holds {
		if e := d.ep(h.endpointID); h.until.After(e.holdUntil) {
			e.holdUntil = h.until
		}
	}
	d.holds = d.holds[:0]
	for e := range d.watch {
		if !e.holdUntil.IsZero() && !now.Before(e.holdUntil) {
			e.holdUntil = time.Time{}
		}
		if e.idle() {
			delete(d.watch, e)
			e.watched = false
		}
	}
	resync = d.resyncNow
	d.resyncNow = false
	return resync, soon
}

// ep returns the state of an endpoint, creating it if need be, and puts it in the
// loop's watch. Called with d.mu held.
func (d *Dispatcher) ep(id string) *epState {
	e, ok := d.eps[id]
	if !ok {
		e = &epState{id: id}
		d.eps[id] = e
	}
	if !e.watched {
		e.watched = true
		d.watch[e] = struct{}{}
	}
	return e
}

// idle says whether the loop's scans have nothing to do for e: nothing buffered, no
// known due work, no hold. (Attempts in flight come back through finish, claims
// through their answer, ingest's deliveries through Handoff, all by way of ep.)
func (e *epState) idle() bool {
	return len(e.queue) == 0 && e.nextDue.IsZero() && e.holdUntil.IsZero()
}

// due lowers the endpoint's next due time to t.
func (e *epState) due(t time.Time) {
	if e.nextDue.IsZero() || t.Before(e.nextDue) {
		e.nextDue = t
	}
	if e.claiming && (e.dueSince.IsZero() || t.Before(e.dueSince)) {
		e.dueSince = t
	}
}

func (d *Dispatcher) resync(ctx context.Context, now time.Time) {
	due, err := d.store.DeliveriesDue(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("read due deliveries", "err", err)
		}
		return
	}
	d.mu.Lock()
	for id, t := range due {
		d.ep(id).due(t)
	}
	d.mu.Unlock()
	d.own.heartbeat(ctx, now, due)
	d.mu.Lock()
	defer d.mu.Unlock()
	// Forget idle endpoints so the map does not grow with every endpoint ever seen.
	for id, e := range d.eps {
		if _, ok := due[id]; !ok && e.nextDue.IsZero() && len(e.queue) == 0 && e.inflight == 0 && e.reserved == 0 &&
			!now.Before(e.holdUntil) && e.failures == 0 && !d.own.keeps(e) {
			delete(d.eps, id)
			delete(d.watch, e)
		}
	}
}

// learn takes an endpoint's delivery settings into its state.
func (d *Dispatcher) learn(e *epState, ep *consign.Endpoint) {
	e.known, e.burstLimit, e.coalesce = true, ep.BurstLimit, ep.Coalesce
	if ep.RateLimit != e.rateLimit {
		e.rateLimit, e.limiter = ep.RateLimit, nil
		if ep.RateLimit > 0 {
			e.limiter = rate.NewLimiter(rate.Limit(ep.RateLimit), max(1, int(ep.RateLimit)))
			d.own.newLimiter(e.limiter, d.cfg.Now())
		}
	}
}

// limits returns the endpoint's in-flight cap and the size of its buffer in memory.
func (d *Dispatcher) limits(e *epState) (burst, buffer int) {
	burst, buffer = d.cfg.EndpointConcurrency, d.cfg.ClaimBatch
	if e.burstLimit > 0 {
		burst = e.burstLimit
		buffer = min(buffer, max(2*burst, 16))
	}
	if e.coalesce {
		// What waits in the store can still be superseded; what is buffered cannot.
		buffer = min(buffer, 2*burst)
	}
	if e.rateLimit > 0 {
		// No more than ten seconds of sending waits in memory, well inside the lease.
		buffer = min(buffer, max(1, int(e.rateLimit*10)))
	}
	return burst, max(buffer, 1)
}

// load reads an endpoint's settings in the background, for an endpoint whose buffer got
// work before the loop knew its limits.
func (d *Dispatcher) load(ctx context.Context, e *epState) {
	if e.loading {
		return
	}
	e.loading = true
	go func() {
		ep, err := d.endpoints.Endpoint(ctx, "", e.id)
		d.mu.Lock()
		e.loading = false
		switch {
		case err == nil:
			d.learn(e, ep)
		case consign.ErrorCode(err) == consign.ENOTFOUND:
			e.known = true // deleted: attempts will cancel its deliveries
		default:
			if ctx.Err() == nil {
				d.log.Error("load endpoint", "endpoint", e.id, "err", err)
			}
		}
		d.mu.Unlock()
		select {
		case d.signal <- struct{}{}:
		default:
		}
	}()
}

// claimRoom returns how many deliveries a claim should lease for e now; 0 when e has no
// due work, is held, is not this node's to claim, or has too little room in its buffer.
// Called with d.mu held.
func (d *Dispatcher) claimRoom(e *epState, now time.Time) int {
	if e.nextDue.IsZero() || e.nextDue.After(now) || now.Before(e.holdUntil) || !d.own.mayClaim(e, now) {
		return 0
	}
	_, buffer := d.limits(e)
	room := min(buffer-len(e.queue)-e.inflight-e.reserved, d.cfg.MaxQueued-d.queued)
	// Claim in batches: wait until half the buffer is free, unless it is empty.
	if room <= 0 || (room < buffer/2 && len(e.queue) > 0) {
		return 0
	}
	return room
}

// claim leases due work for every endpoint that has some and room to buffer it. The
// store's transaction runs in the background: the loop goes on starting attempts from
// the buffers meanwhile instead of waiting for the writer, which a large ingest batch may
// hold for tens of milliseconds. One claim runs at a time; the room it asked for is
// reserved until it returns. Called with d.mu held.
func (d *Dispatcher) claim(ctx context.Context, now time.Time) {
	if d.claiming {
		return
	}
	var quotas []store.Quota
	for e := range d.watch {
		room := d.claimRoom(e, now)
		if room == 0 {
			continue
		}
		quotas = append(quotas, store.Quota{EndpointID: e.id, Limit: room})
		e.reserved += room
		d.queued += room
		e.claiming, e.dueSince = true, time.Time{}
	}
	if len(quotas) == 0 {
		return
	}
	d.claiming = true
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		claims, nextDue, err := d.lease(ctx, now, quotas)
		if err != nil && ctx.Err() == nil {
			d.log.Error("claim deliveries", "err", err)
		}
		d.mu.Lock()
		d.claiming = false
		for _, q := range quotas {
			e := d.ep(q.EndpointID)
			e.reserved -= q.Limit
			d.queued -= q.Limit
			e.claiming = false
			if err == nil {
				// Due times learnt while the claim ran (a wake-up, a retry) still count.
				e.nextDue = nextDue[q.EndpointID]
				if !e.dueSince.IsZero() {
					e.due(e.dueSince)
				}
			}
		}
		for _, c := range claims {
			e := d.ep(c.EndpointID)
			if d.held[c.DeliveryID] || d.own.lost(e) {
				continue // lost to another node while the claim ran: its lease lapses
			}
			d.held[c.DeliveryID] = true
			e.queue = append(e.queue, queued{claim: c, leaseEnd: now.Add(d.cfg.Lease)})
			d.queued++
		}
		d.mu.Unlock()
		select {
		case d.signal <- struct{}{}:
		default:
		}
	}()
}

// lease runs a claim in the store and learns the settings of the endpoints it leased
// work for, before that work is queued, so that each endpoint's own limits apply from
// its first attempt (a store read only for endpoints not cached yet).
func (d *Dispatcher) lease(ctx context.Context, now time.Time, quotas []store.Quota) ([]*store.Claim, map[string]time.Time, error) {
	res, err := d.store.DeliveriesClaim(ctx, store.ClaimParams{Now: now, LeaseUntil: now.Add(d.cfg.Lease), Quotas: quotas})
	if err != nil {
		return nil, nil, err
	}
	learned := map[string]*consign.Endpoint{}
	for _, c := range res.Claims {
		if _, ok := learned[c.EndpointID]; ok {
			continue
		}
		ent, err := d.cache.get(ctx, c, now)
		if err != nil && consign.ErrorCode(err) != consign.ENOTFOUND {
			d.log.Error("load endpoint", "endpoint", c.EndpointID, "err", err)
		} else if err == nil {
			learned[c.EndpointID] = ent.endpoint
		}
	}
	d.mu.Lock()
	for id, ep := range learned {
		d.learn(d.ep(id), ep)
	}
	d.mu.Unlock()
	return res.Claims, res.NextDue, nil
}

// start begins attempts round-robin across endpoints while limits allow. It reports
// whether it started any.
func (d *Dispatcher) start(ctx context.Context, now time.Time) bool {
	startedAny := false
	for progress := true; progress && d.inflight < d.cfg.Concurrency; {
		progress = false
		for e := range d.watch {
			if d.inflight >= d.cfg.Concurrency {
				break
			}
			if c := d.take(ctx, e, now); c != nil {
				progress, startedAny = true, true
				d.dispatch(ctx, c)
			}
		}
	}
	return startedAny
}

// take removes the next delivery of e that may start now from its buffer and counts it
// in flight; nil when e may not start one now (nothing buffered, no room in the
// dispatcher or in e's window, a hold, a rate limit, another node's endpoint, settings
// still loading, or a head whose lease ran short, which it drops). Called with d.mu held.
func (d *Dispatcher) take(ctx context.Context, e *epState, now time.Time) *store.Claim {
	if len(e.queue) == 0 || d.inflight >= d.cfg.Concurrency || now.Before(e.holdUntil) || !d.own.owns(e, now) {
		return nil
	}
	if !e.known {
		d.load(ctx, e)
		return nil
	}
	burst, _ := d.limits(e)
	if e.failures >= circuitThreshold {
		burst = 1 // one probe at a time until an attempt succeeds
	}
	if e.inflight >= e.win.limit(burst) {
		return nil
	}
	q := e.queue[0]
	if !now.Before(q.leaseEnd.Add(-d.cfg.Lease / 4)) {
		// Waited too long: the lease may lapse mid-attempt. Drop it; a later
		// claim takes it again.
		e.queue = e.queue[1:]
		d.queued--
		delete(d.held, q.claim.DeliveryID)
		e.due(q.leaseEnd)
		return nil
	}
	if e.limiter != nil {
		// The bucket's clock is when the token is taken, not when the turn began: a turn
		// that began before its deliveries were written (and a loaded machine's long
		// turns) would spend the first burst in the past, and the rest would reach the
		// partner closer together than the limit.
		at := d.cfg.Now()
		r := e.limiter.ReserveN(at, 1)
		if delay := r.DelayFrom(at); delay > 0 {
			r.CancelAt(at)
			e.notBefore = at.Add(delay)
			return nil
		}
	}
	e.queue = e.queue[1:]
	d.queued--
	e.inflight++
	d.inflight++
	return q.claim
}

// dispatch hands c to an idle worker, or to a new one when none is idle. Workers are
// the attempts in flight at the busiest moment so far and those that were between two
// attempts then (fewer than twice Concurrency); they end with ctx.
func (d *Dispatcher) dispatch(ctx context.Context, c *store.Claim) {
	select {
	case d.jobs <- c:
	default:
		d.wg.Add(1)
		go d.work(ctx, c)
	}
}

// work runs attempts: c, the deliveries of the same endpoint it may go on with, then
// whatever dispatch hands it, until ctx ends.
func (d *Dispatcher) work(ctx context.Context, c *store.Claim) {
	defer d.wg.Done()
	for {
		for c != nil {
			c = d.run(ctx, c)
		}
		select {
		case c = <-d.jobs:
		case <-ctx.Done():
			return
		}
	}
}

// run makes one attempt and reports its end, to the loop or, after a success, by itself
// (goOn); it returns the delivery to attempt next on this goroutine, if any.
func (d *Dispatcher) run(ctx context.Context, c *store.Claim) *store.Claim {
	ctx, span := d.startSpan(ctx, c)
	o, took, unsent := d.attempt(ctx, c, false)
	endSpan(span, o)
	d.recorder.add(o, c.OrderingKey != "" && ended(o.Status))
	if d.cfg.Metrics != nil && o.Attempt != nil {
		d.cfg.Metrics.Attempted(c.EndpointID, o.Status, time.Duration(o.Attempt.DurationMS)*time.Millisecond)
	}
	// A delivery its transformation cancelled or failed has an attempt row but made no
	// request: it tells nothing of the endpoint (circuit breaker, window).
	attempted := o.Attempt != nil && !unsent
	f := finished{endpointID: c.EndpointID, deliveryID: c.DeliveryID, attempted: attempted, took: took}
	f.ok = f.attempted && o.Status == consign.StatusSucceeded
	if o.Status == consign.StatusPending {
		f.nextDue = o.NextAttemptAt
	}
	next, reported, wake := d.goOn(ctx, f)
	if !reported {
		d.done <- f
	}
	if wake {
		select {
		case d.signal <- struct{}{}:
		default:
		}
	}
	return next
}

// goOn lets a worker whose attempt succeeded go on with the next buffered delivery of
// the same endpoint without a turn of the dispatcher's loop, which costs a wake-up and a
// look at every endpoint. It takes that path only when nothing else waits for the
// worker's slot (the dispatcher is below Concurrency), and reports f itself when it
// does (reported). Failures, holds and everything else go to the loop as before. wake
// says whether the loop must still look: always when f goes to it, and when the
// endpoint has work in the store to claim or the worker found nothing to go on with.
func (d *Dispatcher) goOn(ctx context.Context, f finished) (next *store.Claim, reported, wake bool) {
	if !f.ok || ctx.Err() != nil {
		return nil, false, true
	}
	now := d.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.eps[f.endpointID]
	if !ok || len(e.queue) == 0 || d.inflight >= d.cfg.Concurrency {
		return nil, false, true
	}
	d.finish(f, now)
	next = d.take(ctx, e, now)
	if next == nil {
		return nil, true, true
	}
	return next, true, !e.claiming && d.claimRoom(e, now) > 0
}

// ended says whether a delivery in status is done with: it will not be sent again.
func ended(status string) bool {
	switch status {
	case consign.StatusSucceeded, consign.StatusFailed, consign.StatusCancelled:
		return true
	}
	return false
}

// startSpan starts the span of an attempt at c, continuing c's trace when it has one.
func (d *Dispatcher) startSpan(ctx context.Context, c *store.Claim) (context.Context, trace.Span) {
	if !d.traced {
		return ctx, noop.Span{}
	}
	if c.TraceParent != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": c.TraceParent})
	}
	return d.cfg.Tracer.Start(ctx, "consign.dispatch.attempt", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("consign.delivery_id", c.DeliveryID),
			attribute.String("consign.endpoint_id", c.EndpointID), attribute.Int("consign.attempt", c.AttemptsCount+1)))
}

// endSpan records an attempt's outcome on its span and ends it.
func endSpan(span trace.Span, o *store.Outcome) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(attribute.String("consign.status", o.Status))
	if a := o.Attempt; a != nil && a.Response != nil {
		span.SetAttributes(attribute.Int("http.response.status_code", a.Response.Status))
	}
	if o.Status != consign.StatusSucceeded {
		msg := o.Status
		if o.Attempt != nil && o.Attempt.Error != nil {
			msg = *o.Attempt.Error
		}
		span.SetStatus(codes.Error, msg)
	}
	span.End()
}

// Narrowed returns how many endpoints have a window below their burst limit: their
// answers queue, so fewer of their attempts run at once (window.go).
func (d *Dispatcher) Narrowed() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, e := range d.eps {
		if burst, _ := d.limits(e); e.win.narrowed(burst) {
			n++
		}
	}
	return n
}

// EndpointState returns how this node is sending to an endpoint now, or nil when it holds
// nothing for it.
func (d *Dispatcher) EndpointState(endpointID string) *consign.EndpointDispatch {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.eps[endpointID]
	if !ok {
		return nil
	}
	burst, _ := d.limits(e)
	st := &consign.EndpointDispatch{Queued: len(e.queue), InFlight: e.inflight, Concurrency: e.win.limit(burst),
		BurstLimit: burst, ConsecutiveFailures: e.failures}
	if e.win.minRTT > 0 {
		ms := float64(e.win.minRTT.Microseconds()) / 1000
		st.RoundTripMinMS = &ms
	}
	if now := d.cfg.Now(); now.Before(e.holdUntil) {
		t := e.holdUntil.UTC()
		st.HeldUntil = &t
	}
	return st
}

// Load returns how many deliveries are held in memory waiting for their turn (or
// reserved for ingest's hand-off) and how many attempts are in flight.
func (d *Dispatcher) Load() (queued, inflight int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queued, d.inflight
}

func (d *Dispatcher) drainFinished(now time.Time) {
	for {
		select {
		case f := <-d.done:
			d.finish(f, now)
		default:
			return
		}
	}
}

// finish takes an attempt's end into the state of its endpoint. Called with d.mu held.
func (d *Dispatcher) finish(f finished, now time.Time) {
	d.inflight--
	delete(d.held, f.deliveryID)
	e := d.ep(f.endpointID)
	e.inflight--
	if !f.nextDue.IsZero() {
		e.due(f.nextDue)
	}
	if f.attempted {
		// Round trips are wall-clock time, and so is the window's own clock:
		// a test's Now may stand still.
		burst, _ := d.limits(e)
		e.win.sample(f.took, time.Now(), burst)
	}
	switch {
	case f.ok:
		e.failures, e.backoff = 0, 0
	case f.attempted:
		if e.failures++; e.failures >= circuitThreshold {
			e.backoff = min(max(2*e.backoff, circuitMinBackoff), circuitMaxBackoff)
			if t := now.Add(e.backoff); t.After(e.holdUntil) {
				e.holdUntil = t
			}
		}
	}
}

// sleepUntil returns the earliest of: an endpoint's due time, a rate-limit token, the
// end of a hold, and the next resync.
func (d *Dispatcher) sleepUntil(now, nextResync time.Time) time.Time {
	until := nextResync
	for e := range d.watch {
		if !d.own.owns(e, now) {
			continue // another node's, or sending stopped until a heartbeat
		}
		if !e.nextDue.IsZero() && d.own.mayClaim(e, now) {
			t := e.nextDue
			if e.holdUntil.After(t) {
				t = e.holdUntil
			}
			_, buffer := d.limits(e)
			if buffer-len(e.queue)-e.inflight-e.reserved > 0 && t.Before(until) {
				until = t
			}
		}
		if len(e.queue) > 0 {
			t := now
			if e.notBefore.After(t) {
				t = e.notBefore
			}
			if e.holdUntil.After(t) {
				t = e.holdUntil
			}
			if t.Before(until) {
				until = t
			}
		}
	}
	return until
}

// sleep waits for wait, a finished attempt or a wake-up, on the loop's timer t.
func (d *Dispatcher) sleep(ctx context.Context, t *time.Timer, wait time.Duration) {
	if wait <= 0 {
		wait = time.Millisecond // limits full: wait for a finished attempt or this
	}
	t.Reset(wait) // since Go 1.23 a reset timer never delivers a stale tick
	select {
	case <-ctx.Done():
	case <-d.signal:
	case <-t.C:
	}
}

// hold keeps an endpoint from being sent to until t (Retry-After). Called from attempt
// goroutines, so it goes through the wake lock and the loop applies it.
func (d *Dispatcher) hold(id string, t time.Time) {
	d.wakeMu.Lock()
	d.holds = append(d.holds, holdReq{endpointID: id, until: t})
	d.wakeMu.Unlock()
}

// dropQueue forgets e's buffered deliveries without sending them (their leases lapse).
// Called with d.mu held.
func (d *Dispatcher) dropQueue(e *epState) {
	for _, q := range e.queue {
		delete(d.held, q.claim.DeliveryID)
	}
	d.queued -= len(e.queue)
	e.queue = nil
}

// jitter is the randomness of retry schedules, shared by the workers.
type jitter struct {
	mu  sync.Mutex
	rnd *rand.Rand
}

func (d *Dispatcher) jitteredDelay(p consign.RetryPolicy, attempts int) time.Duration {
	d.jitter.mu.Lock()
	defer d.jitter.mu.Unlock()
	return p.Delay(attempts, d.jitter.rnd)
}
