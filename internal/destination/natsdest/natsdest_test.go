package natsdest_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/destination/brokertest"
	"github.com/consign-dev/consign/internal/destination/natsdest"
)

// stream creates a JetStream stream with file storage taking subject prefix.>, removed
// when the test ends.
func stream(t *testing.T, prefix string) jetstream.Stream {
	t.Helper()
	nc, err := nats.Connect(brokertest.NATS(t))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
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
	url := brokertest.NATS(t) + "/" + prefix + ".orders"
	h := http.Header{"Webhook-Id": {"evt_1"}, "Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {"v1,abc"},
		"Content-Type": {"application/json"}, "X-Partner": {"acme"}}

	out := s.Send(t.Context(), destination.Request{URL: url, Header: h, Body: []byte(`{"id":"evt_1"}`)})
	require.Equal(t, destination.Success, out.Class, out.Err)
	require.Equal(t, map[string]string{"stream": st.CachedInfo().Config.Name, "sequence": "1"}, out.Ack)
	require.Zero(t, out.Status)

	msg, err := st.GetMsg(t.Context(), 1)
	require.NoError(t, err)
	require.Equal(t, prefix+".orders", msg.Subject)
	require.JSONEq(t, `{"id":"evt_1"}`, string(msg.Data))
	require.Equal(t, "evt_1", msg.Header.Get("Nats-Msg-Id"))
	for k, want := range map[string]string{"webhook-id": "evt_1", "webhook-timestamp": "1700000000",
		"webhook-signature": "v1,abc", "content-type": "application/json", "x-partner": "acme"} {
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
	s := natsdest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	const n = 500
	seqs := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out := s.Send(t.Context(), destination.Request{URL: brokertest.NATS(t) + "/" + prefix + ".x",
				Header: http.Header{"Webhook-Id": {"evt_" + strconv.Itoa(i)}}, Body: []byte("{}")})
			if out.Class != destination.Success {
				t.Errorf("attempt %d: %v %s", i, out.Class, out.Err)
			}
			seqs <- out.Ack["sequence"]
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[string]bool{}
	for s := range seqs {
		require.False(t, seen[s], "sequence %s acknowledged twice", s)
		seen[s] = true
	}
	info, err := st.Info(t.Context())
	require.NoError(t, err)
	require.EqualValues(t, n, info.State.Msgs)
}

// TestSendFails: what a user gets when the broker cannot take the message — each a
// Failure (retried) or Blocked, with words that say what to fix.
func TestSendFails(t *testing.T) {
	t.Parallel()
	server := brokertest.NATS(t)
	tests := []struct {
		name     string
		url      string
		insecure bool
		class    destination.Class
		err      string
	}{
		{"NoStream", server + "/" + unique(t) + ".nobody", true, destination.Failure, "no JetStream stream takes subject"},
		{"NothingListens", "nats://127.0.0.1:1/orders", true, destination.Failure, "connect to nats://127.0.0.1:1"},
		{"LoopbackRefused", server + "/orders", false, destination.Blocked, "127.0.0.1 is a loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := natsdest.New(destination.BrokerConfig{InsecureTargets: tt.insecure, Timeout: 3 * time.Second})
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
		{"nats://nats.example.com:4222/orders.created", false, ""},
		{"nats://nats.example.com/orders", false, ""},
		{"nats://user:pass@nats.example.com:4222/orders", false, ""},
		{"nats://:token@nats.example.com:4222/orders", false, ""},
		{"nats://127.0.0.1:4222/orders", true, ""},
		{"nats://127.0.0.1:4222/orders", false, "127.0.0.1 is a loopback address; targets must be public"},
		{"nats://localhost:4222/orders", false, "localhost is a loopback name; targets must be public"},
		{"nats://10.0.0.1:4222/orders", false, "10.0.0.1 is a private address; targets must be public"},
		{"nats://nats.example.com:4222", false, "url must name the subject to publish to as its path"},
		{"nats://nats.example.com:4222/orders.*", false, "has a wildcard"},
		{"nats://nats.example.com:4222/orders..x", false, "has an empty token"},
		{"nats://nats.example.com:4222/orders%20x", false, "holds a space"},
		{"nats://nats.example.com:4222/orders?x=1", false, "url takes no query"},
		{"nats://nats.example.com:99999/orders", false, "url port must be between 1 and 65535"},
		{"nats://user@nats.example.com:4222/orders", false, "user information must be user:password"},
		{"nats:orders", false, "url must look like nats://host:4222/"},
		{"nats://nats.example.com:4222/orders#x", false, "fragment"},
	}
	for _, tt := range tests {
		err := natsdest.CheckURL(tt.url, tt.insecure)
		if tt.want == "" {
			require.NoError(t, err, tt.url)
			continue
		}
		require.ErrorContains(t, err, tt.want, tt.url)
	}
}

// FuzzCheckURL: whatever URL a user sends, the check answers without panicking, and a
// URL it accepts names a subject.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"nats://h:4222/a.b", "nats://:t@h/x", "nats://[::1]:4222/a", "nats://h/%2e", "nats://h:0/a", "nats://h/a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if natsdest.CheckURL(raw, true) == nil {
			require.Contains(t, raw, "/")
		}
	})
}

// BenchmarkSend: attempts to a file-storage stream from 256 goroutines at once, as the
// dispatcher makes them (its default concurrency), each waiting for its own ack.
func BenchmarkSend(b *testing.B) {
	prefix := "b" + strconv.FormatInt(time.Now().UnixNano(), 36)
	nc, err := nats.Connect(brokertest.NATS(b))
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
	url := brokertest.NATS(b) + "/" + prefix + ".x"
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
