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
	h := http.Header{"Webhook-Id": {"evt_1"}, "Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {"v1,abc"},
		"Content-Type": {"application/json"}, "X-Partner": {"acme"}}
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
	require.Equal(t, map[string]string{"webhook-id": "evt_1", "webhook-timestamp": "1700000000", "webhook-signature": "v1,abc",
		"content-type": "application/json", "x-partner": "acme"}, got)
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
	tests := []struct {
		name     string
		url      string
		insecure bool
		class    destination.Class
		err      string
	}{
		{"NoTopic", base + "/nobody", true, destination.Failure, "the cluster has no topic nobody"},
		{"NothingListens", "kafka://127.0.0.1:1/orders", true, destination.Failure, "produce to orders on kafka://127.0.0.1:1"},
		{"LoopbackRefused", base + "/orders", false, destination.Blocked, "127.0.0.1 is a loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := kafkadest.New(destination.BrokerConfig{InsecureTargets: tt.insecure, Timeout: 3 * time.Second})
			t.Cleanup(s.Close)
			out := s.Send(t.Context(), destination.Request{URL: tt.url, Header: http.Header{"Webhook-Id": {"evt_1"}}, Body: []byte("{}")})
			require.Equal(t, tt.class, out.Class, out.Err)
			require.Contains(t, out.Err, tt.err)
			require.Nil(t, out.Ack)
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
		{"kafka://kafka-1.example.com:9092,kafka-2.example.com:9092/orders.created", false, ""},
		{"kafka://kafka.example.com/orders", false, ""},
		{"kafka://[2606:4700::1111]:9092/orders", false, ""},
		{"kafka://127.0.0.1:9092/orders", true, ""},
		{"kafka://127.0.0.1:9092/orders", false, "127.0.0.1 is a loopback address; targets must be public"},
		{"kafka://kafka.example.com:9092,10.1.2.3:9092/orders", false, "10.1.2.3 is a private address"},
		{"kafka://kafka.example.com:9092", false, "url must name the topic"},
		{"kafka://kafka.example.com:9092/orders/x", false, "may hold only letters"},
		{"kafka://kafka.example.com:9092/..", false, "not a valid topic name"},
		{"kafka://a.example.com:9092,,b.example.com/orders", false, "empty broker"},
		{"kafka://user:pass@kafka.example.com/orders", false, "must not contain credentials"},
		{"kafka://kafka.example.com/orders?acks=1", false, "takes no query"},
		{"kafka://kafka.example.com:0/orders", false, "url port must be between 1 and 65535"},
		{"kafka:orders", false, "url must look like kafka://host:9092"},
		{"kafka:///orders", false, "at least one broker"},
		{"kafka://kafka.example.com/" + strings.Repeat("t", 250), false, "longer than 249"},
	}
	for _, tt := range tests {
		err := kafkadest.CheckURL(tt.url, tt.insecure)
		if tt.want == "" {
			require.NoError(t, err, tt.url)
			continue
		}
		require.ErrorContains(t, err, tt.want, tt.url)
	}
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
