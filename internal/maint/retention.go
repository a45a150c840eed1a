// Package maint holds the background housekeeping of a Consign node: retention (deleting
// old attempts, finished events and settled inbound receipts) and the check that
// announces endpoints' client certificates close to expiry.
package maint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/consign-dev/consign/internal/store"
)

// RetentionConfig configures Retention. Zero fields take their defaults (WithDefaults);
// Validate says which settings cannot work.
type RetentionConfig struct {
	// Age is how long attempts, finished events (with their deliveries) and inbound
	// receipts no longer pending are kept; default 720h (30 days).
	Age time.Duration
	// Every is how often a purge runs; default 1h.
	Every time.Duration
	// Batch is how many rows one delete statement removes at most, so that a purge never
	// holds long locks; default 1000.
	Batch int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Turn, if set, is asked before each purge, which runs only when it says yes: with
	// several nodes on one database, it holds a cluster-wide lease so that one node
	// purges at a time.
	Turn func(ctx context.Context) bool
}

// WithDefaults returns c with each zero field set to its default.
func (c RetentionConfig) WithDefaults() RetentionConfig {
	if c.Age == 0 {
		c.Age = 30 * 24 * time.Hour
	}
	if c.Every == 0 {
		c.Every = time.Hour
	}
	if c.Batch == 0 {
		c.Batch = 1000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every setting of c (with its defaults applied) that cannot work,
// naming each.
func (c RetentionConfig) Validate() error {
	var errs []error
	if c.Age <= 0 {
		errs = append(errs, fmt.Errorf("Age is %s; it must be positive", c.Age))
	}
	if c.Every <= 0 {
		errs = append(errs, fmt.Errorf("Every is %s; it must be positive", c.Every))
	}
	if c.Batch <= 0 {
		errs = append(errs, fmt.Errorf("Batch is %d; it must be positive", c.Batch))
	}
	return errors.Join(errs...)
}

// Retention deletes history older than its Age, batch by batch. With several nodes on one
// database, Turn lets one purge at a time; should two overlap, the PostgreSQL driver's
// batches skip rows the other is deleting.
type Retention struct {
	p   store.Purger
	cfg RetentionConfig
}

// NewRetention returns a Retention over p. cfg gets its defaults; NewRetention panics
// when it does not pass Validate (the composition root validates its settings first).
func NewRetention(p store.Purger, cfg RetentionConfig) *Retention {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic("maint: invalid retention settings: " + err.Error())
	}
	return &Retention{p: p, cfg: cfg}
}

// Purged counts what one purge deleted.
type Purged struct {
	Attempts, Events, Receipts int
	// Filtered is minutes of endpoints' filtered counts.
	Filtered int
	// Jobs is finished jobs (replays, recover runs).
	Jobs int
}

// Purge deletes everything older than Age now, a batch at a time, and returns how much
// of each kind it deleted.
func (r *Retention) Purge(ctx context.Context) (Purged, error) {
	before := r.cfg.Now().Add(-r.cfg.Age)
	var p Purged
	for _, step := range []struct {
		purge func(context.Context, time.Time, int) (int, error)
		count *int
	}{
		{r.p.AttemptsPurge, &p.Attempts},
		{r.p.EventsPurge, &p.Events},
		{r.p.ReceiptsPurge, &p.Receipts},
		{r.p.FilteredPurge, &p.Filtered},
		{r.p.JobsPurge, &p.Jobs},
	} {
		for {
			n, err := step.purge(ctx, before, r.cfg.Batch)
			*step.count += n
			if err != nil {
				return p, err
			}
			if n < r.cfg.Batch {
				break
			}
		}
	}
	return p, nil
}

// Run purges once at start and then every Every, until ctx ends.
func (r *Retention) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Every)
	defer t.Stop()
	for {
		if r.cfg.Turn != nil && !r.cfg.Turn(ctx) {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				continue
			}
		}
		p, err := r.Purge(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.cfg.Logger.Error("retention purge", "err", err)
		case p.Attempts+p.Events+p.Receipts > 0:
			r.cfg.Logger.Info("retention purge", "attempts", p.Attempts, "events", p.Events, "receipts", p.Receipts, "filtered_minutes", p.Filtered, "jobs", p.Jobs, "age", r.cfg.Age)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
