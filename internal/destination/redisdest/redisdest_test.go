package redisdest_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/destination/brokertest"
	"github.com/consign-dev/consign/internal/destination/redisdest"
)

// stream returns a fresh stream name on database 3, deleted when the test ends, and a
// client to read it with.
func stream(t *testing.T) (string, *redis.Client) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: brokertest.Redis(t), DB: 3})
	t.Cleanup(func() { _ = c.Close() })
	name := "consign-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() { c.Del(context.Background(), name) })
	return name, c
}

// TestSendAppends: an attempt is an entry of the stream holding the body and the
// signature headers as fields; the outcome carries the entry's id.
func TestSendAppends(t *testing.T) {
	t.Parallel()
	name, c := stream(t)
	s := redisdest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	h := http.Header{"Webhook-Id": {"evt_1"}, "Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {"v1,abc"},
		"Content-Type": {"application/json"}, "X-Partner": {"acme"}}
	out := s.Send(t.Context(), destination.Request{URL: "redis://" + brokertest.Redis(t) + "/3?stream=" + name, Header: h, Body: []byte(`{"id":"evt_1"}`)})
	require.Equal(t, destination.Success, out.Class, out.Err)

	entries, err := c.XRange(t.Context(), name, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, map[string]string{"stream": name, "id": entries[0].ID}, out.Ack)
	require.Equal(t, map[string]any{"body": `{"id":"evt_1"}`, "webhook-id": "evt_1", "webhook-timestamp": "1700000000",
		"webhook-signature": "v1,abc", "content-type": "application/json", "x-partner": "acme"}, entries[0].Values)
}

// TestSendConcurrently: attempts at once share the client's pool, each its own entry.
func TestSendConcurrently(t *testing.T) {
	t.Parallel()
	name, c := stream(t)
	s := redisdest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	const n = 300
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out := s.Send(t.Context(), destination.Request{URL: "redis://" + brokertest.Redis(t) + "/3?stream=" + name,
				Header: http.Header{"Webhook-Id": {"evt_" + strconv.Itoa(i)}}, Body: []byte("{}")})
			if out.Class != destination.Success {
				t.Errorf("attempt %d: %v %s", i, out.Class, out.Err)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, n, c.XLen(t.Context(), name).Val())
}

// TestSendFails: what a user gets when Redis does not take the entry.
func TestSendFails(t *testing.T) {
	t.Parallel()
	name, c := stream(t)
	require.NoError(t, c.Set(t.Context(), name, "not a stream", time.Minute).Err())
	tests := []struct {
		name     string
		url      string
		insecure bool
		class    destination.Class
		err      string
	}{
		{"NotAStream", "redis://" + brokertest.Redis(t) + "/3?stream=" + name, true, destination.Failure, "WRONGTYPE"},
		{"BadPassword", "redis://nobody:wrong@" + brokertest.Redis(t) + "/3?stream=x", true, destination.Failure, "XADD x on redis://127.0.0.1:6379/3"},
		{"NothingListens", "redis://127.0.0.1:1/0?stream=x", true, destination.Failure, "connection refused"},
		{"LoopbackRefused", "redis://" + brokertest.Redis(t) + "/3?stream=x", false, destination.Blocked, "127.0.0.1 is a loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := redisdest.New(destination.BrokerConfig{InsecureTargets: tt.insecure, Timeout: 3 * time.Second})
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
		{"redis://redis.example.com:6379/0?stream=orders", false, ""},
		{"redis://:secret@redis.example.com/?stream=orders", false, ""},
		{"redis://user:secret@redis.example.com/15?stream=orders", false, ""},
		{"redis://127.0.0.1:6379/0?stream=orders", true, ""},
		{"redis://127.0.0.1:6379/0?stream=orders", false, "127.0.0.1 is a loopback address; targets must be public"},
		{"redis://redis.example.com/0", false, "url must name the stream"},
		{"redis://redis.example.com/16?stream=x", false, "database number (0 to 15)"},
		{"redis://redis.example.com/x?stream=x", false, "database number"},
		{"redis://redis.example.com/0?stream=x&maxlen=5", false, `url query "maxlen" is not known`},
		{"redis://redis.example.com/0?stream=x&stream=y", false, "gives stream 2 times"},
		{"redis:x", false, "url must look like redis://host:6379/"},
	}
	for _, tt := range tests {
		err := redisdest.CheckURL(tt.url, tt.insecure)
		if tt.want == "" {
			require.NoError(t, err, tt.url)
			continue
		}
		require.ErrorContains(t, err, tt.want, tt.url)
	}
}

// FuzzCheckURL: whatever URL a user sends, the check answers without panicking, and a
// URL it accepts names a stream.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"redis://h:6379/0?stream=s", "redis://:p@h/?stream=%20", "redis://h/99?stream=x", "redis://[::1]/1?stream=a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if redisdest.CheckURL(raw, true) == nil {
			require.Contains(t, raw, "stream=")
		}
	})
}
