//go:build !consign_stdlib

package natsdest

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A connection's JetStream publishes, and their acks. A JetStream publish is a core
// NATS message with a reply subject: the stream that stores it answers there with its
// PubAck (stream, sequence, duplicate) or an error. Each connection has one
// subscription to a reply prefix of its own; a publish takes the next token under that
// prefix and waits on its own channel for what the stream answered, for a "no
// responders" status (no stream takes the subject), or for its deadline, which one
// sweep per connection enforces (an attempt costs no timer). This is what nats.go's
// PublishMsgAsync does, without its future, its timer per message and its decoding of
// every ack through encoding/json (docs/performance.md, "The publish and its ack in
// natsdest").
//
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

// publisher publishes one connection's messages and hands each its stream's answer.
type publisher struct {
	nc     *nats.Conn
	prefix string        // reply subjects are prefix + token
	every  time.Duration // flushEvery; tests set their own, as they do max
	max    int           // maxBatch
	sub    *nats.Subscription
	stop   chan struct{}

	// stream is the name of the stream that answered last, so that the acks of one
	// stream share its string; only the subscription's handler (answered) uses it.
	stream string

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]*pending // not yet answered, queued or published
	queue   []*pending          // waiting for their batch
	spare   []*pending          // the array of the last batch sent, for the next queue
	last    time.Time           // when the last batch went out
	timer   *time.Timer
	stopped bool
}

// pending is a publish waiting for its answer. Whoever takes it out of
// publisher.waiting (the answer, the sweep, the attempt giving up) sends on done, once.
type pending struct {
	token    uint64
	msg      *nats.Msg
	deadline time.Time
	done     chan answer
}

// newPublisher subscribes to the connection's reply prefix; sweepEvery is how often
// publishes past their deadline are failed.
func newPublisher(nc *nats.Conn, sweepEvery time.Duration) (*publisher, error) {
	p := &publisher{nc: nc, prefix: nc.NewInbox() + ".", every: flushEvery, max: maxBatch,
		waiting: map[uint64]*pending{}, stop: make(chan struct{})}
	sub, err := nc.Subscribe(p.prefix+"*", p.answered)
	if err != nil {
		return nil, err
	}
	// The answers are bounded by the publishes waiting, not by nats.go's defaults.
	_ = sub.SetPendingLimits(-1, -1)
	p.sub = sub
	p.timer = time.AfterFunc(time.Hour, p.flush)
	p.timer.Stop()
	go p.sweep(sweepEvery)
	return p, nil
}

// publish publishes msg with a reply subject of its own, now or with the next batch,
// and returns the pending publish whose done channel gets the stream's answer by
// deadline.
func (p *publisher) publish(msg *nats.Msg, deadline time.Time) (*pending, error) {
	now := time.Now()
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil, nats.ErrConnectionClosed
	}
	p.next++
	w := &pending{token: p.next, msg: msg, deadline: deadline, done: make(chan answer, 1)}
	msg.Reply = p.replySubject(w.token)
	p.waiting[w.token] = w
	if len(p.queue) == 0 && now.Sub(p.last) >= p.every {
		p.last = now
		p.mu.Unlock()
		if err := p.nc.PublishMsg(msg); err != nil {
			p.forget(w)
			return nil, err
		}
		return w, nil
	}
	p.queue = append(p.queue, w)
	switch {
	case len(p.queue) >= p.max:
		p.timer.Stop()
		batch := p.take(now)
		p.mu.Unlock()
		p.send(batch)
		return w, nil
	case len(p.queue) == 1:
		p.timer.Reset(p.every - now.Sub(p.last))
	}
	p.mu.Unlock()
	return w, nil
}

// replySubject is the reply subject of the publish of token: the prefix and the token
// in base 36, in one string.
func (p *publisher) replySubject(token uint64) string {
	var b strings.Builder
	var digits [13]byte // a uint64 in base 36
	b.Grow(len(p.prefix) + len(digits))
	b.WriteString(p.prefix)
	b.Write(strconv.AppendUint(digits[:0], token, 36))
	return b.String()
}

// take removes the queue as the batch that goes out at now, without the publishes
// already answered (their attempt gave up, or their deadline passed); p.mu held. The
// next queue starts in the array of the last batch sent (see done).
func (p *publisher) take(now time.Time) []*pending {
	batch := p.queue[:0]
	for _, w := range p.queue {
		if p.waiting[w.token] == w {
			batch = append(batch, w)
		}
	}
	clear(p.queue[len(batch):])
	p.queue, p.spare, p.last = p.spare, nil, now
	return batch
}

// done hands the array of a batch that went out to the next queue, unless another
// batch's already waits there.
func (p *publisher) done(batch []*pending) {
	clear(batch)
	p.mu.Lock()
	if p.spare == nil && !p.stopped {
		p.spare = batch[:0]
	}
	p.mu.Unlock()
}

// flush publishes the queued batch when its interval is over (the timer's func).
func (p *publisher) flush() {
	p.mu.Lock()
	if len(p.queue) == 0 { // a full batch went out meanwhile
		p.mu.Unlock()
		return
	}
	batch := p.take(time.Now())
	p.mu.Unlock()
	p.send(batch)
}

