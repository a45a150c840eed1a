package inbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/destination/kafkadest"
)

// kafkaConn reads a topic in a consumer group. Offsets are committed by hand, after the
// batch's receipts are durable; rebalances wait while a batch is being stored, so a
// partition is never committed by a member that lost it.
type kafkaConn struct {
	cl    *kgo.Client
	batch []*kgo.Record
	// connErr is why the last connection to a broker could not be set up (nil once one
	// is): franz-go retries on its own and a poll says nothing of it, so next reports it.
	connErr atomic.Pointer[error]

	mu   sync.Mutex
	lags map[int32]int64 // per partition read here: high watermark − next offset
}

func dialKafka(ctx context.Context, src *consign.Source, dial *net.Dialer, conf *tls.Config) (brokerConn, error) {
	f := src.From
	c := &kafkaConn{lags: map[int32]int64{}}
	// A partition that moves to another member no longer counts in this one's lag.
	drop := func(_ context.Context, _ *kgo.Client, gone map[string][]int32) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range gone[f.Topic] {
			delete(c.lags, p)
		}
	}
	// A URL (kafka+tls://, with SASL) or a list of plaintext brokers.
	reach := []kgo.Opt{kgo.SeedBrokers(f.Brokers...), kgo.Dialer(dial.DialContext)}
	if f.URL != "" {
		b, _, err := kafkadest.ParseBrokers(f.URL, true) // checked when saved; the dialer judges the addresses
		if err != nil {
			return nil, fmt.Errorf("kafka url: %w", err)
		}
		reach = b.Options(dial.DialContext, conf, dial.Timeout, nil)
	}
	cl, err := kgo.NewClient(append(reach,
		kgo.WithHooks(kafkadest.NewConnHook(func(err error) {
			if err == nil {
				c.connErr.Store(nil)
			} else {
				c.connErr.Store(&err)
			}
		})),
		kgo.ClientID("consign"),
		kgo.ConsumerGroup(f.Group),
		kgo.ConsumeTopics(f.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(time.Second),
		// A node that died holds its partitions until its session ends: 10 s, like a
		// dead node's deliveries (the broker's default minimum is 6 s).
		kgo.SessionTimeout(10*time.Second),
		kgo.OnPartitionsRevoked(drop),
		kgo.OnPartitionsLost(drop),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	// The client connects lazily; a source is connected once a broker answers (a
	// metadata request), so one that cannot reach any says why instead of reporting
	// itself connected.
	pctx, cancel := context.WithTimeout(ctx, kafkaPingTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		if p := c.connErr.Load(); p != nil {
			err = *p // the connection's own error (TLS, SASL), not the request's
		}
		cl.Close()
		return nil, fmt.Errorf("no broker answers: %w", err)
	}
	c.cl = cl
	return c, nil
}

// kafkaPingTimeout bounds the first request to the brokers.
const kafkaPingTimeout = 15 * time.Second

func (c *kafkaConn) next(ctx context.Context, limit int) ([]brokerMsg, error) {
	for {
		pctx, cancel := context.WithTimeout(ctx, brokerIdle)
		fs := c.cl.PollRecords(pctx, limit)
		idle := pctx.Err() != nil
		cancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			c.cl.AllowRebalance()
			return nil, context.Cause(ctx)
		}
		var errs []error
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				errs = append(errs, fmt.Errorf("topic %s partition %d: %w", topic, p, err))
			}
		})
		c.batch = fs.Records()
		if len(c.batch) == 0 {
			c.cl.AllowRebalance()
			if len(errs) > 0 {
				return nil, errors.Join(errs...)
			}
			if idle {
				if err := c.connErr.Load(); err != nil {
					return nil, *err
				}
				return nil, nil
			}
			continue
		}
		c.mu.Lock()
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if n := len(p.Records); n > 0 {
				c.lags[p.Partition] = max(0, p.HighWatermark-p.Records[n-1].Offset-1)
			}
		})
		c.mu.Unlock()
		out := make([]brokerMsg, len(c.batch))
		for i, r := range c.batch {
			h := http.Header{}
			for _, kv := range r.Headers {
				h.Add(kv.Key, string(kv.Value))
			}
			part, off := strconv.FormatInt(int64(r.Partition), 10), strconv.FormatInt(r.Offset, 10)
			h.Set(consign.HeaderKafkaTopic, r.Topic)
			h.Set(consign.HeaderKafkaPartition, part)
			h.Set(consign.HeaderKafkaOffset, off)
			out[i] = brokerMsg{header: h, body: r.Value, key: r.Topic + "/" + part + "/" + off}
		}
		return out, nil
	}
}

func (c *kafkaConn) ack(ctx context.Context) error {
	defer c.cl.AllowRebalance()
	return c.cl.CommitRecords(ctx, c.batch...)
}

// nak leaves the batch uncommitted: the connection is closed, and reading resumes at the
// committed offsets.
func (c *kafkaConn) nak() {}

func (c *kafkaConn) lag() (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lags) == 0 {
		return 0, false
	}
	var n int64
	for _, l := range c.lags {
		n += l
	}
	return n, true
}

func (c *kafkaConn) close() { c.cl.CloseAllowingRebalance() }
