package sender

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"code.dny.dev/ssrf"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultTimeout bounds a whole attempt, from dial to the end of the
	// response body.
	DefaultTimeout = 15 * time.Second
	// DefaultConnectTimeout bounds the TCP connect, and separately the TLS
	// handshake.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultMaxResponseBody is how many response body bytes are captured.
	DefaultMaxResponseBody = 64 << 10
	// DefaultMaxIdleConnsPerHost is the size of the keep-alive pool per
	// receiver host.
	DefaultMaxIdleConnsPerHost = 512
	// DefaultUserAgent is sent when the request carries no User-Agent.
	DefaultUserAgent = "Consign-Webhooks/1.0"
)

const (
	// maxDrain is how many bytes past the capture limit are read and thrown
	// away to keep the connection reusable. Past that, the connection is
	// closed instead.
	maxDrain = 1 << 20
	// maxResponseHeaderBytes caps the response header block.
	maxResponseHeaderBytes = 64 << 10
	// idleConnTimeout is how long an unused connection is kept.
	idleConnTimeout = 90 * time.Second
	// minScratch is the smallest pooled read buffer, so draining stays
	// efficient even with a tiny capture limit.
	minScratch = 16 << 10
	// insecureHint tells an operator how to allow internal targets.
	insecureHint = " (set --insecure-targets for development)"
)

// Config configures a Sender. The zero value is usable: every zero field
// gets its default (WithDefaults); Validate says which settings cannot work.
type Config struct {
	// Timeout bounds a whole attempt: connect, TLS, sending the request and
	// reading the response, body drain included. Default 15 s.
	Timeout time.Duration
	// ConnectTimeout bounds the TCP connect, and separately the TLS
	// handshake. Default 5 s.
	ConnectTimeout time.Duration
	// MaxResponseBody is how many bytes of response body are captured into
	// Outcome.Body. 0 means 64 KiB; a negative value captures nothing.
	MaxResponseBody int
	// MaxIdleConnsPerHost is the number of keep-alive connections kept per
	// receiver host. Default 512.
	MaxIdleConnsPerHost int
	// UserAgent is sent when Request.Header has no User-Agent. Default
	// DefaultUserAgent.
	UserAgent string
	// InsecureTargets turns the SSRF guard off and allows http:// URLs. Use
	// it only for development and tests.
	InsecureTargets bool
	// EgressProxy, when set, is an HTTP CONNECT proxy (http://[user:pass@]host:port)
	// every connection to a target goes through; the SSRF guard still judges the target,
	// not the proxy. Default none.
	EgressProxy string
	// RootCAs, if not nil, replaces the system roots used to verify the
	// certificates of receivers (private PKI, tests).
	RootCAs *x509.CertPool
	// Now returns the current time and is used for Outcome.StartedAt and
	// for RetryAt computed from Retry-After. Default time.Now.
	Now func() time.Time
}

// Request is one delivery attempt to make. The Sender neither copies nor
// modifies Header or Body, and keeps neither once Send returns.
type Request struct {
	// Method is the HTTP method. Empty means POST.
	Method string
	// URL is the absolute target URL.
	URL string
	// Header holds every request header (Content-Type, webhook-*, ...).
	// If it lacks User-Agent, Config.UserAgent is sent; an empty
	// User-Agent sends none. Host, Content-Length, Transfer-Encoding,
	// Trailer and Connection are the Sender's own and are ignored here. A
	// nil value is not sent.
	Header http.Header
	// Body is sent as is, with a Content-Length.
	Body []byte
	// TLS, when not nil, is the endpoint's client certificate and CAs; its requests
	// use connections of their own.
	TLS *ClientTLS
	// Key is the event's ordering key ("" without one). HTTP does not send it; a broker
	// destination uses it as the message key (Kafka's record key).
	Key string
}

// Class is the verdict on an attempt. The zero Class is Failure.
type Class int

const (
	// Failure is any attempt that is not one of the other classes: a
	// non-2xx status (3xx included, as redirects are not followed), a
	// network or TLS error, a timeout or a canceled context.
	Failure Class = iota
	// Success is a 2xx response received within the timeout.
	Success
	// Gone is a 410 Gone response: the receiver asks to stop sending, and
	// the caller should deactivate the endpoint.
	Gone
	// Throttled is a 429 or 503 response with a usable Retry-After. The
	// whole endpoint should wait until Outcome.RetryAt.
	Throttled
	// Blocked means the target was refused by policy (https only, SSRF
	// guard) and no connection was made to it.
	Blocked
)

// String returns the lower-case name of c.
func (c Class) String() string {
	switch c {
	case Failure:
		return "failure"
	case Success:
		return "success"
	case Gone:
		return "gone"
	case Throttled:
		return "throttled"
	case Blocked:
		return "blocked"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Outcome describes one attempt.
type Outcome struct {
	// Class is the verdict.
	Class Class
	// StartedAt is when Send began, from Config.Now.
	StartedAt time.Time
	// Duration runs from the start of Send to the end of the body read,
	// measured with the monotonic clock.
	Duration time.Duration
	// Status is the HTTP status code, or 0 if no response was received.
	Status int
	// Header holds the response headers (nil without a response). For a
	// 3xx it includes Location.
	Header http.Header
	// Body holds the captured start of the response body (nil if empty).
	Body []byte
	// Truncated reports that Body is shorter than the body the receiver
	// sent, because of the capture limit or a read error.
	Truncated bool
	// Err says what went wrong, e.g. "connection refused by 1.2.3.4:443",
	// "timeout after 15s", "HTTP 500 Internal Server Error". It is empty
	// for a clean success. On Success it can only report a problem reading
	// the response body after the 2xx status arrived.
	Err string
	// RetryAt is set for Throttled: the endpoint should not be called
	// before this time.
	RetryAt time.Time
	// Ack is a broker's acknowledgement of a Success, by name (stream and sequence,
	// partition and offset…), from a destination that is not HTTP; Status is 0 then.
	// HTTP leaves it nil.
	Ack map[string]string
}

// Sender sends webhook attempts over a pool of kept-alive connections: its own
// HTTP/1.1 client (client.go), or net/http's Transport in builds tagged
// consign_stdlib (client_stdlib.go). It is safe for concurrent use. Create it with
// New.
type Sender struct {
	client                        // the HTTP client of the build
	guard          *ssrf.Guardian // nil when InsecureTargets
	egress         *egress        // nil without Config.EgressProxy
	now            func() time.Time
	timeout        time.Duration
	connectTimeout time.Duration
	maxBody        int
	userAgent      []string  // shared, read-only
	bufs           sync.Pool // response body scratch buffers
	targets        targetCache
}

// WithDefaults returns c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxResponseBody == 0 {
		c.MaxResponseBody = DefaultMaxResponseBody
	}
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every setting of c (with its defaults applied) that cannot work,
// naming each.
func (c Config) Validate() error {
	var errs []error
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("Timeout is %s; it must be positive", c.Timeout))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ConnectTimeout is %s; it must be positive", c.ConnectTimeout))
	}
	if c.MaxIdleConnsPerHost < 0 {
		errs = append(errs, fmt.Errorf("MaxIdleConnsPerHost is %d; it must not be negative", c.MaxIdleConnsPerHost))
	}
	if c.EgressProxy != "" {
		if _, err := parseEgressProxy(c.EgressProxy); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// New returns a Sender configured by cfg, with its defaults applied. It panics when the
// result does not pass Validate: the composition root validates its settings first.
func New(cfg Config) *Sender {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic("sender: invalid settings: " + err.Error())
	}
	if cfg.MaxResponseBody < 0 {
		cfg.MaxResponseBody = 0 // capture nothing
	}

	s := &Sender{
		now:            cfg.Now,
		timeout:        cfg.Timeout,
		connectTimeout: cfg.ConnectTimeout,
		maxBody:        cfg.MaxResponseBody,
		userAgent:      []string{cfg.UserAgent},
	}
	scratch := max(cfg.MaxResponseBody, minScratch)
	s.bufs.New = func() any {
		b := make([]byte, scratch)
		return &b
	}

	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	if cfg.EgressProxy != "" {
		s.egress, _ = parseEgressProxy(cfg.EgressProxy)
		s.egress.dialer = &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	}
	if !cfg.InsecureTargets {
		s.guard = ssrf.New(ssrf.WithAnyPort())
		dialer.Control = s.control
	}
	s.initClient(cfg, dialer, &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            cfg.RootCAs,
		ClientSessionCache: tls.NewLRUClientSessionCache(1024),
	})
	return s
}

// Close closes idle keep-alive connections. In-flight sends are not
// interrupted, and the Sender can still be used afterwards.
func (s *Sender) Close() {
	s.closeIdle()
}

