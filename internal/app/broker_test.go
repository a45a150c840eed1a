package app_test

// End-to-end tests of broker sources: the real app reading a stream on the local NATS
// server, a queue on the local RabbitMQ and a topic on an in-process Kafka cluster, with
// an httptest receiver for the events the messages become.

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/brokertest"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
)

// brokerSource is a broker source's reply, as far as these tests read it.
type brokerSource struct {
	ID         string              `json:"id"`
	From       consign.SourceFrom  `json:"from"`
	FromStatus *consign.FromStatus `json:"from_status"`
}

func (e *env) brokerSource(o org, id string) brokerSource {
	e.tb.Helper()
	var s brokerSource
	e.c.get("/v1/orgs/"+o.id+"/sources/"+id, o.key, &s)
	return s
}

// waitReceipts waits until a source has n receipts matching query.
func (e *env) waitReceipts(o org, srcID, query string, n int) []receipt {
	e.tb.Helper()
	var rs []receipt
	require.Eventually(e.tb, func() bool {
		rs = e.receipts(o, srcID, query)
		return len(rs) >= n
	}, 2*waitFor, tick, "waiting for %d receipts (%s) of source %s", n, query, srcID)
	return rs
}

// envelope is an event as the receiver gets it.
type envelope struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// TestBrokerSourcesOverTLS: a source reads each broker over TLS (tls://, amqps://,
// kafka+tls:// with SCRAM), the broker's certificate verified against the source's own
// CA (from.tls.ca_certificates; the server trusts the system roots), and its messages
// become events; the reply shows the CA's subject, not its PEM. The same source
// without the CA shows why it cannot read in its consumer's last error, as a Kafka
// source with a wrong password does.
func TestBrokerSourcesOverTLS(t *testing.T) {
	t.Parallel()
	ca := brokertest.NewCA(t)
	e := start(t)
	for _, tc := range []struct {
		name   string
		broker func(testing.TB, *brokertest.CA) *brokertest.Broker
		other  string // the field that gives the untrusting source its own place on the broker
	}{
		{"nats", brokertest.NATSOverTLS, "durable"},
		{"amqp", brokertest.AMQPOverTLS, ""},
		{"kafka", brokertest.KafkaOverTLS, "group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := tc.broker(t, ca)
			o := e.newOrg("tls " + tc.name)
			rc := newReceiver(t, nil)
			e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}})
			r := e.c.raw("POST", "/v1/orgs/"+o.id+"/sources", map[string]any{
				"name": "warehouse " + tc.name, "topic": "order.created", "from": b.From}, o.key, nil)
			require.Equal(t, http.StatusCreated, r.status, string(r.body))
			var created brokerSource
			require.NoError(t, json.Unmarshal(r.body, &created))
			require.Equal(t, &consign.FromTLS{CASubjects: []string{"CN=consign test CA"}}, created.From.TLS, "the reply shows the CA, not its PEM")
			require.NotContains(t, string(r.body), "BEGIN CERTIFICATE")
			b.Publish(t, "order-1", nil, []byte(`{"order_id": 1}`))
			var env envelope
			require.NoError(t, json.Unmarshal(rc.next(t).Body, &env))
			require.JSONEq(t, `{"order_id": 1}`, string(env.Data))
			e.waitReceipts(o, created.ID, "status=processed", 1)
			page := signIn(t, e, o.key).page(t, "/ui/orgs/"+o.id+"/sources/"+created.ID)
			require.Contains(t, page, "its own TLS: CA <code>CN=consign test CA</code>", "the dashboard shows the source's CA")
			require.NotContains(t, page, "BEGIN CERTIFICATE")

			// The from object sent back as shown keeps the CA: the consumer, started again
			// (a new version), reads the next message.
			e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/sources/"+created.ID, map[string]any{"from": created.From}, o.key)
			b.Publish(t, "order-2", nil, []byte(`{"order_id": 2}`))
			require.NoError(t, json.Unmarshal(rc.next(t).Body, &env))
			require.JSONEq(t, `{"order_id": 2}`, string(env.Data))

			// The same broker without the CA: its certificate is not trusted.
			from := maps.Clone(b.From)
			delete(from, "tls")
			if tc.other != "" {
				from[tc.other] = brokertest.Name("untrusted_")
			}
			id := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/sources", map[string]any{
				"name": "untrusted " + tc.name, "topic": "order.created", "from": from}, o.key)["id"].(string)
			require.Eventually(t, func() bool {
				st := e.brokerSource(o, id).FromStatus
				return st != nil && strings.Contains(st.LastError, "certificate signed by unknown authority")
			}, waitFor, tick, "the consumer says the certificate is not trusted")

			if tc.name != "kafka" {
				return
			}
			// Credentials the brokers refuse show as such, not as silence.
			from = maps.Clone(b.From)
			from["url"] = strings.Replace(from["url"].(string), brokertest.KafkaPass, "wrong-pass", 1)
			from["group"] = brokertest.Name("refused_")
			id = e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/sources", map[string]any{
				"name": "refused " + tc.name, "topic": "order.created", "from": from}, o.key)["id"].(string)
			require.Eventually(t, func() bool {
				st := e.brokerSource(o, id).FromStatus
				return st != nil && strings.Contains(st.LastError, "SASL authentication failed: ")
			}, waitFor, tick, "the consumer says the credentials were refused")
		})
	}
}

