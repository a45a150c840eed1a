package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/filter"
	"github.com/consign-dev/consign/internal/store"
)

// Config configures jobs. Zero fields take their defaults (WithDefaults); Validate says
// which settings cannot work.
type Config struct {
	// PageSize is how many events a replay step reads at most; default 1000.
	PageSize int
	// MaxQueued bounds the replayed endpoint's queued (pending or delivering) deliveries:
	// a replay creates deliveries only up to it and waits while the queue is fuller;
	// default 1000.
	MaxQueued int
	// Wait is how long a replay whose endpoint's queue is full waits before it looks
	// again; default 100ms.
	Wait time.Duration
	// Poll is how often the runner looks for running jobs it does not run yet (another
	// node's, whose lease ended); default 5s. Jobs created on this node start at once.
	Poll time.Duration
	// LeaseTTL is how long a node holds a job it runs without renewing (every step
	// renews); default 30s.
	LeaseTTL time.Duration
	// Retention is how far back a replay may reach (events older are deleted); 0 or
	// negative: no bound.
	Retention time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.PageSize == 0 {
		c.PageSize = 1000
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = 1000
	}
	if c.Wait == 0 {
		c.Wait = 100 * time.Millisecond
	}
	if c.Poll == 0 {
		c.Poll = 5 * time.Second
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every setting of c (with its defaults applied) that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.PageSize < 1 || c.PageSize > store.MaxPageSize {
		errs = append(errs, fmt.Errorf("PageSize is %d; it must be from 1 to %d", c.PageSize, store.MaxPageSize))
	}
	if c.MaxQueued < 1 {
		errs = append(errs, fmt.Errorf("MaxQueued is %d; it must be at least 1", c.MaxQueued))
	}
	for name, d := range map[string]time.Duration{"Wait": c.Wait, "Poll": c.Poll, "LeaseTTL": c.LeaseTTL} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s is %s; it must be positive", name, d))
		}
	}
	return errors.Join(errs...)
}

// Runner steps the running jobs.
type Runner struct {
	store Store
	cfg   Config
	// wake tells the dispatcher that the endpoint has new due work.
	wake func(endpointID string)
	// turn takes (or renews) the named cluster lease; nil: this process is alone.
	turn func(name string, ttl time.Duration) func(context.Context) bool
	kick chan struct{}

	mu      sync.Mutex
	running map[string]bool // jobs this process steps
	wg      sync.WaitGroup
}

// NewRunner returns a Runner. wake is told of each endpoint a step created deliveries
// for; turn, if set, gives the lease a job runs under (dispatch.Dispatcher.Turn). It
// panics when cfg does not pass Validate (the composition root validates first).
func NewRunner(st Store, cfg Config, wake func(endpointID string), turn func(name string, ttl time.Duration) func(context.Context) bool) *Runner {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic("job: invalid settings: " + err.Error())
	}
	return &Runner{store: st, cfg: cfg, wake: wake, turn: turn, kick: make(chan struct{}, 1), running: map[string]bool{}}
}