// send publishes a batch back to back; a publish nats.go refuses is answered with why.
func (p *publisher) send(batch []*pending) {
	for _, w := range batch {
		if err := p.nc.PublishMsg(w.msg); err != nil {
			p.finish(w.token, answer{err: err})
		}
	}
	p.done(batch)
}

// finish takes the publish of token out of the waiting ones and hands it a, unless
// something answered it first.
func (p *publisher) finish(token uint64, a answer) {
	p.mu.Lock()
	w, ok := p.waiting[token]
	if ok {
		delete(p.waiting, token)
	}
	p.mu.Unlock()
	if ok {
		w.done <- a
	}
}

// forget takes w out of the waiting ones: its attempt no longer waits. A queued message
// is then not published.
func (p *publisher) forget(w *pending) {
	p.mu.Lock()
	if p.waiting[w.token] == w {
		delete(p.waiting, w.token)
	}
	p.mu.Unlock()
}

// answered takes a stream's answer to a publish (the subscription's handler).
func (p *publisher) answered(m *nats.Msg) {
	if len(m.Subject) <= len(p.prefix) {
		return
	}
	token, err := strconv.ParseUint(m.Subject[len(p.prefix):], 36, 64)
	if err != nil {
		return
	}
	var a answer
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		a.err = nats.ErrNoResponders
	} else {
		a.ack, a.err = parseAck(m.Data, p.stream)
		if a.ack.Stream != "" {
			p.stream = a.ack.Stream
		}
	}
	p.finish(token, a)
}

// sweep fails the publishes past their deadline, every interval, until close.
func (p *publisher) sweep(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var late []*pending
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			late = late[:0]
			p.mu.Lock()
			for k, w := range p.waiting {
				if now.After(w.deadline) {
					delete(p.waiting, k)
					late = append(late, w)
				}
			}
			p.mu.Unlock()
			for _, w := range late {
				w.done <- answer{err: context.DeadlineExceeded}
			}
		}
	}
}

// close ends the sweep and answers the publishes still waiting; the connection is
// closed by its owner.
func (p *publisher) close() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.timer.Stop()
	close(p.stop)
	waiting := p.waiting
	p.waiting, p.queue = map[uint64]*pending{}, nil
	p.mu.Unlock()
	for _, w := range waiting {
		w.done <- answer{err: errStopped}
	}
}

// parseAck reads a stream's answer to a publish: its PubAck, or the error it states. The
// usual ack, {"stream":"ORDERS","seq":42} with "duplicate":true for a resend, is read
// by hand (scanAck, whose ack names stream known by that string when it is the same);
// any other shape goes through encoding/json.
func parseAck(data []byte, known string) (ack, error) {
	if a, ok := scanAck(data, known); ok {
		return a, nil
	}
	var r struct {
		ack
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return ack{}, jetstream.ErrInvalidJSAck
	}
	if r.Error != nil {
		return ack{}, r.Error
	}
	if r.Stream == "" {
		return ack{}, jetstream.ErrInvalidJSAck
	}
	return r.ack, nil
}

// scanAck reads an ack of the form {"stream":"<name>","seq":<n>} with
// "duplicate":true before the brace for a resend, as nats-server writes it (spaces may
// follow a colon or a comma; a stream's name is printable ASCII without a quote or a
// backslash); ok is false for anything else. A stream named known gets the string known.
func scanAck(b []byte, known string) (a ack, ok bool) {
	var stream []byte
	if b, ok = token(b, "{"); ok {
		b, ok = token(b, `"stream"`)
	}
	if ok {
		b, ok = token(b, ":")
	}
	if ok {
		b, ok = token(b, `"`)
	}
	if !ok {
		return ack{}, false
	}
	i := 0
	for i < len(b) && b[i] != '"' {
		if b[i] == '\\' || b[i] < 0x20 || b[i] > 0x7e {
			return ack{}, false
		}
		i++
	}
	if i == 0 || i == len(b) {
		return ack{}, false
	}
	stream, b = b[:i], b[i+1:]
	if b, ok = token(b, ","); ok {
		b, ok = token(b, `"seq"`)
	}
	if ok {
		b, ok = token(b, ":")
	}
	if !ok {
		return ack{}, false
	}
	var n uint64
	i = 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + uint64(b[i]-'0')
	}
	if i == 0 || i > 19 || (b[0] == '0' && i > 1) { // 19 digits cannot overflow
		return ack{}, false
	}
	b = b[i:]
	if rest, dup := token(b, ","); dup {
		if b, ok = token(rest, `"duplicate"`); ok {
			b, ok = token(b, ":")
		}
		if ok {
			b, ok = token(b, "true")
		}
		if !ok {
			return ack{}, false
		}
		a.Duplicate = true
	}
	if b, ok = token(b, "}"); !ok || len(skipSpace(b)) != 0 {
		return ack{}, false
	}
	a.Stream, a.Sequence = known, n
	if string(stream) != known {
		a.Stream = string(stream)
	}
	return a, true
}

// token returns b after the JSON whitespace that leads it and then t, if b has them.
func token(b []byte, t string) ([]byte, bool) {
	b = skipSpace(b)
	if len(b) < len(t) || string(b[:len(t)]) != t {
		return b, false
	}
	return b[len(t):], true
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