// TestBrokerSourceClientCertificate: a source presents its client certificate
// (from.tls) to a broker that demands one and reads; the reply shows the certificate's
// subject and never its key; without the certificate the consumer says why it cannot
// read.
func TestBrokerSourceClientCertificate(t *testing.T) {
	t.Parallel()
	ca, clients := brokertest.NewCA(t), newTestCA(t, "partner clients")
	pool := x509.NewCertPool()
	pool.AddCert(clients.cert)
	b := brokertest.AMQPOverMutualTLS(t, ca, pool)
	certPEM, keyPEM := clients.issue(t, "consign.example", time.Now().Add(24*time.Hour), x509.ExtKeyUsageClientAuth)
	e := start(t)
	o := e.newOrg("mtls")
	rc := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}})

	without := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/sources", map[string]any{
		"name": "no certificate", "topic": "order.created", "from": b.From}, o.key)["id"].(string)
	require.Eventually(t, func() bool {
		st := e.brokerSource(o, without).FromStatus
		return st != nil && strings.Contains(st.LastError, "certificate required")
	}, waitFor, tick, "the consumer says the broker wants a certificate")
	e.c.must(http.StatusNoContent, "DELETE", "/v1/orgs/"+o.id+"/sources/"+without, nil, o.key)

	from := maps.Clone(b.From)
	from["tls"] = map[string]any{"ca_certificates": ca.PEM, "client_certificate": certPEM, "client_key": keyPEM}
	r := e.c.raw("POST", "/v1/orgs/"+o.id+"/sources", map[string]any{"name": "with certificate", "topic": "order.created", "from": from}, o.key, nil)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	require.NotContains(t, string(r.body), "PRIVATE KEY", "the reply never shows the key")
	var created brokerSource
	require.NoError(t, json.Unmarshal(r.body, &created))
	require.NotNil(t, created.From.TLS)
	require.Contains(t, created.From.TLS.Subject, "CN=consign.example", "the reply shows the certificate's subject")
	b.Publish(t, "order-1", nil, []byte(`{"order_id": 1}`))
	require.JSONEq(t, `{"order_id": 1}`, string(nextEnvelope(t, rc).Data))
	require.True(t, e.brokerSource(o, created.ID).FromStatus.Connected)
}

