package sender_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consign-dev/consign/internal/sender"
	"github.com/stretchr/testify/require"
)

// fixedNow is the injected clock of the tests.
var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return fixedNow }

// receiver is a real HTTP server on a loopback socket that counts the
// connections it accepts and the requests it serves.
type receiver struct {
	*httptest.Server
	conns atomic.Int64
	hits  atomic.Int64
}

func newReceiver(t *testing.T, h http.HandlerFunc) *receiver {
	t.Helper()
	return startReceiver(t, httptest.NewUnstartedServer(nil), h, false)
}

func newTLSReceiver(t *testing.T, h http.HandlerFunc) *receiver {
	t.Helper()
	return startReceiver(t, httptest.NewUnstartedServer(nil), h, true)
}

func startReceiver(t *testing.T, srv *httptest.Server, h http.HandlerFunc, tls bool) *receiver {
	t.Helper()
	rc := &receiver{Server: srv}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.hits.Add(1)
		h(w, r)
	})
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			rc.conns.Add(1)
		}
	}
	// Refused handshakes are expected in these tests; keep the log quiet.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return rc
}

func newSender(t *testing.T, cfg sender.Config) *sender.Sender {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = clock
	}
	s := sender.New(cfg)
	t.Cleanup(s.Close)
	return s
}

func post(url string) sender.Request {
	return sender.Request{
		URL:    url,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   []byte(`{"type":"test"}`),
	}
}

func TestSendStatusClasses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		handler   http.HandlerFunc
		class     sender.Class
		status    int
		body      string
		err       string // substring; "" means Err must be empty
		retryAt   time.Time
		wantRetry bool
	}{
		{
			name:    "200 success",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "thanks") },
			class:   sender.Success, status: 200, body: "thanks",
		},
		{
			name:    "204 success",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) },
			class:   sender.Success, status: 204,
		},
		{
			name: "202 success chunked",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(202)
				_, _ = io.WriteString(w, "a")
				w.(http.Flusher).Flush()
				_, _ = io.WriteString(w, "b")
			},
			class: sender.Success, status: 202, body: "ab",
		},
		{
			name:    "500 failure",
			handler: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) },
			class:   sender.Failure, status: 500, body: "boom\n", err: "HTTP 500 Internal Server Error",
		},
		{
			name:    "400 failure",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(400) },
			class:   sender.Failure, status: 400, err: "HTTP 400 Bad Request",
		},
		{
			name:    "410 gone",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) },
			class:   sender.Gone, status: 410, err: "HTTP 410 Gone",
		},
		{
			name: "429 retry-after seconds",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			class: sender.Throttled, status: 429, err: "HTTP 429 Too Many Requests; retry after 2026-03-01T12:00:07Z",
			retryAt: fixedNow.Add(7 * time.Second), wantRetry: true,
		},
		{
			name: "429 retry-after http date",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", fixedNow.Add(90*time.Minute).Format(http.TimeFormat))
				w.WriteHeader(http.StatusTooManyRequests)
			},
			class: sender.Throttled, status: 429, err: "retry after 2026-03-01T13:30:00Z",
			retryAt: fixedNow.Add(90 * time.Minute), wantRetry: true,
		},
		{
			name: "503 retry-after capped at 24h",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "99999999999999999999")
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			class: sender.Throttled, status: 503, err: "HTTP 503 Service Unavailable; retry after",
			retryAt: fixedNow.Add(24 * time.Hour), wantRetry: true,
		},
		{
			name:    "503 without retry-after",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) },
			class:   sender.Failure, status: 503, err: "HTTP 503 Service Unavailable",
		},
		{
			name: "429 retry-after in the past",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", fixedNow.Add(-time.Hour).Format(http.TimeFormat))
				w.WriteHeader(http.StatusTooManyRequests)
			},
			class: sender.Failure, status: 429, err: "HTTP 429 Too Many Requests",
		},
		{
			name: "503 retry-after garbage",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "soon")
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			class: sender.Failure, status: 503, err: "HTTP 503 Service Unavailable",
		},
		{
			name: "500 with retry-after is not throttled",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(500)
			},
			class: sender.Failure, status: 500, err: "HTTP 500",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, tc.handler)
			s := newSender(t, sender.Config{InsecureTargets: true})
			out := s.Send(t.Context(), post(rc.URL))
			require.Equal(t, tc.class, out.Class, out.Err)
			require.Equal(t, tc.status, out.Status)
			require.Equal(t, tc.body, string(out.Body))
			require.False(t, out.Truncated)
			require.NotNil(t, out.Header)
			require.Equal(t, fixedNow, out.StartedAt)
			require.Positive(t, out.Duration)
			if tc.err == "" {
				require.Empty(t, out.Err)
			} else {
				require.Contains(t, out.Err, tc.err)
			}
			if tc.wantRetry {
				require.Equal(t, tc.retryAt, out.RetryAt)
			} else {
				require.True(t, out.RetryAt.IsZero())
			}
			require.EqualValues(t, 1, rc.hits.Load())
		})
	}
}

func TestSendRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	target := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {})
	for _, code := range []int{301, 302, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/elsewhere", code)
			})
			s := newSender(t, sender.Config{InsecureTargets: true})
			out := s.Send(t.Context(), post(rc.URL))
			require.Equal(t, sender.Failure, out.Class)
			require.Equal(t, code, out.Status)
			require.Equal(t, target.URL+"/elsewhere", out.Header.Get("Location"))
			require.Contains(t, out.Err, "redirects are not followed (Location: "+target.URL+"/elsewhere)")
		})
	}
	t.Cleanup(func() { require.Zero(t, target.hits.Load(), "redirect target was called") })
}

func TestSendResponseBodyCapture(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16) // 100 KiB
	cases := []struct {
		name      string
		size      int
		chunked   bool
		max       int
		wantLen   int
		truncated bool
		conns     int64 // after two sends
	}{
		{"under limit", 1000, false, 0, 1000, false, 1},
		{"exactly limit", 64 << 10, false, 0, 64 << 10, false, 1},
		{"exactly limit chunked", 64 << 10, true, 0, 64 << 10, false, 1},
		{"over limit", 100 << 10, false, 0, 64 << 10, true, 1},
		{"over limit chunked", 100 << 10, true, 0, 64 << 10, true, 1},
		{"small configured limit", 1000, false, 10, 10, true, 1},
		{"capture disabled", 1000, false, -1, 0, true, 1},
		// More than limit+1 MiB: the rest is not drained and the
		// connection is closed instead of reused.
		{"over drain bound", 64<<10 + 1<<20 + 100<<10, false, 0, 64 << 10, true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
				if !tc.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(tc.size))
				}
				for n := tc.size; n > 0; {
					m := min(n, len(big))
					_, _ = w.Write(big[:m])
					n -= m
				}
			})
			s := newSender(t, sender.Config{InsecureTargets: true, MaxResponseBody: tc.max})
			for range 2 {
				out := s.Send(t.Context(), post(rc.URL))
				require.Equal(t, sender.Success, out.Class, out.Err)
				require.Empty(t, out.Err)
				require.Len(t, out.Body, tc.wantLen)
				if tc.wantLen > 0 {
					require.Equal(t, big[:min(tc.wantLen, len(big))], out.Body[:min(tc.wantLen, len(big))])
				}
				require.Equal(t, tc.truncated, out.Truncated)
			}
			require.Equal(t, tc.conns, rc.conns.Load())
		})
	}
}

// blockUntilGone blocks a handler until the client goes away (or the test
// gives up), so that the server can shut down.
func blockUntilGone(r *http.Request) {
	// The server notices a client hang-up only once the body is consumed.
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	t.Run("before headers", func(t *testing.T) {
		t.Parallel()
		rc := newReceiver(t, func(_ http.ResponseWriter, r *http.Request) { blockUntilGone(r) })
		s := newSender(t, sender.Config{InsecureTargets: true, Timeout: 200 * time.Millisecond})
		out := s.Send(t.Context(), post(rc.URL))
		require.Equal(t, sender.Failure, out.Class)
		require.Equal(t, "timeout after 200ms", out.Err)
		require.Zero(t, out.Status)
		require.GreaterOrEqual(t, out.Duration, 200*time.Millisecond)
		require.Less(t, out.Duration, 5*time.Second)
	})
	t.Run("while reading the body after a 2xx", func(t *testing.T) {
		t.Parallel()
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			blockUntilGone(r)
		})
		s := newSender(t, sender.Config{InsecureTargets: true, Timeout: 200 * time.Millisecond})
		out := s.Send(t.Context(), post(rc.URL))
		// The receiver acknowledged with a 2xx: that is a delivery.
		require.Equal(t, sender.Success, out.Class)
		require.Equal(t, 200, out.Status)
		require.Equal(t, "partial", string(out.Body))
		require.True(t, out.Truncated)
		require.Equal(t, "reading response body: timeout after 200ms", out.Err)
	})
}

