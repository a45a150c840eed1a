//go:build consign_stdlib

package natsdest

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestPublisherStdlib: through nats.go's asynchronous publish, each publish is answered
// with its own ack, a resend of the same Nats-Msg-Id as a duplicate, a subject no stream
// takes with nats.go's error for it, and closing answers those still waiting and refuses
// new ones.
func TestPublisherStdlib(t *testing.T) {
	t.Parallel()
	subject, nc := streamConn(t)
	p, err := newPublisher(nc, time.Minute)
	require.NoError(t, err)
	t.Cleanup(p.close)
	later := time.Now().Add(time.Minute)
	publish := func(subject, id string) *pending {
		t.Helper()
		w, err := p.publish(&nats.Msg{Subject: subject, Data: []byte(`{}`), Header: nats.Header{"Nats-Msg-Id": {id}}}, later)
		require.NoError(t, err)
		return w
	}

	for i := 1; i <= 3; i++ {
		a := answered(t, publish(subject, "evt_"+strconv.Itoa(i)))
		require.NoError(t, a.err)
		require.NotEmpty(t, a.ack.Stream)
		require.EqualValues(t, i, a.ack.Sequence)
		require.False(t, a.ack.Duplicate)
	}
	a := answered(t, publish(subject, "evt_2"))
	require.NoError(t, a.err)
	require.True(t, a.ack.Duplicate, "the stream already held evt_2")

	a = answered(t, publish("nobody."+strconv.FormatInt(time.Now().UnixNano(), 36), "evt_x"))
	require.ErrorIs(t, a.err, jetstream.ErrNoStreamResponse)
	require.ErrorContains(t, describe(a.err, "nobody.x"), "no JetStream stream takes subject nobody.x")

	p.close()
	_, err = p.publish(&nats.Msg{Subject: subject}, later)
	require.ErrorIs(t, err, nats.ErrConnectionClosed)
}
