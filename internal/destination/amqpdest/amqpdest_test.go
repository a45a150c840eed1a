package amqpdest_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/destination/amqpdest"
	"github.com/consign-dev/consign/internal/destination/brokertest"
)

// queue declares a queue bound to the exchange amq.topic with routing key name, deleted
// when the test ends, and returns its name and a channel to read it with.
func queue(t *testing.T) (string, *amqp.Channel) {
	t.Helper()
	c, err := amqp.Dial(brokertest.AMQP(t))
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

func base(t *testing.T) string { return strings.TrimSuffix(brokertest.AMQP(t), "/") }

// TestSendConfirms: an attempt lands in the queue as a persistent message with the body,
// the signature headers and the event id as message-id; the outcome carries the
// confirm's delivery tag.
func TestSendConfirms(t *testing.T) {
	t.Parallel()
	name, ch := queue(t)
	s := amqpdest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	h := http.Header{"Webhook-Id": {"evt_1"}, "Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {"v1,abc"},
		"Content-Type": {"application/json"}, "X-Partner": {"acme"}}
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
	for k, want := range map[string]string{"webhook-id": "evt_1", "webhook-timestamp": "1700000000",
		"webhook-signature": "v1,abc", "x-partner": "acme"} {
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
	tags := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out := s.Send(t.Context(), destination.Request{URL: base(t) + "/?exchange=amq.topic&routing_key=" + name,
				Header: http.Header{"Webhook-Id": {"evt_" + strconv.Itoa(i)}}, Body: []byte("{}")})
			if out.Class != destination.Success {
				t.Errorf("attempt %d: %v %s", i, out.Class, out.Err)
			}
			tags <- out.Ack["delivery_tag"]
		})
	}
	wg.Wait()
	close(tags)
	seen := map[string]bool{}
	for tag := range tags {
		require.False(t, seen[tag], "delivery tag %s confirmed twice", tag)
		seen[tag] = true
	}
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
	tests := []struct {
		name     string
		url      string
		insecure bool
		class    destination.Class
		err      string
	}{
		{"Unroutable", base(t) + "/?exchange=amq.topic&routing_key=nobody.listens", true, destination.Failure, "the broker returned the message: 312 NO_ROUTE"},
		{"NoExchange", base(t) + "/?exchange=no-such-exchange&routing_key=x", true, destination.Failure, "does the exchange exist?"},
		{"BadPassword", "amqp://guest:wrong@" + brokertest.AMQPAddr + "/?routing_key=x", true, destination.Failure, "refused the credentials"},
		{"NothingListens", "amqp://guest:guest@127.0.0.1:1/?routing_key=x", true, destination.Failure, "connect to amqp://127.0.0.1:1/"},
		{"LoopbackRefused", base(t) + "/?routing_key=x", false, destination.Blocked, "127.0.0.1 is a loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := amqpdest.New(destination.BrokerConfig{InsecureTargets: tt.insecure, Timeout: 5 * time.Second})
			t.Cleanup(s.Close)
			out := s.Send(t.Context(), destination.Request{URL: tt.url, Header: http.Header{"Webhook-Id": {"evt_1"}}, Body: []byte("{}")})
			require.Equal(t, tt.class, out.Class, out.Err)
			require.Contains(t, out.Err, tt.err)
			require.Nil(t, out.Ack)
			if tt.insecure {
				// The same broker still takes what it can route.
				ok := s.Send(t.Context(), destination.Request{URL: base(t) + "/?exchange=amq.topic&routing_key=" + name,
					Header: http.Header{"Webhook-Id": {"evt_2"}}, Body: []byte("{}")})
				require.Equal(t, destination.Success, ok.Class, ok.Err)
			}
		})
	}
}

// TestCheckURL: an endpoint URL is judged at creation, in words naming what is wrong.
func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url      string
		insecure bool
		want     string // "" accepted
	}{
		{"amqp://user:pass@mq.example.com:5672/orders?exchange=events&routing_key=order.created", false, ""},
		{"amqp://mq.example.com/?routing_key=orders", false, ""},
		{"amqp://mq.example.com/%2F?exchange=amq.topic&routing_key=a.b", false, ""},
		{"amqp://guest:guest@127.0.0.1:5672/?routing_key=q", true, ""},
		{"amqp://guest:guest@127.0.0.1:5672/?routing_key=q", false, "127.0.0.1 is a loopback address; targets must be public"},
		{"amqp://mq.example.com/", false, "url must say where messages go"},
		{"amqp://mq.example.com/?exchange=a&exchange=b", false, "gives exchange 2 times"},
		{"amqp://mq.example.com/?routing_key=a&certfile=/etc/passwd", false, `url query "certfile" is not known`},
		{"amqp://mq.example.com:0/?routing_key=a", false, "url port must be between 1 and 65535"},
		{"amqp:mq", false, "url must look like amqp://host:5672/"},
		{"amqp://mq.example.com/?routing_key=" + strings.Repeat("k", 256), false, "at most 255 bytes"},
	}
	for _, tt := range tests {
		err := amqpdest.CheckURL(tt.url, tt.insecure)
		if tt.want == "" {
			require.NoError(t, err, tt.url)
			continue
		}
		require.ErrorContains(t, err, tt.want, tt.url)
	}
}

// FuzzCheckURL: whatever URL a user sends, the check answers without panicking, and a
// URL it accepts says where messages go.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"amqp://u:p@h:5672/v?exchange=e&routing_key=k", "amqp://h/?routing_key=q", "amqp://h/%2F?exchange=x", "amqp://[::1]/?routing_key=%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if amqpdest.CheckURL(raw, true) == nil {
			require.Contains(t, raw, "?")
		}
	})
}
