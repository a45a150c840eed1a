package app_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/brokertest"
	"github.com/consign-dev/consign/webhook"
)

// brokerMsg is a message read off a broker: its body and headers.
type brokerMsg struct {
	Body   []byte
	Header http.Header
}

// brokerTarget is a place on a broker an endpoint can deliver to, made for one test.
type brokerTarget struct {
	url  string                                // the endpoint URL
	ack  []string                              // what the attempt's response.ack names
	read func(t *testing.T, n int) []brokerMsg // waits for n messages and returns all there are
}

// brokers are the kinds of broker destination. target makes a target on the broker at
// addr (host:port); down makes one on a broker the test can stop and start again.
var brokers = []struct {
	name   string
	target func(t *testing.T) brokerTarget
	down   func(t *testing.T) (target brokerTarget, stop, start func())
}{
	{"NATS", func(t *testing.T) brokerTarget { return natsTarget(t, brokertest.NATSAddr) }, proxied(brokertest.NATSAddr, natsTarget)},
	{"AMQP", func(t *testing.T) brokerTarget { return amqpTarget(t, brokertest.AMQPAddr) }, proxied(brokertest.AMQPAddr, amqpTarget)},
	{"Redis", func(t *testing.T) brokerTarget { return redisTarget(t, brokertest.RedisAddr) }, proxied(brokertest.RedisAddr, redisTarget)},
	{"Kafka", func(t *testing.T) brokerTarget { tg, _, _ := kafkaTarget(t); return tg }, kafkaTarget},
}

// proxied makes targets reached through a proxy to the broker at addr, which stops and
// starts.
func proxied(addr string, target func(t *testing.T, addr string) brokerTarget) func(t *testing.T) (brokerTarget, func(), func()) {
	return func(t *testing.T) (brokerTarget, func(), func()) {
		switch addr { // fail or skip as the broker's own test would
		case brokertest.NATSAddr:
			brokertest.NATSServer(t)
		case brokertest.AMQPAddr:
			brokertest.AMQPServer(t)
		case brokertest.RedisAddr:
			brokertest.RedisServer(t)
		}
		p := brokertest.NewProxy(t, addr)
		return target(t, p.Addr), p.Stop, p.Start
	}
}

func uniqueName(prefix string) string { return prefix + strconv.FormatInt(time.Now().UnixNano(), 36) }

// natsTarget is a subject of a new JetStream stream (file storage).
func natsTarget(t *testing.T, addr string) brokerTarget {
	nc, err := nats.Connect(brokertest.NATSServer(t))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return natsStreamTarget(t, nc, addr)
}

// natsStreamTarget is a subject of a new stream made through nc, reached at addr.
func natsStreamTarget(t *testing.T, nc *nats.Conn, addr string) brokerTarget {
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	name := uniqueName("app")
	st, err := js.CreateOrUpdateStream(t.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"},
		Storage: jetstream.FileStorage})
	require.NoError(t, err)
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	return brokerTarget{url: "nats://" + addr + "/" + name + ".orders", ack: []string{"stream", "sequence"},
		read: func(t *testing.T, n int) []brokerMsg {
			var out []brokerMsg
			require.Eventually(t, func() bool {
				info, err := st.Info(t.Context())
				return err == nil && info.State.Msgs >= uint64(n)
			}, waitFor, tick, "the stream never held %d messages", n)
			info, err := st.Info(t.Context())
			require.NoError(t, err)
			for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
				m, err := st.GetMsg(t.Context(), seq)
				require.NoError(t, err)
				h := http.Header{}
				for k, v := range m.Header {
					for _, x := range v {
						h.Add(k, x)
					}
				}
				out = append(out, brokerMsg{Body: m.Data, Header: h})
			}
			return out
		}}
}

