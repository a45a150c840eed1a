package natsdest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/brokertest"
)

// Helpers of the publisher tests on either build.

// streamConn returns the subject of a fresh stream and a connection to its server.
func streamConn(t *testing.T) (string, *nats.Conn) {
	t.Helper()
	subject := brokertest.NATS(t).From["subject"].(string)
	nc, err := nats.Connect(brokertest.NATSServer(t))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return subject, nc
}

// answered returns what w's publish was answered, failing t when nothing is within 10 s.
func answered(t *testing.T, w *pending) answer {
	t.Helper()
	select {
	case a := <-w.done:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	return answer{}
}
