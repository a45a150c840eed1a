// Places on a broker for the tests of broker sources: a JetStream stream on the local
// NATS server, a queue on the local RabbitMQ, or an in-process Kafka cluster (kfake),
// each with a way to publish to it.
package brokertest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
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
	server := NATSServer(tb)
	nc, err := nats.Connect(server, nats.Timeout(5*time.Second))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return natsBroker(tb, nc, server)
}

// NATSOverTLS is NATS on a server of the test's own that requires TLS with ca's
// certificate (NATSTLS); From names it with tls:// and trusts ca (from.tls).
func NATSOverTLS(tb testing.TB, ca *CA) *Broker {
	tb.Helper()
	url, nc := NATSTLS(tb, ca)
	b := natsBroker(tb, nc, url)
	b.From["tls"] = map[string]any{"ca_certificates": ca.PEM}
	return b
}

// natsBroker makes a stream through nc on the server at url.
func natsBroker(tb testing.TB, nc *nats.Conn, server string) *Broker {
	tb.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	name := Name("CONSIGN_TEST_")
	subject := strings.ToLower(name) + ".orders"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage}); err != nil {
		tb.Fatalf("JetStream at %s: %v", server, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, name)
	})
	return &Broker{
		Type: "nats",
		From: map[string]any{"type": "nats", "url": server, "subject": subject},
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
	server := AMQPServer(tb)
	ch := amqpChannel(tb, server)
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
		From: map[string]any{"type": "amqp", "url": server, "queue": queue},
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

// amqpChannel opens a channel on the RabbitMQ at server, its connection closed when
// the test ends.
func amqpChannel(tb testing.TB, server string) *amqp.Channel {
	tb.Helper()
	conn, err := amqp.Dial(server)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		tb.Fatal(err)
	}
	return ch
}

// AMQPTopicQueue declares a fresh queue on the local RabbitMQ, deleted with the test's
// connection, bound to the amq.topic exchange with its own name as the routing key: the
// place of an endpoint URL amqp://…/?exchange=amq.topic&routing_key=<queue>. It returns
// a channel to read it and its name.
func AMQPTopicQueue(tb testing.TB, prefix string) (*amqp.Channel, string) {
	tb.Helper()
	ch := amqpChannel(tb, AMQPServer(tb))
	queue := Name(prefix)
	if _, err := ch.QueueDeclare(queue, false, true, false, false, nil); err != nil {
		tb.Fatal(err)
	}
	if err := ch.QueueBind(queue, queue, "amq.topic", false, nil); err != nil {
		tb.Fatal(err)
	}
	return ch, queue
}

// AMQPOverTLS is AMQP through a proxy that terminates TLS with ca's certificate in
// front of the local RabbitMQ; From names it with amqps:// and trusts ca (from.tls).
func AMQPOverTLS(tb testing.TB, ca *CA) *Broker {
	tb.Helper()
	b := AMQP(tb)
	b.From["url"] = "amqps://guest:guest@" + NewTLSProxy(tb, AMQPAddr, ca).Addr + "/"
	b.From["tls"] = map[string]any{"ca_certificates": ca.PEM}
	return b
}

// AMQPOverMutualTLS is AMQPOverTLS behind a proxy that also demands a client
// certificate signed by a CA in clients; From trusts ca and presents none (the test adds
// from.tls's client_certificate and client_key).
func AMQPOverMutualTLS(tb testing.TB, ca *CA, clients *x509.CertPool) *Broker {
	tb.Helper()
	b := AMQP(tb)
	conf := ca.Server.Clone()
	conf.ClientAuth, conf.ClientCAs = tls.RequireAndVerifyClientCert, clients
	b.From["url"] = "amqps://guest:guest@" + newProxy(tb, AMQPAddr, conf).Addr + "/"
	b.From["tls"] = map[string]any{"ca_certificates": ca.PEM}
	return b
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
	return kafkaBroker(tb, topic, map[string]any{"type": "kafka", "brokers": c.ListenAddrs()}, kgo.SeedBrokers(c.ListenAddrs()...))
}

// KafkaOverTLS is Kafka on a cluster that speaks TLS (ca's certificate) and SCRAM-SHA-512
// alone (KafkaTLS); From names it with a kafka+tls:// URL with the credentials and
// trusts ca (from.tls).
func KafkaOverTLS(tb testing.TB, ca *CA) *Broker {
	tb.Helper()
	topic := Name("orders_")
	c := KafkaTLS(tb, ca, "SCRAM-SHA-512", topic)
	url := "kafka+tls://" + KafkaUser + ":" + KafkaPass + "@" + strings.Join(c.ListenAddrs(), ",") + "?sasl=scram-sha-512"
	return kafkaBroker(tb, topic, map[string]any{"type": "kafka", "url": url, "tls": map[string]any{"ca_certificates": ca.PEM}}, kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.DialTLSConfig(ca.Client()), kgo.SASL(scram.Auth{User: KafkaUser, Pass: KafkaPass}.AsSha512Mechanism()))
}

// kafkaBroker produces to topic with a client of opts; from names the cluster.
func kafkaBroker(tb testing.TB, topic string, from map[string]any, opts ...kgo.Opt) *Broker {
	tb.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	from["topic"], from["group"] = topic, Name("consign_")
	return &Broker{
		Type: "kafka",
		From: from,
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
