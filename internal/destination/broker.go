package destination

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consign-dev/consign/internal/sender"
)

// What the broker kinds (natsdest, amqpdest, kafkadest, redisdest) share: their
// configuration, the target rules applied to a broker's URL and hosts, the guarded
// dialer every connection goes through, TLS, a pool of connections, the message headers
// and the wording of a failed attempt.
//
// Each kind has a plaintext scheme and a TLS one (nats:// and tls://, amqp:// and
// amqps://, redis:// and rediss://, kafka:// and kafka+tls://). As https is for HTTP,
// TLS is the rule: without --insecure-targets a plaintext scheme is refused when the
// endpoint is saved (a field error naming the TLS scheme) and, should one be stored,
// blocked when sent. A TLS connection verifies the broker's certificate against the
// system roots, or against the endpoint's own CAs (its "tls" settings, which also give
// a client certificate for mutual TLS), as for an HTTPS endpoint.

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

// TLSConfig returns the TLS settings of a connection to a broker for an attempt that
// carries ct (the endpoint's TLS settings, nil for none): TLS 1.2 at least, the
// broker's certificate verified against the system roots or ct's CAs, ct's client
// certificate. ServerName is left to the dial (DialTLS, or the client library), which
// knows the host it dials.
func (c BrokerConfig) TLSConfig(ct *ClientTLS) *tls.Config {
	return ct.Apply(&tls.Config{MinVersion: tls.VersionTLS12})
}

// DialFunc dials one address, as net.Dialer.DialContext does.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// DialTLS dials addr with dial (the guarded dialer) and completes a TLS handshake with
// conf, verifying the certificate for addr's host when conf names no ServerName; the
// dial and the handshake together take at most timeout.
func DialTLS(ctx context.Context, dial DialFunc, network, addr string, conf *tls.Config, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if conf.ServerName == "" {
		conf = conf.Clone()
		conf.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(raw, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, errors.New("TLS handshake with " + addr + ": " + err.Error())
	}
	return tc, nil
}

// Scheme is one URL scheme of a broker kind.
type Scheme struct {
	Name string // in lower case, e.g. "amqps"
	Port string // the default port
	TLS  bool   // connections speak TLS; without it they are plaintext
}

// plaintextError is the refusal of a plaintext scheme without --insecure-targets.
type plaintextError struct{ msg string }

func (e plaintextError) Error() string { return e.msg }

// CheckScheme finds the scheme of raw among schemes (the kind's plaintext one first,
// then its TLS one) and applies the rule on plaintext: unless insecure, a scheme
// without TLS is refused, in words naming the one to use instead.
func CheckScheme(raw string, insecure bool, schemes ...Scheme) (Scheme, error) {
	name, _, ok := strings.Cut(raw, "://")
	var secure Scheme
	for _, s := range schemes {
		if s.TLS && secure.Name == "" {
			secure = s
		}
	}
	for _, s := range schemes {
		if !ok || !strings.EqualFold(name, s.Name) {
			continue
		}
		if !s.TLS && !insecure {
			return s, plaintextError{fmt.Sprintf("url must use %s://, not %s:// (plaintext; serve --insecure-targets allows it, for development)",
				secure.Name, s.Name)}
		}
		return s, nil
	}
	names := make([]string, len(schemes))
	for i, s := range schemes {
		names[i] = s.Name + "://host:" + s.Port + "/…"
	}
	return Scheme{}, errors.New("url must look like " + strings.Join(names, " or "))
}

// Refused returns the Outcome of an attempt whose stored URL the kind will not send:
// Blocked for a plaintext scheme without --insecure-targets (as an http:// URL is for
// HTTP), else a Failure. It makes no connection.
func Refused(start time.Time, err error) Outcome {
	if errors.As(err, new(plaintextError)) {
		return Outcome{Class: Blocked, StartedAt: start, Err: err.Error()}
	}
	return Outcome{Class: Failure, StartedAt: start, Err: err.Error()}
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

// ParseBrokerURL parses a broker URL with a single host, checking what every broker
// kind asks: one of the kind's schemes (CheckScheme: plaintext only when insecure), a
// host:port that the target rules accept, no fragment. A missing port gets the
// scheme's default. Its error text names what to fix; Refused turns it into an Outcome.
func ParseBrokerURL(raw string, insecure bool, schemes ...Scheme) (*url.URL, Scheme, error) {
	if raw == "" {
		return nil, Scheme{}, errors.New("url is required")
	}
	if len(raw) > sender.MaxURLLength {
		return nil, Scheme{}, errors.New("url is " + strconv.Itoa(len(raw)) + " characters long; the limit is " + strconv.Itoa(sender.MaxURLLength))
	}
	scheme, err := CheckScheme(raw, insecure, schemes...)
	if err != nil {
		return nil, scheme, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, scheme, errors.New("url is not valid: " + err.Error())
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, scheme, errors.New("url must look like " + scheme.Name + "://host:" + scheme.Port + "/…")
	}
	if strings.IndexByte(raw, '#') >= 0 {
		return nil, scheme, errors.New("url must not contain a fragment (#...)")
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), scheme.Port)
	}
	if err := CheckBrokerHost(u.Host, insecure); err != nil {
		return nil, scheme, err
	}
	return u, scheme, nil
}

