package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/bizkey"
	"github.com/consign-dev/consign/internal/filter"
	"github.com/consign-dev/consign/internal/schema"
)

// typeCache keeps compiled event types for a short time: the catalog changes rarely and
// every event needs its type, so reading it from the store per event would be waste.
// A change made on another node is seen within ttl.
type typeCache struct {
	store   Store
	ttl     time.Duration
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]*typeEntry
}

type typeEntry struct {
	schema       *schema.Schema
	keys         *bizkey.Set // nil when the type names no keys
	availableFor []consign.Role
	updatedAt    time.Time
	loaded       time.Time
}

// check applies the type's schema, if any, and returns the payload's business keys.
// With a schema, the values the keys start from are noted while the schema's check
// reads the payload (schema.ValidateFields), so a payload is read once; without one, or
// when the payload went the schema's general way, only the top-level fields the keys
// start with are decoded (bizkey.FromDoc).
func (e *typeEntry) check(doc []byte) ([]string, error) {
	if e.schema == nil {
		return e.keys.FromDoc(&filter.Doc{Payload: doc}), nil
	}
	var buf [consign.MaxEventTypeKeys][]byte
	tops := e.keys.Tops()
	fields := buf[:len(tops)]
	noted, err := e.schema.ValidateFields(doc, tops, fields)
	switch {
	case err != nil:
		return nil, err
	case e.keys == nil:
		return nil, nil
	case noted:
		return e.keys.FromFields(fields), nil
	}
	return e.keys.FromDoc(&filter.Doc{Payload: doc}), nil
}

// get returns the type's entry, or an ENOTFOUND error.
func (c *typeCache) get(ctx context.Context, name string) (*typeEntry, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[name]
	c.mu.Unlock()
	if ok && now.Sub(e.loaded) < c.ttl {
		return e, nil
	}
	t, err := c.store.EventTypeGet(ctx, name)
	if err != nil {
		return nil, err
	}
	// Keys are compiled afresh each time (cheap); the catalog's start-up fills in a built-in
	// type's keys without changing its updated_at.
	keys, err := bizkey.Compile(t.Keys)
	if err != nil {
		return nil, consign.Errorf(consign.ECONFLICT, "event type %q has keys that are no longer accepted (%v): replace them with PATCH /v1/event-types/%s",
			name, err, name)
	}
	if ok && t.UpdatedAt.Equal(e.updatedAt) {
		e = &typeEntry{schema: e.schema, keys: keys, availableFor: t.AvailableFor, updatedAt: t.UpdatedAt, loaded: now}
	} else {
		e = &typeEntry{keys: keys, availableFor: t.AvailableFor, updatedAt: t.UpdatedAt, loaded: now}
		// Events are published in the newest version: its schema checks them, else the
		// type's.
		doc := t.Schema
		if n := len(t.Versions); n > 0 && len(t.Versions[n-1].Schema) > 0 {
			doc = t.Versions[n-1].Schema
		}
		if len(doc) > 0 {
			if e.schema, err = schema.Compile(doc); err != nil {
				// Stored before the bounds of schema.Compile: the catalog owner must replace it.
				return nil, consign.Errorf(consign.ECONFLICT, "event type %q has a schema that is no longer accepted (%v): replace it with PATCH /v1/event-types/%s",
					name, err, name)
			}
		}
	}
	c.mu.Lock()
	if len(c.entries) > 10000 {
		clear(c.entries)
	}
	c.entries[name] = e
	c.mu.Unlock()
	return e, nil
}

// typeMemo is the entry of the type looked up last, for the events of one request: they
// mostly share a type, and are checked against one view of the catalog.
type typeMemo struct {
	name  string
	entry *typeEntry
}

// get returns the type's entry from the memo, or else from c (and remembers it).
func (m *typeMemo) get(ctx context.Context, c *typeCache, name string) (*typeEntry, error) {
	if m.entry != nil && m.name == name {
		return m.entry, nil
	}
	e, err := c.get(ctx, name)
	if err == nil {
		m.name, m.entry = name, e
	}
	return e, err
}

// forget drops a type's entry: the next event of the type reads it again.
func (c *typeCache) forget(name string) {
	c.mu.Lock()
	delete(c.entries, name)
	c.mu.Unlock()
}
