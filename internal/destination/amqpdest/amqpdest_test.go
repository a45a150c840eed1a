package amqpdest_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/brokertest"
	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/destination/amqpdest"
)

// queue declares a queue bound to the exchange amq.topic with routing key name, deleted
// when the test ends, and returns its name and a channel to read it with.
func queue(t *testing.T) (string, *amqp.Channel) {
	t.Helper()
	c, err := amqp.Dial(brokertest.AMQPServer(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ch, err := c.Channel()
	require.NoError(t, err)
	name := "consign-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	_, err = ch.QueueDeclare(name, true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(name, name, "amq.topic", false, nil))
	t.Cleanup(func() { _, _ = ch.QueueDelete(name, false, false, false) })
	return name, ch
}

func base(t *testing.T) string { return strings.TrimSuffix(brokertest.AMQPServer(t), "/") }

// TestSendConfirms: an attempt lands in the queue as a persistent message with the body,
// the signature headers and the event id as message-id; the outcome carries the
// confirm's delivery tag.
func TestSendConfirms(t *testing.T) {
	t.Parallel()
	name, ch := queue(t)
	s := amqpdest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	h := brokertest.Header()
	out := s.Send(t.Context(), destination.Request{URL: base(t) + "/?exchange=amq.topic&routing_key=" + name, Header: h, Body: []byte(`{"id":"evt_1"}`)})
	require.Equal(t, destination.Success, out.Class, out.Err)
	require.Equal(t, "ack", out.Ack["confirm"])
	require.NotEmpty(t, out.Ack["delivery_tag"])

	m, ok, err := ch.Get(name, true)
	require.NoError(t, err)
	require.True(t, ok, "the message is in the queue")
	require.JSONEq(t, `{"id":"evt_1"}`, string(m.Body))
	require.Equal(t, amqp.Persistent, m.DeliveryMode)
	require.Equal(t, "evt_1", m.MessageId)
	require.Equal(t, "application/json", m.ContentType)
	for k, want := range brokertest.MessageHeader() {
		require.Equal(t, want, m.Headers[k], k)
	}
}

// TestSendConcurrently: attempts at once share one confirming channel, and each gets
// its own confirm.
func TestSendConcurrently(t *testing.T) {
	t.Parallel()
	name, ch := queue(t)
	s := amqpdest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	const n = 300
	brokertest.Unique(t, brokertest.SendMany(t, s, base(t)+"/?exchange=amq.topic&routing_key="+name, n), "delivery_tag")
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, n, q.Messages)
}

// TestSendFails: what a user gets when the broker does not take the message — a
// Failure (retried) or Blocked, in words that say what to fix; and the next attempt
// after the broker closed the channel works again.
func TestSendFails(t *testing.T) {
	t.Parallel()
	name, _ := queue(t)
	brokertest.SendFails(t, newSender, []brokertest.FailCase{
		{Name: "Unroutable", URL: base(t) + "/?exchange=amq.topic&routing_key=nobody.listens", Insecure: true, Class: destination.Failure, Err: "the broker returned the message: 312 NO_ROUTE"},
		{Name: "NoExchange", URL: base(t) + "/?exchange=no-such-exchange&routing_key=x", Insecure: true, Class: destination.Failure, Err: "does the exchange exist?"},
		{Name: "BadPassword", URL: "amqp://guest:wrong@" + brokertest.AMQPAddr + "/?routing_key=x", Insecure: true, Class: destination.Failure, Err: "refused the credentials"},
		{Name: "NothingListens", URL: "amqp://guest:guest@127.0.0.1:1/?routing_key=x", Insecure: true, Class: destination.Failure, Err: "connect to amqp://127.0.0.1:1/"},
		{Name: "PlaintextRefused", URL: base(t) + "/?routing_key=x", Class: destination.Blocked, Err: "url must use amqps://, not amqp:// (plaintext; serve --insecure-targets allows it"},
	}, func(t *testing.T, s destination.Sender) {
		// The same broker still takes what it can route.
		ok := s.Send(t.Context(), destination.Request{URL: base(t) + "/?exchange=amq.topic&routing_key=" + name,
			Header: http.Header{"Webhook-Id": {"evt_2"}}, Body: []byte("{}")})
		require.Equal(t, destination.Success, ok.Class, ok.Err)
	})
}

// TestSendTLS: over amqps:// (TLS in front of the local RabbitMQ), an attempt that
// trusts the CA (the endpoint's tls.ca_certificates) is confirmed and lands in the
// queue; one that trusts the system roots or another CA fails saying the certificate is
// not trusted.
func TestSendTLS(t *testing.T) {
	t.Parallel()
	name, ch := queue(t)
	ca := brokertest.NewCA(t)
	url := "amqps://guest:guest@" + brokertest.NewTLSProxy(t, brokertest.AMQPAddr, ca).Addr + "/?exchange=amq.topic&routing_key=" + name
	s := amqpdest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	out := s.Send(t.Context(), destination.Request{URL: url, TLS: ca.ClientTLS(t), Header: brokertest.Header(), Body: []byte(`{"id":"evt_1"}`)})
	require.Equal(t, destination.Success, out.Class, out.Err)
	require.Equal(t, "ack", out.Ack["confirm"])
	m, ok, err := ch.Get(name, true)
	require.NoError(t, err)
	require.True(t, ok, "the message is in the queue")
	require.Equal(t, "evt_1", m.MessageId)

	brokertest.SendFails(t, newSender, []brokertest.FailCase{
		{Name: "OtherCA", URL: url, Insecure: true, TLS: brokertest.NewCA(t).ClientTLS(t), Class: destination.Failure, Err: "certificate signed by unknown authority"},
		{Name: "SystemRoots", URL: url, Insecure: true, Class: destination.Failure, Err: "certificate signed by unknown authority"},
		{Name: "LoopbackRefused", URL: url, TLS: ca.ClientTLS(t), Class: destination.Blocked, Err: "127.0.0.1 is a loopback address"},
	}, nil)
}

// TestCheckURL: an endpoint URL is judged at creation, in words naming what is wrong.
func TestCheckURL(t *testing.T) {
	t.Parallel()
	brokertest.CheckURLs(t, amqpdest.CheckURL, []brokertest.URLCase{
		{URL: "amqps://user:pass@mq.example.com:5672/orders?exchange=events&routing_key=order.created"},
		{URL: "amqp://user:pass@mq.example.com/orders?routing_key=order.created", Want: "url must use amqps://, not amqp:// (plaintext; serve --insecure-targets allows it, for development)"},
		{URL: "amqps://guest:guest@127.0.0.1/?routing_key=q", Insecure: true},
		{URL: "amqps://mq.example.com/?routing_key=a&cacertfile=/etc/passwd", Want: `url query "cacertfile" is not known: an amqps:// URL takes exchange and routing_key`},
		{URL: "amqps://mq.example.com/?routing_key=orders"},
		{URL: "amqps://mq.example.com/%2F?exchange=amq.topic&routing_key=a.b"},
		{URL: "amqp://guest:guest@127.0.0.1:5672/?routing_key=q", Insecure: true},
		{URL: "amqps://guest:guest@127.0.0.1:5672/?routing_key=q", Want: "127.0.0.1 is a loopback address; targets must be public"},
		{URL: "amqps://mq.example.com/", Want: "url must say where messages go"},
		{URL: "amqps://mq.example.com/?exchange=a&exchange=b", Want: "gives exchange 2 times"},
		{URL: "amqps://mq.example.com/?routing_key=a&certfile=/etc/passwd", Want: `url query "certfile" is not known`},
		{URL: "amqps://mq.example.com:0/?routing_key=a", Want: "url port must be between 1 and 65535"},
		{URL: "amqp:mq", Want: "url must look like amqp://host:5672/"},
		{URL: "amqps://mq.example.com/?routing_key=" + strings.Repeat("k", 256), Want: "at most 255 bytes"},
	})
}

// FuzzCheckURL: whatever URL a user sends, the check answers without panicking, and a
// URL it accepts says where messages go.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"amqp://u:p@h:5672/v?exchange=e&routing_key=k", "amqp://h/?routing_key=q", "amqp://h/%2F?exchange=x", "amqp://[::1]/?routing_key=%zz", "amqps://u:p@h:5671/v?exchange=e&routing_key=k", "amqps://h/?routing_key=q&certfile=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if brokertest.URLRules(t, amqpdest.CheckURL, raw) {
			require.Contains(t, raw, "?")
		}
	})
}

// newSender is a sender for SendFails, closed when the test ends.
func newSender(t *testing.T, insecure bool) destination.Sender {
	s := amqpdest.New(destination.BrokerConfig{InsecureTargets: insecure, Timeout: 5 * time.Second})
	t.Cleanup(s.Close)
	return s
}
