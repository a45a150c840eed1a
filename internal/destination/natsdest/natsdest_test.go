package natsdest_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/brokertest"
	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/destination/natsdest"
)

// loaded bounds the tests' own connection and JetStream calls, and TestSendConcurrently's
// connect and attempts, which are not about timeouts: on a loaded CI machine, with every
// package's tests on one NATS server, a handshake and a file-storage stream's creation
// can take longer than nats.go's 2 s and 5 s defaults.
const loaded = 30 * time.Second

// stream creates a JetStream stream with file storage taking subject prefix.>, removed
// when the test ends.
func stream(t *testing.T, prefix string) jetstream.Stream {
	t.Helper()
	nc, err := nats.Connect(brokertest.NATSServer(t), nats.Timeout(loaded))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(loaded))
	require.NoError(t, err)
	name := strings.ReplaceAll(prefix, ".", "_")
	st, err := js.CreateOrUpdateStream(t.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"},
		Storage: jetstream.FileStorage, Duplicates: time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	return st
}

func unique(t *testing.T) string {
	return "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// TestSendPublishesToJetStream: an attempt lands on the stream with the body, the
// signature headers and Nats-Msg-Id = the event id; the outcome carries the stream's
// ack; the same event again is acknowledged as the stream's duplicate, stored once.
func TestSendPublishesToJetStream(t *testing.T) {
	t.Parallel()
	prefix := unique(t)
	st := stream(t, prefix)
	s := natsdest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	url := brokertest.NATSServer(t) + "/" + prefix + ".orders"
	h := brokertest.Header()

	out := s.Send(t.Context(), destination.Request{URL: url, Header: h, Body: []byte(`{"id":"evt_1"}`)})
	require.Equal(t, destination.Success, out.Class, out.Err)
	require.Equal(t, map[string]string{"stream": st.CachedInfo().Config.Name, "sequence": "1"}, out.Ack)
	require.Zero(t, out.Status)

	msg, err := st.GetMsg(t.Context(), 1)
	require.NoError(t, err)
	require.Equal(t, prefix+".orders", msg.Subject)
	require.JSONEq(t, `{"id":"evt_1"}`, string(msg.Data))
	require.Equal(t, "evt_1", msg.Header.Get("Nats-Msg-Id"))
	for k, want := range brokertest.MessageHeader() {
		require.Equal(t, want, msg.Header.Get(k), k)
	}

	again := s.Send(t.Context(), destination.Request{URL: url, Header: h, Body: []byte(`{"id":"evt_1"}`)})
	require.Equal(t, destination.Success, again.Class, again.Err)
	require.Equal(t, "true", again.Ack["duplicate"])
	info, err := st.Info(t.Context())
	require.NoError(t, err)
	require.EqualValues(t, 1, info.State.Msgs, "the stream keeps one copy of an event")
}

// TestSendConcurrently: many attempts at once share one connection, publish
// asynchronously, and each gets its own ack.
func TestSendConcurrently(t *testing.T) {
	t.Parallel()
	prefix := unique(t)
	st := stream(t, prefix)
	s := natsdest.New(destination.BrokerConfig{InsecureTargets: true, ConnectTimeout: loaded, Timeout: 2 * loaded})
	t.Cleanup(s.Close)
	const n = 500
	brokertest.Unique(t, brokertest.SendMany(t, s, brokertest.NATSServer(t)+"/"+prefix+".x", n), "sequence")
	info, err := st.Info(t.Context())
	require.NoError(t, err)
	require.EqualValues(t, n, info.State.Msgs)
}

// TestSendFails: what a user gets when the broker cannot take the message — each a
// Failure (retried) or Blocked, with words that say what to fix.
func TestSendFails(t *testing.T) {
	t.Parallel()
	server := brokertest.NATSServer(t)
	brokertest.SendFails(t, newSender, []brokertest.FailCase{
		{Name: "NoStream", URL: server + "/" + unique(t) + ".nobody", Insecure: true, Class: destination.Failure, Err: "no JetStream stream takes subject"},
		{Name: "NothingListens", URL: "nats://127.0.0.1:1/orders", Insecure: true, Class: destination.Failure, Err: "connect to nats://127.0.0.1:1"},
		{Name: "PlaintextRefused", URL: server + "/orders", Class: destination.Blocked, Err: "url must use tls://, not nats:// (plaintext; serve --insecure-targets allows it"},
	}, nil)
}

// TestSendTLS: over tls:// to a NATS server that requires TLS, an attempt that trusts
// the server's CA (the endpoint's tls.ca_certificates) is acknowledged by the stream;
// one that trusts the system roots or another CA fails saying the certificate is not
// trusted; the server's own name must be right; a tls:// URL to a server without TLS
// fails rather than fall back to plaintext.
func TestSendTLS(t *testing.T) {
	t.Parallel()
	ca := brokertest.NewCA(t)
	url, nc := brokertest.NATSTLS(t, ca)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "TLS", Subjects: []string{"tls.>"}, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	s := natsdest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	out := s.Send(t.Context(), destination.Request{URL: url + "/tls.orders", TLS: ca.ClientTLS(t), Header: brokertest.Header(), Body: []byte(`{"id":"evt_1"}`)})
	require.Equal(t, destination.Success, out.Class, out.Err)
	require.Equal(t, map[string]string{"stream": "TLS", "sequence": "1"}, out.Ack)
	msg, err := st.GetMsg(t.Context(), 1)
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"evt_1"}`, string(msg.Data))

	brokertest.SendFails(t, newSender, []brokertest.FailCase{
		{Name: "OtherCA", URL: url + "/tls.orders", Insecure: true, TLS: brokertest.NewCA(t).ClientTLS(t), Class: destination.Failure, Err: "certificate signed by unknown authority"},
		{Name: "SystemRoots", URL: url + "/tls.orders", Insecure: true, Class: destination.Failure, Err: "certificate signed by unknown authority"},
		{Name: "ServerWithoutTLS", URL: "tls://" + brokertest.NATSAddr + "/tls.orders", Insecure: true, TLS: ca.ClientTLS(t), Class: destination.Failure, Err: "connect to tls://127.0.0.1:4222: nats: secure connection not available"},
		{Name: "LoopbackRefused", URL: url + "/tls.orders", TLS: ca.ClientTLS(t), Class: destination.Blocked, Err: "127.0.0.1 is a loopback address"},
	}, nil)
}

// TestCheckURL: an endpoint URL is judged at creation, in words naming what is wrong.
func TestCheckURL(t *testing.T) {
	t.Parallel()
	brokertest.CheckURLs(t, natsdest.CheckURL, []brokertest.URLCase{
		{URL: "tls://nats.example.com:4222/orders.created"},
		{URL: "nats://nats.example.com:4222/orders.created", Want: "url must use tls://, not nats:// (plaintext; serve --insecure-targets allows it, for development)"},
		{URL: "NATS://127.0.0.1:4222/orders", Insecure: true},
		{URL: "tls://127.0.0.1:4222/orders", Insecure: true},
		{URL: "wss://nats.example.com/orders", Want: "url must look like nats://host:4222/… or tls://host:4222/…"},
		{URL: "tls://nats.example.com/orders"},
		{URL: "tls://user:pass@nats.example.com:4222/orders"},
		{URL: "tls://:token@nats.example.com:4222/orders"},
		{URL: "nats://127.0.0.1:4222/orders", Insecure: true},
		{URL: "tls://127.0.0.1:4222/orders", Want: "127.0.0.1 is a loopback address; targets must be public"},
		{URL: "tls://localhost:4222/orders", Want: "localhost is a loopback name; targets must be public"},
		{URL: "tls://10.0.0.1:4222/orders", Want: "10.0.0.1 is a private address; targets must be public"},
		{URL: "tls://nats.example.com:4222", Want: "url must name the subject to publish to as its path"},
		{URL: "tls://nats.example.com:4222/orders.*", Want: "has a wildcard"},
		{URL: "tls://nats.example.com:4222/orders..x", Want: "has an empty token"},
		{URL: "tls://nats.example.com:4222/orders%20x", Want: "holds a space"},
		{URL: "tls://nats.example.com:4222/orders?x=1", Want: "url takes no query"},
		{URL: "tls://nats.example.com:99999/orders", Want: "url port must be between 1 and 65535"},
		{URL: "tls://user@nats.example.com:4222/orders", Want: "user information must be user:password"},
		{URL: "nats:orders", Want: "url must look like nats://host:4222/"},
		{URL: "tls://nats.example.com:4222/orders#x", Want: "fragment"},
	})
}

// FuzzCheckURL: whatever URL a user sends, the check answers without panicking, and a
// URL it accepts names a subject.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"nats://h:4222/a.b", "nats://:t@h/x", "nats://[::1]:4222/a", "nats://h/%2e", "nats://h:0/a", "nats://h/a b", "tls://h:4222/a.b", "tls://:t@h/x", "TLS://u:p@h/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if brokertest.URLRules(t, natsdest.CheckURL, raw) {
			require.Contains(t, raw, "/")
		}
	})
}

// BenchmarkSend: attempts to a file-storage stream from 256 goroutines at once, as the
// dispatcher makes them (its default concurrency), each waiting for its own ack.
func BenchmarkSend(b *testing.B) {
	prefix := "b" + strconv.FormatInt(time.Now().UnixNano(), 36)
	nc, err := nats.Connect(brokertest.NATSServer(b))
	require.NoError(b, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(b, err)
	_, err = js.CreateOrUpdateStream(b.Context(), jetstream.StreamConfig{Name: prefix, Subjects: []string{prefix + ".>"}, Storage: jetstream.FileStorage})
	require.NoError(b, err)
	defer func() { _ = js.DeleteStream(context.Background(), prefix) }()
	s := natsdest.New(destination.BrokerConfig{InsecureTargets: true})
	defer s.Close()
	body := []byte(strings.Repeat("x", 1024))
	url := brokertest.NATSServer(b) + "/" + prefix + ".x"
	var n atomic.Int64
	b.SetParallelism(128) // 256 goroutines on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			out := s.Send(b.Context(), destination.Request{URL: url,
				Header: http.Header{"Webhook-Id": {"evt_" + strconv.FormatInt(n.Add(1), 10)}, "Webhook-Signature": {"v1,abc"}}, Body: body})
			if out.Class != destination.Success {
				b.Error(out.Err)
			}
		}
	})
}

// newSender is a sender for SendFails, closed when the test ends.
func newSender(t *testing.T, insecure bool) destination.Sender {
	s := natsdest.New(destination.BrokerConfig{InsecureTargets: insecure, Timeout: 3 * time.Second})
	t.Cleanup(s.Close)
	return s
}
