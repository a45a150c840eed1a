package dispatch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// Failure policies are judged after every written batch of outcomes that holds a failed
// attempt (afterRecord), also when a success followed the failures within the batch. The
// store counts, in one call for all of the batch's failing endpoints, the failed attempts
// within each one's window (never from before its last reactivation: the store applies
// ReactivatedAt), after the batch has committed: of several recorders (nodes) writing
// failures of one endpoint at once, the one that counts last sees them all, so no burst
// slips between two checks. A periodic sweep judges the failing endpoints again, for
// disable_after trips on time alone (an endpoint held by Retry-After makes no attempts),
// and settles pauses and resumes that were cut short.

// Tripped says why an endpoint's failure policy deactivates it now, or "" if it does
// not: it has accepted nothing for DisableAfter while attempts failed, or it had more than
// MaxFailures failed attempts within Window (failures counted by the caller).
func Tripped(e *consign.Endpoint, failuresInWindow int, now time.Time) string {
	fp := e.FailurePolicy
	if e.FailingSince != nil && fp.DisableAfter > 0 && now.Sub(*e.FailingSince) >= time.Duration(fp.DisableAfter) {
		return fmt.Sprintf("failure policy: nothing accepted for %s (failing since %s)",
			time.Duration(fp.DisableAfter), e.FailingSince.UTC().Format(time.RFC3339))
	}
	if fp.MaxFailures > 0 && failuresInWindow > fp.MaxFailures {
		return fmt.Sprintf("failure policy: %d failed attempts within %s (more than %d)",
			failuresInWindow, time.Duration(fp.Window), fp.MaxFailures)
	}
	return ""
}

// failureQuery is what the store is asked about an endpoint whose attempts failed: its
// state, and with max_failures its failures within the window, counted up to one past
// the limit (enough to tell).
func failureQuery(e *consign.Endpoint, now time.Time) store.FailureQuery {
	q := store.FailureQuery{EndpointID: e.ID}
	if fp := e.FailurePolicy; fp.MaxFailures > 0 {
		q.Since, q.Max = now.Add(-time.Duration(fp.Window)), fp.MaxFailures+1
	}
	return q
}

// afterRecord runs after a batch of outcomes is written: endpoints whose keyed deliveries
// ended are woken, for the next delivery of the key is claimable now, and endpoints whose
// attempts failed are judged against their failure policy; those it trips are
// deactivated in the background (trip), so that the recorder does not wait while their
// backlogs are paused.
func (d *Dispatcher) afterRecord(health []store.HealthChange, wake []string) {
	if len(wake) > 0 {
		d.Wake(wake...)
	}
	var eps []*consign.Endpoint
	for _, h := range health {
		if h.Failures == 0 {
			continue
		}
		if e := d.policyOf(h.EndpointID); e != nil {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.judge(ctx, eps, d.cfg.Now(), d.trip)
}

// policyOf returns an endpoint's settings as the dispatcher holds them (the version its
// last attempt used), loading them when it holds none; nil when it is gone.
func (d *Dispatcher) policyOf(id string) *consign.Endpoint {
	if e := d.cache.peek(id); e != nil {
		return e.endpoint
	}
	e, err := d.endpoints.Endpoint(context.Background(), "", id)
	if err != nil {
		if consign.ErrorCode(err) != consign.ENOTFOUND {
			d.log.Error("failure policy: load endpoint", "endpoint", id, "err", err)
		}
		return nil
	}
	return e
}

// judge asks the store, in one call, for the state and failures of eps, and hands each
// endpoint whose policy trips to deactivate with the reason.
func (d *Dispatcher) judge(ctx context.Context, eps []*consign.Endpoint, now time.Time,
	deactivate func(ctx context.Context, e *consign.Endpoint, reason string)) {
	qs := make([]store.FailureQuery, len(eps))
	byID := make(map[string]*consign.Endpoint, len(eps))
	for i, e := range eps {
		qs[i], byID[e.ID] = failureQuery(e, now), e
	}
	counts, err := d.store.EndpointFailures(ctx, qs)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("failure policy: count failures", "endpoints", len(qs), "err", err)
		}
		return
	}
	for _, c := range counts {
		if !c.Active {
			continue
		}
		e := *byID[c.EndpointID] // the settings as known, the state as stored
		e.Active, e.FailingSince = c.Active, c.FailingSince
		if reason := Tripped(&e, c.Failures, now); reason != "" {
			deactivate(ctx, &e, reason)
		}
	}
}

// trip deactivates an endpoint whose policy tripped on a goroutine of its own, one at a
// time per endpoint (failures recorded meanwhile trip it again, to no effect): its
// backlog is paused as it is deactivated, which may take seconds, and the recorder must
// not wait for that. Run waits for the trips under way before it returns.
func (d *Dispatcher) trip(_ context.Context, e *consign.Endpoint, reason string) {
	t := &d.trips
	t.mu.Lock()
	if t.tripping[e.ID] {
		t.mu.Unlock()
		return
	}
	t.tripping[e.ID] = true
	t.mu.Unlock()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		d.deactivate(ctx, e, reason)
		t.mu.Lock()
		delete(t.tripping, e.ID)
		t.mu.Unlock()
	}()
}

// tripper keeps track of the trips under way.
type tripper struct {
	mu       sync.Mutex
	tripping map[string]bool // endpoints being deactivated by their failure policy
	wg       sync.WaitGroup  // the trips under way
}

// deactivate turns off an endpoint whose policy tripped.
func (d *Dispatcher) deactivate(ctx context.Context, e *consign.Endpoint, reason string) {
	if err := d.endpoints.Deactivate(ctx, e.OrgID, e.ID, reason); err != nil {
		d.log.Error("failure policy: deactivate", "endpoint", e.ID, "err", err)
		return
	}
	d.cache.forget(e.ID)
	d.log.Warn("endpoint deactivated", "endpoint", e.ID, "org", e.OrgID, "reason", reason)
}

// sweepPolicies judges every failing endpoint periodically, so disable_after trips even
// when no attempts are being made, and settles the deliveries of endpoints whose pause or
// resume was cut short.
func (d *Dispatcher) sweepPolicies(ctx context.Context) {
	t := time.NewTicker(d.cfg.PolicySweep)
	defer t.Stop()
	// With several nodes, one sweeps at a time: a lease that lapses before the holder's
	// next tick, so a dead holder's turn passes to another node.
	mine := d.Turn("policy-sweep", d.cfg.PolicySweep*3/4)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !mine(ctx) {
			continue
		}
		d.settle(ctx)
		eps, err := d.store.EndpointListFailing(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("list failing endpoints", "err", err)
			}
			continue
		}
		all := make([]*consign.Endpoint, len(eps))
		for i, e := range eps {
			all[i] = &e.Endpoint
		}
		d.judge(ctx, all, d.cfg.Now(), d.deactivate)
	}
}

// settle finishes the pauses and resumes of endpoints' deliveries that were cut short (a
// node that died while it resumed a backlog, a request canceled part-way), so that no
// delivery waits, paused, on an active endpoint for longer than a sweep.
func (d *Dispatcher) settle(ctx context.Context) {
	n, err := d.store.DeliveriesSettle(ctx, d.cfg.Now())
	switch {
	case err != nil:
		if ctx.Err() == nil {
			d.log.Error("settle paused deliveries", "err", err)
		}
	case n > 0:
		d.log.Info("finished pausing or resuming endpoints' deliveries", "endpoints", n)
		d.Wake()
	}
}
