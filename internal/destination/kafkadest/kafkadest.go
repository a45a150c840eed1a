// Package kafkadest is the Kafka kind of destination: an endpoint URL
// kafka://host:9092[,host:9092…]/<topic> produces each attempt as a record to that
// topic, and the attempt succeeds when the record is written to all in-sync replicas
// (acks=all); the attempt's response records the partition and offset.
//
// The record's key is the event's ordering_key (none without one), so Kafka's default
// partitioner keeps one key's events in one partition, in order; its value is the body;
// its headers are the request's with lower-case names (webhook-id, webhook-signature,
// the endpoint's own…).
//
// One franz-go client per list of seed brokers serves every endpoint that names them.
// It produces idempotently (the broker drops a batch the client sends twice after a lost
// reply) and batches concurrent records by partition on its own, so attempts in flight
// at once share produce requests while each waits for its own record's result.
package kafkadest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/sender"
)

// Kind returns the Kafka kind, for kafka:// URLs.
func Kind(cfg destination.BrokerConfig) (destination.Kind, *Sender) {
	s := New(cfg)
	return destination.Kind{Name: "Kafka", Schemes: []string{"kafka"}, Check: CheckURL, Sender: s}, s
}

// Sender produces attempts to Kafka. Create it with New; Close closes its clients.
type Sender struct {
	cfg     destination.BrokerConfig
	clients *destination.Conns[*client]
}

// client is a franz-go client and what its dial guard last refused: franz-go retries
// a refused dial until the record's timeout, and then reports the timeout alone.
type client struct {
	*kgo.Client
	blocked atomic.Pointer[error]
}

// New returns a Sender.
func New(cfg destination.BrokerConfig) *Sender {
	s := &Sender{cfg: cfg.WithDefaults()}
	s.clients = destination.NewConns(s.dial, func(c *client) { c.Close() })
	return s
}

// Close closes every client.
func (s *Sender) Close() { s.clients.Close() }

// target is what an endpoint URL says.
type target struct {
	seeds []string // host:port
	topic string
}

func (t target) key() string { return strings.Join(t.seeds, ",") }

// CheckURL says what is wrong with a kafka:// endpoint URL, without the network.
func CheckURL(raw string, insecure bool) error {
	_, err := parse(raw, insecure)
	return err
}

func parse(raw string, insecure bool) (target, error) {
	if raw == "" {
		return target{}, errors.New("url is required")
	}
	if len(raw) > sender.MaxURLLength {
		return target{}, errors.New("url is " + strconv.Itoa(len(raw)) + " characters long; the limit is " + strconv.Itoa(sender.MaxURLLength))
	}
	const scheme = "kafka://"
	if len(raw) < len(scheme) || !strings.EqualFold(raw[:len(scheme)], scheme) {
		return target{}, errors.New("url must look like kafka://host:9092[,host:9092…]/topic")
	}
	rest := raw[len(scheme):]
	if strings.ContainsAny(rest, "?#") {
		return target{}, errors.New("url takes no query or fragment: kafka://host:9092[,host:9092…]/topic")
	}
	authority, path, _ := strings.Cut(rest, "/")
	if strings.Contains(authority, "@") {
		return target{}, errors.New("url must not contain credentials: kafka:// destinations connect without SASL")
	}
	if authority == "" {
		return target{}, errors.New("url must name at least one broker: kafka://host:9092/topic")
	}
	var t target
	for _, h := range strings.Split(authority, ",") {
		if h == "" {
			return target{}, errors.New("url has an empty broker in its list (two commas, or one at an end)")
		}
		if !strings.Contains(strings.TrimPrefix(h, "["), "]:") && strings.Count(h, ":") != 1 {
			h += ":9092"
		}
		if err := destination.CheckBrokerHost(h, insecure); err != nil {
			return target{}, err
		}
		t.seeds = append(t.seeds, h)
	}
	slices.Sort(t.seeds)
	t.seeds = slices.Compact(t.seeds)
	topic, err := url.PathUnescape(path)
	if err != nil {
		return target{}, errors.New("url path is not valid: " + err.Error())
	}
	if err := checkTopic(topic); err != nil {
		return target{}, err
	}
	t.topic = topic
	return t, nil
}

// checkTopic applies Kafka's rules for a topic name.
func checkTopic(s string) error {
	switch {
	case s == "":
		return errors.New("url must name the topic as its path: kafka://host:9092/orders")
	case len(s) > 249:
		return errors.New("url topic is longer than 249 characters")
	case s == "." || s == "..":
		return fmt.Errorf("url topic %q is not a valid topic name", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("url topic %q may hold only letters, digits, '.', '_' and '-'", s)
		}
	}
	return nil
}

// dial returns a client for the seed brokers of key (target.key); it connects on first
// use.
func (s *Sender) dial(_ context.Context, key string) (*client, error) {
	d := s.cfg.Dialer()
	c := &client{}
	guarded := func(ctx context.Context, network, host string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, host)
		if _, blocked := sender.BlockedReason(err); blocked {
			c.blocked.Store(&err)
		}
		return conn, err
	}
	var err error
	c.Client, err = kgo.NewClient(
		kgo.SeedBrokers(strings.Split(key, ",")...),
		kgo.ClientID("consign"),
		// Every broker the cluster names goes through the dial guard, not just the seeds.
		kgo.Dialer(guarded),
		kgo.DialTimeout(s.cfg.ConnectTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes are franz-go's default, and need this
		kgo.RecordDeliveryTimeout(s.cfg.Timeout),
		kgo.ProducerLinger(time.Millisecond),
		kgo.UnknownTopicRetries(2),
	)
	return c, err
}

// Send produces r to the topic of its URL and waits for its acknowledgement.
func (s *Sender) Send(ctx context.Context, r destination.Request) destination.Outcome {
	start, began := s.cfg.Now(), time.Now()
	t, err := parse(r.URL, true) // checked at creation; the dial guard judges the addresses
	if err != nil {
		return destination.Outcome{Class: destination.Failure, StartedAt: start, Err: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	c, err := s.clients.Get(ctx, t.key())
	if err != nil {
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "connect to kafka://"+t.key(), err)
	}
	rec := &kgo.Record{Topic: t.topic, Value: r.Body, Headers: make([]kgo.RecordHeader, 0, len(r.Header))}
	if r.Key != "" {
		rec.Key = []byte(r.Key)
	}
	destination.MessageHeaders(r.Header, func(k, v string) {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	})
	if err := c.ProduceSync(ctx, rec).FirstErr(); err != nil {
		if b := c.blocked.Load(); b != nil {
			err = *b
		} else if errors.Is(err, kerr.UnknownTopicOrPartition) {
			err = fmt.Errorf("the cluster has no topic %s (create it, or let the brokers create topics): %w", t.topic, err)
		}
		return destination.Failed(ctx, start, began, s.cfg.Timeout, "produce to "+t.topic+" on kafka://"+t.key(), err)
	}
	c.blocked.Store(nil)
	return destination.Acked(start, began, map[string]string{"topic": t.topic,
		"partition": strconv.FormatInt(int64(rec.Partition), 10), "offset": strconv.FormatInt(rec.Offset, 10)})
}
