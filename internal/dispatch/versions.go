package dispatch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/transform"
)

// Payload versions, the shape stage's first step (docs/delivery-pipeline.md). An event
// is published in the newest version its type had when it was published (the newest
// added at or before the event's created_at: a version added later does not apply to
// it, even on a retry). An endpoint pinned to a date receives the payload converted down
// by the downgrade of each version after that date, newest first, before its
// transformation sees it; the envelope names the endpoint's pin, or for an endpoint not
// pinned the event's version.

// versionTTL is how long a type's versions are used before they are read again: a
// version added on another node applies to attempts within it.
const versionTTL = time.Second

// typeVersions is a type's versions with their downgrades compiled.
type typeVersions struct {
	steps  []versionStep // oldest first; none: the type is not versioned
	loaded time.Time
}

type versionStep struct {
	version   string
	createdAt time.Time
	script    *transform.Script // nil when the stored code no longer compiles (err)
	err       error
}

// versionCache keeps each event type's versions, read from the store at most once per
// versionTTL: every attempt asks for its event's type.
type versionCache struct {
	types interface {
		EventTypeGet(ctx context.Context, name string) (*consign.EventType, error)
	}
	mu      sync.Mutex
	entries map[string]*typeVersions
}

// get returns the versions of type name as of now. A store error comes back with the
// last versions read, if any, so that a short outage does not stop deliveries of types
// already known.
func (c *versionCache) get(ctx context.Context, name string, now time.Time) (*typeVersions, error) {
	c.mu.Lock()
	e := c.entries[name]
	c.mu.Unlock()
	if e != nil && now.Sub(e.loaded) < versionTTL && !now.Before(e.loaded) {
		return e, nil
	}
	t, err := c.types.EventTypeGet(ctx, name)
	switch {
	case consign.ErrorCode(err) == consign.ENOTFOUND:
		t = &consign.EventType{Name: name} // not in the catalog: not versioned
	case err != nil:
		if e != nil {
			return e, nil
		}
		return nil, err
	}
	n := &typeVersions{loaded: now}
	for i, v := range t.Versions {
		step := versionStep{version: v.Version, createdAt: v.CreatedAt}
		if e != nil && i < len(e.steps) && e.steps[i].version == v.Version && e.steps[i].createdAt.Equal(v.CreatedAt) {
			step = e.steps[i] // versions are never changed once added: compiled once
		} else {
			step.script, step.err = transform.CompileDowngrade(v.Downgrade)
		}
		n.steps = append(n.steps, step)
	}
	c.mu.Lock()
	if c.entries == nil || len(c.entries) > 10000 {
		c.entries = map[string]*typeVersions{}
	}
	c.entries[name] = n
	c.mu.Unlock()
	return n, nil
}

// ForgetType drops what the dispatcher knows of an event type's versions: the next
// attempt of an event of the type reads them again. The catalog calls it when a version
// is added on this node; other nodes see it within versionTTL.
func (d *Dispatcher) ForgetType(name string) {
	d.versions.mu.Lock()
	delete(d.versions.entries, name)
	d.versions.mu.Unlock()
}

// downgrade converts c's payload to the endpoint's pinned version and sets the version
// its envelope names. It returns the claim to shape (c itself when nothing changes), or
// a refusal when a downgrade failed (a throw, a time-out, no JSON back): the delivery
// fails with it at once, as for a transformation. err is a store error reading the
// type: the attempt is tried again shortly.
func (d *Dispatcher) downgrade(ctx context.Context, e *consign.Endpoint, c *store.Claim, now time.Time) (*store.Claim, string, error) {
	tv, err := d.versions.get(ctx, c.EventType, now)
	if err != nil {
		return c, "", err
	}
	if len(tv.steps) == 0 {
		return c, "", nil
	}
	// The event's own version: the newest added when it was published (-1: before any).
	at := len(tv.steps) - 1
	for at >= 0 && tv.steps[at].createdAt.After(c.EventCreatedAt) {
		at--
	}
	if e.Version == "" {
		if at < 0 || c.Version == tv.steps[at].version {
			return c, "", nil
		}
		vc := *c
		vc.Version = tv.steps[at].version // the same for all the event's deliveries: Shared stays
		return &vc, "", nil
	}
	vc := *c
	vc.Version, vc.Shared = e.Version, nil
	for i := at; i >= 0 && tv.steps[i].version > e.Version; i-- {
		s := tv.steps[i]
		if s.err != nil {
			return c, fmt.Sprintf("not sent: converting the payload to the endpoint's version %s: the downgrade of version %s %v",
				e.Version, s.version, s.err), nil
		}
		out, err := s.script.Downgrade(vc.Payload)
		if err != nil {
			return c, fmt.Sprintf("not sent: converting the payload to the endpoint's version %s failed at version %s: %v",
				e.Version, s.version, err), nil
		}
		vc.Payload = out
	}
	return &vc, "", nil
}
