// Package amqpdest is the AMQP 0-9-1 (RabbitMQ) kind of destination: an endpoint URL
// amqps://user:password@host:5671/<vhost>?exchange=<name>&routing_key=<key> (amqp://,
// port 5672, for plaintext, with --insecure-targets) publishes
// each attempt to that exchange with that routing key, and the attempt succeeds when the
// broker confirms it (publisher confirms); the attempt's response records the delivery
// tag the confirm named.
//
// The message is persistent (delivery mode 2), its body the request's, its headers the
// request's with lower-case names (webhook-id, webhook-signature, the endpoint's own…),
// its message-id the event id and its content type the request's. It is published
// mandatory: a message no queue takes is returned by the broker, and the attempt fails
// saying so, rather than succeeding into nowhere. An empty exchange is the default
// exchange, where the routing key is a queue's name.
//
// One connection per broker, vhost and credentials serves every endpoint that names them,
// with one channel in confirm mode; attempts publish on it concurrently, each waiting
// for its own deferred confirmation. A connection that closes (the broker restarted, the
// network broke) is dropped, and the next attempt dials again. Over amqps:// the broker's
// certificate is verified against the system roots or the endpoint's CAs; the URL's
// query names no certificate files (amqp091 would read them from this server's disk).
package amqpdest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/consign-dev/consign/internal/destination"
)

// schemes are the URL schemes of AMQP: plaintext, then TLS.
var schemes = []destination.Scheme{{Name: "amqp", Port: "5672"}, {Name: "amqps", Port: "5671", TLS: true}}

// Kind returns the AMQP kind, for amqps:// and amqp:// URLs.
func Kind(cfg destination.BrokerConfig) (destination.Kind, *Sender) {
	s := New(cfg)
	return destination.Kind{Name: "AMQP", Schemes: []string{"amqp", "amqps"}, Check: CheckURL, Sender: s}, s
}

// maxInFlight bounds the publishes on one channel awaiting their confirm, and so the
// broker's returns that can be waiting to be matched (returns' buffer).
const maxInFlight = 1024

// Sender publishes attempts with publisher confirms. Create it with New; Close closes
// its connections.
type Sender struct {
	cfg   destination.BrokerConfig
	conns *destination.Conns[*conn]
}

// conn is a connection with its channel in confirm mode.
type conn struct {
	c       *amqp.Connection
	ch      *amqp.Channel
	slots   chan struct{}    // maxInFlight tokens
	returns chan amqp.Return // what the broker returned as unroutable, before its confirm
	closed  chan struct{}    // closed when the connection or its channel closes
	err     error            // why, set before closed is closed

	mu       sync.Mutex
	returned map[string]amqp.Return // by returnKey, drained from returns
}

// New returns a Sender.
func New(cfg destination.BrokerConfig) *Sender {
	s := &Sender{cfg: cfg.WithDefaults()}
	s.conns = destination.NewConns(s.dial, func(c *conn) { _ = c.c.Close() })
	return s
}

// Close closes every connection.
func (s *Sender) Close() { s.conns.Close() }

// target is what an endpoint URL says.
type target struct {
	server     string // amqps://user:pass@host:port/vhost, what the pool keys on
	display    string // amqps://host:port/vhost, for messages
	exchange   string
	routingKey string
	tls        *destination.ClientTLS // the endpoint's TLS settings, for amqps://
}

func (t target) key() destination.ConnKey { return destination.ConnKey{Addr: t.server, TLS: t.tls} }

// CheckURL says what is wrong with an amqps:// or amqp:// endpoint URL, without the
// network.
func CheckURL(raw string, insecure bool) error {
	_, err := parse(raw, insecure)
	return err
}

func parse(raw string, insecure bool) (target, error) {
	u, scheme, err := destination.ParseBrokerURL(raw, insecure, schemes...)
	if err != nil {
		return target{}, err
	}
	q, err := destination.BrokerQuery(u.RawQuery, scheme, "exchange", "routing_key")
	if err != nil {
		return target{}, err
	}
	t := target{exchange: q.Get("exchange"), routingKey: q.Get("routing_key")}
	if t.exchange == "" && t.routingKey == "" {
		return target{}, errors.New("url must say where messages go: ?exchange=<name>&routing_key=<key>, or ?routing_key=<queue> for the default exchange")
	}
	if len(t.exchange) > 255 || len(t.routingKey) > 255 {
		return target{}, errors.New("url exchange and routing_key must be at most 255 bytes each")
	}
	vhost := "/"
	if len(u.Path) > 1 {
		vhost = u.Path[1:]
	}
	// Only what the connection needs: amqp091 would read certificate files named in the
	// query (certfile…) from this server's disk.
	cu := url.URL{Scheme: scheme.Name, User: u.User, Host: u.Host, Path: "/" + vhost}
	t.server = cu.String()
	cu.User = nil
	t.display = cu.String()
	return t, nil
}

// request returns the target of an attempt: its URL's scheme judged by
// --insecure-targets (its hosts are the dial guard's), its TLS settings.
func (s *Sender) request(r destination.Request) (target, error) {
	if _, err := destination.CheckScheme(r.URL, s.cfg.InsecureTargets, schemes...); err != nil {
		return target{}, err
	}
	t, err := parse(r.URL, true)
	if strings.HasPrefix(t.server, "amqps:") {
		t.tls = r.TLS
	}
	return t, err
}

