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
	"github.com/consign-dev/consign/internal/inbound"
	"github.com/consign-dev/consign/internal/sender"
	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/internal/store"
)

// attempt sends c once and decides the delivery's next state. final makes any failure
// final (test sends). rtt is the request's round trip as the sender measured it (0 when
// nothing was sent): the partner's answer and the network, without this process's own
// work before and after (endpoint lookups, signing, the attempt record).
func (d *Dispatcher) attempt(ctx context.Context, c *store.Claim, final bool) (o *store.Outcome, rtt time.Duration) {
	now := d.cfg.Now()
	o = &store.Outcome{DeliveryID: c.DeliveryID, EndpointID: c.EndpointID, At: now}
	ep, err := d.cache.get(ctx, c, now)
	switch {
	case consign.ErrorCode(err) == consign.ENOTFOUND:
		o.Status = consign.StatusCancelled
		return o, rtt
	case err != nil:
		d.log.Error("load endpoint", "endpoint", c.EndpointID, "err", err)
		o.Status, o.NextAttemptAt = consign.StatusPending, now.Add(5*time.Second)
		return o, rtt
	case !ep.endpoint.Active:
		o.Status = consign.StatusPaused
		return o, rtt
	}
	req := buildRequest(ep, c, now)
	if trace.SpanContextFromContext(ctx).IsValid() {
		// The endpoint may continue the trace; the header shows in the attempt record.
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	var res sender.Outcome
	if ep.endpoint.Auth.Type != consign.AuthToken && req.Header.Get("Webhook-Signature") == "" {
		// Never send unsigned: the receiver could not tell it from a forgery.
		res = sender.Outcome{Class: sender.Failure, StartedAt: now,
			Err: "not sent: the endpoint has no active signing secret; add one with POST …/endpoints/" + c.EndpointID + "/secrets"}
	} else {
		res = d.sender.Send(ctx, req)
		rtt = res.Duration
	}
	if ctx.Err() != nil && res.Class != sender.Success {
		// Shutting down mid-attempt: the outcome says nothing about the endpoint. Leave the
		// lease to expire so the delivery is sent again after restart.
		o.Status, o.NextAttemptAt = consign.StatusPending, now
		return o, rtt
	}
	n := c.AttemptsCount + 1
	o.Attempt = attemptRecord(n, req, &res, ep.endpoint)
	o.At = res.StartedAt.Add(res.Duration)
	switch res.Class {
	case sender.Success:
		o.Status = consign.StatusSucceeded
		o.ResponseReference, o.ResponseFields = responseValues(ep.endpoint, &res)
		return o, rtt
	case sender.Gone:
		reason := fmt.Sprintf("the endpoint answered 410 Gone on %s", o.At.Format(time.RFC3339))
		if err := d.endpoints.Deactivate(ctx, c.OrgID, c.EndpointID, reason); err != nil {
			d.log.Error("deactivate endpoint after 410", "endpoint", c.EndpointID, "err", err)
		}
		d.cache.forget(c.EndpointID)
		o.Status = consign.StatusPaused
		return o, rtt
	case sender.Throttled:
		d.hold(c.EndpointID, res.RetryAt)
	}
	if final {
		o.Status = consign.StatusFailed
		return o, rtt
	}
	next := o.At.Add(d.jitteredDelay(ep.endpoint.Retry, n))
	if res.Class == sender.Throttled && res.RetryAt.After(next) {
		next = res.RetryAt
	}
	if next.After(c.Deadline) {
		o.Status = consign.StatusFailed
		d.exhausted(c, n, o.Attempt)
		return o, rtt
	}
	o.Status, o.NextAttemptAt = consign.StatusPending, next
	return o, rtt
}

// buildRequest makes the HTTP request of an attempt. The body is the same bytes on every
// attempt (so receivers can compare), the timestamp and signature are per attempt.
func buildRequest(ep *endpointEntry, c *store.Claim, now time.Time) sender.Request {
	e := ep.endpoint
	body := c.Payload
	switch {
	case e.PayloadFormat == consign.FormatRaw:
	case c.Shared != nil:
		body = c.Shared.Envelope(func() []byte { return envelope(c) })
	default:
		body = envelope(c)
	}
	h := make(http.Header, 6+len(e.Headers))
	// Every value is a one-element slice of vals: one allocation, not one per header.
	vals := make([]string, 0, 6+len(e.Headers))
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for k, v := range e.Headers {
		set(k, v)
	}
	set("Content-Type", "application/json")
	set("User-Agent", consign.UserAgent)
	set("Webhook-Id", c.EventID)
	ts := now.Unix()
	set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
	if c.Sequence > 0 {
		set("Webhook-Sequence", strconv.FormatInt(c.Sequence, 10))
	}
	if e.Auth.Type == consign.AuthToken {
		set("Auth", e.Auth.Token)
	} else if keys := ep.keysAt(now); len(keys) > 0 {
		set("Webhook-Signature", signing.Header(keys, c.EventID, ts, body))
	}
	return sender.Request{Method: e.Method, URL: e.URL, Header: h, Body: body}
}

// envelope wraps the payload as {"id","type","timestamp","data"} without re-encoding it.
func envelope(c *store.Claim) []byte {
	ts := c.EventCreatedAt.UTC().Format(time.RFC3339Nano)
	b := make([]byte, 0, len(c.Payload)+len(c.EventID)+len(c.EventType)+len(ts)+48)
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, c.EventID)
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, c.EventType)
	b = append(b, `,"timestamp":"`...)
	b = append(b, ts...)
	b = append(b, `","data":`...)
	b = append(b, c.Payload...)
	return append(b, '}')
}

func attemptRecord(n int, req sender.Request, res *sender.Outcome, e *consign.Endpoint) *consign.Attempt {
	a := &consign.Attempt{
		N: n, StartedAt: res.StartedAt.UTC(), DurationMS: res.Duration.Milliseconds(),
		Request: consign.AttemptRequest{Method: req.Method, URL: req.URL, Headers: make(map[string]string, len(req.Header))},
	}
	for k, v := range req.Header {
		if v == nil {
			continue
		}
		if consign.SensitiveHeader(k) {
			a.Request.Headers[k] = "[redacted]"
		} else {
			a.Request.Headers[k] = strings.Join(v, ", ")
		}
	}
	if res.Status != 0 {
		r := &consign.AttemptResponse{Status: res.Status, Headers: make(map[string]string, len(res.Header)),
			Body: string(res.Body), Truncated: res.Truncated}
		for k, v := range res.Header {
			r.Headers[k] = strings.Join(v, ", ")
		}
		a.Response = r
	}
	if res.Err != "" && res.Class != sender.Success {
		msg := res.Err
		a.Error = &msg
	}
	return a
}

// responseValues returns what the endpoint's response_reference_pointer and
// response_fields find in a successful JSON reply: each a string as its text, another
// value as its compact JSON. A pointer with no value there (or null) gives nothing, and
// a reply that is not complete JSON gives nothing at all.
func responseValues(e *consign.Endpoint, res *sender.Outcome) (ref *string, fields map[string]string) {
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
