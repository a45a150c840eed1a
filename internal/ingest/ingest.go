// Package ingest accepts events: it validates them, fans each out to the org's matching
// endpoints, and makes them durable with group commit.
//
// Design: request goroutines validate in parallel (type, schema, sizes) and hand their
// events to one committer goroutine through a channel. The committer takes whatever has
// queued up while the previous transaction was committing — up to MaxBatchEvents — and
// writes it all in one transaction, so one fsync serves many requests; then it wakes each
// waiting request and the dispatcher. Under light load a batch is one request and the
// latency is one commit; under heavy load batches grow and throughput follows, with no
// timer adding delay. A request is acknowledged only after its commit returned.
//
// On a store with one writer (store.SharedWriter: SQLite) the dispatcher's claims and
// records wait for the whole of each commit. While they do, a commit takes at most
// SharedBatchEvents, so that deliveries waiting in the store are claimed and recorded
// between commits instead of after a burst of publishing ends.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/filter"
	"github.com/consign-dev/consign/internal/store"
)

// Config configures the Service. Zero fields take their defaults (WithDefaults); Validate
// says which settings cannot work.
type Config struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MaxBatchEvents caps the events written in one transaction; default 5000.
	MaxBatchEvents int
	// SharedBatchEvents caps them instead while Writer says the dispatcher's
	// transactions are using the writer; default 250.
	SharedBatchEvents int
	// Writer, if set, is the store's single writer, shared with the dispatcher.
	Writer store.SharedWriter
	// MaxPayload is the largest payload in bytes; default 256 KiB.
	MaxPayload int
	// Dispatcher, if set, takes new deliveries straight from memory after each commit.
	Dispatcher Dispatcher
	// Logger receives commit failures; default slog.Default().
	Logger *slog.Logger
	// Metrics, if set, counts accepted events.
	Metrics Metrics
	// Tracer, if set, traces publishes and fan-outs; the deliveries handed to the
	// dispatcher carry the fan-out's trace context.
	Tracer trace.Tracer
}

// Metrics observes ingest; it must be cheap and must not block.
type Metrics interface {
	// Accepted is called after a publish commits: the events written, and those that
	// were duplicates of earlier ones (by idempotency key).
	Accepted(events, duplicates int)
}

// Dispatcher is the delivery engine as ingest sees it. Before a commit, ingest reserves
// room for an endpoint's new deliveries and writes that many already leased; after the
// commit it hands them over in memory, so they are sent without a claim transaction. The
// rest are written pending, and the dispatcher is woken to claim them.
type Dispatcher interface {
	Reserve(ep *consign.Endpoint, n int, now time.Time) (int, time.Time)
	Release(endpointID string, n int)
	Handoff(claims []*store.Claim, leaseEnd time.Time)
	Wake(endpointIDs ...string)
}

// Store is what ingest reads and writes: an org, its endpoints with the number that says
// whether they changed, the event-type catalog, and events with their deliveries (a
// store.Store).
type Store interface {
	OrgGet(ctx context.Context, id string) (*consign.Org, error)
	OrgEndpointsVersion(ctx context.Context, orgID string) (int64, error)
	EndpointListAll(ctx context.Context, orgID string) ([]*store.EndpointRow, error)
	EventTypeGet(ctx context.Context, name string) (*consign.EventType, error)
	EventsInsert(ctx context.Context, ws []*store.EventWrite) error
}

// Service accepts events.
type Service struct {
	store   Store
	cfg     Config
	queue   chan *request
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
	types   typeCache
	// endpoints is fan-out's view of each org's endpoints (fanout.go); commit loop only.
	endpoints endpointCache
}

