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
	"crypto/tls"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
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
