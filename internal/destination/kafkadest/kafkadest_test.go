package kafkadest_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/consign-dev/consign/internal/brokertest"
	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/destination/kafkadest"
)

// cluster starts franz-go's in-process Kafka (no Kafka broker runs on this machine)
// with a topic "orders" of three partitions, and returns its kafka:// URL prefix.
func cluster(t *testing.T) (string, *kfake.Cluster) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(3, "orders"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return "kafka://" + strings.Join(c.ListenAddrs(), ","), c
}

// consume reads n records of topic.
func consume(t *testing.T, c *kfake.Cluster, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "only %d of %d records arrived", len(out), n)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// TestSendProduces: an attempt is a record with the ordering key as its key, the body as
// its value and the signature headers; the outcome carries its partition and offset.
func TestSendProduces(t *testing.T) {
	t.Parallel()
	base, c := cluster(t)
	s := kafkadest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	h := brokertest.Header()
	out := s.Send(t.Context(), destination.Request{URL: base + "/orders", Header: h, Body: []byte(`{"id":"evt_1"}`), Key: "order-1001"})
	require.Equal(t, destination.Success, out.Class, out.Err)

	recs := consume(t, c, 1)
	r := recs[0]
	require.Equal(t, "order-1001", string(r.Key))
	require.JSONEq(t, `{"id":"evt_1"}`, string(r.Value))
	got := map[string]string{}
	for _, h := range r.Headers {
		got[h.Key] = string(h.Value)
	}
	require.Equal(t, brokertest.MessageHeader(), got)
	require.Equal(t, map[string]string{"topic": "orders", "partition": strconv.Itoa(int(r.Partition)), "offset": strconv.FormatInt(r.Offset, 10)}, out.Ack)
}

// TestSendKeepsKeysTogether: records of one ordering key go to one partition, in the
// order they were sent, while many attempts are in flight at once.
func TestSendKeepsKeysTogether(t *testing.T) {
	t.Parallel()
	base, c := cluster(t)
	s := kafkadest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	const keys, each = 10, 20
	var wg sync.WaitGroup
	for k := range keys {
		wg.Go(func() {
			for i := range each { // one key's attempts one after another, as the dispatcher orders them
				out := s.Send(t.Context(), destination.Request{URL: base + "/orders", Key: "k" + strconv.Itoa(k),
					Header: http.Header{"Webhook-Id": {"evt_" + strconv.Itoa(k) + "_" + strconv.Itoa(i)}}, Body: []byte(strconv.Itoa(i))})
				if out.Class != destination.Success {
					t.Errorf("key %d record %d: %v %s", k, i, out.Class, out.Err)
				}
			}
		})
	}
	wg.Wait()
	partition, next := map[string]int32{}, map[string]int{}
	for _, r := range consume(t, c, keys*each) {
		k := string(r.Key)
		if p, ok := partition[k]; ok {
			require.Equal(t, p, r.Partition, "key %s in two partitions", k)
		}
		partition[k] = r.Partition
		require.Equal(t, strconv.Itoa(next[k]), string(r.Value), "key %s out of order", k)
		next[k]++
	}
}

// TestSendFails: what a user gets when the cluster does not take the record.
func TestSendFails(t *testing.T) {
	t.Parallel()
	base, _ := cluster(t)
	brokertest.SendFails(t, newSender, []brokertest.FailCase{
		{Name: "NoTopic", URL: base + "/nobody", Insecure: true, Class: destination.Failure, Err: "the cluster has no topic nobody"},
		{Name: "NothingListens", URL: "kafka://127.0.0.1:1/orders", Insecure: true, Class: destination.Failure, Err: "produce to orders on kafka://127.0.0.1:1"},
		{Name: "PlaintextRefused", URL: base + "/orders", Class: destination.Blocked, Err: "url must use kafka+tls://, not kafka:// (plaintext; serve --insecure-targets allows it"},
	}, nil)
}