// EventInput is an event as a client sends it.
type EventInput struct {
	Type           string          `json:"type"`
	Payload        json.RawMessage `json:"payload"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	OrderingKey    string          `json:"ordering_key,omitempty"`

	// checkedBy is the type entry whose check accepted Payload as the API read it
	// (ReadPayload), and keys the business keys that check found: validate does not
	// read Payload again while the type's entry is still that one.
	checkedBy *typeEntry
	keys      []string
}

// Result is one accepted event: new, or the first one with its idempotency key.
type Result struct {
	Event     *consign.Event
	Duplicate bool
}

type request struct {
	orgID  string
	writes []*store.EventWrite
	err    chan error
	span   trace.SpanContext // of the publish, when traced
}

// Defaults of Config.
const (
	DefaultMaxBatchEvents    = 5000
	DefaultSharedBatchEvents = 250
	DefaultMaxPayload        = 256 << 10
)

// WithDefaults returns c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxBatchEvents == 0 {
		c.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if c.SharedBatchEvents == 0 {
		c.SharedBatchEvents = DefaultSharedBatchEvents
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Tracer == nil {
		c.Tracer = noop.NewTracerProvider().Tracer("")
	}
	return c
}

// Validate reports every setting of c (with its defaults applied) that cannot work,
// naming each.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBatchEvents <= 0 {
		errs = append(errs, fmt.Errorf("MaxBatchEvents is %d; it must be positive", c.MaxBatchEvents))
	}
	if c.SharedBatchEvents <= 0 {
		errs = append(errs, fmt.Errorf("SharedBatchEvents is %d; it must be positive", c.SharedBatchEvents))
	}
	if c.MaxPayload <= 0 {
		errs = append(errs, fmt.Errorf("MaxPayload is %d; it must be positive", c.MaxPayload))
	}
	return errors.Join(errs...)
}

// New starts the committer; Close stops it. cfg gets its defaults; New panics when it
// does not pass Validate (the composition root validates its settings first).
func New(s Store, cfg Config) *Service {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic("ingest: invalid settings: " + err.Error())
	}
	svc := &Service{store: s, cfg: cfg, queue: make(chan *request, 4096), done: make(chan struct{}), stopped: make(chan struct{})}
	svc.endpoints = newEndpointCache(s, cfg.Logger)
	svc.types = typeCache{store: s, ttl: 2 * time.Second, now: cfg.Now, entries: map[string]*typeEntry{}}
	go svc.commitLoop()
	return svc
}

// ForgetType makes the next event of type name read the type from the catalog again
// (its schema or versions changed on this node).
func (s *Service) ForgetType(name string) { s.types.forget(name) }

// Close stops accepting events and waits for queued ones to be written.
func (s *Service) Close() {
	s.once.Do(func() { close(s.done) })
	<-s.stopped
}

// Publish validates, fans out and durably writes events of one org, all or none. It
// returns when they are on disk.
func (s *Service) Publish(ctx context.Context, orgID string, in []EventInput) ([]Result, error) {
	if len(in) == 0 {
		return nil, consign.Invalid("events", "at least one event is required")
	}
	if len(in) > consign.MaxBatch {
		return nil, &consign.Error{Code: consign.ETOOLARGE, Message: fmt.Sprintf("at most %d events in one batch", consign.MaxBatch)}
	}
	ctx, span := s.cfg.Tracer.Start(ctx, "consign.ingest.publish", trace.WithAttributes(
		attribute.String("consign.org_id", orgID), attribute.Int("consign.events", len(in))))
	defer span.End()
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	req := &request{orgID: orgID, writes: make([]*store.EventWrite, len(in)), err: make(chan error, 1), span: span.SpanContext()}
	// The batch's records in two allocations, not two an event: nothing keeps them past
	// the reply (the dispatcher's claims copy what they need).
	events, writes := make([]consign.Event, len(in)), make([]store.EventWrite, len(in))
	var types typeMemo
	for i := range in {
		at := -1
		if len(in) > 1 {
			at = i
		}
		keys, err := s.validate(ctx, at, &in[i], &types)
		if err != nil {
			return nil, err
		}
		events[i] = consign.Event{
			ID: consign.NewID(consign.PrefixEvent, now), OrgID: orgID, Type: in[i].Type, Payload: in[i].Payload,
			IdempotencyKey: in[i].IdempotencyKey, OrderingKey: in[i].OrderingKey, CreatedAt: now,
		}
		writes[i] = store.EventWrite{Event: &events[i], Keys: keys}
		req.writes[i] = &writes[i]
	}
	if err := s.enqueue(ctx, req); err != nil {
		span.SetStatus(codes.Error, consign.ErrorMessage(err))
		return nil, err
	}
	out := make([]Result, len(req.writes))
	dups := 0
	for i, w := range req.writes {
		out[i] = Result{Event: w.Event, Duplicate: w.Duplicate}
		if w.Duplicate {
			dups++
		}
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Accepted(len(out)-dups, dups)
	}
	return out, nil
}

// validate checks an event as a client sent it, the one at index at of a batch (-1:
// the only one), and returns its business keys. types holds the type of the event
// checked before it.
func (s *Service) validate(ctx context.Context, at int, in *EventInput, types *typeMemo) ([]string, error) {
	// The field's name as an error gives it: events[3].payload in a batch. Only
	// written for an error: a batch of a thousand good events would format a thousand.
	name := func(field string) string {
		if at < 0 {
			return field
		}
		return fmt.Sprintf("events[%d].%s", at, field)
	}
	var v consign.Validation
	if msg := consign.ValidTypeName(in.Type); msg != "" {
		v.Add(name("type"), "%s", msg)
	}
	if len(in.Payload) == 0 || string(in.Payload) == "null" {
		v.Add(name("payload"), "is required (any JSON value except null)")
	} else if len(in.Payload) > s.cfg.MaxPayload {
		v.Add(name("payload"), "must be at most %d bytes", s.cfg.MaxPayload)
	}
	for _, key := range [...]struct{ field, value string }{{"idempotency_key", in.IdempotencyKey}, {"ordering_key", in.OrderingKey}} {
		if len(key.value) > consign.MaxKeyLength || !utf8.ValidString(key.value) || strings.ContainsAny(key.value, "\x00\r\n") {
			v.Add(name(key.field), "must be at most %d bytes of text on one line", consign.MaxKeyLength)
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if strings.HasPrefix(in.Type, consign.OperationalPrefix) {
		return nil, consign.Invalid(name("type"), "types starting with %q are Consign's own events", consign.OperationalPrefix)
	}
	t, err := types.get(ctx, &s.types, in.Type)
	if consign.ErrorCode(err) == consign.ENOTFOUND {
		return nil, consign.Invalid(name("type"), "%q is not in the event-type catalog; add it with POST /v1/event-types", in.Type)
	} else if err != nil {
		return nil, err
	}
	if in.checkedBy == t {
		return in.keys, nil
	}
	keys, err := t.check(in.Payload)
	if err != nil {
		return nil, consign.Invalid(name("payload"), "does not match the schema of %s: %s", in.Type, err.Error())
	}
	return keys, nil
}

// ReadPayload checks the payload of an event of type typ where it stands in a request
// body: the JSON value at the start of b, read once, for its syntax and the type's
// schema, noting its business keys in in. It returns the value's length when the type's
// one-pass check accepted it; then the caller sets in.Payload to exactly those bytes
// (its own copy) and Publish does not read them again. It returns -1 when the type is
// unknown or has no schema, or the check did not accept the value (invalid JSON, refused
// by the schema, or unsure): the caller finds the value's end and validates its syntax
// itself, and Publish checks it and reports what is wrong, as for any other payload.
// verbatim says that encoding/json writes the value, as a json.RawMessage, exactly as it
// is (schema.Schema.ValidatePrefix).
//
// prev, when not nil, is the event read before in from the same body: when it has the
// same type and its payload was checked, its type's entry is taken again instead of
// being looked up (a batch's events mostly share their type).
func (s *Service) ReadPayload(ctx context.Context, typ string, b []byte, in, prev *EventInput) (n int, verbatim bool) {
	var t *typeEntry
	if prev != nil && prev.Type == typ {
		t = prev.checkedBy
	}
	if t == nil {
		if consign.ValidTypeName(typ) != "" || strings.HasPrefix(typ, consign.OperationalPrefix) {
			return -1, false
		}
		var err error
		if t, err = s.types.get(ctx, typ); err != nil {
			return -1, false
		}
	}
	if t.schema == nil {
		return -1, false
	}
	var buf [consign.MaxEventTypeKeys][]byte
	tops := t.keys.Tops()
	fields := buf[:len(tops)]
	n, verbatim = t.schema.ValidatePrefix(b, tops, fields)
	if n < 0 {
		return -1, false
	}
	in.checkedBy, in.keys = t, nil
	if t.keys != nil {
		in.keys = t.keys.FromFields(fields)
	}
	return n, verbatim
}

// Emit publishes one of Consign's own operational events (consign.*) into an org: it is
// fanned out and written like any other event, without the checks meant for clients.
func (s *Service) Emit(ctx context.Context, orgID, typ string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s payload: %w", typ, err)
	}
	var keys []string
	if t, err := s.types.get(ctx, typ); err == nil && t.keys != nil {
		keys = t.keys.FromDoc(&filter.Doc{Payload: b})
	}
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	req := &request{orgID: orgID, err: make(chan error, 1), writes: []*store.EventWrite{{Event: &consign.Event{
		ID: consign.NewID(consign.PrefixEvent, now), OrgID: orgID, Type: typ, Payload: b, CreatedAt: now,
	}, Keys: keys}}}
	return s.enqueue(ctx, req)
}

func (s *Service) enqueue(ctx context.Context, req *request) error {
	select {
	case s.queue <- req:
	case <-s.done:
		return consign.Errorf(consign.EUNAVAILABLE, "shutting down; retry on another node or later")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.err:
		return err
	case <-s.stopped:
		// The queue may have taken req after the commit loop's last look at it.
		select {
		case err := <-req.err:
			return err
		default:
			return consign.Errorf(consign.EUNAVAILABLE, "shutting down; retry on another node or later")
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) commitLoop() {
	defer close(s.stopped)
	for {
		var first *request
		select {
		case first = <-s.queue:
		case <-s.done:
			// Write what was queued before Close so no caller is left waiting.
			for {
				select {
				case r := <-s.queue:
					s.commit([]*request{r})
				default:
					return
				}
			}
		}
		batch, n := []*request{first}, len(first.writes)
		limit := s.cfg.MaxBatchEvents
		if s.cfg.Writer != nil && s.cfg.Writer.WriterShared() {
			limit = min(limit, s.cfg.SharedBatchEvents)
		}
	drain:
		for n < limit {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
				n += len(r.writes)
			default:
				break drain
			}
		}
		s.commit(batch)
	}
}

// commit fans out and writes a batch of requests in one transaction. When that fails,
// each request is retried alone so one bad request cannot fail the others.
func (s *Service) commit(batch []*request) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ok := batch[:0:0]
	orgs := map[string]*orgView{}
	for _, r := range batch {
		if err := s.fanOut(ctx, r, orgs); err != nil {
			r.err <- err
		} else {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return
	}
	if s.write(ctx, ok) == nil || len(ok) == 1 {
		return
	}
	for _, r := range ok {
		_ = s.write(ctx, []*request{r})
	}
}

// write commits the requests' events and deliveries in one transaction, answers the
// requests when it succeeded, and hands the new deliveries to the dispatcher. A failed
// write of several requests is left for the caller to retry one by one.
func (s *Service) write(ctx context.Context, rs []*request) error {
	var writes []*store.EventWrite
	for _, r := range rs {
		writes = append(writes, r.writes...)
	}
	lease := s.lease(writes)
	err := s.store.EventsInsert(ctx, writes)
	if err != nil {
		s.unlease(writes)
		if len(rs) > 1 {
			return err
		}
		s.cfg.Logger.Error("write events", "org", rs[0].orgID, "events", len(writes), "err", err)
		if consign.ErrorCode(err) == consign.EINTERNAL {
			err = errors.Join(consign.Errorf(consign.EUNAVAILABLE, "the event store could not write; nothing was accepted, retry"), err)
		}
		rs[0].err <- err
		return err
	}
	for _, r := range rs {
		r.err <- nil
	}
	s.handoff(writes, lease)
	return nil
}

// lease reserves dispatcher room for new deliveries and marks as many of them to be
// written leased. Ordered and coalescing endpoints are left to claims: only a claim
// applies their per-key rules. Inactive endpoints' deliveries are written paused.
func (s *Service) lease(writes []*store.EventWrite) time.Time {
	d := s.cfg.Dispatcher
	if d == nil {
		return time.Time{}
	}
	now := s.cfg.Now()
	want := map[string]int{}
	eps := map[string]*store.EndpointRow{}
	for _, w := range writes {
		for _, nd := range w.Deliveries {
			if nd.OrderingKey == "" && !nd.Coalesce && nd.Endpoint.Active {
				want[nd.EndpointID]++
				eps[nd.EndpointID] = nd.Endpoint
			}
		}
	}
	granted := make(map[string]int, len(want))
	var until time.Time
	for id, n := range want {
		k, t := d.Reserve(&eps[id].Endpoint, n, now)
		granted[id] = k
		if k > 0 {
			until = t
		}
	}
	for _, w := range writes {
		for i := range w.Deliveries {
			nd := &w.Deliveries[i]
			nd.LeaseUntil = time.Time{}
			if nd.OrderingKey == "" && !nd.Coalesce && nd.Endpoint.Active && granted[nd.EndpointID] > 0 {
				granted[nd.EndpointID]--
				nd.LeaseUntil = until
			}
		}
	}
	return until
}

// unlease gives the dispatcher back what lease reserved.
func (s *Service) unlease(writes []*store.EventWrite) {
	if s.cfg.Dispatcher == nil {
		return
	}
	n := map[string]int{}
	for _, w := range writes {
		for _, nd := range w.Deliveries {
			if !nd.LeaseUntil.IsZero() {
				n[nd.EndpointID]++
			}
		}
	}
	for id, k := range n {
		s.cfg.Dispatcher.Release(id, k)
	}
}

// handoff gives the dispatcher the deliveries written leased, and wakes it for the
// others. Deliveries of an idempotent repeat were not written, and those written paused
// (their endpoint was deactivated since fan-out) were not leased: their room is released.
func (s *Service) handoff(writes []*store.EventWrite, leaseEnd time.Time) {
	d := s.cfg.Dispatcher
	if d == nil {
		return
	}
	var claims []*store.Claim
	var pending []string
	released := map[string]int{}
	for _, w := range writes {
		var shared *store.EventShared
		if len(w.Deliveries) > 1 {
			shared = &store.EventShared{} // a fan-out: its deliveries send one body
		}
		for _, nd := range w.Deliveries {
			switch {
			case nd.LeaseUntil.IsZero():
				if !w.Duplicate && !nd.Paused {
					pending = append(pending, nd.EndpointID)
				}
			case w.Duplicate, nd.Paused:
				released[nd.EndpointID]++
			default:
				ev := w.Event
				claims = append(claims, &store.Claim{
					DeliveryID: nd.ID, OrgID: ev.OrgID, EndpointID: nd.EndpointID, EndpointVersion: nd.Endpoint.Version,
					EventID: ev.ID, EventType: ev.Type, Payload: ev.Payload, EventCreatedAt: ev.CreatedAt, Deadline: nd.Deadline,
					TraceParent: nd.TraceParent, Shared: shared,
				})
			}
		}
	}
	for id, k := range released {
		d.Release(id, k)
	}
	if len(claims) > 0 {
		d.Handoff(claims, leaseEnd)
	}
	if len(pending) > 0 {
		d.Wake(pending...)
	}
}

// fanOut attaches to each event of r one delivery per endpoint of the org that
// subscribes to its type, may receive it and whose filter passes it (else the endpoint
// is noted in Filtered, to be counted); an inactive endpoint's is written paused.
func (s *Service) fanOut(ctx context.Context, r *request, orgs map[string]*orgView) error {
	v, ok := orgs[r.orgID]
	if !ok {
		// Once per org per batch: the org and its endpoints as of this commit.
		org, err := s.store.OrgGet(ctx, r.orgID)
		if err != nil {
			return err
		}
		eps, err := s.endpoints.get(ctx, r.orgID)
		if err != nil {
			return err
		}
		v = &orgView{org: org, endpoints: eps}
		orgs[r.orgID] = v
	}
	org, eps := v.org, v.endpoints
	var traceParent string
	if r.span.IsValid() {
		var span trace.Span
		_, span = s.cfg.Tracer.Start(trace.ContextWithSpanContext(ctx, r.span), "consign.ingest.fan_out")
		defer func() {
			n := 0
			for _, w := range r.writes {
				n += len(w.Deliveries)
			}
			span.SetAttributes(attribute.Int("consign.deliveries", n))
			span.End()
		}()
		traceParent = formatTraceParent(span.SpanContext())
	}
	var types typeMemo
	var doc filter.Doc // one for the request's events in turn: filters do not keep it
	for _, w := range r.writes {
		w.Deliveries, w.Filtered = w.Deliveries[:0], w.Filtered[:0]
		if t, _ := types.get(ctx, &s.types, w.Event.Type); t != nil && !org.Role.May(t.availableFor) {
			continue
		}
		doc = filter.Doc{Type: w.Event.Type, Payload: w.Event.Payload, OrderingKey: w.Event.OrderingKey}
		for _, sub := range eps.subscribers(w.Event.Type) {
			ep := sub.ep
			if !sub.filter.Match(&doc) {
				w.Filtered = append(w.Filtered, ep.ID)
				continue
			}
			nd := store.NewDelivery{
				ID:          consign.NewID(consign.PrefixDelivery, w.Event.CreatedAt),
				EndpointID:  ep.ID,
				Endpoint:    ep,
				Deadline:    w.Event.CreatedAt.Add(time.Duration(ep.Retry.MaxAge)),
				TraceParent: traceParent,
			}
			if ep.Ordering == consign.OrderingKey || ep.Coalesce {
				nd.OrderingKey = w.Event.OrderingKey
				nd.Ordered = ep.Ordering == consign.OrderingKey
				nd.Coalesce = ep.Coalesce
			}
			w.Deliveries = append(w.Deliveries, nd)
		}
	}
	return nil
}

// formatTraceParent writes a span context as a W3C traceparent header value.
func formatTraceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return fmt.Sprintf("00-%s-%s-%02x", sc.TraceID(), sc.SpanID(), byte(sc.TraceFlags()))
}
