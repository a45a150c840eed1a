package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// latencyGrace is how long the latency run waits for its last deliveries after the last
// publish.
const latencyGrace = 5 * time.Second

// runner runs the scenarios of one benchmark.
type runner struct {
	cfg   Config
	api   *client
	rcv   *receiver
	admin string
	p     *printer
	rep   *Report
	orgs  []string // created, for cleanup on an external server
	seq   int
	// server is the server's process when it runs in one of its own and its CPU time
	// can be read (nil otherwise).
	server *serverProc
	// broker is, during the nats scenario, the NATS server's process when its CPU time
	// can be read (nil otherwise).
	broker *serverProc
}

// eventType is the name of the type every event of this run is published as.
func (r *runner) eventType() string { return publishedType(r.cfg.Type) }

// payload is one event's payload in this run.
func (r *runner) payload() []byte { return payload(r.cfg.PayloadSize, r.cfg.Type) }

// meter starts measuring a figure.
func (r *runner) meter() meter { return startMeter(r.server, r.broker) }

func (r *runner) run(ctx context.Context) error {
	cfg := r.cfg
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{ScenarioLoopback, r.loopback},
		{ScenarioDeliver, func(ctx context.Context) error { return r.deliveries(ctx, 1, false) }},
		{ScenarioBurst, func(ctx context.Context) error { return r.deliveries(ctx, 1, true) }},
		{ScenarioFilter, r.filtered},
		{ScenarioTransform, r.transformed},
		{ScenarioFanout, func(ctx context.Context) error { return r.deliveries(ctx, cfg.Fanout, false) }},
		{ScenarioSingle, r.ingestSingle},
		{ScenarioBatch, r.ingestBatch},
		{ScenarioLatency, r.latency},
		{ScenarioBacklog, r.backlog},
		{ScenarioSearch, r.search},
		{ScenarioNATS, r.natsDeliveries},
	}
	var errs []error
	for _, s := range steps {
		if !cfg.selected(s.name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("interrupted before %s: %w", s.name, err))...)
		}
		if err := s.run(ctx); err != nil {
			err = fmt.Errorf("scenario %s: %w", s.name, err)
			r.rep.Problems = append(r.rep.Problems, err.Error())
			r.p.printf("%s: could not run: %v\n", s.name, err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// setup checks the server and, for TypeCustom, adds the bench's event type (the
// built-in types are in every catalog).
func (r *runner) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.api.call(ctx, http.MethodGet, "/healthz", "", nil, nil); err != nil {
		return fmt.Errorf("the server does not answer: %w", err)
	}
	eventType := r.eventType()
	if r.cfg.Type != TypeCustom {
		if err := r.api.call(ctx, http.MethodGet, "/v1/event-types/"+eventType, r.admin, nil, nil); err != nil {
			return fmt.Errorf("event type %s (built in): %w", eventType, err)
		}
		return nil
	}
	err := r.api.call(ctx, http.MethodPost, "/v1/event-types", r.admin,
		map[string]any{"name": eventType, "description": "Published by consign bench; no schema."}, nil)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.status == http.StatusConflict:
		return nil // made by an earlier run
	case errors.As(err, &ae) && (ae.status == http.StatusUnauthorized || ae.status == http.StatusForbidden):
		return fmt.Errorf("the key is not the server's admin key (the bench creates orgs and an event type): %w", err)
	case err != nil:
		return fmt.Errorf("create event type %s: %w", eventType, err)
	}
	return nil
}

