//go:build !consign_stdlib

package natsdest

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestPublisher: a publish that comes soon after the last batch waits for the next one;
// a full batch, or the end of the interval, sends the waiting ones back to back, each
// answered with its own ack; one whose attempt gave up is not published; one past its
// deadline is answered with a timeout; closing answers those still waiting.
func TestPublisher(t *testing.T) {
	t.Parallel()
	subject, nc := streamConn(t)
	var n int
	publish := func(p *publisher, deadline time.Time) *pending {
		t.Helper()
		n++
		m := &nats.Msg{Subject: subject, Data: []byte(`{}`), Header: nats.Header{"Nats-Msg-Id": {"evt_" + strconv.Itoa(n)}}}
		w, err := p.publish(m, deadline)
		require.NoError(t, err)
		return w
	}
	later := func() time.Time { return time.Now().Add(time.Minute) }
	acked := func(w *pending) uint64 {
		t.Helper()
		a := answered(t, w)
		require.NoError(t, a.err)
		require.NotEmpty(t, a.ack.Stream)
		return a.ack.Sequence
	}
	newPub := func(every, sweep time.Duration, max int) *publisher {
		t.Helper()
		p, err := newPublisher(nc, sweep)
		require.NoError(t, err)
		t.Cleanup(p.close)
		p.every, p.max = every, max
		return p
	}

	// A long interval: only a full batch (of 4) goes out.
	p := newPub(time.Hour, time.Minute, 4)
	require.EqualValues(t, 1, acked(publish(p, later())), "the first publish goes at once")
	w2, w3, w4 := publish(p, later()), publish(p, later()), publish(p, later())
	require.Never(t, func() bool { return len(w2.done) > 0 }, 200*time.Millisecond, 10*time.Millisecond, "the next ones wait for their batch")
	p.forget(w3) // its attempt gave up
	w5 := publish(p, later())
	var seqs []uint64
	for _, w := range []*pending{w2, w4, w5} {
		seqs = append(seqs, acked(w))
	}
	require.Equal(t, []uint64{2, 3, 4}, seqs, "the full batch went out in order, without the one given up")
	require.Empty(t, w3.done)

	// A short interval: the waiting one goes when it ends.
	p = newPub(time.Second, time.Minute, maxBatch)
	first, w := publish(p, later()), publish(p, later())
	require.EqualValues(t, 5, acked(first))
	require.EqualValues(t, 6, acked(w))

	// Past its deadline, a publish that waits for its batch is answered with a timeout
	// by the sweep, and not published.
	p = newPub(time.Hour, 20*time.Millisecond, maxBatch)
	require.EqualValues(t, 7, acked(publish(p, later())))
	late := publish(p, time.Now().Add(50*time.Millisecond))
	require.ErrorIs(t, answered(t, late).err, context.DeadlineExceeded)
	p.mu.Lock()
	require.Empty(t, p.waiting)
	p.mu.Unlock()

	// Closing answers the publishes still waiting, and refuses new ones.
	w = publish(p, later())
	p.close()
	require.ErrorIs(t, answered(t, w).err, errStopped)
	_, err := p.publish(&nats.Msg{Subject: subject}, later())
	require.ErrorIs(t, err, nats.ErrConnectionClosed)

	// No stream takes the subject: the server's "no responders" status is the answer.
	p = newPub(flushEvery, time.Minute, maxBatch)
	w, err = p.publish(&nats.Msg{Subject: "nobody." + strconv.FormatInt(time.Now().UnixNano(), 36), Header: nats.Header{}}, later())
	require.NoError(t, err)
	require.ErrorIs(t, answered(t, w).err, nats.ErrNoResponders)
}

// TestParseAck: the answers nats-server gives, the usual ones read by hand and the
// rest by encoding/json, and what is not an ack.
func TestParseAck(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in      string
		want    ack
		scanned bool   // read by scanAck
		err     string // parseAck's error
	}{
		{in: `{"stream":"ORDERS", "seq":1}`, want: ack{Stream: "ORDERS", Sequence: 1}, scanned: true},
		{in: `{"stream":"ORDERS","seq":42}`, want: ack{Stream: "ORDERS", Sequence: 42}, scanned: true},
		{in: `{"stream":"ORDERS", "seq":7,"duplicate": true}`, want: ack{Stream: "ORDERS", Sequence: 7, Duplicate: true}, scanned: true},
		{in: `{"stream":"ORDERS", "seq":18446744073709551615}`, want: ack{Stream: "ORDERS", Sequence: 18446744073709551615}},
		{in: `{"stream":"ORDERS", "domain":"hub", "seq":3}`, want: ack{Stream: "ORDERS", Sequence: 3}},
		{in: `{"stream":"ORDERS", "seq":3,"duplicate": false}`, want: ack{Stream: "ORDERS", Sequence: 3}},
		{in: `{"stream":"OR\u0044ERS", "seq":3}`, want: ack{Stream: "ORDERS", Sequence: 3}},
		{in: `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 1"},"stream":"ORDERS","seq":0}`,
			err: "nats: API error: code=400 err_code=10071 description=wrong last sequence: 1"},
		{in: `{"seq":3}`, err: jetstream.ErrInvalidJSAck.Error()},
		{in: `{"stream":"ORDERS", "seq":`, err: jetstream.ErrInvalidJSAck.Error()},
		{in: ``, err: jetstream.ErrInvalidJSAck.Error()},
		{in: `{"stream":"", "seq":3}`, err: jetstream.ErrInvalidJSAck.Error()},
	} {
		// The stream that answered last (known) changes nothing but whose string it is.
		for _, known := range []string{"", "ORDERS", "OTHER"} {
			t.Run(c.in+" after "+known, func(t *testing.T) {
				_, scanned := scanAck([]byte(c.in), known)
				require.Equal(t, c.scanned, scanned)
				a, err := parseAck([]byte(c.in), known)
				if c.err != "" {
					require.EqualError(t, err, c.err)
					return
				}
				require.NoError(t, err)
				require.Equal(t, c.want, a)
			})
		}
	}
}

// FuzzScanAck: what scanAck reads, encoding/json reads the same.
func FuzzScanAck(f *testing.F) {
	for _, s := range []string{`{"stream":"ORDERS", "seq":1}`, `{"stream":"X","seq":42,"duplicate": true}`, `{"stream":"a b", "seq":0}`, `{"stream":"X","seq":007}`, `{ "stream" : "X" , "seq" : 9 } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := scanAck(b, "")
		if !ok {
			return
		}
		var want ack
		require.NoError(t, json.Unmarshal(b, &want), "%q", b)
		require.Equal(t, want, a, "%q", b)
		require.NotEmpty(t, a.Stream)
		again, _ := scanAck(b, a.Stream)
		require.Equal(t, a, again, "%q read again with its stream known", b)
	})
}
