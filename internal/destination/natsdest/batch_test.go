package natsdest

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/brokertest"
)

// TestBatcher: a publish that comes soon after the last batch waits for the next one;
// a full batch, or the end of the interval, sends the waiting ones back to back, each
// with its own ack; one whose attempt gave up is not published.
func TestBatcher(t *testing.T) {
	t.Parallel()
	subject := brokertest.NATS(t).From["subject"].(string) // a fresh stream's
	nc, err := nats.Connect(brokertest.NATSServer(t))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	var n int
	publish := func(b *batcher) (jetstream.PubAckFuture, *pending) {
		t.Helper()
		n++
		m := nats.NewMsg(subject)
		m.Data = []byte(`{}`)
		f, p, err := b.publish(m, []jetstream.PublishOpt{jetstream.WithMsgID("evt_" + strconv.Itoa(n))})
		require.NoError(t, err)
		require.True(t, (f == nil) != (p == nil), "either published or waiting")
		return f, p
	}
	acked := func(f jetstream.PubAckFuture) uint64 {
		t.Helper()
		select {
		case ack := <-f.Ok():
			return ack.Sequence
		case err := <-f.Err():
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatal("no ack")
		}
		return 0
	}
	sent := func(p *pending) jetstream.PubAckFuture {
		t.Helper()
		select {
		case r := <-p.done:
			require.NoError(t, r.err)
			return r.f
		case <-time.After(10 * time.Second):
			t.Fatal("the batch did not go out")
		}
		return nil
	}

	// A long interval: only a full batch (of 4) goes out.
	b := newBatcher(js)
	b.every, b.max = time.Hour, 4
	f, _ := publish(b)
	require.EqualValues(t, 1, acked(f), "the first publish goes at once")
	_, p2 := publish(b)
	_, p3 := publish(b)
	_, p4 := publish(b)
	require.NotNil(t, p2)
	require.Empty(t, p2.done, "the next ones wait for their batch")
	p3.gone.Store(true) // its attempt gave up
	_, p5 := publish(b)
	var seqs []uint64
	for _, p := range []*pending{p2, p4, p5} {
		seqs = append(seqs, acked(sent(p)))
	}
	require.Equal(t, []uint64{2, 3, 4}, seqs, "the full batch went out in order, without the one given up")
	require.Empty(t, p3.done)

	// A short interval: the waiting one goes when it ends.
	b = newBatcher(js)
	b.every = time.Second
	f, _ = publish(b)
	_, p := publish(b)
	require.NotNil(t, p, "within the interval of the last batch")
	require.EqualValues(t, 5, acked(f))
	require.EqualValues(t, 6, acked(sent(p)))
}
