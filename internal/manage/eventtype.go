package manage

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/bizkey"
	"github.com/consign-dev/consign/internal/schema"
)

// EventTypeInput is what a client may set on a custom event type.
type EventTypeInput struct {
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	Schema       json.RawMessage `json:"schema,omitempty"`
	AvailableFor []consign.Role  `json:"available_for,omitempty"`
	// Keys are JSON pointers into the payload whose values are indexed for ?key= searches
	// ("/order_id", "/lineItems/*/sku"); at most 8. On PATCH, [] removes them.
	Keys []string `json:"keys,omitempty"`
}

func (in *EventTypeInput) validate(creating bool) error {
	var v consign.Validation
	if creating {
		if msg := consign.ValidTypeName(in.Name); msg != "" {
			v.Add("name", "%s", msg)
		} else if strings.HasPrefix(in.Name, consign.OperationalPrefix) {
			v.Add("name", "names starting with %q are reserved for Consign's own events", consign.OperationalPrefix)
		}
	}
	if len(in.Description) > 1000 {
		v.Add("description", "must be at most 1000 characters")
	}
	if len(in.Schema) > 64<<10 {
		v.Add("schema", "must be at most 64 KiB")
	} else if len(in.Schema) > 0 && string(in.Schema) != "null" {
		if _, err := schema.Compile(in.Schema); err != nil {
			v.Add("schema", "%s", err.Error())
		}
	} else {
		in.Schema = nil
	}
	bizkey.ValidatePointers(&v, "keys", in.Keys)
	for _, r := range in.AvailableFor {
		if r != consign.RoleBuyer && r != consign.RoleSeller {
			v.Add("available_for", `entries must be "buyer" or "seller"`)
		}
	}
	return v.Err()
}

// CreateEventType adds a custom type to the catalog.
func (s *Service) CreateEventType(ctx context.Context, in *EventTypeInput) (*consign.EventType, error) {
	if err := in.validate(true); err != nil {
		return nil, err
	}
	t := &consign.EventType{Name: in.Name, Description: in.Description, Schema: in.Schema, AvailableFor: in.AvailableFor,
		Keys: in.Keys, CreatedAt: s.now(), UpdatedAt: s.now()}
	err := s.store.EventTypeInsert(ctx, t)
	if consign.ErrorCode(err) == consign.ECONFLICT {
		return nil, consign.Errorf(consign.ECONFLICT, "event type %q exists already", in.Name)
	}
	return t, err
}

// UpdateEventType applies a PATCH to a type (built-in types may get a schema too).
func (s *Service) UpdateEventType(ctx context.Context, name string, decode func(*EventTypeInput) error) (*consign.EventType, error) {
	t, err := s.store.EventTypeGet(ctx, name)
	if err != nil {
		return nil, err
	}
	in := EventTypeInput{Name: t.Name, Description: t.Description, Schema: t.Schema, AvailableFor: t.AvailableFor, Keys: t.Keys}
	if err := decode(&in); err != nil {
		return nil, err
	}
	if in.Name != t.Name {
		return nil, consign.Invalid("name", "cannot be changed")
	}
	if err := in.validate(false); err != nil {
		return nil, err
	}
	t.Description, t.Schema, t.AvailableFor, t.Keys, t.UpdatedAt = in.Description, in.Schema, in.AvailableFor, in.Keys, s.now()
	if len(t.Keys) == 0 {
		t.Keys = nil
	}
	return t, s.store.EventTypeUpdate(ctx, t)
}