// newOrg creates an org and a key of its own, used for everything in that org as a
// client of Consign would.
func (r *runner) newOrg(ctx context.Context, scenario string) (id, key string, err error) {
	var org struct {
		ID string `json:"id"`
	}
	r.seq++
	name := fmt.Sprintf("consign bench %s %s #%d", scenario, time.Now().UTC().Format(time.RFC3339), r.seq)
	if err := r.api.call(ctx, http.MethodPost, "/v1/orgs", r.admin, map[string]any{"name": name}, &org); err != nil {
		return "", "", fmt.Errorf("create org: %w", err)
	}
	r.orgs = append(r.orgs, org.ID)
	var k struct {
		Key string `json:"key"`
	}
	if err := r.api.call(ctx, http.MethodPost, "/v1/orgs/"+org.ID+"/keys", r.admin, map[string]any{"name": "bench"}, &k); err != nil {
		return "", "", fmt.Errorf("create org key: %w", err)
	}
	return org.ID, k.Key, nil
}

// newEndpoints creates n endpoints in org that deliver to the receiver's bucket.
func (r *runner) newEndpoints(ctx context.Context, org, key, bucket string, n int, extra ...map[string]any) ([]string, error) {
	ids := make([]string, n)
	for i := range n {
		var ep struct {
			ID string `json:"id"`
		}
		in := map[string]any{"url": r.rcv.endpointURL(bucket, i), "topics": []string{r.eventType()}, "description": "consign bench receiver"}
		for _, m := range extra {
			maps.Copy(in, m)
		}
		if err := r.api.call(ctx, http.MethodPost, "/v1/orgs/"+org+"/endpoints", key, in, &ep); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.status == http.StatusUnprocessableEntity {
				return nil, fmt.Errorf("create endpoint (does the server allow loopback targets? run it with --insecure-targets): %w", err)
			}
			return nil, fmt.Errorf("create endpoint: %w", err)
		}
		ids[i] = ep.ID
	}
	return ids, nil
}

// deactivate turns endpoints off so that deliveries left over by a scenario cut short
// wait (paused) instead of competing with the next scenario.
func (r *runner) deactivate(org, key string, ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range ids {
		if err := r.api.call(ctx, http.MethodPatch, "/v1/orgs/"+org+"/endpoints/"+id, key, map[string]any{"active": false}, nil); err != nil {
			r.cfg.Logger.Warn("bench: deactivate endpoint", "endpoint", id, "err", err)
		}
	}
}

// cleanup deletes the orgs the run created on an external server.
func (r *runner) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, id := range r.orgs {
		if err := r.api.call(ctx, http.MethodDelete, "/v1/orgs/"+id, r.admin, nil, nil); err != nil {
			r.p.printf("note: could not delete bench org %s: %v\n", id, err)
		}
	}
}

// target is the spec's target for a rate figure of this run: the embedded store's table
// (whose fan-out row is for 1 → 10), or on PostgreSQL its one row, deliveries/s on one
// node (it has no ingest row).
func (r *runner) target(f figure) float64 {
	switch {
	case r.rep.Store == StorePostgres && (f == figDeliver || f == figFanout):
		return targetPostgres
	case r.rep.Store == StorePostgres, f == figFanout && r.cfg.Fanout != 10:
		return 0
	}
	return f.target
}

// share sets t's share of the loopback ceiling, if that was measured.
func (r *runner) share(t *Throughput) {
	if l := r.rep.Loopback; l != nil {
		t.scale(l.PerSecond)
	}
}

// loopback measures the ceiling: bare client → bare server.
func (r *runner) loopback(ctx context.Context) error {
	n := 5 * r.cfg.Events
	body := r.payload()
	target := r.rcv.url + "/ceiling"
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	start, m := time.Now(), startMeter(nil, nil) // the server has no part in it
	t := drive(ctx, r.cfg.Concurrency, n, func(ctx context.Context, _ int) (int, error) {
		_, err := post(ctx, r.api.hc, target, "", body, http.StatusNoContent, false)
		return 1, err
	})
	th := t.throughput(start, n, ctx)
	m.stop(th)
	r.rep.Loopback = th
	r.p.printf("%s\n", th.line(figLoopback, r.cfg))
	return nil
}

