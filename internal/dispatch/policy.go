package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

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

// WindowStart is when the failures that max_failures counts at now begin: the policy's
// window back from now, but never before the endpoint was last reactivated.
func WindowStart(e *consign.Endpoint, now time.Time) time.Time {
	start := now.Add(-time.Duration(e.FailurePolicy.Window))
	if e.ReactivatedAt != nil && e.ReactivatedAt.After(start) {
		start = *e.ReactivatedAt
	}
	return start
}

// afterRecord runs after a batch of outcomes is written: endpoints whose keyed deliveries
// ended are woken, for the next delivery of the key is claimable now, and endpoints whose
// attempts failed are checked against their failure policy, each at most once a second.
func (d *Dispatcher) afterRecord(health []store.HealthChange, wake []string) {
	if len(wake) > 0 {
		d.Wake(wake...)
	}
	now := d.cfg.Now()
	for _, h := range health {
		if h.OK {
			continue
		}
		d.policyMu.Lock()
		last := d.policyChecked[h.EndpointID]
		recent := now.Sub(last) < time.Second
		if !recent {
			d.policyChecked[h.EndpointID] = now
		}
		d.policyMu.Unlock()
		if !recent {
			d.checkPolicy(context.Background(), h.EndpointID, now)
		}
	}
}

// sweepPolicies checks every failing endpoint periodically, so disable_after trips even
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
		for _, e := range eps {
			d.evaluate(ctx, &e.Endpoint, d.cfg.Now())
		}
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

func (d *Dispatcher) checkPolicy(ctx context.Context, endpointID string, now time.Time) {
	row, err := d.store.EndpointGet(ctx, "", endpointID)
	if err != nil {
		if consign.ErrorCode(err) != consign.ENOTFOUND {
			d.log.Error("failure policy: load endpoint", "endpoint", endpointID, "err", err)
		}
		return
	}
	d.evaluate(ctx, &row.Endpoint, now)
}

func (d *Dispatcher) evaluate(ctx context.Context, e *consign.Endpoint, now time.Time) {
	if !e.Active {
		return
	}
	failures := 0
	if fp := e.FailurePolicy; fp.MaxFailures > 0 {
		n, err := d.store.EndpointFailures(ctx, e.ID, WindowStart(e, now))
		if err != nil {
			d.log.Error("failure policy: count failures", "endpoint", e.ID, "err", err)
			return
		}
		failures = n
	}
	reason := Tripped(e, failures, now)
	if reason == "" {
		return
	}
	if err := d.endpoints.Deactivate(ctx, e.OrgID, e.ID, reason); err != nil {
		d.log.Error("failure policy: deactivate", "endpoint", e.ID, "err", err)
		return
	}
	d.cache.forget(e.ID)
	d.log.Warn("endpoint deactivated", "endpoint", e.ID, "org", e.OrgID, "reason", reason)
}
