//go:build !consign_stdlib

package sender

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The Sender's HTTP/1.1 client. An attempt takes a kept-alive connection
// from a pool per target (scheme and host), writes its request and reads the
// response on its own goroutine, and gives the connection back when the
// response has been read to its end. net/http's Transport instead hands
// every request to two goroutines per connection, a write loop and a read
// loop; at webhook rates those hand-offs and wake-ups cost about as much CPU
// as the rest of the round trip (docs/performance.md, "the sender's own
// connections"). Builds tagged consign_stdlib use the Transport instead
// (client_stdlib.go). What is delicate stays with the standard library:
// responses are parsed by http.ReadResponse (status line, headers, chunked
// and fixed-length bodies), TLS is crypto/tls, connections are dialed by the
// guarded net.Dialer.
//
// A connection is reused only when its response was read to its end, the
// receiver did not ask to close it, nothing follows the response on the wire
// and the attempt was neither canceled nor timed out. A request that fails
// on a reused connection before any byte of a response arrived (the receiver
// closed it while it was idle) is sent again on another connection: webhooks
// are delivered at least once and carry their own id.

// connBufferSize is the size of the read and write buffers lent to a
// connection for one exchange.
const connBufferSize = 4 << 10

// client is the Sender's HTTP/1.1 client: its pool, its dialer and TLS settings,
// and the buffers it lends to a connection for one exchange.
type client struct {
	pool      *connPool
	dialer    *net.Dialer
	tlsConfig *tls.Config
	readers   sync.Pool // *bufio.Reader
	writers   sync.Pool // *bufio.Writer
}

// initClient sets up s's client; dialer carries the SSRF guard.
func (s *Sender) initClient(cfg Config, dialer *net.Dialer, tlsConfig *tls.Config) {
	s.pool = newConnPool(cfg.MaxIdleConnsPerHost, 8*cfg.MaxIdleConnsPerHost, idleConnTimeout)
	s.dialer, s.tlsConfig = dialer, tlsConfig
	s.readers.New = func() any { return bufio.NewReaderSize(nil, connBufferSize) }
	s.writers.New = func() any { return bufio.NewWriterSize(nil, connBufferSize) }
}

// closeIdle closes the idle connections.
func (s *Sender) closeIdle() { s.pool.closeIdle() }

// conn is one connection to a receiver. Its buffers are borrowed from the
// Sender's pools for the length of an exchange, so an idle connection holds
// no memory beyond the socket.
type conn struct {
	nc     net.Conn
	key    poolKey
	limit  io.LimitedReader // reads nc; bounds the response header block
	br     *bufio.Reader    // set during an exchange
	idleAt time.Time
}

// expire makes every pending and later read and write of c fail at once.
func (c *conn) expire() { _ = c.nc.SetDeadline(time.Unix(1, 0)) }

// connPool holds the idle connections, most recently used last.
type connPool struct {
	mu       sync.Mutex
	idle     map[poolKey]*idleConns
	total    int
	perHost  int
	max      int
	timeout  time.Duration
	sweeping bool
}

type idleConns struct{ conns []*conn }

func newConnPool(perHost, maxIdle int, timeout time.Duration) *connPool {
	return &connPool{idle: make(map[poolKey]*idleConns), perHost: perHost, max: maxIdle, timeout: timeout}
}

// get returns the most recently used live connection for key, or nil.
func (p *connPool) get(key poolKey) *conn {
	now := time.Now()
	var stale []*conn
	var c *conn
	p.mu.Lock()
	if l := p.idle[key]; l != nil {
		for n := len(l.conns); n > 0; n-- {
			last := l.conns[n-1]
			l.conns[n-1] = nil
			l.conns = l.conns[:n-1]
			p.total--
			if now.Sub(last.idleAt) < p.timeout {
				c = last
				break
			}
			stale = append(stale, last)
		}
	}
	p.mu.Unlock()
	for _, s := range stale {
		_ = s.nc.Close()
	}
	return c
}