// TestBrokerSources: messages published to each broker become events delivered to an
// endpoint, their type from a header when they carry one; a message delivered again (a
// new durable or group reading the stream from the start, an AMQP message-id sent
// again) is a duplicate receipt and no second event; the source shows its consumer.
func TestBrokerSources(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		broker func(testing.TB) *brokertest.Broker
		// redeliver makes the broker deliver the five messages again.
		redeliver func(t *testing.T, e *env, o org, srcID string, b *brokertest.Broker)
	}{
		{"nats", brokertest.NATS, func(t *testing.T, e *env, o org, srcID string, b *brokertest.Broker) {
			from := maps.Clone(b.From)
			from["durable"] = brokertest.Name("again_")
			e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/sources/"+srcID, map[string]any{"from": from}, o.key)
		}},
		{"amqp", brokertest.AMQP, func(t *testing.T, e *env, o org, srcID string, b *brokertest.Broker) {
			for i := 1; i <= 5; i++ {
				b.Publish(t, fmt.Sprintf("order-%d", i), nil, fmt.Appendf(nil, `{"order_id": %d, "again": true}`, i))
			}
		}},
		{"kafka", brokertest.Kafka, func(t *testing.T, e *env, o org, srcID string, b *brokertest.Broker) {
			from := maps.Clone(b.From)
			from["group"] = brokertest.Name("again_")
			e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/sources/"+srcID, map[string]any{"from": from}, o.key)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := tc.broker(t)
			e := start(t)
			o := e.newOrg("acme")
			rc := newReceiver(t, nil)
			e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}})
			created := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/sources", map[string]any{
				"name": "warehouse " + tc.name, "topic": "order.created", "from": b.From, "type_header": "X-Event-Type"}, o.key)
			srcID := created["id"].(string)

			for i := 1; i <= 5; i++ {
				h := map[string]string{}
				if i == 3 {
					h["X-Event-Type"] = "order.updated"
				}
				b.Publish(t, fmt.Sprintf("order-%d", i), h, fmt.Appendf(nil, `{"order_id": %d}`, i))
			}
			types := map[string]string{}
			for range 5 {
				var env envelope
				require.NoError(t, json.Unmarshal(rc.next(t).Body, &env))
				types[string(env.Data)] = env.Type
			}
			require.Equal(t, map[string]string{`{"order_id": 1}`: "order.created", `{"order_id": 2}`: "order.created",
				`{"order_id": 3}`: "order.updated", `{"order_id": 4}`: "order.created", `{"order_id": 5}`: "order.created"}, types)

			rs := e.waitReceipts(o, srcID, "status=processed", 5)
			for _, r := range rs {
				require.Equal(t, tc.name, r.Via)
				require.True(t, r.Verified)
				require.NotNil(t, r.DedupeKey, "a broker message has a dedupe key by default")
				require.NotEmpty(t, *r.DedupeKey)
			}
			require.Eventually(t, func() bool {
				st := e.brokerSource(o, srcID).FromStatus
				return st != nil && st.Connected && st.Messages == 5 && st.LastMessageAt != nil && st.Lag != nil && *st.Lag == 0
			}, waitFor, tick, "the source shows its consumer connected, 5 messages, nothing waiting")
			page := signIn(t, e, o.key).page(t, "/ui/orgs/"+o.id+"/sources/"+srcID)
			require.Contains(t, page, "connected since", "the dashboard shows the consumer")
			require.Contains(t, page, "5 messages on this node")
			require.Contains(t, page, "waiting in the broker: 0")

			tc.redeliver(t, e, o, srcID, b)
			dups := e.waitReceipts(o, srcID, "duplicate=true", 5)
			require.Len(t, dups, 5, "each message delivered again is one duplicate receipt")
			b.Publish(t, "order-6", nil, []byte(`{"order_id": 6}`))
			var env envelope
			require.NoError(t, json.Unmarshal(rc.next(t).Body, &env))
			require.JSONEq(t, `{"order_id": 6}`, string(env.Data))
			time.Sleep(300 * time.Millisecond)
			require.Len(t, rc.all(), 6, "six messages, six events: the ones delivered again made none")
			require.Len(t, e.eventsOf(o, "order.created"), 5)
			require.Len(t, e.eventsOf(o, "order.updated"), 1)
		})
	}
}

