package inbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/consign-dev/consign"
)

// natsAckWait is how long NATS waits for a message's ack before it delivers the message
// again: longer than storing a batch may take.
const natsAckWait = time.Minute

// natsConn reads a JetStream durable pull consumer. Consume's handler hands messages to
// a channel that next drains, so a batch is whatever has arrived.
type natsConn struct {
	nc      *nats.Conn
	cons    jetstream.Consumer
	cc      jetstream.ConsumeContext
	msgs    chan jetstream.Msg
	errs    chan error
	done    chan struct{} // closed by close: the handler stops waiting
	stream  string
	created int64 // the stream's creation time (Unix ns): part of the default dedupe key
	batch   []jetstream.Msg
	pending int64
	known   bool
}

func dialNATS(ctx context.Context, src *consign.Source, dial *net.Dialer, conf *tls.Config) (brokerConn, error) {
	f := src.From
	opts := []nats.Option{nats.Name("consign source " + src.ID), nats.SetCustomDialer(dial),
		nats.Timeout(10 * time.Second), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
	if scheme, _, _ := strings.Cut(f.URL, "://"); strings.EqualFold(scheme, "tls") {
		opts = append(opts, nats.Secure(conf)) // nats.go names each server for verification
	}
	nc, err := nats.Connect(f.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", consign.MaskURL(f.URL), err)
	}
	c := &natsConn{nc: nc, msgs: make(chan jetstream.Msg, 1024), errs: make(chan error, 1), done: make(chan struct{})}
	if err := c.attach(ctx, src); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// attach finds the stream that holds the subject and the durable consumer (creating it
// when it does not exist), then starts consuming.
func (c *natsConn) attach(ctx context.Context, src *consign.Source) error {
	f := src.From
	js, err := jetstream.New(c.nc)
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c.stream, err = js.StreamNameBySubject(tctx, f.Subject)
	if err != nil {
		return fmt.Errorf("find the JetStream stream of subject %q (create a stream that holds it): %w", f.Subject, err)
	}
	st, err := js.Stream(tctx, c.stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", c.stream, err)
	}
	c.created = st.CachedInfo().Created.UnixNano()
	durable := f.Durable
	if durable == "" {
		durable = consign.DefaultDurable(src.ID)
	}
	cons, err := js.Consumer(tctx, c.stream, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = js.CreateConsumer(tctx, c.stream, jetstream.ConsumerConfig{
			Durable: durable, FilterSubject: f.Subject, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: natsAckWait, DeliverPolicy: jetstream.DeliverAllPolicy, MaxAckPending: 4096,
			Description: "Consign source " + src.ID,
		})
	}
	if err != nil {
		return fmt.Errorf("durable consumer %s on stream %s: %w", durable, c.stream, err)
	}
	c.cons = cons
	c.cc, err = cons.Consume(func(m jetstream.Msg) {
		select {
		case <-c.done: // closing: handed back at once to the next consumer
			_ = m.Nak()
			return
		default:
		}
		select {
		case c.msgs <- m:
		case <-c.done:
			_ = m.Nak()
		}
	}, jetstream.PullMaxMessages(1024), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
			errors.Is(err, nats.ErrConnectionClosed) {
			select {
			case c.errs <- err:
			default:
			}
		}
	}))
	if err != nil {
		return fmt.Errorf("consume durable %s: %w", durable, err)
	}
	return nil
}

func (c *natsConn) next(ctx context.Context, max int) ([]brokerMsg, error) {
	c.batch = c.batch[:0]
	idle := time.NewTimer(brokerIdle)
	defer idle.Stop()
	select {
	case m := <-c.msgs:
		c.batch = append(c.batch, m)
	case err := <-c.errs:
		return nil, err
	case <-idle.C:
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if info, err := c.cons.Info(ictx); err == nil {
			c.pending, c.known = int64(info.NumPending), true
		}
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
drain:
	for len(c.batch) < max {
		select {
		case m := <-c.msgs:
			c.batch = append(c.batch, m)
		default:
			break drain
		}
	}
	out := make([]brokerMsg, len(c.batch))
	for i, m := range c.batch {
		h := http.Header{}
		for k, vs := range m.Headers() {
			for _, v := range vs {
				h.Add(k, v)
			}
		}
		key := h.Get(nats.MsgIdHdr)
		if md, err := m.Metadata(); err == nil {
			seq := strconv.FormatUint(md.Sequence.Stream, 10)
			h.Set(consign.HeaderNATSStream, md.Stream)
			h.Set(consign.HeaderNATSSequence, seq)
			if key == "" {
				key = md.Stream + "@" + strconv.FormatInt(c.created, 10) + "/" + seq
			}
			c.pending, c.known = int64(md.NumPending), true
		}
		out[i] = brokerMsg{header: h, body: m.Data(), key: key}
	}
	return out, nil
}

func (c *natsConn) ack(context.Context) error {
	for _, m := range c.batch {
		if err := m.Ack(); err != nil {
			return err
		}
	}
	return nil
}

func (c *natsConn) nak() {
	for _, m := range c.batch {
		_ = m.NakWithDelay(time.Second)
	}
}

func (c *natsConn) lag() (int64, bool) { return c.pending, c.known }

// natsDrainWait bounds how long close waits for the messages nats.go already holds to
// be handed back.
const natsDrainWait = 5 * time.Second

func (c *natsConn) close() {
	close(c.done)
	if c.cc != nil {
		// Drain, not Stop: Stop discards the messages nats.go has pulled but not yet
		// handed over, which the stream would deliver again only after natsAckWait; drained,
		// each reaches the handler, which hands it back at once (a source PATCHed or
		// restarted goes on within a second, not a minute).
		c.cc.Drain()
		select {
		case <-c.cc.Closed():
		case <-time.After(natsDrainWait):
		}
	}
	for drained := false; !drained; { // handed over, never stored: at once to another consumer
		select {
		case m := <-c.msgs:
			_ = m.Nak()
		default:
			drained = true
		}
	}
	c.nc.Close()
}
