package dispatch

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// recorder writes outcomes in batches: whatever has queued while the previous
// transaction committed goes into the next one.
type recorder struct {
	store store.Store
	log   *slog.Logger
	in    chan outcome
	done  chan struct{}
	// stopping is closed when the dispatcher stops (its context's Done): a batch that
	// cannot be written is then given up after a few tries rather than retried until
	// it is, so that workers waiting to add their outcomes can end.
	stopping <-chan struct{}
	// after is called after each written batch with what the batch's attempts say of
	// health and the endpoints to wake (see outcome.wake).
	after func(health []store.HealthChange, wake []string)
}

// outcome is an outcome on its way to the store. wake asks for its endpoint to be woken
// once it is written: it ends a delivery with an ordering key, and the next of that key
// can be claimed only after the commit.
type outcome struct {
	*store.Outcome
	wake bool
}

func newRecorder(s store.Store, log *slog.Logger, after func([]store.HealthChange, []string)) *recorder {
	// Room for two full batches: one being written, the next gathering.
	return &recorder{store: s, log: log, in: make(chan outcome, 8192), done: make(chan struct{}), after: after}
}

func (r *recorder) add(o *store.Outcome, wake bool) { r.in <- outcome{o, wake} }

// close writes what is queued and stops.
func (r *recorder) close() {
	close(r.in)
	<-r.done
}

// When outcomes come fast (the last batch held at least busyBatch), the recorder waits
// for more before it writes: fewer, larger transactions, in which the hot pages of the
// deliveries' and attempts' indexes reach the log once and each transaction's own work
// (its statements, its commit) is shared by more outcomes. It waits up to recordLinger,
// or up to keyedLinger once the batch holds the end of a keyed delivery, whose key's next
// delivery can be claimed only after the commit. When they come slowly (an ordered key
// waits for each outcome before its next delivery can be claimed) it writes at once.
const (
	recordLinger = 10 * time.Millisecond
	keyedLinger  = 2 * time.Millisecond
	busyBatch    = 32
)

// run writes outcomes until close; stopping is closed when the dispatcher stops.
func (r *recorder) run(stopping <-chan struct{}) {
	defer close(r.done)
	r.stopping = stopping
	// Up to 4,000 outcomes a transaction (about 70 ms of the writer's time under a
	// fan-out): with 1,000, the recorder fell behind and d 1→10 was 8–10 % slower.
	const maxBatch = 4000
	busy := false // the last batch was large: outcomes are coming fast
	for first := range r.in {
		batch := []*store.Outcome{first.Outcome}
		var wake []string
		var linger *time.Timer
		began, shortened := time.Now(), false
		if busy {
			linger = time.NewTimer(recordLinger)
		}
		// keyed shortens the wait, once, to keyedLinger from its start.
		keyed := func() {
			if linger != nil && !shortened {
				shortened = true
				linger.Reset(max(keyedLinger-time.Since(began), 0))
			}
		}
		if first.wake {
			wake = append(wake, first.EndpointID)
			keyed()
		}
	drain:
		for len(batch) < maxBatch {
			var o outcome
			var ok bool
			if linger == nil {
				select {
				case o, ok = <-r.in:
				default:
					break drain
				}
			} else {
				select {
				case o, ok = <-r.in:
				case <-linger.C:
					break drain
				}
			}
			if !ok {
				break drain
			}
			batch = append(batch, o.Outcome)
			if o.wake {
				wake = append(wake, o.EndpointID)
				keyed()
			}
		}
		if linger != nil {
			linger.Stop()
		}
		busy = len(batch) >= busyBatch
		health := healthOf(batch)
		if r.write(store.RecordParams{Outcomes: batch, Health: health}) && r.after != nil {
			r.after(health, wake)
		}
	}
}

// healthOf sums up what a batch's attempts say about each endpoint: healthy if its last
// attempt succeeded, else failing since the first failure after its last success; and how
// many of its attempts failed. A cancelled delivery's attempt made no request and says
// nothing.
func healthOf(batch []*store.Outcome) []store.HealthChange {
	var out []store.HealthChange
	idx := map[string]int{}
	for _, o := range batch {
		a := o.Attempt
		if a == nil || o.Status == consign.StatusCancelled {
			continue // no request was made (a transformation cancelled it)
		}
		ok := a.Response.OK() && !a.Refused
		i, seen := idx[o.EndpointID]
		if !seen {
			i = len(out)
			idx[o.EndpointID] = i
			out = append(out, store.HealthChange{EndpointID: o.EndpointID, OK: true})
		}
		h := &out[i]
		if !ok {
			h.Failures++
		}
		switch {
		case ok:
			h.OK, h.FailingSince = true, time.Time{}
		case h.OK:
			h.OK, h.FailingSince = false, a.StartedAt
		}
	}
	return out
}

// Backoff between tries of a batch that could not be written.
const (
	recordRetryMin = 50 * time.Millisecond
	recordRetryMax = 5 * time.Second
	// recordTriesAtClose bounds the tries of a batch once the dispatcher is stopping.
	recordTriesAtClose = 5
)

