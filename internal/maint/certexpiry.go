package maint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// CertExpiryConfig configures CertExpiry. Zero fields take their defaults
// (WithDefaults); Validate says which settings cannot work.
type CertExpiryConfig struct {
	// Every is how often endpoints' client certificates are checked; default 1h.
	Every time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Turn, if set, is asked before each check, which runs only when it says yes: with
	// several nodes on one database, one node checks at a time.
	Turn func(ctx context.Context) bool
}

// WithDefaults returns c with each zero field set to its default.
func (c CertExpiryConfig) WithDefaults() CertExpiryConfig {
	if c.Every == 0 {
		c.Every = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every setting of c (with its defaults applied) that cannot work.
func (c CertExpiryConfig) Validate() error {
	var errs []error
	if c.Every <= 0 {
		errs = append(errs, fmt.Errorf("Every is %s; it must be positive", c.Every))
	}
	return errors.Join(errs...)
}

// CertExpiry runs check, which announces endpoints' client certificates close to
// expiry (manage.Service.AnnounceExpiringCertificates), at start and then every Every.
type CertExpiry struct {
	check func(context.Context) (int, error)
	cfg   CertExpiryConfig
}

// NewCertExpiry returns a CertExpiry running check. cfg gets its defaults; it panics
// when cfg does not pass Validate (the composition root validates its settings first).
func NewCertExpiry(check func(context.Context) (int, error), cfg CertExpiryConfig) *CertExpiry {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic("maint: invalid certificate check settings: " + err.Error())
	}
	return &CertExpiry{check: check, cfg: cfg}
}

// Run checks once at start and then every Every, until ctx ends.
func (c *CertExpiry) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Every)
	defer t.Stop()
	for {
		if c.cfg.Turn == nil || c.cfg.Turn(ctx) {
			n, err := c.check(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				c.cfg.Logger.Error("client certificate check", "err", err)
			case n > 0:
				c.cfg.Logger.Info("client certificates expiring soon announced", "endpoints", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
