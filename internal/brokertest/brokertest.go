// Package brokertest is the one test harness of the broker destinations and sources:
// the addresses of the message brokers that run on the development machine and in CI
// (NATS JetStream, RabbitMQ, Redis), a place on each for a test (sources.go), an
// in-process Kafka (kfake), a proxy that takes a broker down and up again, TLS in front
// of each broker with a test CA (tls.go), and the table runners the destination kinds
// share (cases.go).
//
// A test whose broker does not answer is skipped, except under CI (CI set), where it
// fails: CI must never pass a broker test it did not run.
package brokertest

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The brokers' addresses, as .ci/run starts them.
const (
	NATSAddr  = "127.0.0.1:4222"
	AMQPAddr  = "127.0.0.1:5672"
	RedisAddr = "127.0.0.1:6379"
)

// NATSServer returns the URL of the local NATS server (with JetStream).
func NATSServer(tb testing.TB) string {
	tb.Helper()
	need(tb, "NATS", NATSAddr)
	return "nats://" + NATSAddr
}

// AMQPServer returns the URL of the local RabbitMQ, as guest.
func AMQPServer(tb testing.TB) string {
	tb.Helper()
	need(tb, "RabbitMQ", AMQPAddr)
	return "amqp://guest:guest@" + AMQPAddr + "/"
}

// RedisServer returns the address (host:port) of the local Redis.
func RedisServer(tb testing.TB) string {
	tb.Helper()
	need(tb, "Redis", RedisAddr)
	return RedisAddr
}

func need(tb testing.TB, name, addr string) {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s is not running at %s (%v): .ci/run starts it", name, addr, err)
	}
	tb.Skipf("%s is not running at %s: %v", name, addr, err)
}

// Proxy forwards TCP connections from a loopback port to a broker, and can be stopped
// (the port refuses, open connections are cut) and started again on the same port: a
// broker that goes down and comes back, for tests, without stopping the broker others
// use.
type Proxy struct {
	tb     testing.TB
	to     string
	tls    *tls.Config // terminates TLS when not nil (NewTLSProxy)
	Addr   string      // host:port to connect to
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	closed bool
}

// NewProxy starts a proxy to the broker at addr; it stops when the test ends.
func NewProxy(tb testing.TB, addr string) *Proxy {
	tb.Helper()
	return newProxy(tb, addr, nil)
}

func newProxy(tb testing.TB, addr string, conf *tls.Config) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{tb: tb, to: addr, tls: conf, Addr: ln.Addr().String(), conns: map[net.Conn]bool{}}
	p.serve(ln)
	tb.Cleanup(func() {
		p.Stop()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
	})
	return p
}

func (p *Proxy) serve(ln net.Listener) {
	if p.tls != nil {
		ln = tls.NewListener(ln, p.tls)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *Proxy) pipe(c net.Conn) {
	b, err := net.DialTimeout("tcp", p.to, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil {
		p.mu.Unlock()
		c.Close()
		b.Close()
		return
	}
	p.conns[c], p.conns[b] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(b, c)
	go cp(c, b)
	<-done
	c.Close()
	b.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, b)
	p.mu.Unlock()
}

// Stop closes the port and cuts every connection through it.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// Start opens the port again.
func (p *Proxy) Start() {
	p.tb.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may take a moment to be free again
		if ln, err = net.Listen("tcp", p.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.tb.Fatal(err)
	}
	p.serve(ln)
}

// KafkaBehindProxy starts an in-process Kafka cluster (kfake) of one broker with topics
// of one partition, whose clients reach it only through a Proxy: the broker advertises
// the proxy's address in its metadata, so a client that bootstraps from it dials the
// proxy for every request, and stopping the proxy takes the broker away from every
// client (Kafka's clients dial the addresses a cluster advertises, so a proxy in front
// of the listener's own address would be passed by). past dials the broker itself for
// the proxy's address, for a test's own reader while the proxy is stopped. The cluster
// and the proxy stop when the test ends.
func KafkaBehindProxy(tb testing.TB, topics ...string) (c *kfake.Cluster, proxy *Proxy, past func(ctx context.Context, network, addr string) (net.Conn, error)) {
	tb.Helper()
	var direct string
	listen := func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		direct = ln.Addr().String()
		proxy = NewProxy(tb, direct)
		advertised, err := net.ResolveTCPAddr("tcp", proxy.Addr)
		if err != nil {
			ln.Close()
			return nil, err
		}
		return advertisedListener{Listener: ln, addr: advertised}, nil
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...), kfake.ListenFn(listen))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	var d net.Dialer
	past = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == proxy.Addr {
			addr = direct
		}
		return d.DialContext(ctx, network, addr)
	}
	return c, proxy, past
}

// advertisedListener is a listener that reports another address as its own, which
// kfake advertises to clients.
type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }
