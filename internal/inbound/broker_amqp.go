package inbound

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/consign-dev/consign"
)

// amqpPrefetch bounds the messages the broker sends before they are acknowledged.
const amqpPrefetch = 1024

// amqpConn consumes an AMQP queue with manual acks: a batch is acknowledged (or handed
// back) with one multiple ack of its last delivery tag.
type amqpConn struct {
	conn     *amqp.Connection
	ch       *amqp.Channel
	inspect  *amqp.Channel // a second channel for the queue's depth: a failed check closes only it
	queue    string
	dels     <-chan amqp.Delivery
	closed   chan *amqp.Error
	last     uint64 // delivery tag of the last message of the batch
	ready    int64
	known    bool
	lastLook time.Time
}

func dialAMQP(ctx context.Context, src *consign.Source, dial *net.Dialer, conf *tls.Config) (brokerConn, error) {
	f := src.From
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName("consign source " + src.ID)
	conn, err := amqp.DialConfig(f.URL, amqp.Config{
		Dial:       func(network, addr string) (net.Conn, error) { return dial.DialContext(ctx, network, addr) },
		Heartbeat:  10 * time.Second,
		Properties: props,
		// For amqps://, set here so that amqp091 never reads certificate files named in
		// the URL's query from this server's disk; it names the server by the URL's host.
		TLSClientConfig: conf,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", consign.MaskURL(f.URL), err)
	}
	c := &amqpConn{conn: conn, queue: f.Queue}
	if err := c.attach(ctx, src.ID); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *amqpConn) attach(ctx context.Context, sourceID string) error {
	var err error
	if c.ch, err = c.conn.Channel(); err != nil {
		return err
	}
	if err := c.ch.Qos(amqpPrefetch, 0, false); err != nil {
		return err
	}
	if c.inspect, err = c.conn.Channel(); err != nil {
		return err
	}
	c.look()
	c.closed = c.ch.NotifyClose(make(chan *amqp.Error, 1))
	c.dels, err = c.ch.ConsumeWithContext(ctx, c.queue, "consign-"+sourceID, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume queue %q (it must exist): %w", c.queue, err)
	}
	return nil
}

// look reads how many messages are ready in the queue.
func (c *amqpConn) look() {
	c.lastLook = time.Now()
	if c.inspect == nil || c.inspect.IsClosed() {
		return
	}
	if q, err := c.inspect.QueueDeclarePassive(c.queue, false, false, false, false, nil); err == nil {
		c.ready, c.known = int64(q.Messages), true
	}
}

func (c *amqpConn) next(ctx context.Context, max int) ([]brokerMsg, error) {
	var batch []amqp.Delivery
	idle := time.NewTimer(brokerIdle)
	defer idle.Stop()
	select {
	case d, ok := <-c.dels:
		if !ok {
			return nil, c.closeReason()
		}
		batch = append(batch, d)
	case <-idle.C:
		c.look()
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
drain:
	for len(batch) < max {
		select {
		case d, ok := <-c.dels:
			if !ok {
				break drain
			}
			batch = append(batch, d)
		default:
			break drain
		}
	}
	c.last = batch[len(batch)-1].DeliveryTag
	if time.Since(c.lastLook) > 2*time.Second {
		c.look()
	}
	out := make([]brokerMsg, len(batch))
	for i, d := range batch {
		h := http.Header{}
		for k, v := range d.Headers {
			h.Add(k, fmt.Sprint(v))
		}
		for k, v := range map[string]string{"Content-Type": d.ContentType, "Content-Encoding": d.ContentEncoding,
			"Message-Id": d.MessageId, "Correlation-Id": d.CorrelationId, "Type": d.Type, "App-Id": d.AppId,
			"User-Id": d.UserId, "Reply-To": d.ReplyTo} {
			if v != "" {
				h.Set(k, v)
			}
		}
		if !d.Timestamp.IsZero() {
			h.Set("Timestamp", strconv.FormatInt(d.Timestamp.Unix(), 10))
		}
		h.Set(consign.HeaderAMQPDelivery, strconv.FormatUint(d.DeliveryTag, 10))
		out[i] = brokerMsg{header: h, body: d.Body, key: d.MessageId}
	}
	return out, nil
}

func (c *amqpConn) closeReason() error {
	select {
	case e := <-c.closed:
		if e != nil {
			return fmt.Errorf("the broker closed the channel: %w", e)
		}
	default:
	}
	return fmt.Errorf("the broker closed the channel of queue %q", c.queue)
}

func (c *amqpConn) ack(context.Context) error { return c.ch.Ack(c.last, true) }

func (c *amqpConn) nak() { _ = c.ch.Nack(c.last, true, true) }

func (c *amqpConn) lag() (int64, bool) { return c.ready, c.known }

// close closes the connection; the broker puts back every delivery not acknowledged.
func (c *amqpConn) close() { _ = c.conn.Close() }