// write writes a batch, trying again until it is written: the store may be away for a
// while (a PostgreSQL failover, a full disk). Giving up would lose the attempt log and
// send the deliveries again once their leases end, and an ordered key would wait that
// long for its head. Meanwhile outcomes queue in r.in, and once it is full the workers
// wait to add theirs: nothing more is sent than can be recorded. Once the dispatcher is
// stopping, a batch gets recordTriesAtClose tries in all and is then given up, with
// an error in the log.
//
// A batch the store refuses (store.Refused: a value it cannot hold, a constraint) is not
// tried again as it is, which would stop the attempt log of every endpoint for one
// outcome: isolate writes it in parts. write reports whether anything was written.
func (r *recorder) write(p store.RecordParams) bool {
	return r.writeOr(p, r.isolate)
}

// writeOr is write with refused called, instead of trying again, when the store refuses
// the batch; its result is writeOr's.
func (r *recorder) writeOr(p store.RecordParams, refused func(p store.RecordParams, err error) bool) bool {
	delay := recordRetryMin
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := r.store.DeliveriesRecord(ctx, p)
		cancel()
		if err == nil {
			if try > 1 {
				r.log.Info("recorded delivery outcomes after the store failed", "count", len(p.Outcomes), "tries", try)
			}
			return true
		}
		if store.Refused(err) {
			return refused(p, err)
		}
		stopping := r.isStopping()
		if stopping && try >= recordTriesAtClose {
			r.log.Error("record delivery outcomes; giving up as the dispatcher stops: leases will expire and the deliveries be sent again",
				"count", len(p.Outcomes), "tries", try, "err", err)
			return false
		}
		if try == 1 || try%10 == 0 {
			r.log.Warn("record delivery outcomes; trying again", "count", len(p.Outcomes), "tries", try, "err", err)
		}
		if stopping {
			time.Sleep(recordRetryMin)
			continue
		}
		select {
		case <-time.After(delay):
		case <-r.stopping:
		}
		delay = min(2*delay, recordRetryMax)
	}
}

// isolate writes a refused batch in halves, down to the outcomes the store refuses alone.
// Such an outcome is written again with a bare attempt (what Consign itself sent and when,
// the response's status, and why the rest is missing: the response's headers and body or
// the error text held what the store refused), then without its attempt; failing that it
// is given up with an error in the log, and its lease ends as after a crash.
func (r *recorder) isolate(p store.RecordParams, err error) bool {
	if n := len(p.Outcomes); n > 1 {
		first := r.write(store.RecordParams{Outcomes: p.Outcomes[:n/2], Health: healthOf(p.Outcomes[:n/2])})
		second := r.write(store.RecordParams{Outcomes: p.Outcomes[n/2:], Health: healthOf(p.Outcomes[n/2:])})
		return first || second
	}
	o := p.Outcomes[0]
	r.log.Error("the store refused a delivery's outcome; recording it without the attempt's details",
		"delivery", o.DeliveryID, "endpoint", o.EndpointID, "err", err)
	giveUp := func(_ store.RecordParams, e error) bool { err = e; return false }
	for _, reduced := range []*store.Outcome{bareAttempt(o, err), noAttempt(o)} {
		if reduced != nil && r.writeOr(store.RecordParams{Outcomes: []*store.Outcome{reduced}, Health: healthOf([]*store.Outcome{reduced})}, giveUp) {
			return true
		}
	}
	r.log.Error("the store refused a delivery's outcome; giving it up: the delivery will be sent again once its lease ends",
		"delivery", o.DeliveryID, "endpoint", o.EndpointID, "err", err)
	return false
}

// bareAttempt returns o with its attempt reduced to what Consign chose itself, and a note
// of why; nil when o has no attempt.
func bareAttempt(o *store.Outcome, err error) *store.Outcome {
	a := o.Attempt
	if a == nil {
		return nil
	}
	bare := &consign.Attempt{N: a.N, StartedAt: a.StartedAt, DurationMS: a.DurationMS, Refused: a.Refused,
		Request: consign.AttemptRequest{Method: a.Request.Method, URL: a.Request.URL}}
	if a.Response != nil {
		bare.Response = &consign.AttemptResponse{Status: a.Response.Status, Ack: a.Response.Ack}
	}
	note := "the attempt's record could not be stored: " + strconv.QuoteToASCII(err.Error())
	bare.Error = &note
	c := *o
	c.Attempt = bare
	return &c
}

// noAttempt returns o without its attempt and the values taken from its response: the
// delivery's new state alone.
func noAttempt(o *store.Outcome) *store.Outcome {
	c := *o
	c.Attempt, c.ResponseReference, c.ResponseFields = nil, nil, nil
	return &c
}

func (r *recorder) isStopping() bool {
	select {
	case <-r.stopping:
		return true
	default:
		return false
	}
}