func TestSendCanceled(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ http.ResponseWriter, r *http.Request) { blockUntilGone(r) })
	s := newSender(t, sender.Config{InsecureTargets: true})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	out := s.Send(ctx, post(rc.URL))
	require.Equal(t, sender.Failure, out.Class)
	require.Equal(t, "canceled: context canceled", out.Err)
}

func TestSendConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	s := newSender(t, sender.Config{InsecureTargets: true})
	out := s.Send(t.Context(), post("http://"+addr+"/hook"))
	require.Equal(t, sender.Failure, out.Class)
	require.Equal(t, "connection refused by "+addr, out.Err)
	require.Zero(t, out.Status)
	require.Nil(t, out.Header)
}

func TestSendTLS(t *testing.T) {
	t.Parallel()
	rc := newTLSReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	pool := x509.NewCertPool()
	pool.AddCert(rc.Certificate())

	t.Run("unknown authority", func(t *testing.T) {
		t.Parallel()
		s := newSender(t, sender.Config{InsecureTargets: true})
		out := s.Send(t.Context(), post(rc.URL))
		require.Equal(t, sender.Failure, out.Class)
		require.Equal(t, "TLS handshake: certificate signed by unknown authority (a partner with its own CA: give it in the endpoint's tls.ca_certificates)", out.Err)
	})
	t.Run("trusted", func(t *testing.T) {
		t.Parallel()
		s := newSender(t, sender.Config{InsecureTargets: true, RootCAs: pool})
		out := s.Send(t.Context(), post(rc.URL))
		require.Equal(t, sender.Success, out.Class, out.Err)
		require.Equal(t, 204, out.Status)
	})
	t.Run("wrong host name", func(t *testing.T) {
		t.Parallel()
		s := newSender(t, sender.Config{InsecureTargets: true, RootCAs: pool})
		// The test certificate is valid for example.com and 127.0.0.1 only.
		u := strings.Replace(rc.URL, "127.0.0.1", "localhost", 1)
		out := s.Send(t.Context(), post(u))
		require.Equal(t, sender.Failure, out.Class)
		require.Contains(t, out.Err, "TLS handshake: certificate is valid for")
	})
	t.Run("plain http server", func(t *testing.T) {
		t.Parallel()
		plain := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
		s := newSender(t, sender.Config{InsecureTargets: true})
		out := s.Send(t.Context(), post(strings.Replace(plain.URL, "http://", "https://", 1)))
		require.Equal(t, sender.Failure, out.Class)
		require.Equal(t, "TLS handshake: the server did not answer with TLS (is it plain http?)", out.Err)
	})
}

func TestSendRequestAsGiven(t *testing.T) {
	t.Parallel()
	type seen struct {
		method string
		header http.Header
		body   []byte
		cl     int64
	}
	cases := []struct {
		name   string
		req    sender.Request
		method string
		ua     string
	}{
		{
			name: "post with webhook headers",
			req: sender.Request{
				Header: http.Header{
					"Content-Type":      {"application/json"},
					"Webhook-Id":        {"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
					"Webhook-Timestamp": {"1674087231"},
					"Webhook-Signature": {"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="},
				},
				Body: []byte(`{"type":"invoice.paid","data":{"id":"in_1"}}`),
			},
			method: "POST", ua: sender.DefaultUserAgent,
		},
		{
			name: "put with own user agent",
			req: sender.Request{
				Method: http.MethodPut,
				Header: http.Header{"User-Agent": {"Acme/2"}, "X-Custom": {"a", "b"}, "Idempotency-Key": nil},
				Body:   []byte("hello"),
			},
			method: "PUT", ua: "Acme/2",
		},
		{
			name:   "nil header, no body",
			req:    sender.Request{},
			method: "POST", ua: sender.DefaultUserAgent,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan seen, 1)
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got <- seen{r.Method, r.Header.Clone(), b, r.ContentLength}
			})
			before := tc.req.Header.Clone()
			req := tc.req
			req.URL = rc.URL + "/hooks?tenant=1"
			out := newSender(t, sender.Config{InsecureTargets: true}).Send(t.Context(), req)
			require.Equal(t, sender.Success, out.Class, out.Err)
			g := <-got
			require.Equal(t, tc.method, g.method)
			require.Equal(t, tc.ua, g.header.Get("User-Agent"))
			for k, v := range tc.req.Header {
				require.Equal(t, v, g.header[k], k)
			}
			require.Equal(t, len(tc.req.Body), len(g.body))
			if len(tc.req.Body) > 0 {
				require.Equal(t, tc.req.Body, g.body)
			}
			require.EqualValues(t, len(tc.req.Body), g.cl)
			require.NotContains(t, g.header, "Idempotency-Key", "the nil marker must not be sent")
			require.Equal(t, before, tc.req.Header, "Send must not modify the caller's header")
		})
	}
}

