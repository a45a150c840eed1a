// Package guard protects the server from what a hostile or careless client can send:
// request bodies announced larger than they are, sent slowly or all at once, and
// repeated guesses of keys.
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
//
// Guesses. The guard counts failed authentications per client (Failed; an IPv4
// address, or the /64 of an IPv6 one) in a token bucket (golang.org/x/time/rate): a burst of
// Config.FailureBurst failures, then Config.FailureRate a second. A client out of
// allowance is answered 429 with Retry-After before its key is looked at (Allow),
// except for a key that authenticated on this node within the hour (Succeeded), so that one bad client behind a shared
// address (a NAT, an integration with a revoked key) does not lock out the valid keys
// in use there. The per-client table is bounded (Config.MaxClients); when full, clients
// whose allowance is whole again are dropped first.
//
// Client address. Requests come from r.RemoteAddr unless that address is one of
// Config.TrustedProxies: then X-Forwarded-For is read from the right, skipping trusted
// proxies, and the first other address is the client. A header from anyone else is
// ignored, so a client cannot pick the address it is throttled under.
package guard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/time/rate"
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
	// FailureBurst is how many failed authentications a client may make at once before
	// it is slowed; default 20.
	FailureBurst int
	// FailureRate is how many failed authentications a second a client may make after
	// its burst; default 1.
	FailureRate float64
	// MaxClients bounds the clients whose failures are remembered, and the keys
	// remembered as good; default 10,000.
	MaxClients int
	// TrustedProxies are the addresses or CIDR ranges ("10.0.0.0/8") of the proxies
	// whose X-Forwarded-For names the client; default none (the client is the
	// connection's peer).
	TrustedProxies []string
	// Metrics, if set, counts the requests refused.
	Metrics Metrics
	// Now is the clock of the throttle; default time.Now. Read deadlines are on the
	// wall clock, as the network's are.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Metrics counts what the guard refuses (metrics.Metrics).
type Metrics interface {
	// Refused is called for each request refused, with the reason: ReasonBodyBudget,
	// ReasonSlowBody or ReasonThrottled.
	Refused(reason string)
}

// Reasons a request is refused, as Metrics.Refused is told.
const (
	ReasonBodyBudget = "body_budget"
	ReasonSlowBody   = "slow_body"
	ReasonThrottled  = "throttled"
)

// refused tells the metrics, if any.
func (g *Guard) refused(reason string) {
	if g.cfg.Metrics != nil {
		g.cfg.Metrics.Refused(reason)
	}
}

// Defaults of Config.
const (
	DefaultBodyBudget   = 128 << 20
	DefaultBodyTimeout  = 10 * time.Second
	DefaultBodyMinRate  = 32 << 10
	DefaultFailureBurst = 20
	DefaultFailureRate  = 1.0
	DefaultMaxClients   = 10000
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
	if c.FailureBurst == 0 {
		c.FailureBurst = DefaultFailureBurst
	}
	if c.FailureRate == 0 {
		c.FailureRate = DefaultFailureRate
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
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
	if c.FailureBurst <= 0 {
		errs = append(errs, fmt.Errorf("FailureBurst is %d; it must be positive", c.FailureBurst))
	}
	if c.FailureRate <= 0 {
		errs = append(errs, fmt.Errorf("FailureRate is %g; it must be positive", c.FailureRate))
	}
	if c.MaxClients <= 0 {
		errs = append(errs, fmt.Errorf("MaxClients is %d; it must be positive", c.MaxClients))
	}
	for _, p := range c.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("TrustedProxies: %w", err))
		}
	}
	return errors.Join(errs...)
}

// parsePrefix reads a trusted proxy: an address, or a CIDR range.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or a CIDR range such as 10.0.0.0/8 or fd00::/8", s)
	}
	return p.Masked(), nil
}

// Guard holds the shared state of the protections.
type Guard struct {
	cfg      Config
	budget   budget
	throttle throttle
	proxies  []netip.Prefix
}

// New returns a guard. cfg gets its defaults; New panics when it does not pass Validate
// (the composition root validates its settings first).
func New(cfg Config) *Guard {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic("guard: invalid settings: " + err.Error())
	}
	g := &Guard{cfg: cfg, budget: budget{limit: cfg.BodyBudget},
		throttle: throttle{clients: map[netip.Prefix]*rate.Limiter{}, known: map[[32]byte]time.Time{}}}
	for _, p := range cfg.TrustedProxies {
		prefix, _ := parsePrefix(p) // checked by Validate
		g.proxies = append(g.proxies, prefix)
	}
	return g
}

// Config returns the guard's settings, defaults applied.
func (g *Guard) Config() Config { return g.cfg }
