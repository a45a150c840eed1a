package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// EventTypeService reads the event-type catalog (any key) and adds to it (admin key).
type EventTypeService struct{ c *Client }

// EventTypeInput is a custom event type.
type EventTypeInput struct {
	// Name is dot-separated words, such as "return.approved"; "consign." is reserved.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Schema is a JSON Schema that every payload of the type must satisfy.
	Schema json.RawMessage `json:"schema,omitempty"`
	// AvailableFor limits the roles of the orgs whose endpoints may subscribe; empty: all.
	AvailableFor []Role `json:"available_for,omitempty"`
	// Keys are JSON pointers into the payload whose values are indexed, so that
	// EventListOptions.Key and DeliveryListOptions.Key find the events: "/order_id",
	// "/po_number", "/lineItems/*/sku" ("*" takes each element of an array); at most 8.
	Keys []string `json:"keys,omitempty"`
}

// EventTypePatch changes an event type; nil fields keep their values.
type EventTypePatch struct {
	Description  *string         `json:"description,omitzero"`
	Schema       json.RawMessage `json:"schema,omitempty"`
	AvailableFor []Role          `json:"available_for,omitzero"`
	// Keys replaces the type's key pointers; nil keeps them, an empty slice removes them.
	// Events published before the change keep the keys they were indexed by.
	Keys []string `json:"keys,omitzero"`
}

// List returns the whole catalog: the built-in commerce topics and the custom types.
func (s *EventTypeService) List(ctx context.Context) ([]EventType, error) {
	var page Page[EventType]
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("event-types"), out: &page})
	return page.Data, err
}

// Get returns an event type.
func (s *EventTypeService) Get(ctx context.Context, name string) (*EventType, error) {
	var t EventType
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("event-types", name), out: &t})
	return ptr(&t, err)
}

// Create adds a custom event type.
func (s *EventTypeService) Create(ctx context.Context, in EventTypeInput) (*EventType, error) {
	var t EventType
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("event-types"), body: in, out: &t})
	return ptr(&t, err)
}

// Update changes an event type's description, schema, roles or keys.
func (s *EventTypeService) Update(ctx context.Context, name string, p EventTypePatch) (*EventType, error) {
	var t EventType
	_, err := s.c.do(ctx, request{method: http.MethodPatch, path: path("event-types", name), body: p, out: &t})
	return ptr(&t, err)
}

// EventTypeVersionInput is a new payload version of an event type.
type EventTypeVersionInput struct {
	// Version is a date, "YYYY-MM-DD", later than the type's newest version.
	Version string `json:"version"`
	// Schema checks the payloads of this version; without it the type's schema does.
	Schema json.RawMessage `json:"schema,omitempty"`
	// Downgrade is JavaScript, function downgrade(payload) { … return payload }, that
	// turns a payload of this version into the shape of the version before.
	Downgrade string `json:"downgrade"`
}

// AddVersion adds a payload version to an event type (admin key): events are published
// in it from now on, and endpoints pinned to an earlier date receive them downgraded.
func (s *EventTypeService) AddVersion(ctx context.Context, name string, in EventTypeVersionInput) (*EventTypeVersion, error) {
	var v EventTypeVersion
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("event-types", name, "versions"), body: in, out: &v})
	return ptr(&v, err)
}

// Versions returns an event type's payload versions, oldest first.
func (s *EventTypeService) Versions(ctx context.Context, name string) ([]EventTypeVersion, error) {
	var page Page[EventTypeVersion]
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("event-types", name, "versions"), out: &page})
	return page.Data, err
}

// Version returns one payload version of an event type.
func (s *EventTypeService) Version(ctx context.Context, name, version string) (*EventTypeVersion, error) {
	var v EventTypeVersion
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("event-types", name, "versions", version), out: &v})
	return ptr(&v, err)
}