// deliveries measures deliveries/s with events fed through the batch API, each to
// fanout endpoints: paced (unless Config.FlatOut), or for the burst figure published
// flat out.
func (r *runner) deliveries(ctx context.Context, fanout int, burst bool) error {
	name, fig, flatOut := ScenarioDeliver, figDeliver, r.cfg.FlatOut
	switch {
	case fanout > 1:
		name, fig = ScenarioFanout, figFanout
	case burst:
		name, fig, flatOut = ScenarioBurst, figBurst, true
	}
	org, key, err := r.newOrg(ctx, name)
	if err != nil {
		return err
	}
	eps, err := r.newEndpoints(ctx, org, key, name, fanout)
	if err != nil {
		return err
	}
	th := r.deliver(ctx, org, key, name, eps, fig, flatOut)
	switch fig {
	case figFanout:
		r.rep.FanoutDeliver = th
	case figBurst:
		r.rep.DeliverBurst = th
	default:
		r.rep.Deliver = th
	}
	r.p.printf("%s\n", th.line(fig, r.cfg))
	return nil
}

// benchFilter is the filter of the d11f scenario: it looks into every payload (so each
// is decoded and compared) and passes every event the bench publishes.
const benchFilter = `{"payload": {"bench": {"$in": ["consign", "other"]}, "pad": {"$exists": true}}}`

// filtered measures deliveries/s 1 → 1 like d11, through an endpoint with a filter, and
// its share of d11's rate when that was measured.
func (r *runner) filtered(ctx context.Context) error {
	org, key, err := r.newOrg(ctx, ScenarioFilter)
	if err != nil {
		return err
	}
	eps, err := r.newEndpoints(ctx, org, key, ScenarioFilter, 1, map[string]any{"filter": json.RawMessage(benchFilter)})
	if err != nil {
		return err
	}
	th := r.deliver(ctx, org, key, ScenarioFilter, eps, figFilter, r.cfg.FlatOut)
	r.rep.FilterDeliver = th
	r.rep.filterShare()
	r.p.printf("%s\n", th.line(figFilter, r.cfg))
	if s := r.rep.FilterShare; s > 0 {
		r.p.printf("  %.0f %% of the plain 1→1 rate (target ≥ %.0f %%): %s\n", 100*s, 100*filterShareTarget, metText(s >= filterShareTarget))
	}
	return nil
}

// benchTransformation is the transformation of the d11t scenario: small, as partners'
// are (a field added to the payload, a header), so every webhook is parsed into the
// engine, changed and turned back into JSON.
const benchTransformation = `function handler(webhook) {
  webhook.payload.source = "consign-bench";
  webhook.headers["X-Event-Kind"] = webhook.type;
  return webhook;
}`

// transformed measures deliveries/s 1 → 1 like d11, through an endpoint with a small
// transformation, and its share of d11's rate when that was measured.
func (r *runner) transformed(ctx context.Context) error {
	org, key, err := r.newOrg(ctx, ScenarioTransform)
	if err != nil {
		return err
	}
	eps, err := r.newEndpoints(ctx, org, key, ScenarioTransform, 1, map[string]any{"transformation": benchTransformation})
	if err != nil {
		return err
	}
	th := r.deliver(ctx, org, key, ScenarioTransform, eps, figTransform, r.cfg.FlatOut)
	r.rep.TransformDeliver = th
	r.rep.filterShare()
	r.p.printf("%s\n", th.line(figTransform, r.cfg))
	if s := r.rep.TransformShare; s > 0 {
		r.p.printf("  %.0f %% of the plain 1→1 rate (target ≥ %.0f %%): %s\n", 100*s, 100*transformShareTarget, metText(s >= transformShareTarget))
	}
	return nil
}