// TestBrokerSourceLifecycle: a source's consumer follows the source: a new subject is
// read after a PATCH, and nothing is read after the source is deleted.
func TestBrokerSourceLifecycle(t *testing.T) {
	t.Parallel()
	first, second := brokertest.NATS(t), brokertest.NATS(t)
	e := start(t)
	o := e.newOrg("acme")
	rc := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}})
	src := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/sources",
		map[string]any{"name": "orders", "topic": "order.created", "from": first.From}, o.key)
	id := src["id"].(string)
	first.Publish(t, "", nil, []byte(`{"n": 1}`))
	require.JSONEq(t, `{"n": 1}`, string(nextEnvelope(t, rc).Data))

	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/sources/"+id, map[string]any{"from": second.From}, o.key)
	second.Publish(t, "", nil, []byte(`{"n": 2}`))
	require.JSONEq(t, `{"n": 2}`, string(nextEnvelope(t, rc).Data))

	e.c.must(http.StatusNoContent, "DELETE", "/v1/orgs/"+o.id+"/sources/"+id, nil, o.key)
	second.Publish(t, "", nil, []byte(`{"n": 3}`))
	time.Sleep(time.Second)
	require.Len(t, rc.all(), 2, "a deleted source reads nothing more")
}

// TestBrokerSourceShowsErrors: a source whose subject no stream holds shows why its
// consumer is not connected, and reads once it is pointed at one.
func TestBrokerSourceShowsErrors(t *testing.T) {
	t.Parallel()
	b := brokertest.NATS(t)
	e := start(t)
	o := e.newOrg("acme")
	rc := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}})
	wrong := maps.Clone(b.From)
	wrong["subject"] = brokertest.Name("nowhere.")
	src := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/sources",
		map[string]any{"name": "orders", "topic": "order.created", "from": wrong}, o.key)
	id := src["id"].(string)
	var st *consign.FromStatus
	require.Eventually(t, func() bool {
		st = e.brokerSource(o, id).FromStatus
		return st != nil && st.LastError != "" && st.LastErrorAt != nil
	}, waitFor, tick)
	require.False(t, st.Connected)
	require.Contains(t, st.LastError, "stream", "the error says what is missing")
	page := signIn(t, e, o.key).page(t, "/ui/orgs/"+o.id+"/sources/"+id)
	require.Contains(t, page, "not connected")

	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/sources/"+id, map[string]any{"from": b.From}, o.key)
	b.Publish(t, "", nil, []byte(`{"n": 1}`))
	require.JSONEq(t, `{"n": 1}`, string(nextEnvelope(t, rc).Data))
	require.True(t, e.brokerSource(o, id).FromStatus.Connected)
}

// TestKafkaSourceWithoutBroker: a Kafka source whose brokers do not answer never shows
// itself connected (the client connects lazily, so the consumer asks a broker before it
// says so) and says why in its last error.
func TestKafkaSourceWithoutBroker(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := l.Addr().String()
	require.NoError(t, l.Close())
	e := start(t)
	o := e.newOrg("acme")
	src := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/sources", map[string]any{"name": "orders", "topic": "order.created",
		"from": map[string]any{"type": "kafka", "brokers": []string{gone}, "topic": "orders", "group": "consign"}}, o.key)
	id := src["id"].(string)
	var st *consign.FromStatus
	require.Eventually(t, func() bool {
		st = e.brokerSource(o, id).FromStatus
		require.False(t, st != nil && st.Connected, "a source no broker answers shows itself connected")
		return st != nil && st.LastError != ""
	}, waitFor, 10*time.Millisecond)
	require.Contains(t, st.LastError, "no broker answers")
	require.Contains(t, st.LastError, "connection refused", "the error says why")
}

func nextEnvelope(t *testing.T, rc *receiver) envelope {
	t.Helper()
	var env envelope
	require.NoError(t, json.Unmarshal(rc.next(t).Body, &env))
	return env
}

