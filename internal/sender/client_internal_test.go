//go:build !consign_stdlib

package sender

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWriteRequest(t *testing.T) {
	s := New(Config{})
	t.Cleanup(s.Close)
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	write := func(method, raw string, h http.Header, body string) (string, error) {
		out.Reset()
		bw.Reset(&out)
		err := s.writeRequest(bw, mustTarget(t, method, raw), &Request{Header: h, Body: []byte(body)})
		_ = bw.Flush()
		return out.String(), err
	}

	got, err := write("POST", "https://h.example/p?q=1", http.Header{"Webhook-Id": {"msg_1"}, "Idempotency-Key": nil}, "{}")
	require.NoError(t, err)
	require.Equal(t, "POST /p?q=1 HTTP/1.1\r\nHost: h.example\r\nUser-Agent: "+DefaultUserAgent+"\r\n"+
		"Webhook-Id: msg_1\r\nContent-Length: 2\r\n\r\n{}", got, "a nil value is not sent")

	got, err = write("PUT", "https://h.example/", http.Header{"User-Agent": {"Acme/2"}, "Host": {"evil.example"},
		"Content-Length": {"99"}, "Transfer-Encoding": {"chunked"}}, "")
	require.NoError(t, err)
	require.Equal(t, "PUT / HTTP/1.1\r\nHost: h.example\r\nUser-Agent: Acme/2\r\nContent-Length: 0\r\n\r\n", got,
		"the framing headers are the client's, not the caller's")

	got, err = write("GET", "https://h.example/", http.Header{"User-Agent": {""}}, "")
	require.NoError(t, err)
	require.Equal(t, "GET / HTTP/1.1\r\nHost: h.example\r\n\r\n", got, "an empty User-Agent is not sent")

	tg := mustTarget(t, "POST", "https://h.example/p")
	req := &Request{Header: http.Header{"Content-Type": {"application/json"}, "Webhook-Id": {"msg_1"}}, Body: make([]byte, 1024)}
	bw.Reset(io.Discard)
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = s.writeRequest(bw, tg, req) }))
}

// FuzzReadResponse feeds a receiver's answer, any bytes, to the response
// reader: it must not panic, must keep to its limits, and must report either
// a response with a real status or an error.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 500 Oops\r\n\r\nbody until close"))
	f.Add([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n"))
	s := New(Config{MaxResponseBody: 16})
	f.Fuzz(func(t *testing.T, answer []byte) {
		c := &conn{}
		c.limit.R = bytes.NewReader(answer)
		c.br = bufio.NewReaderSize(&c.limit, connBufferSize)
		resp, _, err := readResponse(c, postRequest)
		if err != nil {
			require.Nil(t, resp)
			return
		}
		require.GreaterOrEqual(t, resp.StatusCode, 100)
		require.LessOrEqual(t, resp.StatusCode, 999)
		body, eof := s.readBody(resp.Body)
		require.LessOrEqual(t, len(body.captured), 16)
		if eof {
			require.NoError(t, body.err)
		}
	})
}

// TestConnPool: connections come back most recent first, per key; the caps close what
// does not fit; a connection idle past the timeout is closed instead of reused, by get
// and by the sweep.
func TestConnPool(t *testing.T) {
	newConn := func(key poolKey) (*conn, net.Conn) {
		a, b := net.Pipe()
		t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
		return &conn{nc: a, key: key}, b
	}
	closed := func(peer net.Conn) bool {
		_ = peer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := peer.Read(make([]byte, 1))
		return errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe)
	}
	k1, k2 := poolKey{tls: true, host: "a.example"}, poolKey{tls: true, host: "b.example"}

	p := newConnPool(2, 3, time.Hour)
	c1, _ := newConn(k1)
	c2, _ := newConn(k1)
	c3, peer3 := newConn(k1)
	c4, _ := newConn(k2)
	c5, peer5 := newConn(k2)
	p.put(c1)
	p.put(c2)
	p.put(c3) // over the per-host cap
	require.True(t, closed(peer3))
	p.put(c4)
	p.put(c5) // over the total cap
	require.True(t, closed(peer5))
	require.Same(t, c2, p.get(k1))
	require.Same(t, c1, p.get(k1))
	require.Nil(t, p.get(k1))
	require.Same(t, c4, p.get(k2))

	p = newConnPool(4, 8, 50*time.Millisecond)
	old, peerOld := newConn(k1)
	p.put(old)
	p.mu.Lock() // the sweep reads it
	old.idleAt = time.Now().Add(-time.Minute)
	p.mu.Unlock()
	require.Nil(t, p.get(k1), "an expired connection is not reused")
	require.True(t, closed(peerOld))

	idle, peerIdle := newConn(k2)
	p.put(idle)
	require.Eventually(t, func() bool { return closed(peerIdle) }, 5*time.Second, 10*time.Millisecond,
		"the sweep closes a connection left idle past the timeout")
	require.Nil(t, p.get(k2))
}
