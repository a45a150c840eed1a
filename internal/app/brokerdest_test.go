package app_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/destination/brokertest"
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

// brokers are the kinds of broker destination, each making a target on the broker at
// addr (host:port).
var brokers = []struct {
	name   string
	addr   func(t *testing.T) string
	target func(t *testing.T, addr string) brokerTarget
}{
	{"NATS", func(t *testing.T) string { return strings.TrimPrefix(brokertest.NATS(t), "nats://") }, natsTarget},
}

// natsTarget is a subject of a new JetStream stream (file storage).
func natsTarget(t *testing.T, addr string) brokerTarget {
	nc, err := nats.Connect(brokertest.NATS(t))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	name := "app" + strconv.FormatInt(time.Now().UnixNano(), 36)
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
			target := b.target(t, b.addr(t))
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
	e := start(t)
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			proxy := brokertest.NewProxy(t, b.addr(t))
			target := b.target(t, proxy.Addr)
			proxy.Stop()
			o := e.newOrg("down " + b.name)
			e.createEndpoint(o, map[string]any{"url": target.url, "topics": []string{"order.*"}, "retry": map[string]any{"schedule": []string{"100ms"}, "max_age": "1m"}})
			evt := e.publish(o, "order.created", map[string]any{"order_id": "1002"})
			id := e.onlyDelivery(o, evt).ID
			require.Eventually(t, func() bool { return e.delivery(o, id).AttemptsCount >= 2 }, waitFor, tick, "no retries while the broker is down")
			d := e.delivery(o, id)
			require.Equal(t, "pending", d.Status)
			require.NotNil(t, d.Attempts[0].Error)
			proxy.Start()
			d = e.waitStatus(o, id, "succeeded")
			require.NotNil(t, d.Attempts[len(d.Attempts)-1].Response)
			require.Len(t, target.read(t, 1), 1, "the event is on the broker once")
		})
	}
}
