//go:build consign_stdlib

package natsdest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The standard path of a connection's JetStream publishes, built with the tag
// consign_stdlib: nats.go's jetstream.PublishMsgAsync, one publish at a time (nats.go
// gathers what it writes), each attempt waiting on its PubAckFuture. batch.go replaces
// it by default (docs/performance.md, "The standard library's paths"); this one stays
// to audit that replacement against, and passes the package's Send tests.

// publisher publishes one connection's messages through nats.go's JetStream client.
type publisher struct {
	js   jetstream.JetStream
	stop chan struct{}

	mu      sync.Mutex
	stopped bool
}

// pending is a publish waiting for its answer on done; gone is closed when its attempt
// stops waiting.
type pending struct {
	done chan answer
	gone chan struct{}
	once sync.Once
}

// newPublisher makes the connection's JetStream client; the deadlines are each
// publish's own timer here, so there is no sweep.
func newPublisher(nc *nats.Conn, _ time.Duration) (*publisher, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return &publisher{js: js, stop: make(chan struct{})}, nil
}

// publish publishes msg (its Nats-Msg-Id header set by the caller) and returns the
// pending publish whose done channel gets the stream's answer by deadline.
func (p *publisher) publish(msg *nats.Msg, deadline time.Time) (*pending, error) {
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if stopped {
		return nil, nats.ErrConnectionClosed
	}
	wait := max(time.Until(deadline), time.Millisecond)
	f, err := p.js.PublishMsgAsync(msg, jetstream.WithStallWait(wait))
	if err != nil {
		return nil, err
	}
	w := &pending{done: make(chan answer, 1), gone: make(chan struct{})}
	go func() {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case a := <-f.Ok():
			w.done <- answer{ack: ack{Stream: a.Stream, Sequence: a.Sequence, Duplicate: a.Duplicate}}
		case err := <-f.Err():
			if errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
				err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
			}
			w.done <- answer{err: err}
		case <-t.C:
			w.done <- answer{err: context.DeadlineExceeded}
		case <-p.stop:
			w.done <- answer{err: errStopped}
		case <-w.gone:
		}
	}()
	return w, nil
}

// forget tells w's waiter that its attempt no longer waits.
func (p *publisher) forget(w *pending) { w.once.Do(func() { close(w.gone) }) }

// close answers the publishes still waiting and refuses new ones; the connection is
// closed by its owner.
func (p *publisher) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.stopped = true
		close(p.stop)
	}
}
