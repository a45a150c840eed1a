package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"time"
)

// EventService publishes and reads an org's events.
type EventService struct{ c *Client }

// EventInput is an event to publish.
type EventInput struct {
	// Type is an event type of the catalog, such as "order.fulfilled".
	Type string `json:"type"`
	// Payload is encoded with encoding/json; a json.RawMessage is sent as it is.
	Payload any `json:"payload"`
	// IdempotencyKey makes publishing safe to repeat: the same key in the same org
	// within 72 hours returns the first event and delivers nothing again.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// OrderingKey groups events that endpoints with ordering "key" receive in order,
	// and that endpoints with coalesce receive only the newest of.
	OrderingKey string `json:"ordering_key,omitempty"`
}

// Event is a published event; Deliveries (List and Get only) are its deliveries' states.
type Event struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	Payload        json.RawMessage `json:"payload"`
	IdempotencyKey string          `json:"idempotency_key"`
	OrderingKey    string          `json:"ordering_key"`
	CreatedAt      time.Time       `json:"created_at"`
	Deliveries     []DeliveryState `json:"deliveries,omitempty"`
	// Duplicate is set by Publish when the idempotency key was used before: the event
	// is the first one, and no new deliveries were made.
	Duplicate bool `json:"-"`
}

// DeliveryState is where one delivery of an event stands.
type DeliveryState struct {
	ID            string `json:"id"`
	EndpointID    string `json:"endpoint_id"`
	Status        string `json:"status"`
	AttemptsCount int    `json:"attempts_count"`
}

// PublishOption changes how an event is published.
type PublishOption func(h http.Header)

// IdempotencyKey sends the Idempotency-Key header: the same key in the same org within
// 72 hours returns the first event (Event.Duplicate) and delivers nothing again.
func IdempotencyKey(key string) PublishOption {
	return func(h http.Header) { h.Set("Idempotency-Key", key) }
}

// Publish accepts one event for delivery. When it returns, the event is durable on the
// server and will be delivered to every active endpoint of the org that subscribes.
func (s *EventService) Publish(ctx context.Context, org string, in EventInput, opts ...PublishOption) (*Event, error) {
	h := http.Header{}
	for _, o := range opts {
		o(h)
	}
	var e Event
	status, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "events"), body: in, header: h, out: &e})
	if err != nil {
		return nil, err
	}
	e.Duplicate = status == http.StatusOK
	return &e, nil
}

// PublishBatch accepts up to 1,000 events in one durable write; the reply is the events
// in the order given. A batch is accepted whole or not at all.
func (s *EventService) PublishBatch(ctx context.Context, org string, events []EventInput) ([]Event, error) {
	var reply struct {
		Data []Event `json:"data"`
	}
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "events", "batch"),
		body: map[string][]EventInput{"events": events}, out: &reply})
	return reply.Data, err
}

// EventListOptions selects a page of events; Type keeps those of one event type, Key
// those whose business keys (EventType.Keys) hold a value, such as an order id.
type EventListOptions struct {
	Limit  int
	Cursor string
	Type   string
	Key    string
}

func (o *EventListOptions) values() url.Values {
	if o == nil {
		return url.Values{}
	}
	q := (&ListOptions{Limit: o.Limit, Cursor: o.Cursor}).values()
	if o.Type != "" {
		q.Set("type", o.Type)
	}
	if o.Key != "" {
		q.Set("key", o.Key)
	}
	return q
}

// List returns a page of an org's events with their deliveries' states.
func (s *EventService) List(ctx context.Context, org string, opts *EventListOptions) (*Page[Event], error) {
	return list[Event](ctx, s.c, path("orgs", org, "events"), opts.values())
}

// All iterates over every event of an org that opts selects, from opts.Cursor on.
func (s *EventService) All(ctx context.Context, org string, opts *EventListOptions) iter.Seq2[Event, error] {
	o := deref(opts)
	return all(ctx, o.Cursor, func(ctx context.Context, cursor string) (*Page[Event], error) {
		o.Cursor = cursor
		return s.List(ctx, org, &o)
	})
}

// Get returns an event with its deliveries' states.
func (s *EventService) Get(ctx context.Context, org, id string) (*Event, error) {
	var e Event
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("orgs", org, "events", id), out: &e})
	return ptr(&e, err)
}