// Send makes one attempt and reports its Outcome. It never returns an
// error: everything, including a canceled ctx, is described in the
// Outcome. If ctx is canceled, the Outcome is a Failure whose Err starts
// with "canceled". Callers that are shutting down can check ctx.Err() and
// not count the attempt.
func (s *Sender) Send(ctx context.Context, r Request) (out Outcome) {
	out.StartedAt = s.now()
	began := time.Now()
	defer func() { out.Duration = time.Since(began) }()

	method := r.Method
	if method == "" {
		method = http.MethodPost
	}
	t, blocked, msg := s.targets.get(method, r.URL, s.target)
	if blocked {
		out.Class = Blocked
		out.Err = "blocked: " + msg + insecureHint
		return out
	}
	if msg != "" {
		out.Err = msg
		return out
	}
	if r.TLS != nil {
		t.client, t.key.client = r.TLS, r.TLS.id
	}
	if msg := headerProblem(r.Header); msg != "" {
		out.Err = msg
		return out
	}

	deadline := began.Add(s.timeout)
	x, err := s.roundTrip(ctx, &t, &r, deadline)
	if err != nil {
		out.Class, out.Err = s.describe(ctx, deadline, err)
		return out
	}
	resp := x.resp
	respAt := s.now()
	out.Status = resp.StatusCode
	out.Header = resp.Header
	body, eof := s.readBody(resp.Body)
	out.Body, out.Truncated = body.captured, body.truncated
	s.release(x, eof && !resp.Close)

	code := resp.StatusCode
	switch {
	case code >= 200 && code <= 299:
		out.Class = Success
	case code == http.StatusGone:
		out.Class = Gone
		out.Err = statusText(code)
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		out.Err = statusText(code)
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), respAt); ok {
			out.Class = Throttled
			out.RetryAt = respAt.Add(d)
			out.Err += "; retry after " + out.RetryAt.UTC().Format(time.RFC3339)
		}
	case code >= 300 && code <= 399:
		out.Err = statusText(code) + ": redirects are not followed"
		if loc := resp.Header.Get("Location"); loc != "" {
			out.Err += " (Location: " + loc + ")"
		}
	default:
		out.Err = statusText(code)
	}
	if body.err != nil {
		_, msg := s.describe(ctx, deadline, body.err)
		if out.Err != "" {
			out.Err += "; "
		}
		out.Err += "reading response body: " + msg
	}
	return out
}

// target checks and locates method and rawURL: the Send's steps before any connection.
// blocked reports a policy refusal (msg says why), as opposed to an unusable URL.
func (s *Sender) target(method, rawURL string) (t target, blocked bool, msg string) {
	u, t, msg := parseTarget(method, rawURL)
	if msg != "" {
		return t, false, msg
	}
	if msg, blocked := s.preflight(u); msg != "" {
		return t, blocked, msg
	}
	return t, false, t.locate(u)
}

// preflight applies the checks that must happen before any DNS lookup or
// connection. It returns "" when the URL may be sent; blocked reports a
// policy refusal (as opposed to an unusable URL).
func (s *Sender) preflight(u *url.URL) (msg string, blocked bool) {
	switch u.Scheme {
	case "https":
	case "http":
		if s.guard != nil {
			return "url must use https", true
		}
	default:
		if s.guard != nil {
			return "url must use https", true
		}
		return "url must use http or https", false
	}
	if s.guard != nil {
		// The resolver must never see odd numeric spellings: some resolvers
		// turn 2130706433 or 0x7f.1 into 127.0.0.1 and others send them to
		// DNS. Literal IPs in canonical form are left to the dial guard.
		if msg := numericHostProblem(u.Hostname()); msg != "" {
			return msg, true
		}
	}
	return "", false
}

// bodyRead is what readBody got of a response body.
type bodyRead struct {
	captured  []byte // nil if empty
	truncated bool   // shorter than what the receiver sent
	err       error  // why the read stopped early
}

// readBody captures up to s.maxBody bytes of body, then drains at most
// maxDrain more so the connection can be reused. eof reports that the body
// was read to its end.
func (s *Sender) readBody(body io.Reader) (r bodyRead, eof bool) {
	bufp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bufp)
	buf := *bufp

	n := 0
	var err error
	for n < s.maxBody && err == nil {
		var m int
		m, err = body.Read(buf[n:s.maxBody])
		n += m
	}
	if n > 0 {
		r.captured = make([]byte, n)
		copy(r.captured, buf[:n])
	}
	if err == io.EOF {
		return r, true
	}
	if err != nil {
		r.truncated, r.err = true, err
		return r, false
	}

	// The capture limit was reached: drain the rest, within bounds.
	for drained := 0; drained <= maxDrain; {
		m, err := body.Read(buf)
		drained += m
		r.truncated = r.truncated || m > 0
		if err == io.EOF {
			return r, true
		}
		if err != nil {
			r.truncated, r.err = true, err
			return r, false
		}
	}
	return r, false
}

// statusText formats a status for Outcome.Err, e.g. "HTTP 503 Service
// Unavailable".
func statusText(code int) string {
	s := "HTTP " + strconv.Itoa(code)
	if t := http.StatusText(code); t != "" {
		s += " " + t
	}
	return s
}

// unwrapURLError drops the `Op "url":` prefix that *url.Error adds: the
// caller already knows the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
