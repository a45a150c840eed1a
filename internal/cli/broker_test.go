package cli_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/client"
	"github.com/consign-dev/consign/internal/brokertest"
)

// TestBrokerEndpoint: an endpoint that publishes to RabbitMQ, made and read with the
// command line: its password is shown masked, and `deliveries show` says the attempt
// was a publish and what the broker acknowledged.
func TestBrokerEndpoint(t *testing.T) {
	t.Parallel()
	ch, queue := brokertest.AMQPTopicQueue(t, "cli-")

	s := start(t)
	c := client.New(s.url, adminKey)
	org, err := c.Orgs.Create(t.Context(), client.OrgInput{Name: "Acme Outdoor"})
	require.NoError(t, err)
	url := "amqp://guest:guest@" + brokertest.AMQPAddr + "/?exchange=amq.topic&routing_key=" + queue
	out := s.ok(t, "", "endpoints", "create", "--org", org.ID, "--url", url, "--topic", "order.*")
	require.Contains(t, out, "amqp://guest:••••@"+brokertest.AMQPAddr+"/?exchange=amq.topic&routing_key="+queue)
	require.NotContains(t, out, "guest:guest", "the password is never shown")

	s.ok(t, `{"order_id": 1001}`, "events", "send", "--org", org.ID, "--type", "order.fulfilled")
	var dlv string
	require.Eventually(t, func() bool {
		p, err := c.Deliveries.List(t.Context(), org.ID, &client.DeliveryListOptions{Status: client.StatusSucceeded})
		if err != nil || len(p.Data) != 1 {
			return false
		}
		dlv = p.Data[0].ID
		return true
	}, 10*time.Second, 10*time.Millisecond)
	out = s.ok(t, "", "deliveries", "show", "--org", org.ID, dlv)
	require.Contains(t, out, "attempt 1: publish amqp://guest:••••@")
	require.Contains(t, out, "acknowledged by the broker:\nconfirm: ack\ndelivery_tag: 1\nexchange: amq.topic\nrouting_key: "+queue+"\n")
	require.Regexp(t, `(?m)^1\s+\S+\s+ack\s+\d+ms\s+-`, out, "the attempts table shows the ack")
	require.NotContains(t, out, "guest:guest")
	_, ok, err := ch.Get(queue, true)
	require.NoError(t, err)
	require.True(t, ok, "the message is in the queue")
}