func TestSendKeepAlive(t *testing.T) {
	t.Parallel()
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			t.Parallel()
			h := func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = io.WriteString(w, `{"ok":true}`)
			}
			cfg := sender.Config{InsecureTargets: true}
			rc := newReceiver(t, h)
			if tls {
				rc = newTLSReceiver(t, h)
				cfg.RootCAs = x509.NewCertPool()
				cfg.RootCAs.AddCert(rc.Certificate())
			}
			s := newSender(t, cfg)
			for range 20 {
				out := s.Send(t.Context(), post(rc.URL))
				require.Equal(t, sender.Success, out.Class, out.Err)
				require.Equal(t, `{"ok":true}`, string(out.Body))
			}
			require.EqualValues(t, 20, rc.hits.Load())
			require.EqualValues(t, 1, rc.conns.Load())
		})
	}
}

// TestSendReplaysOnDeadKeepAlive: the receiver hangs up every connection
// as soon as it goes idle, so each send after the first finds a dead pooled
// connection. The Sender must send the POST again on a new connection, so
// every send succeeds and every request arrives whole.
func TestSendReplaysOnDeadKeepAlive(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateIdle {
			_ = c.Close()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	s := newSender(t, sender.Config{InsecureTargets: true})
	const n = 50
	for i := range n {
		req := post(srv.URL)
		req.Body = []byte(strconv.Itoa(i))
		out := s.Send(t.Context(), req)
		require.Equal(t, sender.Success, out.Class, "send %d: %s", i, out.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, bodies, n)
	for i := range n {
		require.Equal(t, strconv.Itoa(i), bodies[i])
	}
}

func TestSendInvalidRequest(t *testing.T) {
	t.Parallel()
	s := newSender(t, sender.Config{InsecureTargets: true})
	cases := []struct {
		req sender.Request
		err string
	}{
		{sender.Request{URL: "http://exa mple.com/"}, "invalid request: invalid character \" \" in host name"},
		{sender.Request{URL: "ftp://example.com/"}, "url must use http or https"},
		{sender.Request{URL: "http://127.0.0.1:1/", Method: "BAD METHOD"}, `invalid request: invalid method "BAD METHOD"`},
	}
	for _, tc := range cases {
		out := s.Send(t.Context(), tc.req)
		require.Equal(t, sender.Failure, out.Class)
		require.Equal(t, tc.err, out.Err)
	}
}

func TestClassString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "failure", sender.Failure.String())
	require.Equal(t, "success", sender.Success.String())
	require.Equal(t, "gone", sender.Gone.String())
	require.Equal(t, "throttled", sender.Throttled.String())
	require.Equal(t, "blocked", sender.Blocked.String())
	require.Equal(t, "class(42)", sender.Class(42).String())
	var zero sender.Outcome
	require.Equal(t, sender.Failure, zero.Class)
}

// serveRaw accepts connections on a loopback listener and hands each to
// handle on its own goroutine, closing it afterwards. It returns the
// listener's address.
func serveRaw(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// rawReceiver reads one request per connection and answers with raw bytes
// (possibly not HTTP at all), then hangs up.
func rawReceiver(t *testing.T, answer []byte) string {
	t.Helper()
	return "http://" + serveRaw(t, func(c net.Conn) {
		if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			_, _ = io.Copy(io.Discard, req.Body)
			_, _ = c.Write(answer)
		}
	}) + "/hook"
}

