// Package maint holds the background housekeeping of a Consign node: for now, retention
// (deleting old attempts and finished events).
package maint

import (
	"context"
	"log/slog"
	"time"

	"github.com/consign-dev/consign/internal/store"
)

// RetentionConfig configures Retention.
type RetentionConfig struct {
	// Age is how long attempts and finished events (with their deliveries) are kept;
	// default 720h (30 days).
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

func (c RetentionConfig) withDefaults() RetentionConfig {
	if c.Age <= 0 {
		c.Age = 30 * 24 * time.Hour
	}
	if c.Every <= 0 {
		c.Every = time.Hour
	}
	if c.Batch <= 0 {
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

// Retention deletes history older than its Age, batch by batch. With several nodes on one
// database, Turn lets one purge at a time; should two overlap, the PostgreSQL driver's
// batches skip rows the other is deleting.
type Retention struct {
	p   store.Purger
	cfg RetentionConfig
}

// NewRetention returns a Retention over p.
func NewRetention(p store.Purger, cfg RetentionConfig) *Retention {
	return &Retention{p: p, cfg: cfg.withDefaults()}
}

// Purge deletes everything older than Age now, a batch at a time, and returns how many
// attempts and events it deleted.
func (r *Retention) Purge(ctx context.Context) (attempts, events int, err error) {
	before := r.cfg.Now().Add(-r.cfg.Age)
	for {
		n, err := r.p.AttemptsPurge(ctx, before, r.cfg.Batch)
		attempts += n
		if err != nil {
			return attempts, events, err
		}
		if n < r.cfg.Batch {
			break
		}
	}
	for {
		n, err := r.p.EventsPurge(ctx, before, r.cfg.Batch)
		events += n
		if err != nil {
			return attempts, events, err
		}
		if n < r.cfg.Batch {
			break
		}
	}
	return attempts, events, nil
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
		attempts, events, err := r.Purge(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.cfg.Logger.Error("retention purge", "err", err)
		case attempts+events > 0:
			r.cfg.Logger.Info("retention purge", "attempts", attempts, "events", events, "age", r.cfg.Age)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