// put keeps c for reuse, or closes it when the pool is full.
func (p *connPool) put(c *conn) {
	c.idleAt = time.Now()
	p.mu.Lock()
	l := p.idle[c.key]
	if l == nil {
		l = &idleConns{}
		p.idle[c.key] = l
	}
	if len(l.conns) >= p.perHost || p.total >= p.max {
		p.mu.Unlock()
		_ = c.nc.Close()
		return
	}
	l.conns = append(l.conns, c)
	p.total++
	arm := !p.sweeping
	p.sweeping = true
	p.mu.Unlock()
	if arm {
		time.AfterFunc(p.timeout/3, p.sweep)
	}
}

// sweep closes the connections idle for longer than the timeout, and runs
// again later while any connection is idle.
func (p *connPool) sweep() {
	now := time.Now()
	var stale []*conn
	p.mu.Lock()
	for key, l := range p.idle {
		kept := l.conns[:0]
		for _, c := range l.conns {
			if now.Sub(c.idleAt) >= p.timeout {
				stale = append(stale, c)
			} else {
				kept = append(kept, c)
			}
		}
		clear(l.conns[len(kept):])
		l.conns = kept
		if len(kept) == 0 {
			delete(p.idle, key)
		}
	}
	p.total -= len(stale)
	p.sweeping = p.total > 0
	again := p.sweeping
	p.mu.Unlock()
	for _, c := range stale {
		_ = c.nc.Close()
	}
	if again {
		time.AfterFunc(p.timeout/3, p.sweep)
	}
}

// closeIdle closes every idle connection.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = make(map[poolKey]*idleConns)
	p.total = 0
	p.mu.Unlock()
	for _, l := range idle {
		for _, c := range l.conns {
			_ = c.nc.Close()
		}
	}
}

// exchange is a request whose response headers have arrived. Its body is
// read from resp.Body; release gives the connection back or closes it.
type exchange struct {
	c    *conn
	resp *http.Response
	stop func() bool // ends the cancellation watch; nil when ctx cannot be canceled
}

// roundTrip sends r to t and reads the response's status line and headers.
// Every read and write ends at deadline, and earlier if ctx is canceled.
func (s *Sender) roundTrip(ctx context.Context, t *target, r *Request, deadline time.Time) (exchange, error) {
	for {
		c := s.pool.get(t.key)
		reused := c != nil
		if !reused {
			var err error
			if c, err = s.dial(ctx, t, deadline); err != nil {
				return exchange{}, err
			}
		}
		if err := c.nc.SetDeadline(deadline); err != nil {
			_ = c.nc.Close()
			return exchange{}, err
		}
		x := exchange{c: c}
		if ctx.Done() != nil {
			x.stop = context.AfterFunc(ctx, c.expire)
		}
		resp, stale, err := s.send(c, t, r)
		if err == nil {
			x.resp = resp
			return x, nil
		}
		s.release(x, false)
		if !reused || !stale || ctx.Err() != nil || !time.Now().Before(deadline) {
			return exchange{}, err
		}
		// The receiver closed the idle connection: try the next one.
	}
}

// send writes the request on c and reads the response headers. stale reports
// a failure before any byte of a response arrived that looks like a
// connection the receiver had already closed.
func (s *Sender) send(c *conn, t *target, r *Request) (resp *http.Response, stale bool, err error) {
	bw := s.writers.Get().(*bufio.Writer)
	bw.Reset(c.nc)
	werr := s.writeRequest(bw, t, r)
	if werr == nil {
		werr = bw.Flush()
	}
	bw.Reset(nil)
	s.writers.Put(bw)

	c.limit.R = c.nc
	c.br = s.readers.Get().(*bufio.Reader)
	c.br.Reset(&c.limit)
	resp, answered, err := readResponse(c, t.req)
	if err != nil {
		if werr != nil {
			// An answer read after a failed write would have been used; there is
			// none, so the write's error says more.
			err = werr
		}
		return nil, !answered && isClosed(err), err
	}
	if werr != nil {
		// The receiver answered before reading the whole request (a 413, say):
		// the answer counts, the connection does not go back to the pool.
		resp.Close = true
	}
	return resp, false, nil
}

