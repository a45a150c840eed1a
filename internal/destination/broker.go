package destination

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consign-dev/consign/internal/sender"
)

// What the broker kinds (natsdest, amqpdest, kafkadest, redisdest) share: their
// configuration, the target rules applied to a broker's hosts, the guarded dialer every
// connection goes through, a pool of connections, the message headers and the wording
// of a failed attempt.

// BrokerConfig configures a broker kind. The zero value is usable (WithDefaults).
type BrokerConfig struct {
	// InsecureTargets allows loopback and private broker hosts (--insecure-targets);
	// without it the dial guard refuses them after DNS, as it does for HTTP.
	InsecureTargets bool
	// Timeout bounds an attempt: connecting when no connection is open, publishing and
	// waiting for the broker's acknowledgement. Default 15 s (sender.DefaultTimeout).
	Timeout time.Duration
	// ConnectTimeout bounds a TCP connect to a broker. Default 5 s.
	ConnectTimeout time.Duration
	// Now returns the current time, for Outcome.StartedAt. Default time.Now.
	Now func() time.Time
}

// WithDefaults returns c with each zero field set to its default.
func (c BrokerConfig) WithDefaults() BrokerConfig {
	if c.Timeout <= 0 {
		c.Timeout = sender.DefaultTimeout
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = sender.DefaultConnectTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Dialer returns the dialer a broker connection uses: the HTTP sender's SSRF guard
// judges every address after DNS (the broker's own and any it redirects to, such as a
// cluster's other members), unless InsecureTargets.
func (c BrokerConfig) Dialer() *net.Dialer {
	return sender.GuardedDialer(c.InsecureTargets, c.ConnectTimeout)
}

// CheckBrokerHost applies the target rules to one host:port of a broker URL (the port
// required), without DNS. what names the part of the URL in the message.
func CheckBrokerHost(hostport string, insecure bool) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return errors.New("url must name the broker as host:port, not " + strconv.Quote(hostport))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("url port must be between 1 and 65535")
	}
	return sender.CheckTargetHost(host, insecure)
}

// ParseBrokerURL parses a broker URL of scheme with a single host, checking what every
// broker kind asks: the scheme, a host:port that the target rules accept, no fragment.
// A missing port gets defaultPort.
func ParseBrokerURL(raw, scheme, defaultPort string, insecure bool) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("url is required")
	}
	if len(raw) > sender.MaxURLLength {
		return nil, errors.New("url is " + strconv.Itoa(len(raw)) + " characters long; the limit is " + strconv.Itoa(sender.MaxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, errors.New("url is not valid: " + err.Error())
	}
	if !strings.EqualFold(u.Scheme, scheme) || u.Opaque != "" || u.Host == "" {
		return nil, errors.New("url must look like " + scheme + "://host:" + defaultPort + "/…")
	}
	if strings.IndexByte(raw, '#') >= 0 {
		return nil, errors.New("url must not contain a fragment (#...)")
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), defaultPort)
	}
	if err := CheckBrokerHost(u.Host, insecure); err != nil {
		return nil, err
	}
	return u, nil
}

// MessageHeaders calls set with each header of an attempt as a broker message carries
// it: the name in lower case (webhook-id, webhook-signature, content-type, the
// endpoint's own), the values joined as HTTP joins them.
func MessageHeaders(h http.Header, set func(name, value string)) {
	for k, v := range h {
		if v == nil {
			continue
		}
		set(strings.ToLower(k), strings.Join(v, ", "))
	}
}

// Acked returns the Outcome of an attempt the broker acknowledged.
func Acked(start time.Time, began time.Time, ack map[string]string) Outcome {
	return Outcome{Class: Success, StartedAt: start, Duration: time.Since(began), Ack: ack}
}

