package manage

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/bizkey"
	"github.com/consign-dev/consign/internal/schema"
	"github.com/consign-dev/consign/internal/transform"
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
	if err := s.store.EventTypeUpdate(ctx, t); err != nil {
		return nil, err
	}
	s.typeChanged(name)
	return t, nil
}

// EventTypeVersionInput is the body of POST /v1/event-types/{name}/versions.
type EventTypeVersionInput struct {
	// Version is a date, YYYY-MM-DD, later than the type's newest version.
	Version string `json:"version" doc:"a date YYYY-MM-DD, later than the type's newest version"`
	// Schema, when set, checks the payloads published from now on (else the type's does).
	Schema json.RawMessage `json:"schema,omitempty" doc:"JSON Schema of the payloads of this version; without it the type's schema checks them"`
	// Downgrade is JavaScript that turns a payload of this version into the one before.
	Downgrade string `json:"downgrade" doc:"JavaScript, function downgrade(payload) { … return payload }, turning a payload of this version into the shape of the version before (for the first version, the type's shape before versions); at most 50 ms of CPU a run"`
}

// AddEventTypeVersion adds a version to a type: from now on its events are published in
// this version, and endpoints pinned to an earlier date receive them downgraded. The
// version must be a date later than the newest, the schema must compile and the
// downgrade must define function downgrade(payload); each fault is a field error.
// Consign's own event types take no versions: their payloads are Consign's to shape.
func (s *Service) AddEventTypeVersion(ctx context.Context, name string, in *EventTypeVersionInput) (*consign.EventTypeVersion, error) {
	t, err := s.store.EventTypeGet(ctx, name)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(t.Name, consign.OperationalPrefix) {
		return nil, consign.Errorf(consign.EINVALID, "event type %q is one of Consign's own and takes no versions", name)
	}
	var v consign.Validation
	if msg := consign.ValidVersion(in.Version); msg != "" {
		v.Add("version", "%s", msg)
	} else if n := len(t.Versions); n > 0 && in.Version <= t.Versions[n-1].Version {
		v.Add("version", "must be later than the newest version, %s", t.Versions[n-1].Version)
	}
	if len(t.Versions) >= consign.MaxVersions {
		v.Add("version", "the type has %d versions, the most it may have", len(t.Versions))
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
	if len(in.Downgrade) > consign.MaxDowngrade {
		v.Add("downgrade", "is %d bytes; at most %d", len(in.Downgrade), consign.MaxDowngrade)
	} else if _, err := transform.CompileDowngrade(in.Downgrade); err != nil {
		v.Add("downgrade", "%s", err.Error())
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	now := s.now()
	if !now.After(t.UpdatedAt) {
		now = t.UpdatedAt.Add(time.Millisecond) // updated_at guards the write: it must change
	}
	ver := consign.EventTypeVersion{Version: in.Version, Schema: in.Schema, Downgrade: in.Downgrade, CreatedAt: now}
	versions := append(slices.Clip(t.Versions), ver)
	if err := s.store.EventTypeVersionsUpdate(ctx, name, versions, t.UpdatedAt, now); err != nil {
		return nil, err
	}
	s.typeChanged(name)
	return &ver, nil
}

// EventTypeVersion returns one version of a type.
func (s *Service) EventTypeVersion(ctx context.Context, name, version string) (*consign.EventTypeVersion, error) {
	t, err := s.store.EventTypeGet(ctx, name)
	if err != nil {
		return nil, err
	}
	for i := range t.Versions {
		if t.Versions[i].Version == version {
			return &t.Versions[i], nil
		}
	}
	return nil, consign.Errorf(consign.ENOTFOUND, "event type %q has no version %q (GET /v1/event-types/%s/versions lists them)", name, version, name)
}

func (s *Service) typeChanged(name string) {
	if s.cfg.TypeChanged != nil {
		s.cfg.TypeChanged(name)
	}
}