// amqpTarget is a new durable queue bound to amq.topic.
func amqpTarget(t *testing.T, addr string) brokerTarget {
	c, err := amqp.Dial(brokertest.AMQPServer(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ch, err := c.Channel()
	require.NoError(t, err)
	name := uniqueName("app-")
	_, err = ch.QueueDeclare(name, true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(name, name, "amq.topic", false, nil))
	t.Cleanup(func() { _, _ = ch.QueueDelete(name, false, false, false) })
	return brokerTarget{url: "amqp://guest:guest@" + addr + "/?exchange=amq.topic&routing_key=" + name, ack: []string{"delivery_tag", "confirm"},
		read: func(t *testing.T, n int) []brokerMsg {
			var out []brokerMsg
			require.Eventually(t, func() bool {
				for {
					m, ok, err := ch.Get(name, true)
					if err != nil || !ok {
						break
					}
					h := http.Header{}
					for k, v := range m.Headers {
						h.Add(k, v.(string))
					}
					out = append(out, brokerMsg{Body: m.Body, Header: h})
				}
				return len(out) >= n
			}, waitFor, tick, "the queue never held %d messages", n)
			return out
		}}
}

// redisTarget is a new stream on database 2.
func redisTarget(t *testing.T, addr string) brokerTarget {
	c := redis.NewClient(&redis.Options{Addr: brokertest.RedisServer(t), DB: 2})
	t.Cleanup(func() { _ = c.Close() })
	name := uniqueName("app-")
	t.Cleanup(func() { c.Del(context.Background(), name) })
	return brokerTarget{url: "redis://" + addr + "/2?stream=" + name, ack: []string{"stream", "id"},
		read: func(t *testing.T, n int) []brokerMsg {
			require.Eventually(t, func() bool { return c.XLen(t.Context(), name).Val() >= int64(n) }, waitFor, tick,
				"the stream never held %d entries", n)
			entries, err := c.XRange(t.Context(), name, "-", "+").Result()
			require.NoError(t, err)
			var out []brokerMsg
			for _, e := range entries {
				m := brokerMsg{Header: http.Header{}}
				for k, v := range e.Values {
					if k == "body" {
						m.Body = []byte(v.(string))
					} else {
						m.Header.Add(k, v.(string))
					}
				}
				out = append(out, m)
			}
			return out
		}}
}

// kafkaTarget is topic "orders" of franz-go's in-process Kafka (no Kafka broker runs
// here); stop closes the cluster and start opens a new one on the same ports, as a
// broker restarted without its data.
func kafkaTarget(t *testing.T) (brokerTarget, func(), func()) {
	var mu sync.Mutex
	var c *kfake.Cluster
	var ports []int
	open := func() {
		opts := []kfake.Opt{kfake.SeedTopics(2, "orders"), kfake.NumBrokers(1)}
		if ports != nil {
			opts = append(opts, kfake.Ports(ports...))
		}
		var err error
		for range 50 { // the port may take a moment to be free again
			var nc *kfake.Cluster
			if nc, err = kfake.NewCluster(opts...); err == nil {
				mu.Lock()
				c = nc
				mu.Unlock()
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		require.NoError(t, err)
	}
	open()
	addrs := c.ListenAddrs()
	for _, a := range addrs {
		_, p, _ := net.SplitHostPort(a)
		n, _ := strconv.Atoi(p)
		ports = append(ports, n)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		c.Close()
	})
	target := brokerTarget{url: "kafka://" + strings.Join(addrs, ",") + "/orders", ack: []string{"partition", "offset"},
		read: func(t *testing.T, n int) []brokerMsg {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			require.NoError(t, err)
			defer cl.Close()
			ctx, cancel := context.WithTimeout(t.Context(), waitFor)
			defer cancel()
			var out []brokerMsg
			for len(out) < n {
				fs := cl.PollFetches(ctx)
				require.NoError(t, ctx.Err(), "only %d of %d records arrived", len(out), n)
				fs.EachRecord(func(r *kgo.Record) {
					m := brokerMsg{Body: r.Value, Header: http.Header{}}
					for _, h := range r.Headers {
						m.Header.Add(h.Key, string(h.Value))
					}
					out = append(out, m)
				})
			}
			// Anything more comes within a moment.
			short, cancelShort := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancelShort()
			cl.PollFetches(short).EachRecord(func(r *kgo.Record) { out = append(out, brokerMsg{Body: r.Value}) })
			return out
		}}
	stop := func() {
		mu.Lock()
		defer mu.Unlock()
		c.Close()
	}
	return target, stop, open
}

// TestBrokerDestinations: an event published to an endpoint whose URL names a broker
// lands on the broker as the HTTP request would have gone: the envelope as the body,
// the endpoint's header and a Standard Webhooks signature that verifies with the
// endpoint's secret; the attempt's response records the broker's acknowledgement.
func TestBrokerDestinations(t *testing.T) {
	t.Parallel()
	e := start(t)
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			target := b.target(t)
			o := e.newOrg("broker " + b.name)
			ep := e.createEndpoint(o, map[string]any{"url": target.url, "topics": []string{"order.*"}, "headers": map[string]string{"X-Partner": "acme-warehouse-7"}})
			secret := ep["secret"].(string)
			evt := e.publish(o, "order.created", map[string]any{"order_id": "1001"})
			d := e.waitStatus(o, e.onlyDelivery(o, evt).ID, "succeeded")

			msgs := target.read(t, 1)
			require.Len(t, msgs, 1)
			m := msgs[0]
			require.Contains(t, string(m.Body), `"data":{"order_id":"1001"}`)
			require.Equal(t, evt, m.Header.Get("Webhook-Id"))
			require.Equal(t, "acme-warehouse-7", m.Header.Get("X-Partner"))
			require.Equal(t, "application/json", m.Header.Get("Content-Type"))
			require.NoError(t, webhook.Verify(secret, m.Header, m.Body), "the signature verifies as a receiver checks it")

			require.Len(t, d.Attempts, 1)
			a := d.Attempts[0]
			require.NotNil(t, a.Response, "the attempt records the broker's answer")
			require.Zero(t, a.Response.Status)
			for _, k := range target.ack {
				require.NotEmpty(t, a.Response.Ack[k], "response.ack.%s in %v", k, a.Response.Ack)
			}
			require.Nil(t, a.Error)
		})
	}
}