// TestSendTLS: over kafka+tls:// to a cluster that speaks TLS and SASL alone, an
// attempt that trusts the CA (the endpoint's tls.ca_certificates) and authenticates
// with each SASL mechanism produces a record a consumer reads; one that trusts the
// system roots or another CA fails saying the certificate is not trusted; a wrong
// password fails saying so, well before the attempt's timeout (franz-go would retry the
// refused exchange until then and report the timeout alone).
func TestSendTLS(t *testing.T) {
	t.Parallel()
	ca := brokertest.NewCA(t)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			c := brokertest.KafkaTLS(t, ca, mech, "orders")
			base := "kafka+tls://" + brokertest.KafkaUser + ":" + brokertest.KafkaPass + "@" + strings.Join(c.ListenAddrs(), ",")
			url := base + "/orders?sasl=" + strings.ToLower(mech)
			s := kafkadest.New(destination.BrokerConfig{InsecureTargets: true, Timeout: 5 * time.Second})
			t.Cleanup(s.Close)
			out := s.Send(t.Context(), destination.Request{URL: url, TLS: ca.ClientTLS(t), Header: brokertest.Header(), Body: []byte(`{"id":"evt_1"}`)})
			require.Equal(t, destination.Success, out.Class, out.Err)
			b, _, err := kafkadest.ParseBrokers(url, true)
			require.NoError(t, err)
			cl, err := kgo.NewClient(append(b.Options((&net.Dialer{}).DialContext, ca.Client(), 5*time.Second, nil),
				kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
			require.NoError(t, err)
			t.Cleanup(cl.Close)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var got []*kgo.Record
			for len(got) == 0 && ctx.Err() == nil {
				cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
			}
			require.Len(t, got, 1)
			require.JSONEq(t, `{"id":"evt_1"}`, string(got[0].Value))
			require.Equal(t, strconv.FormatInt(got[0].Offset, 10), out.Ack["offset"])

			brokertest.SendFails(t, newSender, []brokertest.FailCase{
				{Name: "OtherCA", URL: url, Insecure: true, TLS: brokertest.NewCA(t).ClientTLS(t), Class: destination.Failure, Err: "certificate signed by unknown authority"},
				{Name: "SystemRoots", URL: url, Insecure: true, Class: destination.Failure, Err: "certificate signed by unknown authority"},
				{Name: "LoopbackRefused", URL: url, TLS: ca.ClientTLS(t), Class: destination.Blocked, Err: "127.0.0.1 is a loopback address"},
			}, nil)

			// Each attempt with a wrong password says so within a fraction of its timeout,
			// the second on the client the first left too.
			t.Run("WrongPassword", func(t *testing.T) {
				t.Parallel()
				s := kafkadest.New(destination.BrokerConfig{InsecureTargets: true, Timeout: time.Minute})
				t.Cleanup(s.Close)
				for range 2 {
					out := s.Send(t.Context(), destination.Request{URL: strings.Replace(url, brokertest.KafkaPass, "wrong", 1),
						TLS: ca.ClientTLS(t), Header: brokertest.Header(), Body: []byte("{}")})
					require.Equal(t, destination.Failure, out.Class, out.Err)
					require.Regexp(t, `^produce to orders on kafka\+tls://127\.0\.0\.1:\d+: SASL authentication failed: `, out.Err)
					require.Less(t, out.Duration, 30*time.Second, "the refusal waited for the attempt's timeout: %s", out.Err)
				}
			})
		})
	}
}

// TestSendSASLRefusedWithReason: a broker that answers wrong credentials with
// SASL_AUTHENTICATION_FAILED and its reason, as Kafka's brokers do (kfake closes the
// connection instead, TestSendTLS), fails the attempt at once with that reason.
func TestSendSASLRefusedWithReason(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", brokertest.KafkaUser, brokertest.KafkaPass))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := kreq.(*kmsg.SASLAuthenticateRequest).ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed: Invalid username or password"
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
	s := kafkadest.New(destination.BrokerConfig{InsecureTargets: true, Timeout: time.Minute})
	t.Cleanup(s.Close)
	out := s.Send(t.Context(), destination.Request{URL: "kafka://" + brokertest.KafkaUser + ":wrong@" + c.ListenAddrs()[0] + "/orders?sasl=plain",
		Header: brokertest.Header(), Body: []byte("{}")})
	require.Equal(t, destination.Failure, out.Class, out.Err)
	require.Regexp(t, `^produce to orders on kafka://127\.0\.0\.1:\d+: SASL authentication failed: SASL_AUTHENTICATION_FAILED: .*: Authentication failed: Invalid username or password$`, out.Err)
	require.Less(t, out.Duration, 30*time.Second, "the refusal waited for the attempt's timeout: %s", out.Err)
}

