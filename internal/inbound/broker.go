package inbound

// Broker sources. A source with From set reads a NATS JetStream durable consumer, an AMQP
// queue or a Kafka topic (consumer group) besides its ingest URL. Every node runs one
// consumer per such source: the broker shares the messages among them (a durable's
// pull requests, a queue's competing consumers, a group's partitions), so no lease is
// needed, and a message delivered twice (to two nodes, or again after a crash) is a
// duplicate in the store, whose dedupe index is shared by all nodes.
//
// A consumer reads a batch (whatever the broker has ready, up to BrokerBatch), turns
// each message into a receipt exactly as a webhook (verification, body checks, dedupe
// key, event type), stores the batch in one durable transaction, and only then
// acknowledges the batch to the broker (NATS ack, AMQP multiple ack, Kafka offset
// commit). A failure to store nacks the batch (NATS, AMQP) or drops the connection
// (Kafka: reading resumes at the committed offsets), so nothing is acknowledged that is
// not on disk. The receipts then become events like every other receipt.
//
// The default dedupe key (when the source names no dedupe header or pointer) is the
// message's identity in its broker: the Nats-Msg-Id header, else the stream, its creation
// time and the stream sequence; the AMQP message-id property (a message without one has
// no key); the Kafka topic, partition and offset.
//
// The set of consumers follows the store: the manager lists the sources with From at
// start, every ConsumerCheck, and at once when this process changes a source; a source
// whose version changed gets a new consumer, a deleted one loses it.

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"code.dny.dev/ssrf"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/destination/kafkadest"
	"github.com/consign-dev/consign/internal/sender"
)

// brokerMsg is one message read from a broker, in the form a receipt needs.
type brokerMsg struct {
	header http.Header // the message's headers (AMQP: its properties too) and its position
	body   []byte
	key    string // the default dedupe key
}

// brokerConn is a consumer attached to one source's broker.
type brokerConn interface {
	// next waits up to brokerIdle for a message and returns those ready, up to max; none
	// when none came (the lag is then looked up again). An error means the connection is
	// no good: it is closed and opened again.
	next(ctx context.Context, max int) ([]brokerMsg, error)
	// ack acknowledges every message of the last batch: their receipts are durable.
	ack(ctx context.Context) error
	// nak hands the last batch back to the broker, to be delivered again.
	nak()
	// lag is how many messages wait in the broker; false when unknown.
	lag() (int64, bool)
	close()
}

// brokerIdle is how long a consumer waits for a message before it looks at its lag again.
const brokerIdle = 2 * time.Second

// consumer is the consumer of one source in this process.
type consumer struct {
	version int64
	cancel  context.CancelFunc
	done    chan struct{}

	mu     sync.Mutex
	status consign.FromStatus
}

func (c *consumer) update(f func(*consign.FromStatus)) {
	c.mu.Lock()
	f(&c.status)
	c.mu.Unlock()
}

// consumers is the set of broker consumers of this process, by source id.
type consumers struct {
	mu   sync.Mutex
	byID map[string]*consumer
	wake chan struct{}
}

// wakeConsumers makes the manager compare its consumers with the store now.
func (s *Service) wakeConsumers() {
	select {
	case s.brokers.wake <- struct{}{}:
	default:
	}
}

// fromStatus is how this process's consumer of a source is doing.
func (s *Service) fromStatus(id string) *consign.FromStatus {
	s.brokers.mu.Lock()
	c := s.brokers.byID[id]
	s.brokers.mu.Unlock()
	if c == nil { // it starts within ConsumerCheck
		return &consign.FromStatus{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.status
	if st.Lag != nil {
		n := *st.Lag
		st.Lag = &n
	}
	return &st
}

// consumeLoop keeps one consumer per broker source running until ctx ends.
func (s *Service) consumeLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.ConsumerCheck)
	defer t.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			s.brokers.mu.Lock()
			all := make([]*consumer, 0, len(s.brokers.byID))
			for id, c := range s.brokers.byID {
				c.cancel()
				all = append(all, c)
				delete(s.brokers.byID, id)
			}
			s.brokers.mu.Unlock()
			for _, c := range all {
				<-c.done
			}
			return
		case <-t.C:
		case <-s.brokers.wake:
		}
	}
}