// TestBrokerDownThenBack: while the broker cannot be reached, attempts fail and are
// retried on the endpoint's schedule; once it is back, the event is delivered, once.
func TestBrokerDownThenBack(t *testing.T) {
	t.Parallel()
	// An attempt at a broker that does not answer lasts as long as the attempt timeout.
	e := start(t, func(c *app.Config) { c.Sender.Timeout = 2 * time.Second })
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			target, stop, start := b.down(t)
			stop()
			o := e.newOrg("down " + b.name)
			e.createEndpoint(o, map[string]any{"url": target.url, "topics": []string{"order.*"}, "retry": map[string]any{"schedule": []string{"100ms"}, "max_age": "1m"}})
			evt := e.publish(o, "order.created", map[string]any{"order_id": "1002"})
			id := e.onlyDelivery(o, evt).ID
			require.Eventually(t, func() bool { return e.delivery(o, id).AttemptsCount >= 2 }, waitFor, tick, "no retries while the broker is down")
			d := e.delivery(o, id)
			require.Contains(t, []string{"pending", "delivering"}, d.Status, "retried, not given up (the next attempt may be in flight)")
			require.NotNil(t, d.Attempts[0].Error)
			start()
			d = e.waitStatus(o, id, "succeeded")
			require.NotNil(t, d.Attempts[len(d.Attempts)-1].Response)
			require.Len(t, target.read(t, 1), 1, "the event is on the broker once")
		})
	}
}