// dial connects to the broker of key (target.key) and opens a confirming channel.
func (s *Sender) dial(ctx context.Context, key destination.ConnKey) (*conn, error) {
	d := s.cfg.Dialer()
	timeout := s.cfg.ConnectTimeout
	c, err := amqp.DialConfig(key.Addr, amqp.Config{
		Properties: amqp.Table{"connection_name": "consign"},
		// Used for amqps:// alone; amqp091 names the server by the URL's host.
		TLSClientConfig: s.cfg.TLSConfig(key.TLS),
		Dial: func(network, addr string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// A deadline for the TLS and AMQP handshakes, which amqp091 clears once done.
			if err := nc.SetDeadline(time.Now().Add(timeout)); err != nil {
				nc.Close()
				return nil, err
			}
			return nc, nil
		},
	})
	if err != nil {
		return nil, err
	}
	ch, err := c.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	cn := &conn{c: c, ch: ch, slots: make(chan struct{}, maxInFlight), returns: make(chan amqp.Return, maxInFlight),
		returned: map[string]amqp.Return{}, closed: make(chan struct{})}
	ch.NotifyReturn(cn.returns)
	connClosed, chClosed := c.NotifyClose(make(chan *amqp.Error, 1)), ch.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		var e *amqp.Error
		select {
		case e = <-connClosed:
		case e = <-chClosed:
		}
		cn.err = errors.New("the connection closed")
		if e != nil {
			cn.err = describe(e)
		}
		close(cn.closed)
	}()
	return cn, nil
}

// returnKey names one publish among those in flight on a channel.
func returnKey(messageID, exchange, routingKey string) string {
	return messageID + "\x00" + exchange + "\x00" + routingKey
}

// wasReturned reports whether the broker returned the publish of key. The broker sends a
// return before the confirm of the same message, and amqp091 hands it over (into
// returns) before it resolves the confirm, so once the confirm is in, the return is in
// returns or already in returned.
func (c *conn) wasReturned(key string) (amqp.Return, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
drain:
	for {
		select {
		case r, open := <-c.returns:
			if !open { // the channel closed
				break drain
			}
			c.returned[returnKey(r.MessageId, r.Exchange, r.RoutingKey)] = r
		default:
			break drain
		}
	}
	r, ok := c.returned[key]
	delete(c.returned, key)
	return r, ok
}

// Send publishes r and waits for the broker's confirm.
func (s *Sender) Send(ctx context.Context, r destination.Request) destination.Outcome {
	start, began := s.cfg.Now(), time.Now()
	t, err := s.request(r)
	if err != nil {
		return destination.Refused(start, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	c, err := s.conns.Get(ctx, t.key())
	if err != nil {
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "connect to "+t.display, describe(err))
	}
	select {
	case <-c.closed:
		// The broker closed it (a refusal closes the channel, and with it this connection
		// for us): the next attempt dials again.
		s.conns.Drop(t.key(), c, same)
		c, err = s.conns.Get(ctx, t.key())
		if err != nil {
			return destination.Failed(ctx, start, began, s.cfg.Timeout, "connect to "+t.display, describe(err))
		}
	default:
	}
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "publish to "+t.display, ctx.Err())
	}
	msg := amqp.Publishing{Headers: amqp.Table{}, DeliveryMode: amqp.Persistent, Body: r.Body,
		ContentType: r.Header.Get("Content-Type"), MessageId: r.Header.Get("Webhook-Id"), Timestamp: time.Now()}
	destination.MessageHeaders(r.Header, func(k, v string) { msg.Headers[k] = v })
	dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, t.exchange, t.routingKey, true, false, msg)
	if err != nil {
		s.conns.Drop(t.key(), c, same)
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "publish to "+t.display, describe(err))
	}
	key := returnKey(msg.MessageId, t.exchange, t.routingKey)
	select {
	case <-dc.Done():
	case <-ctx.Done():
		c.wasReturned(key) // forget a return that may come
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "waiting for the broker's confirm from "+t.display, ctx.Err())
	case <-c.closed:
		s.conns.Drop(t.key(), c, same)
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "publish to "+t.display, c.err)
	}
	if ret, returned := c.wasReturned(key); returned {
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "publish to "+t.display,
			fmt.Errorf("the broker returned the message: %d %s (no queue is bound to exchange %q with routing key %q)",
				ret.ReplyCode, ret.ReplyText, t.exchange, t.routingKey))
	}
	if !dc.Acked() {
		select {
		case <-c.closed: // the channel closed with this publish unconfirmed: why
			s.conns.Drop(t.key(), c, same)
			return destination.Failed(ctx, start, began, s.cfg.Timeout, "publish to "+t.display, c.err)
		case <-time.After(100 * time.Millisecond):
		}
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "publish to "+t.display,
			errors.New("the broker refused the message (basic.nack): it could not store it"))
	}
	return destination.Acked(start, began, map[string]string{"delivery_tag": strconv.FormatUint(dc.DeliveryTag, 10),
		"confirm": "ack", "exchange": t.exchange, "routing_key": t.routingKey})
}

// describe words the errors a user can act on.
func describe(err error) error {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.AccessRefused:
			return fmt.Errorf("the broker refused the credentials or the vhost: %s", ae.Reason)
		case amqp.NotFound:
			return fmt.Errorf("not found on the broker (does the exchange exist?): %s", ae.Reason)
		}
		return fmt.Errorf("%s", strings.TrimSpace(ae.Error()))
	}
	return err
}

func same(a, b *conn) bool { return a == b }