// BrokerQuery parses the query of a broker URL of scheme, which may give each of names
// once and nothing else; its errors name what to fix.
func BrokerQuery(rawQuery string, scheme Scheme, names ...string) (url.Values, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errors.New("url query is not valid: " + err.Error())
	}
	for k, v := range q {
		if !slices.Contains(names, k) {
			article := "a"
			if strings.ContainsRune("aeiou", rune(scheme.Name[0])) {
				article = "an"
			}
			takes := strings.Join(names, ", ")
			if i := strings.LastIndex(takes, ", "); i >= 0 {
				takes = takes[:i] + " and " + takes[i+2:]
			}
			return nil, fmt.Errorf("url query %q is not known: %s %s:// URL takes %s", k, article, scheme.Name, takes)
		}
		if len(v) > 1 {
			return nil, fmt.Errorf("url gives %s %d times; give it once", k, len(v))
		}
	}
	return q, nil
}

// MessageHeaders calls set with each header of an attempt as a broker message carries
// it: the name in lower case (webhook-id, webhook-signature, content-type, the
// endpoint's own), the values joined as HTTP joins them.
func MessageHeaders(h http.Header, set func(name, value string)) {
	for k, v := range h {
		if v == nil {
			continue
		}
		name, ok := lowerNames[k]
		if !ok {
			name = strings.ToLower(k)
		}
		set(name, strings.Join(v, ", "))
	}
}

// lowerNames are the lower-case names of the headers every attempt carries, so that
// MessageHeaders need not make them for each message.
var lowerNames = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Content-Type", "User-Agent", "Webhook-Id", "Webhook-Timestamp",
		"Webhook-Signature", "Webhook-Sequence", "Authorization", "Traceparent", "Tracestate"} {
		m[k] = strings.ToLower(k)
	}
	return m
}()

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

// ConnKey names one connection of a pool: Addr, what the kind connects to (a broker
// address with its scheme and credentials), and TLS, the endpoint's TLS settings its
// attempts carry (nil for none), so that endpoints with other CAs or client
// certificates never share a connection.
type ConnKey struct {
	Addr string
	TLS  *ClientTLS
}

// Conns keeps one connection (of type C) per ConnKey: attempts to the same broker share it, the first dials it while the
// others wait, and one that is dropped (broken) is dialled again by the next attempt. A
// connection unused for idleAfter is closed. It is safe for concurrent use.
type Conns[C any] struct {
	dial      func(ctx context.Context, key ConnKey) (C, error)
	close     func(C)
	idleAfter time.Duration

	mu        sync.Mutex
	m         map[ConnKey]*pooled[C]
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
func NewConns[C any](dial func(ctx context.Context, key ConnKey) (C, error), close func(C)) *Conns[C] {
	return &Conns[C]{dial: dial, close: close, idleAfter: 5 * time.Minute, m: map[ConnKey]*pooled[C]{}}
}

// Get returns the connection for key, dialling it if there is none. A failed dial is
// returned to every attempt that waited for it, and the next Get dials again.
func (p *Conns[C]) Get(ctx context.Context, key ConnKey) (C, error) {
	return p.GetWithin(ctx, key, 0)
}

// GetWithin is Get waiting at most timeout (when above 0) for a dial under way; a
// connection already dialled costs no timer.
func (p *Conns[C]) GetWithin(ctx context.Context, key ConnKey, timeout time.Duration) (C, error) {
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
	default:
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		select {
		case <-e.ready:
		case <-ctx.Done():
			var zero C
			return zero, ctx.Err()
		}
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
func (p *Conns[C]) dialInto(key ConnKey, e *pooled[C]) {
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
func (p *Conns[C]) Drop(key ConnKey, c C, same func(a, b C) bool) {
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
	p.m = map[ConnKey]*pooled[C]{}
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
