package dispatch

import (
	"context"
	"sync"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/destination"
	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/transform"
)

// endpointCache keeps each endpoint's settings and opened signing keys. A claim carries
// the endpoint's version; an entry older than that is reloaded, so changes (including
// new secrets, which bump the version) apply from the next attempt.
type endpointCache struct {
	eps     Endpoints
	mu      sync.Mutex
	entries map[string]*endpointEntry
}

type endpointEntry struct {
	version  int64
	endpoint *consign.Endpoint
	keys     []signing.Key
	expiries []time.Time
	// script is the endpoint's compiled transformation (nil: none), or scriptErr why its
	// code does not compile.
	script    *transform.Script
	scriptErr error
	// tls is the endpoint's client certificate and CAs, parsed once per version (nil:
	// none); tlsErr says why they could not be, and every attempt fails with it.
	tls    *destination.ClientTLS
	tlsErr string
}

// keysAt returns the keys that still sign at now.
func (e *endpointEntry) keysAt(now time.Time) []signing.Key {
	for _, exp := range e.expiries {
		if !exp.IsZero() && !now.Before(exp) {
			keys := make([]signing.Key, 0, len(e.keys))
			for i, k := range e.keys {
				if e.expiries[i].IsZero() || now.Before(e.expiries[i]) {
					keys = append(keys, k)
				}
			}
			return keys
		}
	}
	return e.keys
}

func (c *endpointCache) get(ctx context.Context, cl *store.Claim, now time.Time) (*endpointEntry, error) {
	c.mu.Lock()
	e, ok := c.entries[cl.EndpointID]
	c.mu.Unlock()
	if ok && e.version >= cl.EndpointVersion {
		return e, nil
	}
	ep, err := c.eps.Endpoint(ctx, "", cl.EndpointID)
	if err != nil {
		return nil, err
	}
	keys, expiries, err := c.eps.SigningKeys(ctx, cl.EndpointID, now)
	if err != nil {
		return nil, err
	}
	e = &endpointEntry{version: cl.EndpointVersion, endpoint: ep, keys: keys, expiries: expiries}
	if t := ep.TLS; t != nil {
		ct, err := destination.NewClientTLS(t.ClientCertificate, t.ClientKey, t.CACertificates)
		if err != nil {
			e.tlsErr = "not sent: the endpoint's tls settings do not load (" + err.Error() + "); set them again with PATCH …/endpoints/" + ep.ID
		}
		e.tls = ct
	}
	if ep.Transformation != "" {
		// Compiled once per endpoint version (and shared by versions with the same code).
		e.script, e.scriptErr = transform.Compile(ep.Transformation)
	}
	c.mu.Lock()
	c.entries[cl.EndpointID] = e
	c.mu.Unlock()
	return e, nil
}

// peek returns the cached entry, or nil.
func (c *endpointCache) peek(id string) *endpointEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[id]
}

func (c *endpointCache) forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}