// readResponse reads a response's status line and headers from c, past any
// interim 1xx responses. answered reports that any byte of a response came.
func readResponse(c *conn, req *http.Request) (resp *http.Response, answered bool, err error) {
	for interim := 0; ; interim++ {
		c.limit.N = maxResponseHeaderBytes
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			answered = answered || c.limit.N < maxResponseHeaderBytes
			if c.limit.N <= 0 {
				return nil, answered, errHeaderTooLarge
			}
			return nil, answered, err
		}
		answered = true
		c.limit.N = math.MaxInt64
		code := resp.StatusCode
		if code >= 200 || code == http.StatusSwitchingProtocols || interim == 4 {
			if code < 200 {
				resp.Close = true // no body of its own follows; the connection is not HTTP any more
			}
			return resp, true, nil
		}
	}
}

// isClosed reports an error that means the receiver closed the connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// writeRequest writes r's request line, headers and body to bw. r's header
// has passed headerProblem.
func (s *Sender) writeRequest(bw *bufio.Writer, t *target, r *Request) error {
	_, _ = bw.WriteString(t.method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(t.uri)
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(t.key.host)
	_, _ = bw.WriteString("\r\n")
	ua := s.userAgent
	if v, ok := r.Header["User-Agent"]; ok {
		ua = v
	}
	if len(ua) > 0 && ua[0] != "" {
		writeHeader(bw, "User-Agent", ua[0])
	}
	for k, vs := range r.Header {
		if reqExcluded[k] {
			continue
		}
		for _, v := range vs {
			writeHeader(bw, k, v)
		}
	}
	if len(r.Body) > 0 || t.method == http.MethodPost || t.method == http.MethodPut || t.method == http.MethodPatch {
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(r.Body)), 10))
		_, _ = bw.WriteString("\r\n")
	}
	_, _ = bw.WriteString("\r\n")
	_, err := bw.Write(r.Body)
	return err
}

func writeHeader(bw *bufio.Writer, k, v string) {
	_, _ = bw.WriteString(k)
	_, _ = bw.WriteString(": ")
	_, _ = bw.WriteString(v)
	_, _ = bw.WriteString("\r\n")
}

// release ends the cancellation watch of x and gives its connection back to
// the pool when reuse is true and the connection is clean, or closes it.
func (s *Sender) release(x exchange, reuse bool) {
	c := x.c
	if x.stop != nil && !x.stop() {
		reuse = false // the cancellation already expired the connection
	}
	if c.br != nil {
		reuse = reuse && c.br.Buffered() == 0 // bytes past the response: not HTTP as we know it
		c.br.Reset(nil)
		s.readers.Put(c.br)
		c.br = nil
	}
	c.limit.R = nil
	if reuse {
		s.pool.put(c)
		return
	}
	_ = c.nc.Close()
}

// dial connects to t, through the SSRF guard unless InsecureTargets, and
// shakes hands for https.
func (s *Sender) dial(ctx context.Context, t *target, deadline time.Time) (*conn, error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	nc, err := s.dialTarget(dctx, "tcp", net.JoinHostPort(t.hostname, t.port))
	if err != nil {
		return nil, err
	}
	if t.key.tls {
		cfg := s.tlsConfig
		if t.client != nil {
			cfg = t.client.config(cfg)
		}
		cfg = cfg.Clone()
		cfg.ServerName = t.hostname
		tc := tls.Client(nc, cfg)
		hctx, hcancel := context.WithTimeout(dctx, s.connectTimeout)
		err := tc.HandshakeContext(hctx)
		timedOut := hctx.Err() != nil && dctx.Err() == nil
		hcancel()
		if err != nil {
			_ = nc.Close()
			if timedOut {
				return nil, errHandshakeTimeout
			}
			return nil, err
		}
		nc = tc
	}
	return &conn{nc: nc, key: t.key}, nil
}