// TestBrokerSourceVerification: a source's verification applies to messages: a message
// with a bad signature header is stored unverified and becomes no event.
func TestBrokerSourceVerification(t *testing.T) {
	t.Parallel()
	b := brokertest.NATS(t)
	e := start(t)
	o := e.newOrg("acme")
	rc := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}})
	const secret = "0123456789abcdef0123456789abcdef"
	src := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/sources", map[string]any{"name": "signed", "topic": "order.created",
		"from": b.From, "verify": map[string]any{"type": "hmac-sha256", "header": "X-Signature", "secret": secret},
		"type_pointer": "/kind"}, o.key)
	id := src["id"].(string)
	good := []byte(`{"kind": "order.updated", "n": 1}`)
	b.Publish(t, "", map[string]string{"X-Signature": hmacHex(secret, good)}, good)
	b.Publish(t, "", map[string]string{"X-Signature": hmacHex("another secret entirely", good)}, []byte(`{"n": 2}`))
	env := nextEnvelope(t, rc)
	require.Equal(t, "order.updated", env.Type, "the type comes from type_pointer")
	bad := e.waitReceipts(o, id, "verified=false", 1)
	require.Contains(t, bad[0].Reason, "verification failed")
	time.Sleep(300 * time.Millisecond)
	require.Len(t, rc.all(), 1, "the forged message made no event")
}

// TestBrokerSourceSettings: broker settings are checked field by field, brokers obey the
// target rules, and the URL's credentials are masked in replies and kept when sent back
// masked.
func TestBrokerSourceSettings(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	for _, tc := range []struct {
		name   string
		from   any
		fields []string
	}{
		{"no type", map[string]any{"url": "nats://127.0.0.1:4222", "subject": "a"}, []string{"from.type"}},
		{"nats without subject", map[string]any{"type": "nats", "url": "nats://127.0.0.1:4222"}, []string{"from.subject"}},
		{"nats bad scheme", map[string]any{"type": "nats", "url": "http://127.0.0.1:4222", "subject": "a"}, []string{"from.url"}},
		{"nats bad durable", map[string]any{"type": "nats", "url": "nats://127.0.0.1", "subject": "a", "durable": "a.b"}, []string{"from.durable"}},
		{"nats with queue", map[string]any{"type": "nats", "url": "nats://127.0.0.1", "subject": "a", "queue": "q"}, []string{"from.queue"}},
		{"amqp without queue or url", map[string]any{"type": "amqp"}, []string{"from.url", "from.queue"}},
		{"amqp bad port", map[string]any{"type": "amqp", "url": "amqp://127.0.0.1:70000/", "queue": "q"}, []string{"from.url"}},
		{"kafka without brokers", map[string]any{"type": "kafka", "topic": "t", "group": "g"}, []string{"from.brokers"}},
		{"kafka bad broker", map[string]any{"type": "kafka", "brokers": []string{"k1"}, "topic": "t", "group": "g"}, []string{"from.brokers[0]"}},
		{"kafka without topic and group", map[string]any{"type": "kafka", "brokers": []string{"k1:9092"}}, []string{"from.topic", "from.group"}},
		{"unknown field", map[string]any{"type": "kafka", "brokers": []string{"k1:9092"}, "topic": "t", "group": "g", "partition": 1}, nil},
	} {
		r := e.c.raw("POST", "/v1/orgs/"+o.id+"/sources", map[string]any{"name": "x", "topic": "order.created", "from": tc.from}, o.key, nil)
		p := requireProblem(t, r)
		if tc.fields == nil {
			require.Equal(t, http.StatusBadRequest, r.status, "%s: %s", tc.name, r.body)
			continue
		}
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", tc.name, r.body)
		require.Equal(t, tc.fields, p.fields(), tc.name)
	}
	r := e.c.raw("POST", "/v1/orgs/"+o.id+"/sources", map[string]any{"name": "x", "topic": "order.created",
		"type_pointer": "kind", "type_header": "X-Type"}, o.key, nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, []string{"type_pointer"}, requireProblem(t, r).fields())

	// Without --insecure-targets, loopback and private brokers are refused.
	strict := start(t, func(c *app.Config) { c.InsecureTargets = false })
	so := strict.newOrg("acme")
	for _, from := range []map[string]any{
		{"type": "nats", "url": "nats://127.0.0.1:4222", "subject": "a"},
		{"type": "amqp", "url": "amqp://guest:guest@localhost/", "queue": "q"},
		{"type": "kafka", "brokers": []string{"10.0.0.1:9092"}, "topic": "t", "group": "g"},
	} {
		r := strict.c.raw("POST", "/v1/orgs/"+so.id+"/sources", map[string]any{"name": "x", "topic": "order.created", "from": from}, so.key, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%v: %s", from, r.body)
		p := requireProblem(t, r)
		require.Len(t, p.fields(), 1)
		require.Contains(t, r.String(), "--insecure-targets")
	}

	// Credentials: masked in replies; sent back masked, they are kept.
	b := brokertest.AMQP(t)
	rc := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}})
	masked := "amqp://guest:" + consign.MaskPrefix + "@127.0.0.1:5672/"
	src := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/sources",
		map[string]any{"name": "rabbit", "topic": "order.created", "from": b.From}, o.key)
	id := src["id"].(string)
	require.Equal(t, masked, src["from"].(map[string]any)["url"])
	got := e.brokerSource(o, id)
	require.Equal(t, masked, got.From.URL)
	patched := e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/sources/"+id,
		map[string]any{"from": got.From, "name": "rabbit, renamed"}, o.key)
	require.Equal(t, masked, patched["from"].(map[string]any)["url"])
	b.Publish(t, "m1", nil, []byte(`{"n": 1}`))
	require.JSONEq(t, `{"n": 1}`, string(nextEnvelope(t, rc).Data), "the stored password still connects")
	page := signIn(t, e, o.key).page(t, "/ui/orgs/"+o.id+"/sources/"+id)
	require.Contains(t, page, "amqp://guest:"+consign.MaskPrefix+"@127.0.0.1:5672/", "the dashboard shows the URL masked")
	require.NotContains(t, page, "guest:guest")
}

