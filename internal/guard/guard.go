// Package guard protects the server from what a hostile or careless client can send:
// request bodies announced larger than they are, sent slowly or all at once.
//
// # Design
//
// Bodies. One middleware in front of every route (Guard.Bodies) wraps each request body
// in a reader that does three things. It charges every byte received to one budget that
// all requests in flight share (Config.BodyBudget), and gives the charge back when the
// request ends: what the server holds in request bodies grows with the bytes that
// arrived, never with a Content-Length, and together it stays under the budget; a
// request whose bytes would exceed it gets 503 with Retry-After instead. It sets a read
// deadline on the connection: a body has Config.BodyTimeout to arrive, plus one second
// for every Config.BodyMinRate bytes received, so a slow but steady upload of a large
// batch goes through while a trickle (a byte every few seconds) is cut after
// BodyTimeout with 408. And it turns those two cases into *consign.Error values, which
// the API and the dashboard answer like any other error (problem+json). The routes' own
// size limits (http.MaxBytesReader in api and web) sit inside this reader.
package guard

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures the guard. Zero fields take their defaults (WithDefaults); Validate
// says which settings cannot work.
type Config struct {
	// BodyBudget is how many bytes of request bodies all requests in flight may hold
	// together; default 128 MiB. A request whose body would go over it is answered 503
	// with Retry-After.
	BodyBudget int64
	// BodyTimeout is how long a request body may take to arrive before BodyMinRate
	// counts; default 10 s. A body slower than both is cut and answered 408.
	BodyTimeout time.Duration
	// BodyMinRate is the slowest a long body may arrive, in bytes per second: each
	// BodyMinRate bytes received give the body one more second; default 32 KiB/s.
	BodyMinRate int64
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultBodyBudget  = 128 << 20
	DefaultBodyTimeout = 10 * time.Second
	DefaultBodyMinRate = 32 << 10
)

// WithDefaults returns c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.BodyBudget == 0 {
		c.BodyBudget = DefaultBodyBudget
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	if c.BodyMinRate == 0 {
		c.BodyMinRate = DefaultBodyMinRate
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every setting of c (with its defaults applied) that cannot work,
// naming each.
func (c Config) Validate() error {
	var errs []error
	if c.BodyBudget <= 0 {
		errs = append(errs, fmt.Errorf("BodyBudget is %d; it must be a positive number of bytes", c.BodyBudget))
	}
	if c.BodyTimeout <= 0 {
		errs = append(errs, fmt.Errorf("BodyTimeout is %s; it must be positive", c.BodyTimeout))
	}
	if c.BodyMinRate <= 0 {
		errs = append(errs, fmt.Errorf("BodyMinRate is %d; it must be a positive number of bytes per second", c.BodyMinRate))
	}
	return errors.Join(errs...)
}

// Guard holds the shared state of the protections.
type Guard struct {
	cfg    Config
	budget budget
}

// New returns a guard. cfg gets its defaults; New panics when it does not pass Validate
// (the composition root validates its settings first).
func New(cfg Config) *Guard {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic("guard: invalid settings: " + err.Error())
	}
	return &Guard{cfg: cfg, budget: budget{limit: cfg.BodyBudget}}
}

// Config returns the guard's settings, defaults applied.
func (g *Guard) Config() Config { return g.cfg }