// deliver publishes Events events to org through the batch API and measures how fast
// they reach its endpoints eps, which deliver to the receiver's bucket. The stream
// starts with the warm-up's events (Warmup deliveries, rounded up to whole events); the
// figure is over the deliveries after them, from the arrival of the warm-up's last.
// Flat out, the publisher does not wait for the deliveries.
func (r *runner) deliver(ctx context.Context, org, key, bucket string, eps []string, fig figure, flatOut bool) *Throughput {
	fanout := len(eps)
	warm := 0 // warm-up events
	if r.cfg.Warmup > 0 {
		warm = (r.cfg.Warmup + fanout - 1) / fanout
	}
	n := warm + r.cfg.Events
	b := r.rcv.bucket(bucket, false, n*fanout)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	start, m := time.Now(), r.meter()
	// The meter restarts when the warm-up's deliveries have arrived.
	warmed := make(chan meter, 1)
	if warm > 0 {
		b.markAfter(warm * fanout)
		go func() {
			if b.await(ctx, warm*fanout) == nil {
				warmed <- r.meter()
			}
		}()
	}
	var t tally
	var sent, mostAhead atomic.Int64
	if flatOut {
		t = r.publishBatches(ctx, org, key, n, nil)
	} else {
		// Sustained: batch i goes out once the deliveries of all but the last Ahead
		// batches before it have arrived, so arrivals keep pace with sending.
		perBatch := r.cfg.BatchSize * fanout
		t = r.publishBatches(ctx, org, key, n, func(ctx context.Context, i int) error {
			if err := b.await(ctx, (i-r.cfg.Ahead)*perBatch); err != nil {
				return err
			}
			got, _, _ := b.counts()
			ahead := sent.Add(int64(perBatch)) - int64(got)
			for m := mostAhead.Load(); ahead > m && !mostAhead.CompareAndSwap(m, ahead); m = mostAhead.Load() {
			}
			return nil
		})
	}
	published := time.Since(start)
	atPublished, _, _ := b.counts()
	want := t.done * fanout
	b.expect(want)
	select {
	case <-b.done:
	case <-ctx.Done():
	}
	got, dups, last := b.counts()
	th := &Throughput{Done: got, Want: n * fanout, Duplicates: dups, Errors: t.errs, FirstError: t.firstErr,
		PublishedEvents: t.done, PublishSeconds: published.Seconds(), MostAhead: int(mostAhead.Load()), GaveUp: t.stopped}
	if mark := b.marked(); warm > 0 && !mark.IsZero() {
		// Measured from the warm-up's end; a run that did not get past it counts whole.
		th.Warmup, th.Done, th.Want = warm*fanout, got-warm*fanout, r.cfg.Events*fanout
		if got >= want && !last.IsZero() {
			th.StreamPerSecond = float64(got) / last.Sub(start).Seconds()
		}
		start = mark
		select {
		case m = <-warmed:
		case <-time.After(time.Second): // the meter's goroutine is late: keep the whole run's
		}
	}
	if left := want - atPublished; flatOut && got >= want && left > 0 && last.After(start.Add(published)) {
		// What was still in the store when the publisher finished drained alone.
		th.Drained, th.DrainPerSecond = left, float64(left)/last.Sub(start.Add(published)).Seconds()
	}
	if got >= want && !last.IsZero() {
		th.Seconds = last.Sub(start).Seconds()
	} else {
		th.Capped, th.Interrupted = ended(ctx)
		th.Seconds = time.Since(start).Seconds()
	}
	m.stop(th)
	if got < want && !th.Interrupted {
		r.deactivate(org, key, eps)
	}
	th.Target = r.target(fig)
	th.finish()
	r.share(th)
	return th
}

// publishBatches publishes n events to org through the batch API, in batches of
// BatchSize from BatchClients clients, until done or ctx ends. gate, when not nil, is
// called before batch i is sent and holds it back until it returns.
func (r *runner) publishBatches(ctx context.Context, org, key string, n int, gate func(ctx context.Context, i int) error) tally {
	bodies := newBatches(r.cfg.Type, r.cfg.PayloadSize, r.cfg.BatchSize, n)
	url := r.api.base + "/v1/orgs/" + org + "/events/batch"
	return drive(ctx, r.cfg.BatchClients, bodies.count, func(ctx context.Context, i int) (int, error) {
		if gate != nil {
			if err := gate(ctx, i); err != nil {
				return 0, err
			}
		}
		body, size := bodies.get(i)
		_, err := post(ctx, r.api.hc, url, key, body, http.StatusAccepted, false)
		return size, err
	})
}