func TestSendBrokenResponses(t *testing.T) {
	t.Parallel()
	hugeHeader := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\nContent-Length: 0\r\n\r\n"
	cases := []struct {
		name   string
		answer string
		class  sender.Class
		status int
		err    string
	}{
		{"hang-up without response", "", sender.Failure, 0,
			"connection closed by the server before a complete response"},
		{"not http", "SSH-2.0-OpenSSH_9.6\r\n", sender.Failure, 0,
			`invalid HTTP response: response "SSH-2.0-OpenSSH_9.6"`},
		{"headers over 64 KiB", hugeHeader, sender.Failure, 0,
			"response headers larger than 64 KiB"},
		{"body shorter than content-length after 200", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", sender.Success, 200,
			"reading response body: connection closed by the server before a complete response"},
		{"body shorter than content-length after 500", "HTTP/1.1 500 Oops\r\nContent-Length: 10\r\n\r\nabc", sender.Failure, 500,
			"HTTP 500 Internal Server Error; reading response body: connection closed by the server before a complete response"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := rawReceiver(t, []byte(tc.answer))
			out := newSender(t, sender.Config{InsecureTargets: true}).Send(t.Context(), post(u))
			require.Equal(t, tc.class, out.Class, out.Err)
			require.Equal(t, tc.status, out.Status)
			require.Equal(t, tc.err, out.Err)
			require.Equal(t, strings.Contains(tc.err, "reading response body"), out.Truncated)
		})
	}
}

// TestSendTLSHandshakeTimeout: the receiver accepts the connection and
// never answers the ClientHello.
func TestSendTLSHandshakeTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					_ = c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	s := newSender(t, sender.Config{InsecureTargets: true, ConnectTimeout: 200 * time.Millisecond})
	out := s.Send(t.Context(), post("https://"+ln.Addr().String()+"/hook"))
	require.Equal(t, sender.Failure, out.Class)
	require.Equal(t, "TLS handshake: timeout after 200ms", out.Err)
}

// TestSendConnectionReuse: a connection goes back to the pool only when its
// exchange ended cleanly; every other case costs the next send a new one.
func TestSendConnectionReuse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		handler http.HandlerFunc
		conns   int64 // after three sends
	}{
		{"clean responses", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }, 1},
		{"receiver asks to close", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Connection", "close")
		}, 3},
		{"body past the drain limit", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write(make([]byte, 2<<20))
		}, 3},
		{"interim response first", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusNoContent)
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, tc.handler)
			s := newSender(t, sender.Config{InsecureTargets: true, MaxResponseBody: 16})
			for range 3 {
				out := s.Send(t.Context(), post(rc.URL))
				require.Equal(t, sender.Success, out.Class, out.Err)
			}
			require.Equal(t, tc.conns, rc.conns.Load())
		})
	}
}

// TestSendEarlyAnswer: a receiver that refuses a large body without reading
// it (here a 413 and a hang-up) gets its answer recorded, not a write error.
func TestSendEarlyAnswer(t *testing.T) {
	t.Parallel()
	addr := serveRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!")
		// Read on until the client hangs up: closing while its body still arrives would
		// reset the connection, and a reset can discard the answer before the client has
		// read it (the kernel's doing, not the sender's).
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, br)
	})
	req := post("http://" + addr + "/hook")
	req.Body = bytes.Repeat([]byte("x"), 8<<20)
	out := newSender(t, sender.Config{InsecureTargets: true, Timeout: 5 * time.Second}).Send(t.Context(), req)
	require.Equal(t, sender.Failure, out.Class)
	require.Equal(t, 413, out.Status, out.Err)
	require.Equal(t, "too big!", string(out.Body))
	require.Equal(t, "HTTP 413 Request Entity Too Large", out.Err)
}

// TestSendCanceledWhileReadingBody: cancellation ends the body read at once,
// and the half-read connection is not reused.
func TestSendCanceledWhileReadingBody(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			return
		}
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		blockUntilGone(r)
	})
	s := newSender(t, sender.Config{InsecureTargets: true})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	out := s.Send(ctx, post(rc.URL))
	require.Equal(t, 200, out.Status)
	require.Equal(t, "reading response body: canceled: context canceled", out.Err)
	require.Less(t, out.Duration, 5*time.Second)

	out = s.Send(t.Context(), post(rc.URL))
	require.Equal(t, sender.Success, out.Class, out.Err)
	require.EqualValues(t, 2, rc.conns.Load())
}

// TestSendRejectsHeaderInjection: a header value that would end the header
// block early is refused before anything is sent.
func TestSendRejectsHeaderInjection(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
	req := post(rc.URL)
	req.Header = http.Header{"X-Tenant": {"a\r\n\r\nPOST /admin HTTP/1.1"}}
	out := newSender(t, sender.Config{InsecureTargets: true}).Send(t.Context(), req)
	require.Equal(t, sender.Failure, out.Class)
	require.Equal(t, "invalid request: invalid value for header X-Tenant", out.Err)
	require.Zero(t, rc.hits.Load())
	require.Zero(t, rc.conns.Load(), "nothing is dialed for a request that cannot be written")
}
