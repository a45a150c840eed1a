//go:build consign_stdlib

package sender

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The Sender's HTTP client in builds tagged consign_stdlib: net/http's Transport,
// kept beside the hand-made client of client.go so that a suspected bug of that one
// can be checked against the standard library, and so that its speed stays measured
// against it (docs/performance.md). The Transport gets what the hand-made client
// has: the guarded dialer (the SSRF check in net.Dialer.Control), the same TLS
// settings and handshake timeout, the same header cap and pool sizes, HTTP/1.1 only,
// no proxy, no compression, no redirects (RoundTrip never follows them). The
// request's checks, the body capture and the wording of errors are shared
// (request.go, sender.go, errors.go).

// client is net/http's Transport, and one more per endpoint TLS settings (ClientTLS),
// so that their connections are never shared.
type client struct {
	transport    *http.Transport
	dialer       *net.Dialer // guarded; dialTarget's direct path
	newTransport func(*tls.Config) *http.Transport
	tlsConfig    *tls.Config
	transports   sync.Map // ClientTLS fingerprint → *http.Transport
}

// initClient sets up s's client; dialer carries the SSRF guard.
func (s *Sender) initClient(cfg Config, dialer *net.Dialer, tlsConfig *tls.Config) {
	s.tlsConfig, s.dialer = tlsConfig, dialer
	s.newTransport = func(tlsConfig *tls.Config) *http.Transport { return newTransport(cfg, s.dialTarget, tlsConfig) }
	s.transport = s.newTransport(tlsConfig)
}

// transportFor returns the Transport of the requests that carry ct.
func (s *Sender) transportFor(ct *ClientTLS) *http.Transport {
	if tr, ok := s.transports.Load(ct.id); ok {
		return tr.(*http.Transport)
	}
	tr, _ := s.transports.LoadOrStore(ct.id, s.newTransport(ct.config(s.tlsConfig)))
	return tr.(*http.Transport)
}

func newTransport(cfg Config, dial func(context.Context, string, string) (net.Conn, error), tlsConfig *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy:               nil,  // a proxy would make the guard check the proxy, not the target
		DialContext:         dial, // through the egress proxy when there is one
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: cfg.ConnectTimeout,
		// No ResponseHeaderTimeout: the attempt's context ends at Timeout.
		MaxIdleConns:           8 * cfg.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:    cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		// Capture exactly what the receiver sent.
		DisableCompression: true,
	}
}

// closeIdle closes the idle connections.
func (s *Sender) closeIdle() {
	s.transport.CloseIdleConnections()
	s.transports.Range(func(_, tr any) bool {
		tr.(*http.Transport).CloseIdleConnections()
		return true
	})
}

// exchange is a request whose response headers have arrived. Its body is read
// from resp.Body; release ends it.
type exchange struct {
	resp   *http.Response
	cancel context.CancelFunc
}

// roundTrip sends r to t through the Transport and returns once the response's
// headers have arrived. The attempt's context ends at deadline, and earlier if ctx
// is canceled.
func (s *Sender) roundTrip(ctx context.Context, t *target, r *Request, deadline time.Time) (exchange, error) {
	rctx, cancel := context.WithDeadline(ctx, deadline)
	// A *bytes.Reader gives the request its Content-Length and a GetBody, with
	// which the Transport sends it again when a pooled connection turns out closed.
	var body io.Reader
	if len(r.Body) > 0 {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(rctx, t.method, r.URL, body)
	if err != nil {
		cancel()
		return exchange{}, err
	}
	req.Header = s.header(r.Header)
	tr := s.transport
	if t.client != nil {
		tr = s.transportFor(t.client)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		cancel()
		return exchange{}, transportError(err)
	}
	return exchange{resp: resp, cancel: cancel}, nil
}

// release ends x: the Transport keeps the connection when the body was read to its
// end and closes it otherwise, so reuse is its decision, not the caller's.
func (s *Sender) release(x exchange, _ bool) {
	_ = x.resp.Body.Close()
	x.cancel()
}

// header returns the header to send for h: without the headers the framing writes
// itself (as the hand-made client ignores them), with the default User-Agent when h
// has none, and with a nil Idempotency-Key, which is not sent but tells the
// Transport that the POST may be sent again on a fresh connection when a pooled one
// turns out closed before any answer (webhooks are delivered at least once and
// carry their own id).
func (s *Sender) header(h http.Header) http.Header {
	c := make(http.Header, len(h)+2)
	for k, vs := range h {
		if k == "User-Agent" || !reqExcluded[k] {
			c[k] = vs
		}
	}
	if _, ok := h["User-Agent"]; !ok {
		c["User-Agent"] = s.userAgent
	}
	_, key := h["Idempotency-Key"]
	_, xkey := h["X-Idempotency-Key"]
	if !key && !xkey {
		c["Idempotency-Key"] = nil
	}
	return c
}

// transportError gives the Transport's errors that have no type of their own the
// hand-made client's sentinel, so that errors.go words them alike.
func transportError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "TLS handshake timeout"):
		return errHandshakeTimeout
	case strings.Contains(msg, "server response headers exceeded"):
		return errHeaderTooLarge
	}
	return err
}