// ingestSingle measures single-event POSTs from Concurrency clients, no endpoints.
func (r *runner) ingestSingle(ctx context.Context) error {
	org, key, err := r.newOrg(ctx, ScenarioSingle)
	if err != nil {
		return err
	}
	n := r.cfg.Events
	body := singleBody(r.eventType(), r.payload())
	url := r.api.base + "/v1/orgs/" + org + "/events"
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	start, m := time.Now(), r.meter()
	t := drive(ctx, r.cfg.Concurrency, n, func(ctx context.Context, _ int) (int, error) {
		_, err := post(ctx, r.api.hc, url, key, body, http.StatusAccepted, false)
		return 1, err
	})
	th := t.throughput(start, n, ctx)
	m.stop(th)
	th.Target = r.target(figSingle)
	th.finish()
	r.share(th)
	r.rep.Single = th
	r.p.printf("%s\n", th.line(figSingle, r.cfg))
	return nil
}

// ingestBatch measures events accepted through the batch API, no endpoints.
func (r *runner) ingestBatch(ctx context.Context) error {
	org, key, err := r.newOrg(ctx, ScenarioBatch)
	if err != nil {
		return err
	}
	n := 5 * r.cfg.Events
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	start, m := time.Now(), r.meter()
	t := r.publishBatches(ctx, org, key, n, nil)
	th := t.throughput(start, n, ctx)
	m.stop(th)
	th.Target = r.target(figBatch)
	th.finish()
	r.rep.Batch = th
	r.p.printf("%s\n", th.line(figBatch, r.cfg))
	return nil
}

// latency publishes single events at a steady rate and measures how long each took to
// reach the receiver.
func (r *runner) latency(ctx context.Context) error {
	org, key, err := r.newOrg(ctx, ScenarioLatency)
	if err != nil {
		return err
	}
	eps, err := r.newEndpoints(ctx, org, key, ScenarioLatency, 1)
	if err != nil {
		return err
	}
	n := r.cfg.Events
	b := r.rcv.bucket(ScenarioLatency, true, n)
	body := singleBody(r.eventType(), r.payload())
	url := r.api.base + "/v1/orgs/" + org + "/events"

	type rec struct {
		id        string
		send, ack time.Time
	}
	recs := make([]rec, n)
	var t tally
	var tmu sync.Mutex
	jobs := make(chan int)
	pctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	io := startIO()
	var wg sync.WaitGroup
	for range min(r.cfg.latencyWorkers(), n) {
		wg.Go(func() {
			for i := range jobs {
				send := time.Now()
				reply, err := post(pctx, r.api.hc, url, key, body, http.StatusAccepted, true)
				ack := time.Now()
				var ev struct {
					ID string `json:"id"`
				}
				if err == nil {
					if err = json.Unmarshal(reply, &ev); err == nil && ev.ID == "" {
						err = errors.New("202 reply without an event id")
					}
				}
				tmu.Lock()
				if err != nil {
					if pctx.Err() == nil {
						t.errs++
						if t.firstErr == "" {
							t.firstErr = err.Error()
						}
					}
				} else {
					t.done++
					recs[i] = rec{ev.ID, send, ack}
				}
				tmu.Unlock()
			}
		})
	}
	start := time.Now()
	interval := time.Second / time.Duration(r.cfg.Rate)
	var maxLag time.Duration
	sent := 0
	timer := time.NewTimer(0)
	<-timer.C
pace:
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-pctx.Done():
				break pace
			}
		}
		select {
		case jobs <- i:
			sent++
			maxLag = max(maxLag, time.Since(due))
		case <-pctx.Done():
			break pace
		}
	}
	paced := time.Since(start)
	close(jobs)
	wg.Wait()

	b.expect(t.done)
	wctx, wcancel := context.WithTimeout(ctx, latencyGrace)
	defer wcancel()
	select {
	case <-b.done:
	case <-wctx.Done():
	}
	arrived := b.firsts()
	_, dups, _ := b.counts()
	var fromSend, fromAck []time.Duration
	negative := 0
	for _, x := range recs {
		if x.id == "" {
			continue
		}
		at, ok := arrived[x.id]
		if !ok {
			continue
		}
		fromSend = append(fromSend, at.Sub(x.send))
		d := at.Sub(x.ack)
		if d < 0 {
			negative++
		}
		fromAck = append(fromAck, d)
	}
	l := &Latency{
		Rate: r.cfg.Rate, Want: n, Sent: sent, Accepted: t.done, Received: len(fromSend), Duplicates: dups,
		Errors: t.errs, FirstError: t.firstErr, AckNegative: negative,
		AchievedRate: rate(sent, paced), MaxLagMS: ms(maxLag), IOStall: io.share(),
	}
	l.SendP50, l.SendP99, l.SendMax = percentiles(fromSend)
	l.AckP50, l.AckP99, _ = percentiles(fromAck)
	if sent < n {
		l.Capped, l.Interrupted = ended(pctx)
	}
	l.finish()
	if len(fromSend) < t.done && !l.Interrupted {
		r.deactivate(org, key, eps)
	}
	r.rep.Latency = l
	for _, line := range l.lines(r.cfg) {
		r.p.printf("%s\n", line)
	}
	return nil
}