// TestCheckURL: an endpoint URL is judged at creation, in words naming what is wrong.
func TestCheckURL(t *testing.T) {
	t.Parallel()
	brokertest.CheckURLs(t, kafkadest.CheckURL, []brokertest.URLCase{
		{URL: "kafka+tls://kafka-1.example.com:9092,kafka-2.example.com:9092/orders.created"},
		{URL: "kafka+tls://kafka.example.com/orders"},
		{URL: "kafka+tls://[2606:4700::1111]:9092/orders"},
		{URL: "kafka://127.0.0.1:9092/orders", Insecure: true},
		{URL: "kafka+tls://127.0.0.1:9092/orders", Want: "127.0.0.1 is a loopback address; targets must be public"},
		{URL: "kafka+tls://kafka.example.com:9092,10.1.2.3:9092/orders", Want: "10.1.2.3 is a private address"},
		{URL: "kafka+tls://kafka.example.com:9092", Want: "url must name the topic"},
		{URL: "kafka+tls://kafka.example.com:9092/orders/x", Want: "may hold only letters"},
		{URL: "kafka+tls://kafka.example.com:9092/..", Want: "not a valid topic name"},
		{URL: "kafka+tls://a.example.com:9092,,b.example.com/orders", Want: "empty broker"},
		{URL: "kafka+tls://user:pass@kafka.example.com/orders", Want: "url has credentials: name the SASL mechanism with ?sasl=plain"},
		{URL: "kafka+tls://user:p%40ss@kafka.example.com/orders?sasl=scram-sha-512"},
		{URL: "kafka+tls://user:pass@a.example.com:9093,b.example.com/orders?sasl=PLAIN"},
		{URL: "kafka+tls://kafka.example.com/orders?sasl=plain", Want: "url names a SASL mechanism without credentials"},
		{URL: "kafka+tls://user:pass@kafka.example.com/orders?sasl=gssapi", Want: `url sasl "gssapi" is not known`},
		{URL: "kafka+tls://user@kafka.example.com/orders?sasl=plain", Want: "url user information must be user:password"},
		{URL: "kafka://kafka.example.com/orders", Want: "url must use kafka+tls://, not kafka:// (plaintext; serve --insecure-targets allows it, for development)"},
		{URL: "kafka://u:p@127.0.0.1:9092/orders?sasl=plain", Insecure: true},
		{URL: "kafka+tls://kafka.example.com/orders?acks=1", Want: "url query \"acks\" is not known"},
		{URL: "kafka+tls://kafka.example.com:0/orders", Want: "url port must be between 1 and 65535"},
		{URL: "kafka:orders", Want: "url must look like kafka://host:9092"},
		{URL: "kafka+tls:///orders", Want: "at least one broker"},
		{URL: "kafka+tls://kafka.example.com/" + strings.Repeat("t", 250), Want: "longer than 249"},
	})
}

// FuzzCheckURL: whatever URL a user sends, the check answers without panicking, and a
// URL it accepts names a broker and a topic.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"kafka://h:9092/t", "kafka://a:1,b:2/t.x", "kafka://[::1]:9092/t", "kafka://h/%41", "kafka://h:9092,/t",
		"kafka+tls://u:p@h:9093/t?sasl=plain", "kafka+tls://u:p%40@a,b:1/t?sasl=SCRAM-SHA-512", "kafka+tls://@h/t", "kafka+tls://u:p@/t?sasl=plain&sasl=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !brokertest.URLRules(t, kafkadest.CheckURL, raw) {
			return
		}
		b, topic, err := kafkadest.ParseBrokers(raw, true)
		require.NoError(t, err, raw)
		require.NotEmpty(t, b.Seeds, raw)
		require.NotEmpty(t, topic, raw)
		require.Equal(t, b.User != "", b.SASL != "", "credentials go with a SASL mechanism: %s", raw)
		require.Equal(t, strings.HasPrefix(strings.ToLower(raw), "kafka+tls://"), b.Scheme.TLS, raw)
	})
}

// newSender is a sender for SendFails, closed when the test ends. Its attempts wait 10 s:
// a case that expects a TLS handshake's error needs the handshake to end first, which
// takes seconds on a loaded machine under the race detector.
func newSender(t *testing.T, insecure bool) destination.Sender {
	s := kafkadest.New(destination.BrokerConfig{InsecureTargets: insecure, Timeout: 10 * time.Second})
	t.Cleanup(s.Close)
	return s
}