// TestBrokerTLS: an endpoint whose URL names a broker over TLS, with the broker's CA as
// the endpoint's tls.ca_certificates, delivers and its attempt records the ack; an
// endpoint that trusts another CA gets attempts that fail saying the certificate is
// not trusted (Kafka's TLS and SASL are kafkadest's tests, on kfake).
func TestBrokerTLS(t *testing.T) {
	t.Parallel()
	e := start(t)
	ca := brokertest.NewCA(t)
	for _, b := range []struct {
		name   string
		target func(t *testing.T) brokerTarget
	}{
		{"NATS", func(t *testing.T) brokerTarget {
			url, nc := brokertest.NATSTLS(t, ca)
			tg := natsStreamTarget(t, nc, strings.Replace(url, "tls://", "", 1))
			tg.url = strings.Replace(tg.url, "nats://", "tls://", 1)
			return tg
		}},
		{"AMQP", func(t *testing.T) brokerTarget {
			tg := amqpTarget(t, brokertest.NewTLSProxy(t, brokertest.AMQPAddr, ca).Addr)
			tg.url = strings.Replace(tg.url, "amqp://", "amqps://", 1)
			return tg
		}},
		{"Redis", func(t *testing.T) brokerTarget {
			tg := redisTarget(t, brokertest.NewTLSProxy(t, brokertest.RedisAddr, ca).Addr)
			tg.url = strings.Replace(tg.url, "redis://", "rediss://", 1)
			return tg
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			target := b.target(t)
			o := e.newOrg("tls " + b.name)
			e.createEndpoint(o, map[string]any{"url": target.url, "topics": []string{"order.*"}, "tls": map[string]any{"ca_certificates": ca.PEM}})
			evt := e.publish(o, "order.created", map[string]any{"order_id": "1001"})
			d := e.waitStatus(o, e.onlyDelivery(o, evt).ID, "succeeded")
			require.Len(t, target.read(t, 1), 1)
			require.NotNil(t, d.Attempts[0].Response)
			for _, k := range target.ack {
				require.NotEmpty(t, d.Attempts[0].Response.Ack[k], "the attempt records the ack's %s", k)
			}

			other := e.newOrg("tls other CA " + b.name)
			e.createEndpoint(other, map[string]any{"url": target.url, "topics": []string{"order.*"},
				"tls": map[string]any{"ca_certificates": brokertest.NewCA(t).PEM}, "retry": map[string]any{"schedule": []string{"1h"}, "max_age": "2h"}})
			evt = e.publish(other, "order.created", map[string]any{"order_id": "1002"})
			id := e.onlyDelivery(other, evt).ID
			require.Eventually(t, func() bool { return e.delivery(other, id).AttemptsCount == 1 }, waitFor, tick)
			a := e.delivery(other, id).Attempts[0]
			require.NotNil(t, a.Error)
			require.Contains(t, *a.Error, "certificate signed by unknown authority")
		})
	}
}

