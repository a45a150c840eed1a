package ingest

import (
	"context"
	"log/slog"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/filter"
	"github.com/consign-dev/consign/internal/store"
)

// Fan-out keeps each org's endpoints between commits. Reading and decoding them
// for every commit cost in proportion to the org's endpoints (with 3,000 endpoints,
// three quarters of a commit's time), and matching every event against every endpoint's
// topics in proportion to both. Instead a commit reads one number, the org's endpoints
// version (store.OrgEndpointsVersion: any change to an endpoint of the org, on any node,
// changes it), reads the endpoints again only when it changed, and keeps, per event type,
// the endpoints that take it.

// The cache starts over when it would hold more orgs or endpoints than these (about
// 50 MB of endpoints at most).
const (
	maxCachedOrgs      = 1024
	maxCachedEndpoints = 50_000
)

// orgEndpoints is an org's endpoints as of a commit, in ID order, active or not: an
// inactive endpoint's deliveries are written paused and wait for it.
type orgEndpoints struct {
	version int64 // the org's endpoints version, read before all was
	all     []subscriber
	byType  map[string][]subscriber // the endpoints subscribed to a type, in ID order
}

// subscriber is an endpoint with its filter compiled (nil: none), once per read of the
// org's endpoints, not per event.
type subscriber struct {
	ep     *store.EndpointRow
	filter *filter.Filter
}

// subscribers returns the endpoints that take events of type typ. The result is shared:
// treat it as read-only.
func (o *orgEndpoints) subscribers(typ string) []subscriber {
	subs, ok := o.byType[typ]
	if !ok {
		for _, s := range o.all {
			if s.ep.Subscribes(typ) {
				subs = append(subs, s)
			}
		}
		o.byType[typ] = subs
	}
	return subs
}

// endpointCache holds orgEndpoints by org. Only the commit loop uses it.
type endpointCache struct {
	store     Store
	logger    *slog.Logger
	orgs      map[string]*orgEndpoints
	endpoints int // in orgs
	// The bounds: maxCachedOrgs and maxCachedEndpoints.
	maxOrgs, maxEndpoints int
}

func newEndpointCache(s Store, logger *slog.Logger) endpointCache {
	return endpointCache{store: s, logger: logger, orgs: map[string]*orgEndpoints{}, maxOrgs: maxCachedOrgs, maxEndpoints: maxCachedEndpoints}
}

// get returns the org's endpoints, current as of this call.
func (c *endpointCache) get(ctx context.Context, orgID string) (*orgEndpoints, error) {
	v, err := c.store.OrgEndpointsVersion(ctx, orgID)
	if err != nil {
		return nil, err
	}
	if o := c.orgs[orgID]; o != nil && o.version == v {
		return o, nil
	}
	all, err := c.store.EndpointListAll(ctx, orgID)
	if err != nil {
		return nil, err
	}
	// Kept with the version read before them: a change in between makes the next
	// commit read them again, never keeps a stale list as current.
	o := &orgEndpoints{version: v, all: make([]subscriber, len(all)), byType: map[string][]subscriber{}}
	for i, ep := range all {
		f, err := filter.Compile(ep.Filter)
		if err != nil {
			// Filters are compiled when they are saved, so this is a stored filter that
			// a newer version wrote: sending everything loses nothing.
			c.logger.Error("endpoint filter does not compile; sending every event of its topics", "endpoint", ep.ID, "err", err)
		}
		o.all[i] = subscriber{ep: ep, filter: f}
	}
	if old := c.orgs[orgID]; old != nil {
		c.endpoints -= len(old.all)
	}
	if len(c.orgs) >= c.maxOrgs || c.endpoints+len(all) > c.maxEndpoints {
		clear(c.orgs)
		c.endpoints = 0
	}
	c.orgs[orgID] = o
	c.endpoints += len(all)
	return o, nil
}

// orgView is what fan-out needs of an org, read once per commit.
type orgView struct {
	org       *consign.Org
	endpoints *orgEndpoints
}
