package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/inbound"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/transform"
)

// attempt makes one attempt at c and decides the delivery's next state. It runs the
// stages of the delivery pipeline that follow fan-out (docs/delivery-pipeline.md; the
// match stage, topics and the org's role, ran in internal/ingest):
//
//	endpoint      the endpoint's settings and signing keys, as of the claim (endpointOf)
//	shape         the body and the headers every attempt carries (shape)
//	authenticate  the proof of origin: the endpoint's credential and signature (auth.go)
//	send          the Sender the URL's scheme chose (internal/destination)
//	decide        succeeded, retried, failed, or paused after 410 Gone (decide)
//
// A stage either passes the attempt on or ends it with the delivery's next state in o,
// which the record stage (recorder.go) writes with the attempt. final makes any failure
// final (test sends). rtt is the request's round trip as the sender measured it (0 when
// nothing was sent, or when the URL's kind is pipelined): the partner's answer and the
// network, without this process's own work before and after (endpoint lookups, signing,
// the attempt record). unsent says that the endpoint's transformation ended the attempt
// (cancelled or failed) before any request: its attempt row says nothing of the
// endpoint's health or speed.
func (d *Dispatcher) attempt(ctx context.Context, c *store.Claim, final bool) (o *store.Outcome, rtt time.Duration, unsent bool) {
	now := d.cfg.Now()
	rec := &outcomeRecord{Outcome: store.Outcome{DeliveryID: c.DeliveryID, EndpointID: c.EndpointID, At: now}}
	o = &rec.Outcome
	ep := d.endpointOf(ctx, c, now, o)
	if ep == nil {
		return o, rtt, false
	}
	c, refusal, err := d.downgrade(ctx, ep.endpoint, c, now)
	if err != nil {
		d.log.Error("load event type versions", "type", c.EventType, "err", err)
		o.Status, o.NextAttemptAt = consign.StatusPending, now.Add(5*time.Second)
		return o, rtt, false
	}
	var e *consign.Endpoint
	if refusal == "" {
		e, c, refusal = d.transform(ep, c)
	}
	switch {
	case refusal != "":
		// A downgrade or transformation that fails would fail again: the delivery fails
		// now, with the request as it would have gone without it.
		req, _ := shape(ep.endpoint, c, now.Unix(), nil)
		res := destination.Outcome{Class: destination.Failure, StartedAt: now, Err: refusal}
		d.decide(ctx, c, rec, req, &res, ep.endpoint, true)
		if !final {
			d.exhausted(c, o.Attempt.N, o.Attempt)
		}
		return o, rtt, true
	case e == nil:
		// Cancelled by the transformation: the attempt row says so, and nothing is sent.
		o.Status = consign.StatusCancelled
		msg := "cancelled by the endpoint's transformation (webhook.cancel = true); nothing was sent"
		o.Attempt = &consign.Attempt{N: c.AttemptsCount + 1, StartedAt: now.UTC(), Error: &msg,
			Request: consign.AttemptRequest{Method: ep.endpoint.Method, URL: consign.MaskURL(ep.endpoint.URL), Headers: map[string]string{}}}
		return o, rtt, true
	}
	req, hs := shape(e, c, now.Unix(), rec.headerValues[:0])
	req.TLS = ep.tls
	if trace.SpanContextFromContext(ctx).IsValid() {
		// The endpoint may continue the trace; the header shows in the attempt record.
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	var res destination.Outcome
	refusal = ep.tlsErr
	if refusal == "" {
		refusal = d.authenticate(ctx, &hs, ep, c, req.Body, now)
	}
	if refusal != "" {
		res = destination.Outcome{Class: destination.Failure, StartedAt: now, Err: refusal}
	} else {
		res = d.sender.Send(ctx, req)
		rtt = d.roundTrip(req.URL, res)
		if res.Status == http.StatusUnauthorized && ep.endpoint.Auth.Type == consign.AuthOAuth2 {
			// The partner no longer takes this access token: the next attempt fetches one.
			d.tokens.drop(c.EndpointID, strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
		}
	}
	if ctx.Err() != nil && res.Class != destination.Success {
		// Shutting down mid-attempt: the outcome says nothing about the endpoint. Leave the
		// lease to expire so the delivery is sent again after restart.
		o.Status, o.NextAttemptAt = consign.StatusPending, now
		return o, rtt, false
	}
	// e: the attempt log masks the headers the request carried as the endpoint's own,
	// those the transformation set included.
	d.decide(ctx, c, rec, req, &res, e, final)
	return o, rtt, false
}

// roundTrip is the round trip of an attempt to url that got res, as the endpoint's
// window takes it: the sender's measure, or 0 (no sample) for a pipelined kind.
func (d *Dispatcher) roundTrip(url string, res destination.Outcome) time.Duration {
	if p, ok := d.sender.(pipeliner); ok && p.Pipelined(url) {
		return 0
	}
	return res.Duration
}

// endpointOf is the endpoint stage: the endpoint's settings and opened signing keys, as
// of the claim's endpoint version (cache.go). It returns nil when the attempt ends here,
// with no request made and o saying what becomes of the delivery: cancelled when the
// endpoint was deleted, due again in 5 s when it could not be read, paused while it is
// inactive.
func (d *Dispatcher) endpointOf(ctx context.Context, c *store.Claim, now time.Time, o *store.Outcome) *endpointEntry {
	ep, err := d.cache.get(ctx, c, now)
	switch {
	case consign.ErrorCode(err) == consign.ENOTFOUND:
		o.Status = consign.StatusCancelled
		return nil
	case err != nil:
		d.log.Error("load endpoint", "endpoint", c.EndpointID, "err", err)
		o.Status, o.NextAttemptAt = consign.StatusPending, now.Add(5*time.Second)
		return nil
	case !ep.endpoint.Active:
		o.Status = consign.StatusPaused
		return nil
	}
	return ep
}

// transform runs the endpoint's transformation, part of the shape stage: it returns the
// endpoint and claim to shape, changed as the code said (payload, URL, method,
// headers), or ep's own when there is none. A nil endpoint with no refusal means the code
// cancelled the delivery; a refusal is why it failed (a throw, a time-out, a value the
// endpoint's rules refuse). It runs on the attempt's goroutine, bounded by
// transform.Limit.
func (d *Dispatcher) transform(ep *endpointEntry, c *store.Claim) (*consign.Endpoint, *store.Claim, string) {
	e := ep.endpoint
	if e.Transformation == "" {
		return e, c, ""
	}
	if ep.scriptErr != nil {
		return nil, c, "not sent: the endpoint's transformation " + ep.scriptErr.Error()
	}
	out, err := ep.script.Run(&transform.Webhook{Type: c.EventType, Payload: c.Payload, URL: e.URL,
		Method: e.Method, Headers: e.Headers}, d.cfg.CheckURL)
	if err != nil {
		return nil, c, "not sent: " + err.Error()
	}
	if out.Cancel {
		return nil, c, ""
	}
	te, tc := *e, *c
	te.URL, te.Method, te.Headers = out.URL, out.Method, out.Headers
	// The envelope shared by the event's deliveries holds the payload as published.
	tc.Payload, tc.Shared = out.Payload, nil
	return &te, &tc, ""
}

// shape is the shape stage: the request of an attempt but for its proof of origin. The
// body is the Standard Webhooks envelope, or the payload alone for an endpoint that takes
// it raw, the same bytes on every attempt (so receivers can compare); the headers are the
// endpoint's own and the Standard Webhooks ones, with this attempt's timestamp ts. e and
// c are as the endpoint's transformation left them (transform), before anything is
// signed. The header values go into vals when it has room for them all.
func shape(e *consign.Endpoint, c *store.Claim, ts int64, vals []string) (destination.Request, headerSet) {
	body := c.Payload
	switch {
	case e.PayloadFormat == consign.FormatRaw:
	case c.Shared != nil:
		body = c.Shared.Envelope(func() []byte { return envelope(c) })
	default:
		body = envelope(c)
	}
	hs := newHeaderSet(8+len(e.Headers), vals) // the five below and the proof of origin (up to three)
	for k, v := range e.Headers {
		hs.set(k, v)
	}
	hs.set("Content-Type", "application/json")
	hs.set("User-Agent", consign.UserAgent)
	hs.set("Webhook-Id", c.EventID)
	hs.set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
	if c.Sequence > 0 {
		hs.set("Webhook-Sequence", strconv.FormatInt(c.Sequence, 10))
	}
	return destination.Request{Method: e.Method, URL: e.URL, Header: hs.h, Body: body, Key: c.OrderingKey}, hs
}

// headerSet fills an attempt's header map. Every value is a one-element slice of one
// backing array: no allocation for the values when the caller's vals has room for n of
// them (an outcomeRecord's), else one for all, not one per header.
type headerSet struct {
	h    http.Header
	vals []string
}

func newHeaderSet(n int, vals []string) headerSet {
	if cap(vals) < n {
		vals = make([]string, 0, n)
	}
	return headerSet{h: make(http.Header, n), vals: vals[:0]}
}

func (s *headerSet) set(k, v string) {
	s.vals = append(s.vals, v)
	s.h[k] = s.vals[len(s.vals)-1 : len(s.vals) : len(s.vals)]
}

// decide is the decide stage: it takes what the send stage reported into the delivery's
// next state in o, with the attempt's record. Success: succeeded, with the values the
// endpoint keeps from the reply. Gone (410): the endpoint is deactivated and the delivery
// paused. Anything else is retried at the endpoint's next backoff (Throttled: no sooner
// than Retry-After, and the whole endpoint holds until then), or failed when that would
// pass the delivery's deadline (the org is told: consign.delivery.exhausted) or when
// final.
func (d *Dispatcher) decide(ctx context.Context, c *store.Claim, rec *outcomeRecord, req destination.Request, res *destination.Outcome, e *consign.Endpoint, final bool) {
	o := &rec.Outcome
	// A 2xx outside the endpoint's success_statuses (ReadyCloud: only 200) is a failure.
	refused := res.Class == destination.Success && res.Ack == nil && !e.Succeeds(res.Status)
	if refused {
		res.Class = destination.Failure
		res.Err = fmt.Sprintf("status %d is not one of the endpoint's success_statuses %v", res.Status, e.SuccessStatuses)
	}
	n := c.AttemptsCount + 1
	o.Attempt = rec.attemptRecord(n, req, res, e)
	o.Attempt.Refused = refused
	o.At = res.StartedAt.Add(res.Duration)
	switch res.Class {
	case destination.Success:
		o.Status = consign.StatusSucceeded
		o.ResponseReference, o.ResponseFields = responseValues(e, res)
		return
	case destination.Gone:
		reason := fmt.Sprintf("the endpoint answered 410 Gone on %s", o.At.Format(time.RFC3339))
		if err := d.endpoints.Deactivate(ctx, c.OrgID, c.EndpointID, reason); err != nil {
			d.log.Error("deactivate endpoint after 410", "endpoint", c.EndpointID, "err", err)
		}
		d.cache.forget(c.EndpointID)
		o.Status = consign.StatusPaused
		return
	case destination.Throttled:
		d.hold(c.EndpointID, res.RetryAt)
	}
	if final {
		o.Status = consign.StatusFailed
		return
	}
	next := o.At.Add(d.jitteredDelay(e.Retry, n))
	if res.Class == destination.Throttled && res.RetryAt.After(next) {
		next = res.RetryAt
	}
	if next.After(c.Deadline) {
		o.Status = consign.StatusFailed
		d.exhausted(c, n, o.Attempt)
		return
	}
	o.Status, o.NextAttemptAt = consign.StatusPending, next
}

// envelope wraps the payload as {"id","type","timestamp","data"} without re-encoding it.
func envelope(c *store.Claim) []byte {
	// 60: the envelope's own bytes; 35: the longest RFC 3339 time with nanoseconds.
	b := make([]byte, 0, len(c.Payload)+len(c.EventID)+len(c.EventType)+len(c.Version)+60+35)
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, c.EventID)
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, c.EventType)
	if c.Version != "" {
		b = append(b, `,"version":`...)
		b = strconv.AppendQuote(b, c.Version)
	}
	b = append(b, `,"timestamp":"`...)
	b = c.EventCreatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	b = append(b, c.Payload...)
	return append(b, '}')
}