// TestBrokerURLs: a broker URL is judged when the endpoint is created, in a field error
// on url that says what is wrong; plaintext schemes and loopback brokers only with
// --insecure-targets, as http:// and loopback HTTP targets.
func TestBrokerURLs(t *testing.T) {
	t.Parallel()
	strict := start(t, func(c *app.Config) { c.InsecureTargets = false })
	o := strict.newOrg("strict")
	for _, tc := range []struct{ url, msg string }{
		{"tls://nats.example.com:4222", "url must name the subject to publish to as its path"},
		{"tls://127.0.0.1:4222/orders", "127.0.0.1 is a loopback address; targets must be public"},
		{"amqps://mq.example.com/", "url must say where messages go"},
		{"amqps://10.0.0.7/?routing_key=q", "10.0.0.7 is a private address; targets must be public"},
		{"kafka+tls://kafka.example.com:9093/orders?acks=1", `url query "acks" is not known`},
		{"kafka+tls://u:p@kafka.example.com:9093/orders", "name the SASL mechanism with ?sasl=plain"},
		{"rediss://redis.example.com/0", "url must name the stream to append to"},
		{"ftp://example.com/", "url must use https, not ftp"},
		{"http://example.com/hook", "url must use https"},
		{"nats://nats.example.com:4222/orders", "url must use tls://, not nats:// (plaintext; serve --insecure-targets allows it, for development)"},
		{"amqp://mq.example.com/?routing_key=q", "url must use amqps://, not amqp://"},
		{"kafka://kafka.example.com:9092/orders", "url must use kafka+tls://, not kafka://"},
		{"redis://redis.example.com/0?stream=s", "url must use rediss://, not redis://"},
	} {
		r := strict.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints", map[string]any{"url": tc.url, "topics": []string{"order.*"}}, o.key, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", tc.url, r.body)
		p := requireProblem(t, r)
		require.Equal(t, []string{"url"}, p.fields(), tc.url)
		require.Contains(t, p.Errors[0].Message, tc.msg, tc.url)
	}
	for _, url := range []string{"tls://nats.example.com:4222/orders.created", "amqps://u:p@mq.example.com/?routing_key=q",
		"kafka+tls://u:p@k1.example.com,k2.example.com/orders?sasl=scram-sha-512", "rediss://redis.example.com/0?stream=s"} {
		strict.createEndpoint(o, map[string]any{"url": url, "topics": []string{"order.*"}})
	}
}

// TestBrokerPasswordSealed: the password in a broker URL is not in the store in clear,
// replies show it masked, and an update that sends the masked URL back keeps it (the
// endpoint still delivers), while a new password replaces it.
func TestBrokerPasswordSealed(t *testing.T) {
	t.Parallel()
	e := start(t)
	target := amqpTarget(t, brokertest.AMQPAddr) // amqp://guest:guest@…
	o := e.newOrg("sealed")
	ep := e.createEndpoint(o, map[string]any{"url": target.url, "topics": []string{"order.*"}})
	id := ep["id"].(string)
	masked := strings.Replace(target.url, "guest:guest@", "guest:••••@", 1)
	require.Equal(t, masked, ep["url"], "the create reply masks the password")
	got := e.c.must(http.StatusOK, "GET", "/v1/orgs/"+o.id+"/endpoints/"+id, nil, o.key)
	require.Equal(t, masked, got["url"])

	row, err := e.app.Store.EndpointGet(t.Context(), o.id, id)
	require.NoError(t, err)
	require.NotContains(t, row.URL, "guest:guest", "the stored URL holds no password")
	require.NotEmpty(t, row.URLPasswordSealed)

	// Sent back as shown: the password is kept, and the endpoint still delivers.
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+id, map[string]any{"url": masked, "description": "kept"}, o.key)
	evt := e.publish(o, "order.created", map[string]any{"order_id": "1003"})
	e.waitStatus(o, e.onlyDelivery(o, evt).ID, "succeeded")
	require.Len(t, target.read(t, 1), 1)

	// A new password replaces it: RabbitMQ refuses it, and the attempt says so.
	wrong := strings.Replace(target.url, "guest:guest@", "guest:wrong-password@", 1)
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+id, map[string]any{"url": wrong,
		"retry": map[string]any{"schedule": []string{"1h"}, "max_age": "2h"}}, o.key)
	evt = e.publish(o, "order.created", map[string]any{"order_id": "1004"})
	dlv := e.onlyDelivery(o, evt).ID
	require.Eventually(t, func() bool { return e.delivery(o, dlv).AttemptsCount == 1 }, waitFor, tick)
	d := e.delivery(o, dlv)
	require.Contains(t, *d.Attempts[0].Error, "refused the credentials")
	require.Equal(t, strings.Replace(target.url, "guest:guest@", "guest:••••word@", 1), d.Attempts[0].Request.URL,
		"the attempt log masks the password")
}
