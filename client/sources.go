package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"

	"github.com/consign-dev/consign"
)

// Types of inbound sources, shared with the server.
type (
	// SourceVerify says how requests to a source are verified: type none, hmac-sha256,
	// standard-webhooks, basic or header-token, with that type's fields.
	SourceVerify = consign.SourceVerify
	// SourceDedupe names where the provider puts its event id: a header or a JSON pointer.
	SourceDedupe = consign.SourceDedupe
	// SourcePoll is a fallback sync of the provider's list, on an interval or a cron.
	SourcePoll = consign.SourcePoll
	// SourceFrom is a broker the source reads messages from: NATS JetStream, AMQP or
	// Kafka. The URL's credentials are masked in replies.
	SourceFrom = consign.SourceFrom
	// FromTLS is a broker source's own TLS settings: given as PEM documents, shown as
	// the certificates' subjects.
	FromTLS = consign.FromTLS
	// FromStatus is how the answering node's consumer of a source's broker is doing.
	FromStatus = consign.FromStatus
	// Receipt is one inbound request (or polled item) as received, with its verdict.
	Receipt = consign.Receipt
)

// Source is an inbound URL that receives one provider's webhooks and turns each into
// an event of Topic. IngestURL is the URL to give the provider.
type Source struct {
	consign.Source
	IngestURL string `json:"ingest_url"`
}

// SourceService manages an org's inbound sources and reads what they received.
type SourceService struct{ c *Client }

// SourceInput is a new source. A secret left out of Verify is generated and shown in
// the reply this once.
type SourceInput struct {
	Name   string        `json:"name"`
	Topic  string        `json:"topic"`
	Verify *SourceVerify `json:"verify,omitempty"`
	Dedupe *SourceDedupe `json:"dedupe,omitempty"`
	Poll   *SourcePoll   `json:"poll,omitempty"`
	From   *SourceFrom   `json:"from,omitempty"`
	// TypePointer or TypeHeader: where a request or message names its event type
	// (default: Topic).
	TypePointer string `json:"type_pointer,omitempty"`
	TypeHeader  string `json:"type_header,omitempty"`
}

// SourcePatch changes a source: nil fields keep their values, and an object replaces
// the current one whole. RemovePoll turns the fallback sync off; RemoveFrom stops reading
// the broker.
type SourcePatch struct {
	Name        *string
	Topic       *string
	Verify      *SourceVerify
	Dedupe      *SourceDedupe
	Poll        *SourcePoll
	RemovePoll  bool
	From        *SourceFrom
	RemoveFrom  bool
	TypePointer *string
	TypeHeader  *string
}

// MarshalJSON writes the fields that are set, and null for RemovePoll and RemoveFrom.
func (p SourcePatch) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for name, v := range map[string]any{"name": p.Name, "topic": p.Topic, "verify": p.Verify, "dedupe": p.Dedupe, "poll": p.Poll,
		"from": p.From, "type_pointer": p.TypePointer, "type_header": p.TypeHeader} {
		if !isNilPtr(v) {
			m[name] = v
		}
	}
	if p.RemovePoll {
		m["poll"] = nil
	}
	if p.RemoveFrom {
		m["from"] = nil
	}
	return json.Marshal(m)
}

func isNilPtr(v any) bool {
	switch x := v.(type) {
	case *string:
		return x == nil
	case *SourceVerify:
		return x == nil
	case *SourceDedupe:
		return x == nil
	case *SourcePoll:
		return x == nil
	case *SourceFrom:
		return x == nil
	}
	return v == nil
}

// Create makes a source.
func (s *SourceService) Create(ctx context.Context, org string, in SourceInput) (*Source, error) {
	var src Source
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "sources"), body: in, out: &src})
	return ptr(&src, err)
}

// List returns a page of an org's sources.
func (s *SourceService) List(ctx context.Context, org string, opts *ListOptions) (*Page[Source], error) {
	return list[Source](ctx, s.c, path("orgs", org, "sources"), opts.values())
}

// All iterates over every source of an org from opts.Cursor on.
func (s *SourceService) All(ctx context.Context, org string, opts *ListOptions) iter.Seq2[Source, error] {
	o := deref(opts)
	return all(ctx, o.Cursor, func(ctx context.Context, cursor string) (*Page[Source], error) {
		o.Cursor = cursor
		return s.List(ctx, org, &o)
	})
}

// Get returns a source.
func (s *SourceService) Get(ctx context.Context, org, id string) (*Source, error) {
	var src Source
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("orgs", org, "sources", id), out: &src})
	return ptr(&src, err)
}

// Update changes a source.
func (s *SourceService) Update(ctx context.Context, org, id string, p SourcePatch) (*Source, error) {
	var src Source
	_, err := s.c.do(ctx, request{method: http.MethodPatch, path: path("orgs", org, "sources", id), body: p, out: &src})
	return ptr(&src, err)
}

// Delete removes a source and its receipts.
func (s *SourceService) Delete(ctx context.Context, org, id string) error {
	_, err := s.c.do(ctx, request{method: http.MethodDelete, path: path("orgs", org, "sources", id)})
	return err
}

// RotateToken gives a source a new ingest URL; the old one stops working at once.
func (s *SourceService) RotateToken(ctx context.Context, org, id string) (*Source, error) {
	var src Source
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "sources", id, "rotate-token"), out: &src})
	return ptr(&src, err)
}

// ReceiptListOptions selects a page of a source's receipts. Verified and Duplicate, when
// set, keep those with that verdict; Via is "webhook" or "poll"; Status is pending,
// processed, duplicate or rejected.
type ReceiptListOptions struct {
	Limit     int
	Cursor    string
	Verified  *bool
	Duplicate *bool
	Via       string
	Status    string
}

func (o *ReceiptListOptions) values() url.Values {
	if o == nil {
		return url.Values{}
	}
	q := (&ListOptions{Limit: o.Limit, Cursor: o.Cursor}).values()
	for k, v := range map[string]*bool{"verified": o.Verified, "duplicate": o.Duplicate} {
		if v != nil {
			q.Set(k, map[bool]string{true: "true", false: "false"}[*v])
		}
	}
	for k, v := range map[string]string{"via": o.Via, "status": o.Status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// Receipts returns a page of what a source received, newest first.
func (s *SourceService) Receipts(ctx context.Context, org, id string, opts *ReceiptListOptions) (*Page[Receipt], error) {
	return list[Receipt](ctx, s.c, path("orgs", org, "sources", id, "receipts"), opts.values())
}

// AllReceipts iterates over every receipt of a source that opts selects.
func (s *SourceService) AllReceipts(ctx context.Context, org, id string, opts *ReceiptListOptions) iter.Seq2[Receipt, error] {
	o := deref(opts)
	return all(ctx, o.Cursor, func(ctx context.Context, cursor string) (*Page[Receipt], error) {
		o.Cursor = cursor
		return s.Receipts(ctx, org, id, &o)
	})
}

// Receipt returns one receipt: the request's headers (credentials redacted) and body,
// its verdict, and the event it became.
func (s *SourceService) Receipt(ctx context.Context, org, id, receiptID string) (*Receipt, error) {
	var rc Receipt
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("orgs", org, "sources", id, "receipts", receiptID), out: &rc})
	return ptr(&rc, err)
}