// tally is what the workers of one drive did.
type tally struct {
	done, errs int
	firstErr   string
	last       time.Time // when the last unit was done
	stopped    bool      // too many errors
}

// ended says whether a scenario's context ended at the cap or by an interruption.
func ended(ctx context.Context) (capped, interrupted bool) {
	err := ctx.Err()
	return errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled)
}

// throughput turns a tally of n wanted units, started at start, into a figure: units
// per second from start to the last one done or, when the run was cut short (ctx), to
// now.
func (t tally) throughput(start time.Time, n int, ctx context.Context) *Throughput {
	th := &Throughput{Done: t.done, Want: n, Errors: t.errs, FirstError: t.firstErr, GaveUp: t.stopped}
	th.Capped, th.Interrupted = ended(ctx)
	if !th.Capped && !th.Interrupted && !t.last.IsZero() {
		th.Seconds = t.last.Sub(start).Seconds()
	} else {
		th.Seconds = time.Since(start).Seconds()
	}
	th.finish()
	return th
}

// drive runs jobs jobs on workers concurrent workers until all are done or ctx ends.
// do returns how many units a job did. It gives up after too many errors: max(100,
// jobs/10).
func drive(ctx context.Context, workers, jobs int, do func(ctx context.Context, i int) (int, error)) tally {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, errCount atomic.Int64
	maxErrs := int64(max(100, jobs/10))
	workers = max(1, min(workers, jobs))
	results := make([]tally, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			t := &results[w]
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= jobs {
					return
				}
				n, err := do(ctx, i)
				if err != nil {
					if ctx.Err() != nil {
						return // cut short by the cap, not an error of the server
					}
					t.errs++
					if t.firstErr == "" {
						t.firstErr = err.Error()
					}
					if errCount.Add(1) >= maxErrs {
						t.stopped = true
						cancel()
					}
					continue
				}
				t.done += n
				t.last = time.Now()
			}
		})
	}
	wg.Wait()
	var sum tally
	for _, t := range results {
		sum.done += t.done
		sum.errs += t.errs
		if sum.firstErr == "" {
			sum.firstErr = t.firstErr
		}
		if t.last.After(sum.last) {
			sum.last = t.last
		}
		sum.stopped = sum.stopped || t.stopped
	}
	return sum
}
