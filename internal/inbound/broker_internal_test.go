package inbound

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
)

// TestBrokerTargetRules: unless targets are insecure, a plaintext broker (nats://,
// amqp://, kafka:// or a list of Kafka brokers) is refused when the source is saved, in
// words naming the TLS scheme to use, as http:// is, and a broker on a loopback or
// private address is refused then and again at connect time, on the resolved address (a
// name that resolves to loopback is caught by the dialer).
func TestBrokerTargetRules(t *testing.T) {
	t.Parallel()
	nats := func(url string) consign.SourceFrom { return consign.SourceFrom{Type: "nats", URL: url} }
	amqp := func(url string) consign.SourceFrom { return consign.SourceFrom{Type: "amqp", URL: url} }
	kafka := func(url string, brokers ...string) consign.SourceFrom {
		return consign.SourceFrom{Type: "kafka", URL: url, Brokers: brokers}
	}
	for _, tt := range []struct {
		from     consign.SourceFrom
		insecure bool
		want     string // "" accepted, else part of the field error
	}{
		{nats("tls://127.0.0.1:4222"), false, "127.0.0.1 is a loopback address; targets must be public (serve --insecure-targets"},
		{amqp("amqps://localhost:5671"), false, "localhost is a loopback name"},
		{kafka("", "kafka.example.com:9092"), false, "from.brokers: connect in plaintext: give from.url kafka+tls://"},
		{kafka("kafka+tls://10.1.2.3:9093"), false, "10.1.2.3 is a private address; targets must be public (serve --insecure-targets"},
		{nats("tls://[::1]:4222"), false, "is a loopback address"},
		{nats("tls://2130706433:4222"), false, "--insecure-targets"},
		{nats("tls://nats.example.com:4222"), false, ""},
		{amqp("amqps://u:p@mq.example.com/vh"), false, ""},
		{kafka("kafka+tls://u:p@k1.example.com,k2.example.com:9093?sasl=scram-sha-256"), false, ""},
		{nats("nats://nats.example.com:4222"), false, "from.url: must use tls://, not nats:// (plaintext; serve --insecure-targets allows it, for development)"},
		{amqp("amqp://u:p@mq.example.com/"), false, "from.url: must use amqps://, not amqp://"},
		{kafka("kafka://kafka.example.com:9092"), false, "from.url: must use kafka+tls://, not kafka://"},
		{kafka("kafka+tls://u:p@kafka.example.com"), false, "from.url: has credentials: name the SASL mechanism"},
		{kafka("kafka+tls://kafka.example.com/orders"), false, "from.url: names no topic"},
		{nats("nats://127.0.0.1:4222"), true, ""},
		{kafka("", "127.0.0.1:9092"), true, ""},
		{kafka("kafka://u:p@127.0.0.1:9092?sasl=plain"), true, ""},
	} {
		var v consign.Validation
		checkFrom(&v, &tt.from, tt.insecure)
		err := v.Err()
		if tt.want == "" {
			require.NoError(t, err, "%+v", tt.from)
			continue
		}
		require.Error(t, err, "%+v", tt.from)
		var ce *consign.Error
		require.ErrorAs(t, err, &ce)
		require.Len(t, ce.Fields, 1)
		require.Contains(t, ce.Fields[0].Field+": "+ce.Fields[0].Message, tt.want, "%+v", tt.from)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = brokerDialer(false).DialContext(ctx, "tcp", net.JoinHostPort("localhost", port))
	require.ErrorContains(t, err, "blocked", "a name resolving to loopback is refused at connect time")
	conn, err := brokerDialer(true).DialContext(ctx, "tcp", net.JoinHostPort("localhost", port))
	require.NoError(t, err, "with insecure targets the same broker is reached")
	require.NoError(t, conn.Close())
}
