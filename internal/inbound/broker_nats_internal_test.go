package inbound

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/brokertest"
)

// TestNATSCloseHandsBackPulled: a NATS source's consumer closed (a PATCH, a restart)
// while nats.go holds messages it pulled but has not handed over gives each back at
// once, so the next consumer reads all of them within seconds, not after the stream's
// ack wait (a minute).
func TestNATSCloseHandsBackPulled(t *testing.T) {
	t.Parallel()
	b := brokertest.NATS(t)
	const n = 3000 // more than the handler's channel and nats.go's pull hold together
	for i := range n {
		b.Publish(t, "msg-"+strconv.Itoa(i), nil, []byte(`{}`))
	}
	src := &consign.Source{ID: "src_" + brokertest.Name("close"), From: &consign.SourceFrom{
		Type: "nats", URL: b.From["url"].(string), Subject: b.From["subject"].(string)}}
	ctx := t.Context()
	dial := func() *natsConn {
		t.Helper()
		c, err := dialNATS(ctx, src, &net.Dialer{Timeout: 10 * time.Second}, nil)
		require.NoError(t, err)
		return c.(*natsConn)
	}

	first := dial()
	require.Eventually(t, func() bool { return len(first.msgs) == cap(first.msgs) }, 30*time.Second, 10*time.Millisecond,
		"the first consumer pulls more than its handler's channel holds")
	first.close()

	second := dial()
	defer second.close()
	seen := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second) // the ack wait is a minute
	for len(seen) < n && time.Now().Before(deadline) {
		msgs, err := second.next(ctx, 500)
		require.NoError(t, err)
		for _, m := range msgs {
			seen[m.header.Get("Nats-Msg-Id")] = true
		}
		require.NoError(t, second.ack(context.Background()))
	}
	require.Len(t, seen, n, "every message reaches the next consumer well before the ack wait")
}