// Failed returns the Outcome of an attempt that failed with err: Blocked when the dial
// guard refused the broker's address, else a Failure (retried on the endpoint's
// schedule) whose text says what went wrong, what the attempt was doing (doing, e.g.
// "connect to nats://host:4222") and, after a timeout, how long it waited.
func Failed(ctx context.Context, start, began time.Time, timeout time.Duration, doing string, err error) Outcome {
	out := Outcome{Class: Failure, StartedAt: start, Duration: time.Since(began)}
	if msg, ok := sender.BlockedReason(err); ok {
		out.Class, out.Err = Blocked, msg
		return out
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		out.Err = doing + ": timeout after " + timeout.String()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			out.Err += " (" + err.Error() + ")"
		}
	case ctx.Err() != nil:
		out.Err = doing + ": canceled: " + context.Cause(ctx).Error()
	default:
		out.Err = doing + ": " + err.Error()
	}
	return out
}

// Conns keeps one connection (of type C) per key (a broker address with its
// credentials): attempts to the same broker share it, the first dials it while the
// others wait, and one that is dropped (broken) is dialled again by the next attempt. A
// connection unused for idleAfter is closed. It is safe for concurrent use.
type Conns[C any] struct {
	dial      func(ctx context.Context, key string) (C, error)
	close     func(C)
	idleAfter time.Duration

	mu        sync.Mutex
	m         map[string]*pooled[C]
	lastSweep time.Time
	closed    bool
}

type pooled[C any] struct {
	ready chan struct{} // closed once dialled (c or err set)
	c     C
	err   error
	used  time.Time // under Conns.mu
}

// NewConns returns an empty pool that dials with dial and closes with close.
func NewConns[C any](dial func(ctx context.Context, key string) (C, error), close func(C)) *Conns[C] {
	return &Conns[C]{dial: dial, close: close, idleAfter: 5 * time.Minute, m: map[string]*pooled[C]{}}
}

// Get returns the connection for key, dialling it if there is none. A failed dial is
// returned to every attempt that waited for it, and the next Get dials again.
func (p *Conns[C]) Get(ctx context.Context, key string) (C, error) {
	now := time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		var zero C
		return zero, errors.New("shutting down")
	}
	p.sweep(now)
	e, ok := p.m[key]
	if !ok {
		e = &pooled[C]{ready: make(chan struct{})}
		p.m[key] = e
		go p.dialInto(key, e)
	}
	e.used = now
	p.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		var zero C
		return zero, ctx.Err()
	}
	if e.err != nil {
		p.mu.Lock()
		if p.m[key] == e {
			delete(p.m, key)
		}
		p.mu.Unlock()
	}
	return e.c, e.err
}

// dialInto dials key for e on its own, so that an attempt that gives up waiting does
// not cut short the dial the others wait for; the dial is bounded by its own timeout.
func (p *Conns[C]) dialInto(key string, e *pooled[C]) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.c, e.err = p.dial(ctx, key)
	close(e.ready)
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed && e.err == nil {
		p.close(e.c)
	}
}

// Drop closes c, the connection of key, if the pool still holds it: the next attempt
// dials again.
func (p *Conns[C]) Drop(key string, c C, same func(a, b C) bool) {
	p.mu.Lock()
	e, ok := p.m[key]
	if ok {
		select {
		case <-e.ready:
			if e.err == nil && same(e.c, c) {
				delete(p.m, key)
			} else {
				ok = false
			}
		default:
			ok = false
		}
	}
	p.mu.Unlock()
	if ok {
		p.close(c)
	}
}

// sweep closes the connections unused for idleAfter, at most once a minute; p.mu held.
func (p *Conns[C]) sweep(now time.Time) {
	if now.Sub(p.lastSweep) < time.Minute {
		return
	}
	p.lastSweep = now
	for k, e := range p.m {
		if now.Sub(e.used) < p.idleAfter {
			continue
		}
		select {
		case <-e.ready:
			delete(p.m, k)
			if e.err == nil {
				go p.close(e.c)
			}
		default:
		}
	}
}

// Close closes every connection; Get fails afterwards.
func (p *Conns[C]) Close() {
	p.mu.Lock()
	p.closed = true
	m := p.m
	p.m = map[string]*pooled[C]{}
	p.mu.Unlock()
	for _, e := range m {
		select {
		case <-e.ready:
			if e.err == nil {
				p.close(e.c)
			}
		default: // dialInto closes it when done
		}
	}
}
