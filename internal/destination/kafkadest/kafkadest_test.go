package kafkadest_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

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
	brokertest.SendFails(t, func(t *testing.T, insecure bool) destination.Sender {
		s := kafkadest.New(destination.BrokerConfig{InsecureTargets: insecure, Timeout: 3 * time.Second})
		t.Cleanup(s.Close)
		return s
	}, []brokertest.FailCase{
		{Name: "NoTopic", URL: base + "/nobody", Insecure: true, Class: destination.Failure, Err: "the cluster has no topic nobody"},
		{Name: "NothingListens", URL: "kafka://127.0.0.1:1/orders", Insecure: true, Class: destination.Failure, Err: "produce to orders on kafka://127.0.0.1:1"},
		{Name: "LoopbackRefused", URL: base + "/orders", Insecure: false, Class: destination.Blocked, Err: "127.0.0.1 is a loopback address"},
	}, nil)
}

// TestCheckURL: an endpoint URL is judged at creation, in words naming what is wrong.
func TestCheckURL(t *testing.T) {
	t.Parallel()
	brokertest.CheckURLs(t, kafkadest.CheckURL, []brokertest.URLCase{
		{URL: "kafka://kafka-1.example.com:9092,kafka-2.example.com:9092/orders.created"},
		{URL: "kafka://kafka.example.com/orders"},
		{URL: "kafka://[2606:4700::1111]:9092/orders"},
		{URL: "kafka://127.0.0.1:9092/orders", Insecure: true},
		{URL: "kafka://127.0.0.1:9092/orders", Want: "127.0.0.1 is a loopback address; targets must be public"},
		{URL: "kafka://kafka.example.com:9092,10.1.2.3:9092/orders", Want: "10.1.2.3 is a private address"},
		{URL: "kafka://kafka.example.com:9092", Want: "url must name the topic"},
		{URL: "kafka://kafka.example.com:9092/orders/x", Want: "may hold only letters"},
		{URL: "kafka://kafka.example.com:9092/..", Want: "not a valid topic name"},
		{URL: "kafka://a.example.com:9092,,b.example.com/orders", Want: "empty broker"},
		{URL: "kafka://user:pass@kafka.example.com/orders", Want: "must not contain credentials"},
		{URL: "kafka://kafka.example.com/orders?acks=1", Want: "takes no query"},
		{URL: "kafka://kafka.example.com:0/orders", Want: "url port must be between 1 and 65535"},
		{URL: "kafka:orders", Want: "url must look like kafka://host:9092"},
		{URL: "kafka:///orders", Want: "at least one broker"},
		{URL: "kafka://kafka.example.com/" + strings.Repeat("t", 250), Want: "longer than 249"},
	})
}

// FuzzCheckURL: whatever URL a user sends, the check answers without panicking, and a
// URL it accepts names a broker and a topic.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"kafka://h:9092/t", "kafka://a:1,b:2/t.x", "kafka://[::1]:9092/t", "kafka://h/%41", "kafka://h:9092,/t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if kafkadest.CheckURL(raw, true) == nil {
			authority, topic, ok := strings.Cut(raw[len("kafka://"):], "/")
			require.True(t, ok && authority != "" && topic != "", raw)
		}
	})
}
