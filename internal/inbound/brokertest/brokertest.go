// Package brokertest gives tests of broker sources a place on a real broker each: a
// JetStream stream on the local NATS server, a queue on the local RabbitMQ, or an
// in-process Kafka cluster (kfake), with a way to publish to it.
//
// NATS is CONSIGN_TEST_NATS (default nats://127.0.0.1:4222) and RabbitMQ
// CONSIGN_TEST_AMQP (default amqp://guest:guest@127.0.0.1:5672/). When one does not
// answer, tests skip, unless CI=true: there a missing broker fails the test.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker is one test's place on a broker.
type Broker struct {
	// Type is the source's from.type: nats, amqp or kafka.
	Type string
	// From is the source's "from" object reading this place.
	From map[string]any
	// Publish sends one message with headers. id, when not empty, is the message's id
	// (NATS: Nats-Msg-Id; AMQP: message-id; Kafka: the record key).
	Publish func(tb testing.TB, id string, header map[string]string, body []byte)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// NATSURL is the local NATS server's URL.
func NATSURL() string { return env("CONSIGN_TEST_NATS", "nats://127.0.0.1:4222") }

// AMQPURL is the local RabbitMQ's URL.
func AMQPURL() string { return env("CONSIGN_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/") }

func unreachable(tb testing.TB, what string, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s unreachable (CI=true): %v", what, err)
	}
	tb.Skipf("%s unreachable (set CI=true to fail instead): %v", what, err)
}

// Name returns a name unique to this run, such as "consign_test_1a2b3c4d".
func Name(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// NATS makes a stream (file storage) holding one fresh subject, deleted when the test
// ends, and a Broker that publishes to it through JetStream.
func NATS(tb testing.TB) *Broker {
	tb.Helper()
	nc, err := nats.Connect(NATSURL(), nats.Timeout(5*time.Second))
	if err != nil {
		unreachable(tb, "NATS at "+NATSURL(), err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	name := Name("CONSIGN_TEST_")
	subject := strings.ToLower(name) + ".orders"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage}); err != nil {
		unreachable(tb, "NATS JetStream at "+NATSURL(), err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, name)
	})
	return &Broker{
		Type: "nats",
		From: map[string]any{"type": "nats", "url": NATSURL(), "subject": subject},
		Publish: func(tb testing.TB, id string, header map[string]string, body []byte) {
			tb.Helper()
			m := nats.NewMsg(subject)
			m.Data = body
			for k, v := range header {
				m.Header.Set(k, v)
			}
			if id != "" {
				m.Header.Set(nats.MsgIdHdr, id)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := js.PublishMsg(ctx, m); err != nil {
				tb.Fatalf("publish to %s: %v", subject, err)
			}
		},
	}
}

// AMQP declares a fresh durable queue, deleted when the test ends, and a Broker that
// publishes persistent messages to it (default exchange) with publisher confirms.
func AMQP(tb testing.TB) *Broker {
	tb.Helper()
	conn, err := amqp.Dial(AMQPURL())
	if err != nil {
		unreachable(tb, "RabbitMQ at "+AMQPURL(), err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatal(err)
	}
	queue := Name("consign_test_")
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })
	if err := ch.Confirm(false); err != nil {
		tb.Fatal(err)
	}
	return &Broker{
		Type: "amqp",
		From: map[string]any{"type": "amqp", "url": AMQPURL(), "queue": queue},
		Publish: func(tb testing.TB, id string, header map[string]string, body []byte) {
			tb.Helper()
			h := amqp.Table{}
			for k, v := range header {
				h[k] = v
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqp.Publishing{
				Headers: h, ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: id, Body: body,
			})
			if err != nil {
				tb.Fatalf("publish to %s: %v", queue, err)
			}
			if ok, err := conf.WaitContext(ctx); err != nil || !ok {
				tb.Fatalf("publish to %s: not confirmed (%v)", queue, err)
			}
		},
	}
}

// Kafka starts an in-process Kafka cluster (kfake) with one topic of three partitions,
// closed when the test ends, and a Broker that produces to it.
func Kafka(tb testing.TB) *Broker {
	tb.Helper()
	topic := Name("orders_")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return &Broker{
		Type: "kafka",
		From: map[string]any{"type": "kafka", "brokers": c.ListenAddrs(), "topic": topic, "group": Name("consign_")},
		Publish: func(tb testing.TB, id string, header map[string]string, body []byte) {
			tb.Helper()
			r := &kgo.Record{Topic: topic, Value: body}
			if id != "" {
				r.Key = []byte(id)
			}
			for k, v := range header {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				tb.Fatalf("produce to %s: %v", topic, err)
			}
		},
	}
}

// All returns one Broker of each type.
func All(tb testing.TB) []*Broker {
	tb.Helper()
	return []*Broker{NATS(tb), AMQP(tb), Kafka(tb)}
}