// reconcile starts, restarts and stops consumers to match the sources in the store.
func (s *Service) reconcile(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	rows, err := s.store.SourcesFrom(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("list broker sources", "err", err)
		}
		return
	}
	want := make(map[string]bool, len(rows))
	s.brokers.mu.Lock()
	for _, row := range rows {
		want[row.ID] = true
		old := s.brokers.byID[row.ID]
		if old != nil {
			if old.version == row.Version {
				continue
			}
			old.cancel()
		}
		src, err := s.open(row)
		if err != nil {
			s.log.Error("broker source", "source", row.ID, "err", err)
			delete(s.brokers.byID, row.ID)
			continue
		}
		cctx, cancel := context.WithCancel(ctx)
		c := &consumer{version: row.Version, cancel: cancel, done: make(chan struct{})}
		s.brokers.byID[row.ID] = c
		go func() {
			defer close(c.done)
			if old != nil { // the source's old consumer lets go first
				<-old.done
			}
			s.consume(cctx, src, c)
		}()
	}
	for id, c := range s.brokers.byID {
		if !want[id] {
			c.cancel()
			delete(s.brokers.byID, id)
		}
	}
	s.brokers.mu.Unlock()
}

// consume runs a source's consumer until ctx ends, connecting again after each failure
// (1 s, doubling up to 30 s while it keeps failing).
func (s *Service) consume(ctx context.Context, src *consign.Source, c *consumer) {
	backoff := time.Second
	for ctx.Err() == nil {
		started := time.Now()
		err := s.consumeOnce(ctx, src, c)
		now := s.now()
		c.update(func(st *consign.FromStatus) { st.Connected = false })
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Warn("broker source consumer stopped; connecting again", "source", src.ID, "broker", src.From.Type, "err", err, "in", backoff)
			c.update(func(st *consign.FromStatus) { st.LastError, st.LastErrorAt = err.Error(), &now })
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// consumeOnce connects to the broker and turns its messages into receipts until ctx
// ends or the connection fails.
func (s *Service) consumeOnce(ctx context.Context, src *consign.Source, c *consumer) error {
	dial := brokerDialer(s.cfg.InsecureTargets)
	// For tls://, amqps:// and kafka+tls://: the broker's certificate verified against
	// the system roots or the source's own CAs, the source's client certificate for
	// mutual TLS.
	var ct *destination.ClientTLS
	if t := src.From.TLS; t != nil {
		var err error
		if ct, err = destination.NewClientTLS(t.ClientCertificate, t.ClientKey, t.CACertificates); err != nil {
			return fmt.Errorf("tls settings: %w", err)
		}
	}
	conf := ct.Apply(&tls.Config{MinVersion: tls.VersionTLS12})
	var conn brokerConn
	var err error
	switch src.From.Type {
	case consign.FromNATS:
		conn, err = dialNATS(ctx, src, dial, conf)
	case consign.FromAMQP:
		conn, err = dialAMQP(ctx, src, dial, conf)
	case consign.FromKafka:
		conn, err = dialKafka(ctx, src, dial, conf)
	default:
		err = fmt.Errorf("unknown broker %q", src.From.Type)
	}
	if err != nil {
		return err
	}
	defer conn.close()
	now := s.now()
	c.update(func(st *consign.FromStatus) { st.Connected, st.ConnectedAt = true, &now })
	for {
		msgs, err := conn.next(ctx, s.cfg.BrokerBatch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(msgs) == 0 {
			if lag, known := conn.lag(); known {
				c.update(func(st *consign.FromStatus) { st.Lag = &lag })
			}
			continue
		}
		if err := s.storeMessages(ctx, src, msgs); err != nil {
			conn.nak()
			return fmt.Errorf("store %d messages (handed back to the broker): %w", len(msgs), err)
		}
		// Acknowledged even when ctx ended meanwhile: the receipts are durable.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = conn.ack(actx)
		cancel()
		if err != nil {
			// The broker delivers them again; they are duplicates then.
			return fmt.Errorf("acknowledge %d stored messages: %w", len(msgs), err)
		}
		at := s.now()
		lag, known := conn.lag()
		c.update(func(st *consign.FromStatus) {
			st.Messages += int64(len(msgs))
			st.LastMessageAt = &at
			if known {
				st.Lag = &lag
			}
		})
	}
}

// storeMessages makes messages receipts in one durable transaction and hands the
// accepted ones on to become events.
func (s *Service) storeMessages(ctx context.Context, src *consign.Source, msgs []brokerMsg) error {
	rs := make([]*consign.Receipt, len(msgs))
	for i, m := range msgs {
		body := m.body
		tooLarge := int64(len(body)) > s.cfg.MaxBody
		if tooLarge {
			body = nil
		}
		rs[i], _ = s.receiptOf(src, src.From.Type, m.header, body, m.key)
		if tooLarge {
			rs[i].Status, rs[i].DedupeKey = consign.ReceiptRejected, ""
			rs[i].Reason = fmt.Sprintf("the message is %d bytes, more than the %d a source takes; its body was not stored", len(m.body), s.cfg.MaxBody)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := s.store.ReceiptsInsert(sctx, rs, false); err != nil {
		return err
	}
	for _, r := range rs {
		switch {
		case !r.Verified:
			s.announceFailure(src, r)
		case r.Status == consign.ReceiptPending:
			s.enqueueWait(ctx, r)
		}
	}
	return nil
}

// checkFrom applies the target rules to a source's broker settings when the source is
// saved: unless insecure, the scheme must be TLS (tls://, amqps://, kafka+tls://: a
// plaintext one is refused as http:// is), and every host public, a literal address
// public and the name no loopback name. The dialer checks the resolved addresses again
// at connect time.
func checkFrom(v *consign.Validation, f *consign.SourceFrom, insecure bool) {
	hint := ""
	if !insecure {
		hint = " (serve --insecure-targets allows private and loopback brokers, for development)"
	}
	switch {
	case f.Type == consign.FromKafka && f.URL != "":
		if _, path, err := kafkadest.ParseBrokers(f.URL, insecure); err != nil {
			msg := strings.TrimPrefix(err.Error(), "url ")
			if strings.Contains(msg, "targets must be public") {
				msg += hint
			}
			v.Add("from.url", "%s", msg)
		} else if path != "" {
			v.Add("from.url", "names no topic (from.topic does): kafka+tls://host:9093")
		}
		return
	case f.Type == consign.FromKafka:
		if !insecure {
			v.Add("from.brokers", "connect in plaintext: give from.url kafka+tls://[user:pass@]host:9093[,host…][?sasl=…] instead (serve --insecure-targets allows plaintext brokers, for development)")
			return
		}
	case !insecure:
		secure := map[string]string{consign.FromNATS: "tls", consign.FromAMQP: "amqps"}
		plain := map[string]string{consign.FromNATS: "nats", consign.FromAMQP: "amqp"}
		if scheme, _, _ := strings.Cut(f.URL, "://"); strings.EqualFold(scheme, plain[f.Type]) {
			v.Add("from.url", "must use %s://, not %s:// (plaintext; serve --insecure-targets allows it, for development)",
				secure[f.Type], plain[f.Type])
			return
		}
	}
	field := "from.url"
	if f.Type == consign.FromKafka {
		field = "from.brokers"
	}
	for _, hp := range f.BrokerHosts() {
		if err := sender.CheckTargetHost(hostOf(hp), insecure); err != nil {
			v.Add(field, "%s", err.Error()+hint)
		}
	}
}

// hostOf is the host of host:port (hostport itself when it has no port).
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// brokerDialer dials brokers: unless insecure, every address it connects to must be
// public (the same guard as the sender's, checked on the resolved address).
func brokerDialer(insecure bool) *net.Dialer {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !insecure {
		g := ssrf.New(ssrf.WithAnyPort())
		d.Control = func(network, address string, c syscall.RawConn) error {
			if err := g.Safe(network, address, c); err != nil {
				return fmt.Errorf("blocked: %w (serve --insecure-targets allows private and loopback brokers)", err)
			}
			return nil
		}
	}
	return d
}
