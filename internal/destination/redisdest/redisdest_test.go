package redisdest_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/brokertest"
	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/destination/redisdest"
)

// stream returns a fresh stream name on database 3, deleted when the test ends, and a
// client to read it with.
func stream(t *testing.T) (string, *redis.Client) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: brokertest.RedisServer(t), DB: 3})
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
	h := brokertest.Header()
	out := s.Send(t.Context(), destination.Request{URL: "redis://" + brokertest.RedisServer(t) + "/3?stream=" + name, Header: h, Body: []byte(`{"id":"evt_1"}`)})
	require.Equal(t, destination.Success, out.Class, out.Err)

	entries, err := c.XRange(t.Context(), name, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, map[string]string{"stream": name, "id": entries[0].ID}, out.Ack)
	want := map[string]any{"body": `{"id":"evt_1"}`}
	for k, v := range brokertest.MessageHeader() {
		want[k] = v
	}
	require.Equal(t, want, entries[0].Values)
}

// TestSendConcurrently: attempts at once share the client's pool, each its own entry.
func TestSendConcurrently(t *testing.T) {
	t.Parallel()
	name, c := stream(t)
	s := redisdest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	const n = 300
	brokertest.Unique(t, brokertest.SendMany(t, s, "redis://"+brokertest.RedisServer(t)+"/3?stream="+name, n), "id")
	require.EqualValues(t, n, c.XLen(t.Context(), name).Val())
}

// TestSendFails: what a user gets when Redis does not take the entry.
func TestSendFails(t *testing.T) {
	t.Parallel()
	name, c := stream(t)
	require.NoError(t, c.Set(t.Context(), name, "not a stream", time.Minute).Err())
	brokertest.SendFails(t, newSender, []brokertest.FailCase{
		{Name: "NotAStream", URL: "redis://" + brokertest.RedisServer(t) + "/3?stream=" + name, Insecure: true, Class: destination.Failure, Err: "WRONGTYPE"},
		{Name: "BadPassword", URL: "redis://nobody:wrong@" + brokertest.RedisServer(t) + "/3?stream=x", Insecure: true, Class: destination.Failure, Err: "XADD x on redis://127.0.0.1:6379/3"},
		{Name: "NothingListens", URL: "redis://127.0.0.1:1/0?stream=x", Insecure: true, Class: destination.Failure, Err: "connection refused"},
		{Name: "PlaintextRefused", URL: "redis://" + brokertest.RedisServer(t) + "/3?stream=x", Class: destination.Blocked, Err: "url must use rediss://, not redis:// (plaintext; serve --insecure-targets allows it"},
	}, nil)
}

// TestSendTLS: over rediss:// (TLS in front of the local Redis), an attempt that trusts
// the CA (the endpoint's tls.ca_certificates) is appended; one that trusts the system
// roots or another CA fails saying the certificate is not trusted.
func TestSendTLS(t *testing.T) {
	t.Parallel()
	name, c := stream(t)
	ca := brokertest.NewCA(t)
	url := "rediss://" + brokertest.NewTLSProxy(t, brokertest.RedisAddr, ca).Addr + "/3?stream=" + name
	s := redisdest.New(destination.BrokerConfig{InsecureTargets: true})
	t.Cleanup(s.Close)
	out := s.Send(t.Context(), destination.Request{URL: url, TLS: ca.ClientTLS(t), Header: brokertest.Header(), Body: []byte(`{"id":"evt_1"}`)})
	require.Equal(t, destination.Success, out.Class, out.Err)
	entries, err := c.XRange(t.Context(), name, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, map[string]string{"stream": name, "id": entries[0].ID}, out.Ack)

	brokertest.SendFails(t, newSender, []brokertest.FailCase{
		{Name: "OtherCA", URL: url, Insecure: true, TLS: brokertest.NewCA(t).ClientTLS(t), Class: destination.Failure, Err: "certificate signed by unknown authority"},
		{Name: "SystemRoots", URL: url, Insecure: true, Class: destination.Failure, Err: "certificate signed by unknown authority"},
		{Name: "LoopbackRefused", URL: url, TLS: ca.ClientTLS(t), Class: destination.Blocked, Err: "127.0.0.1 is a loopback address"},
	}, nil)
}

// TestCheckURL: an endpoint URL is judged at creation, in words naming what is wrong.
func TestCheckURL(t *testing.T) {
	t.Parallel()
	brokertest.CheckURLs(t, redisdest.CheckURL, []brokertest.URLCase{
		{URL: "rediss://redis.example.com:6379/0?stream=orders"},
		{URL: "redis://redis.example.com:6379/0?stream=orders", Want: "url must use rediss://, not redis:// (plaintext; serve --insecure-targets allows it, for development)"},
		{URL: "rediss://127.0.0.1:6379/0?stream=orders", Insecure: true},
		{URL: "rediss://:secret@redis.example.com/?stream=orders"},
		{URL: "rediss://user:secret@redis.example.com/15?stream=orders"},
		{URL: "redis://127.0.0.1:6379/0?stream=orders", Insecure: true},
		{URL: "rediss://127.0.0.1:6379/0?stream=orders", Want: "127.0.0.1 is a loopback address; targets must be public"},
		{URL: "rediss://redis.example.com/0", Want: "url must name the stream"},
		{URL: "rediss://redis.example.com/16?stream=x", Want: "database number (0 to 15)"},
		{URL: "rediss://redis.example.com/x?stream=x", Want: "database number"},
		{URL: "rediss://redis.example.com/0?stream=x&maxlen=5", Want: `url query "maxlen" is not known`},
		{URL: "rediss://redis.example.com/0?stream=x&stream=y", Want: "gives stream 2 times"},
		{URL: "redis:x", Want: "url must look like redis://host:6379/"},
	})
}

// FuzzCheckURL: whatever URL a user sends, the check answers without panicking, and a
// URL it accepts names a stream.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"redis://h:6379/0?stream=s", "redis://:p@h/?stream=%20", "redis://h/99?stream=x", "redis://[::1]/1?stream=a", "rediss://:p@h:6379/0?stream=s", "rediss://h/1?stream=a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if brokertest.URLRules(t, redisdest.CheckURL, raw) {
			require.Contains(t, raw, "stream=")
		}
	})
}

// newSender is a sender for SendFails, closed when the test ends. Its attempts wait 10 s:
// a case that expects a TLS handshake's error needs the handshake to end first, which
// takes seconds on a loaded machine under the race detector.
func newSender(t *testing.T, insecure bool) destination.Sender {
	s := redisdest.New(destination.BrokerConfig{InsecureTargets: insecure, Timeout: 10 * time.Second})
	t.Cleanup(s.Close)
	return s
}