// hmacHex is the hex HMAC-SHA256 of body under secret.
func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// TestBrokerSourceTwoNodes: two nodes on one PostgreSQL database both consume a source
// made on one of them, and every message becomes exactly one event.
func TestBrokerSourceTwoNodes(t *testing.T) {
	t.Parallel()
	for _, newBroker := range []func(testing.TB) *brokertest.Broker{brokertest.NATS, brokertest.Kafka} {
		b := newBroker(t)
		t.Run(b.Type, func(t *testing.T) {
			t.Parallel()
			dsn := pgtest.DSN(t)
			key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
			shared := func(c *app.Config) { c.Database, c.EncryptionKey = dsn, key }
			n1, n2 := start(t, shared), start(t, shared)
			o := n1.newOrg("acme")
			rc := newReceiver(t, nil)
			n1.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}})
			src := n1.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/sources",
				map[string]any{"name": "orders", "topic": "order.created", "from": b.From}, o.key)
			id := src["id"].(string)
			require.Eventually(t, func() bool {
				st := n2.brokerSource(o, id).FromStatus
				return st != nil && st.Connected
			}, waitFor, tick, "the other node consumes the source too")

			const total = 200
			for i := 1; i <= total; i++ {
				b.Publish(t, "", nil, fmt.Appendf(nil, `{"n": %d}`, i))
			}
			events := map[int]map[string]bool{}
			require.Eventually(t, func() bool {
				for _, r := range rc.all() {
					var env struct {
						ID   string
						Data struct{ N int }
					}
					require.NoError(t, json.Unmarshal(r.Body, &env))
					if events[env.Data.N] == nil {
						events[env.Data.N] = map[string]bool{}
					}
					events[env.Data.N][env.ID] = true
				}
				return len(events) == total
			}, 3*waitFor, 50*time.Millisecond, "every message becomes an event")
			time.Sleep(300 * time.Millisecond)
			for n, ids := range events {
				require.Len(t, ids, 1, "message %d became %d events", n, len(ids))
			}
			m1, m2 := n1.brokerSource(o, id).FromStatus.Messages, n2.brokerSource(o, id).FromStatus.Messages
			t.Logf("node 1 read %d messages, node 2 %d", m1, m2)
			require.GreaterOrEqual(t, m1+m2, int64(total))
		})
	}
}
