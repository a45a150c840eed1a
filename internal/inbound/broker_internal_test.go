package inbound

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBrokerTargetRules: unless targets are insecure, a broker on a loopback or private
// address is refused when the source is saved and again at connect time, on the resolved
// address (a name that resolves to loopback is caught by the dialer).
func TestBrokerTargetRules(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		hostport string
		insecure bool
		ok       bool
	}{
		{"127.0.0.1:4222", false, false},
		{"localhost:5672", false, false},
		{"10.1.2.3:9092", false, false},
		{"[::1]:4222", false, false},
		{"2130706433:4222", false, false},
		{"nats.example.com:4222", false, true},
		{"127.0.0.1:4222", true, true},
	} {
		err := checkBrokerHost(tt.hostport, tt.insecure)
		if tt.ok {
			require.NoError(t, err, tt.hostport)
			continue
		}
		require.Error(t, err, tt.hostport)
		require.Contains(t, err.Error(), "--insecure-targets", tt.hostport)
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