// outcomeRecord is an attempt's outcome with room for its attempt record, the reply and
// the request's header values: one allocation where there were four, as they live and
// die together (until the recorder has written them).
type outcomeRecord struct {
	store.Outcome
	attempt  consign.Attempt
	response consign.AttemptResponse
	// headerValues holds the values of the request's headers (headerSet) when there are
	// no more than the eight an attempt may set itself (shape).
	headerValues [8]string
}

// attemptRecord is what the attempt log keeps of an attempt, in rec: the request with
// its secrets redacted (the values of the endpoint's own headers masked, whatever they
// are called, and credential-like headers hidden), the reply if there was one, and the
// error text.
func (rec *outcomeRecord) attemptRecord(n int, req destination.Request, res *destination.Outcome, e *consign.Endpoint) *consign.Attempt {
	a := &rec.attempt
	*a = consign.Attempt{
		N: n, StartedAt: res.StartedAt.UTC(), DurationMS: res.Duration.Milliseconds(),
		Request: consign.AttemptRequest{Method: req.Method, URL: consign.MaskURL(req.URL), Headers: make(map[string]string, len(req.Header))},
	}
	for k, v := range req.Header {
		if v == nil {
			continue
		}
		if _, own := e.Headers[http.CanonicalHeaderKey(k)]; own {
			a.Request.Headers[k] = consign.Mask(strings.Join(v, ", "))
		} else if consign.SensitiveHeader(k) {
			a.Request.Headers[k] = consign.Redacted
		} else {
			a.Request.Headers[k] = strings.Join(v, ", ")
		}
	}
	if res.Ack != nil {
		rec.response = consign.AttemptResponse{Ack: res.Ack}
		a.Response = &rec.response
	} else if res.Status != 0 {
		r := &rec.response
		*r = consign.AttemptResponse{Status: res.Status, Headers: make(map[string]string, len(res.Header)),
			Body: string(res.Body), Truncated: res.Truncated}
		for k, v := range res.Header {
			r.Headers[k] = strings.Join(v, ", ")
		}
		a.Response = r
	}
	if res.Err != "" && res.Class != destination.Success {
		msg := res.Err
		a.Error = &msg
	}
	return a
}

