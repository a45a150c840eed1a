// Package dispatch is the delivery engine: claim due deliveries, sign and send them,
// record each attempt, and reschedule or finish the delivery.
//
// Design. One claim loop leases due deliveries from the store in batches (the store's
// deliveries table is the queue; a lease makes work claimed by a dead process come due
// again). Each claimed delivery runs in its own goroutine, but never more than
// Concurrency at once, and never more than an endpoint's burst limit (default
// EndpointConcurrency) for one endpoint: endpoints at their cap are left out of the next
// claim, so a slow endpoint holds only its own slots. Outcomes go to one recorder that
// writes them in batches (one transaction for many attempts). The loop sleeps until the
// next delivery is due, a slot frees up, or ingest wakes it after a commit: a new event is
// claimed at once, not on a polling tick.
package dispatch

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/sender"
	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/internal/store"
)

// Config configures the Dispatcher. Zero fields take their defaults.
type Config struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Concurrency is the most attempts in flight at once; default 256.
	Concurrency int
	// EndpointConcurrency is the most attempts in flight to one endpoint that sets no
	// burst_limit; default 32.
	EndpointConcurrency int
	// ClaimBatch is the most deliveries leased per claim; default 256.
	ClaimBatch int
	// Lease is how long a claimed delivery is held before another claim may take it;
	// it must exceed the sender's timeout. Default 2 minutes.
	Lease time.Duration
	// IdleWait is the longest sleep when nothing is due (it bounds how late work written
	// by another process is noticed); default 1 s.
	IdleWait time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Endpoints is what the dispatcher needs to know about endpoints.
type Endpoints interface {
	// Endpoint returns an endpoint in any org with its auth token opened.
	Endpoint(ctx context.Context, orgID, id string) (*consign.Endpoint, error)
	// SigningKeys returns the keys that sign at now and when each expires (zero: never).
	SigningKeys(ctx context.Context, endpointID string, now time.Time) ([]signing.Key, []time.Time, error)
	// Deactivate turns an endpoint off with a reason (410 Gone, failure policy).
	Deactivate(ctx context.Context, orgID, endpointID, reason string) error
}

// Sender sends one HTTP attempt.
type Sender interface {
	Send(ctx context.Context, r sender.Request) sender.Outcome
}

// Dispatcher delivers due deliveries until its context ends.
type Dispatcher struct {
	store     store.Store
	endpoints Endpoints
	sender    Sender
	cfg       Config
	log       *slog.Logger

	wake     chan struct{}
	recorder *recorder
	cache    endpointCache

	mu       sync.Mutex
	inflight int
	perEp    map[string]int       // attempts in flight per endpoint
	holdTill map[string]time.Time // endpoints told to wait (Retry-After)
	rndMu    sync.Mutex
	rnd      *rand.Rand
	wg       sync.WaitGroup
}

// New returns a Dispatcher; Run starts it.
func New(s store.Store, eps Endpoints, snd Sender, cfg Config) *Dispatcher {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 256
	}
	if cfg.EndpointConcurrency <= 0 {
		cfg.EndpointConcurrency = 32
	}
	if cfg.ClaimBatch <= 0 {
		cfg.ClaimBatch = 256
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.IdleWait <= 0 {
		cfg.IdleWait = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Dispatcher{
		store: s, endpoints: eps, sender: snd, cfg: cfg, log: cfg.Logger,
		wake: make(chan struct{}, 1), perEp: map[string]int{}, holdTill: map[string]time.Time{},
		rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	d.cache = endpointCache{eps: eps, entries: map[string]*endpointEntry{}}
	d.recorder = newRecorder(s, cfg.Logger)
	return d
}

// Wake tells the dispatcher that new work may be due. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run claims and sends until ctx ends, then waits for attempts in flight and their
// records.
func (d *Dispatcher) Run(ctx context.Context) {
	go d.recorder.run()
	defer func() {
		d.wg.Wait()
		d.recorder.close()
	}()
	for ctx.Err() == nil {
		n, err := d.claim(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Error("claim deliveries", "err", err)
		}
		if n > 0 && err == nil {
			continue
		}
		d.sleep(ctx)
	}
}

// sleep waits for a wake-up, a freed slot, or the next due delivery.
func (d *Dispatcher) sleep(ctx context.Context) {
	wait := d.cfg.IdleWait
	if next, ok, err := d.store.DeliveriesNextDue(ctx); err == nil && ok {
		wait = min(wait, max(next.Sub(d.cfg.Now()), time.Millisecond))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-d.wake:
	case <-t.C:
	}
}

// claim leases as many due deliveries as there are free slots and starts them. It
// returns how many it started.
func (d *Dispatcher) claim(ctx context.Context) (int, error) {
	d.mu.Lock()
	free := min(d.cfg.Concurrency-d.inflight, d.cfg.ClaimBatch)
	now := d.cfg.Now()
	var skip []string
	for id, n := range d.perEp {
		if n >= d.cache.limit(id, d.cfg.EndpointConcurrency) {
			skip = append(skip, id)
		}
	}
	for id, until := range d.holdTill {
		if now.Before(until) {
			skip = append(skip, id)
		} else {
			delete(d.holdTill, id)
		}
	}
	d.mu.Unlock()
	if free <= 0 {
		return 0, nil
	}
	claims, err := d.store.DeliveriesClaim(ctx, store.ClaimParams{
		Now: now, Limit: free, LeaseUntil: now.Add(d.cfg.Lease), SkipEndpoints: skip,
	})
	if err != nil {
		return 0, err
	}
	started := 0
	for _, c := range claims {
		// Load the endpoint before counting it, so its own burst limit applies from its
		// first claim; a load error is handled (and recorded) by deliver.
		_, _ = d.cache.get(ctx, c, now)
		d.mu.Lock()
		hold, held := d.holdTill[c.EndpointID]
		full := d.perEp[c.EndpointID] >= d.cache.limit(c.EndpointID, d.cfg.EndpointConcurrency)
		if (held && now.Before(hold)) || full {
			d.mu.Unlock()
			// Over the endpoint's cap after all (several of its rows in one claim): give
			// the lease back so it comes due again shortly.
			retryAt := now.Add(50 * time.Millisecond)
			if held && hold.After(retryAt) {
				retryAt = hold
			}
			d.recorder.add(&store.Outcome{DeliveryID: c.DeliveryID, Status: consign.StatusPending, NextAttemptAt: retryAt, At: now})
			continue
		}
		d.inflight++
		d.perEp[c.EndpointID]++
		d.mu.Unlock()
		started++
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.deliver(ctx, c)
			d.mu.Lock()
			d.inflight--
			if d.perEp[c.EndpointID]--; d.perEp[c.EndpointID] <= 0 {
				delete(d.perEp, c.EndpointID)
			}
			d.mu.Unlock()
			d.Wake()
		}()
	}
	return started, nil
}

// holdEndpoint keeps an endpoint out of claims until t (Retry-After).
func (d *Dispatcher) holdEndpoint(id string, t time.Time) {
	d.mu.Lock()
	if t.After(d.holdTill[id]) {
		d.holdTill[id] = t
	}
	d.mu.Unlock()
}

func (d *Dispatcher) jitteredDelay(p consign.RetryPolicy, attempts int) time.Duration {
	d.rndMu.Lock()
	defer d.rndMu.Unlock()
	return p.Delay(attempts, d.rnd)
}
