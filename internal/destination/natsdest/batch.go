package natsdest

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publishing in batches. A publish that goes out alone costs the NATS server a read of
// its socket, a write of the ack and, for each subscriber, a write of the message, with
// the wake-ups of its goroutines between them; this process pays a write and the read
// of that ack. Many publishes written together share all of that. The attempts in
// flight arrive one at a time (each worker publishes when its turn comes), so nothing
// batches them by itself unless the machine is so busy that they pile up.
//
// So a connection's publishes go out at most once every flushEvery: a publish that
// finds the last batch older than that goes at once (an idle or slow stream pays no
// delay), and one that comes sooner waits with the others for the rest of the
// interval, then all of them are published back to back, which nats.go writes in one or
// a few writes. At a high rate each attempt waits at most flushEvery more for its ack;
// at 20,000 publishes/s a batch holds about 10 of them. maxBatch caps a batch: a full
// one goes at once.
const (
	flushEvery = 500 * time.Microsecond
	maxBatch   = 256
)

// batcher holds the publishes of one connection until their batch goes out.
type batcher struct {
	js    jetstream.JetStream
	every time.Duration // flushEvery; tests set their own, as they do max
	max   int           // maxBatch

	mu    sync.Mutex
	queue []*pending
	last  time.Time // when the last batch went out
	timer *time.Timer
}

// pending is a publish waiting for its batch. The batch's publisher sends the result of
// PublishMsgAsync on done; an attempt that gives up first sets gone, and its message is
// then not published.
type pending struct {
	msg  *nats.Msg
	opts []jetstream.PublishOpt
	done chan published
	gone atomic.Bool
}

type published struct {
	f   jetstream.PubAckFuture
	err error
}

func newBatcher(js jetstream.JetStream) *batcher {
	b := &batcher{js: js, every: flushEvery, max: maxBatch}
	b.timer = time.AfterFunc(time.Hour, b.flush)
	b.timer.Stop()
	return b
}

// publish publishes msg now, or queues it for the batch that goes out next and returns
// the pending publish to wait on (p.done).
func (b *batcher) publish(msg *nats.Msg, opts []jetstream.PublishOpt) (f jetstream.PubAckFuture, p *pending, err error) {
	now := time.Now()
	b.mu.Lock()
	if len(b.queue) == 0 && now.Sub(b.last) >= b.every {
		b.last = now
		b.mu.Unlock()
		f, err = b.js.PublishMsgAsync(msg, opts...)
		return f, nil, err
	}
	p = &pending{msg: msg, opts: opts, done: make(chan published, 1)}
	b.queue = append(b.queue, p)
	switch {
	case len(b.queue) >= b.max:
		b.timer.Stop()
		batch := b.take(now)
		b.mu.Unlock()
		b.send(batch)
		return nil, p, nil
	case len(b.queue) == 1:
		b.timer.Reset(b.every - now.Sub(b.last))
	}
	b.mu.Unlock()
	return nil, p, nil
}

// take removes the queue as the batch that goes out at now; b.mu held.
func (b *batcher) take(now time.Time) []*pending {
	batch := b.queue
	b.queue, b.last = nil, now
	return batch
}

// flush publishes the queued batch when its interval is over (the timer's func).
func (b *batcher) flush() {
	b.mu.Lock()
	if len(b.queue) == 0 { // a full batch went out meanwhile
		b.mu.Unlock()
		return
	}
	batch := b.take(time.Now())
	b.mu.Unlock()
	b.send(batch)
}

// send publishes a batch back to back and hands each its future.
func (b *batcher) send(batch []*pending) {
	for _, p := range batch {
		if p.gone.Load() {
			continue
		}
		f, err := b.js.PublishMsgAsync(p.msg, p.opts...)
		p.done <- published{f, err}
	}
}