// responseValues returns what the endpoint's response_reference_pointer and
// response_fields find in a successful JSON reply: each a string as its text, another
// value as its compact JSON. A pointer with no value there (or null) gives nothing, and
// a reply that is not complete JSON gives nothing at all.
func responseValues(e *consign.Endpoint, res *destination.Outcome) (ref *string, fields map[string]string) {
	if (e.ResponseReferencePointer == "" && len(e.ResponseFields) == 0) || res.Truncated || !json.Valid(res.Body) {
		return nil, nil
	}
	if e.ResponseReferencePointer != "" {
		if v, ok := responseValue(e.ResponseReferencePointer, res.Body); ok {
			ref = &v
		}
	}
	for name, pointer := range e.ResponseFields {
		if v, ok := responseValue(pointer, res.Body); ok {
			if fields == nil {
				fields = make(map[string]string, len(e.ResponseFields))
			}
			fields[name] = v
		}
	}
	return ref, fields
}

// responseValue returns the value at pointer in a JSON document as a string.
func responseValue(pointer string, body []byte) (string, bool) {
	p, err := inbound.ParsePointer(pointer)
	if err != nil {
		return "", false
	}
	v, ok := p.Lookup(body)
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		var b bytes.Buffer
		if json.Compact(&b, v) != nil || b.String() == "null" {
			return "", false
		}
		s = b.String()
	}
	// PostgreSQL's text holds no NUL, and a reference never needs one.
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) > maxResponseValue {
		n := maxResponseValue
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return s, true
}

// maxResponseValue bounds each value kept from a reply, in bytes.
const maxResponseValue = 1000

// exhausted tells the org that a delivery failed for good (consign.delivery.exhausted),
// unless the delivery was itself such a notice: that would loop.
func (d *Dispatcher) exhausted(c *store.Claim, attempts int, last *consign.Attempt) {
	if d.emitter == nil || c.EventType == consign.TypeDeliveryExhausted {
		return
	}
	payload := map[string]any{
		"delivery_id": c.DeliveryID, "event_id": c.EventID, "event_type": c.EventType,
		"endpoint_id": c.EndpointID, "attempts": attempts,
	}
	if last != nil {
		if last.Response != nil {
			payload["last_status"] = last.Response.Status
		}
		if last.Error != nil {
			payload["last_error"] = *last.Error
		}
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.emitter.Emit(ctx, c.OrgID, consign.TypeDeliveryExhausted, payload); err != nil {
			d.log.Error("emit delivery exhausted", "delivery", c.DeliveryID, "err", err)
		}
	}()
}