// Kick makes the runner look for new jobs now.
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run finds running jobs at start, when kicked and every Poll, and steps each on a
// goroutine of its own, until ctx ends; it returns when they have stopped.
func (r *Runner) Run(ctx context.Context) {
	defer r.wg.Wait()
	t := time.NewTicker(r.cfg.Poll)
	defer t.Stop()
	for {
		jobs, err := r.store.JobsRunning(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.cfg.Logger.Error("list running jobs", "err", err)
		}
		for _, j := range jobs {
			if j.Kind != consign.JobReplay {
				continue
			}
			r.mu.Lock()
			if !r.running[j.ID] {
				r.running[j.ID] = true
				r.wg.Go(func() {
					defer func() {
						r.mu.Lock()
						delete(r.running, j.ID)
						r.mu.Unlock()
					}()
					r.replay(ctx, j.ID)
				})
			}
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
	}
}

// replay steps one replay until it is over, or another node holds it, or ctx ends.
func (r *Runner) replay(ctx context.Context, id string) {
	var take func(context.Context) bool
	if r.turn != nil {
		take = r.turn("job:"+id, r.cfg.LeaseTTL)
	}
	var m *matcher
	for ctx.Err() == nil {
		if take != nil && !take(ctx) {
			return // another node runs it
		}
		j, err := r.store.JobGet(ctx, "", id)
		if err != nil {
			r.retryLater(ctx, "read job", id, err)
			continue
		}
		if j.Finished() {
			return
		}
		ep, err := r.store.EndpointGet(ctx, j.OrgID, j.EndpointID)
		if consign.ErrorCode(err) == consign.ENOTFOUND {
			r.finish(ctx, j, consign.JobFailed, "the endpoint was deleted")
			return
		}
		if err != nil {
			r.retryLater(ctx, "read the job's endpoint", id, err)
			continue
		}
		if m == nil || m.version != ep.Version {
			if m, err = r.newMatcher(ctx, j, ep); err != nil {
				r.retryLater(ctx, "read the job's org", id, err)
				continue
			}
		}
		done, err := r.step(ctx, j, ep, m)
		switch {
		case consign.ErrorCode(err) == consign.ECONFLICT:
			return // cancelled, or another runner stepped it
		case err != nil:
			r.retryLater(ctx, "replay step", id, err)
		case done:
			r.finish(ctx, j, consign.JobCompleted, "")
			return
		}
	}
}

// step takes one step of j: it waits (returns) while the endpoint's queue is full, else
// writes the deliveries of the next page of events. done: the window is scanned.
func (r *Runner) step(ctx context.Context, j *store.JobRow, ep *store.EndpointRow, m *matcher) (done bool, err error) {
	room := r.cfg.PageSize
	if ep.Active {
		queued, err := r.store.DeliveriesQueued(ctx, ep.ID, r.cfg.MaxQueued)
		if err != nil {
			return false, err
		}
		// Steps of a few events each would cost a transaction apiece: wait instead until
		// a tenth of a page fits (or the bound is smaller than that).
		room = min(room, r.cfg.MaxQueued-queued)
		if room < min(max(r.cfg.PageSize/10, 1), r.cfg.MaxQueued) {
			return false, sleep(ctx, r.cfg.Wait)
		}
	}
	scan := store.EventScan{OrgID: j.OrgID, After: j.Cursor, Since: j.Params.Since, Until: j.Params.Until, Types: j.Params.Types}
	var total *int
	if j.Progress.Total == nil {
		n, err := r.store.EventsCount(ctx, scan)
		if err != nil {
			return false, err
		}
		total = &n
	}
	scan.Limit = room
	events, err := r.store.EventsScan(ctx, scan)
	if err != nil {
		return false, err
	}
	if len(events) == 0 && total == nil {
		return true, nil
	}
	now := r.cfg.Now().UTC()
	p := store.ReplayStep{JobID: j.ID, From: j.Cursor, Cursor: j.Cursor, Scanned: len(events), Total: total, Now: now}
	for _, ev := range events {
		p.Cursor = ev.ID
		if !m.match(ev) {
			continue
		}
		nd := store.NewDelivery{
			ID:         consign.NewID(consign.PrefixDelivery, now),
			EndpointID: ep.ID,
			Deadline:   now.Add(time.Duration(ep.Retry.MaxAge)),
		}
		// Ordered endpoints get the next sequence of the event's key: a replayed event
		// goes behind what is queued of its key already. Coalescing is left out: an old
		// event must not supersede a newer one waiting.
		if ep.Ordering == consign.OrderingKey && ev.OrderingKey != "" {
			nd.OrderingKey, nd.Ordered = ev.OrderingKey, true
		}
		p.Writes = append(p.Writes, &store.EventWrite{Event: ev, Deliveries: []store.NewDelivery{nd}})
	}
	res, err := r.store.JobReplayStep(ctx, p)
	if err != nil {
		return false, err
	}
	if res.Created > 0 && r.wake != nil {
		r.wake(ep.ID)
	}
	return len(events) == 0, nil
}

// finish ends j; a job cancelled meanwhile stays cancelled.
func (r *Runner) finish(ctx context.Context, j *store.JobRow, status, message string) {
	_, err := r.store.JobFinish(ctx, "", j.ID, status, message, r.cfg.Now().UTC())
	if err != nil && consign.ErrorCode(err) != consign.ECONFLICT && ctx.Err() == nil {
		r.cfg.Logger.Error("finish job", "job", j.ID, "status", status, "err", err)
		return
	}
	if err == nil {
		r.cfg.Logger.Info("job finished", "job", j.ID, "kind", j.Kind, "status", status, "endpoint", j.EndpointID, "error", message)
	}
}

// retryLater logs a step's failure (the store did not answer; the step left nothing
// behind) and waits a moment before the next try.
func (r *Runner) retryLater(ctx context.Context, what, id string, err error) {
	if ctx.Err() != nil {
		return
	}
	r.cfg.Logger.Warn("job: "+what+"; trying again", "job", id, "err", err)
	_ = sleep(ctx, time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// matcher tells which events fan-out would have sent to an endpoint: of a type the
// endpoint subscribes to and the org's role may receive, passing its filter.
type matcher struct {
	version int64
	ep      *store.EndpointRow
	org     *consign.Org
	filter  *filter.Filter
	store   Store
	ctx     context.Context
	allowed map[string]bool // by event type
}

func (r *Runner) newMatcher(ctx context.Context, j *store.JobRow, ep *store.EndpointRow) (*matcher, error) {
	org, err := r.store.OrgGet(ctx, j.OrgID)
	if err != nil {
		return nil, err
	}
	f, err := filter.Compile(ep.Filter)
	if err != nil {
		// Filters are compiled when saved; one that does not compile now was written by
		// a newer version: fan-out sends everything, and so does a replay.
		r.cfg.Logger.Error("endpoint filter does not compile; replaying every event of its topics", "endpoint", ep.ID, "err", err)
	}
	return &matcher{version: ep.Version, ep: ep, org: org, filter: f, store: r.store, ctx: ctx, allowed: map[string]bool{}}, nil
}

func (m *matcher) match(ev *consign.Event) bool {
	ok, seen := m.allowed[ev.Type]
	if !seen {
		ok = m.ep.Subscribes(ev.Type)
		if ok {
			if t, err := m.store.EventTypeGet(m.ctx, ev.Type); err == nil {
				ok = m.org.Role.May(t.AvailableFor)
			}
		}
		m.allowed[ev.Type] = ok
	}
	return ok && m.filter.Match(&filter.Doc{Type: ev.Type, Payload: ev.Payload, OrderingKey: ev.OrderingKey})
}
