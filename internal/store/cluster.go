package store

import (
	"context"
	"time"
)

// Cluster is implemented by drivers whose database several nodes share (PostgreSQL). It
// divides endpoints between live nodes: a node sends to an endpoint only while it owns it,
// so the endpoint's rate limit, burst limit and ordering, kept in that node's memory, hold
// for the whole cluster. Ownership is a lease measured by the database's clock, so the
// nodes' clocks need not agree.
//
// Like Purger, Cluster stands apart from Store: the embedded store has one process and
// needs none of it.
type Cluster interface {
	// Heartbeat marks node alive for ttl, renews for ttl every endpoint it owns, and takes
	// endpoints of want that nobody owns, or whose owner's lease has ended, until the node
	// owns its share: want's size divided by the live nodes, rounded up (want is every
	// endpoint with waiting work, as the caller sees it). Taking an endpoint from an owner
	// whose lease ended makes that endpoint's leased deliveries due at once: their holder
	// is gone.
	Heartbeat(ctx context.Context, p HeartbeatParams) (*HeartbeatResult, error)
	// EndpointsDisown gives up node's ownership of the endpoints; another node takes them
	// without voiding leases (the caller has nothing of theirs in flight).
	EndpointsDisown(ctx context.Context, node string, endpointIDs []string) error
	// NodeLeave ends node's ownership of every endpoint as if its lease had ended, so that
	// the next owner takes the endpoints at once and voids what the node still leased. A
	// node calls it when it stops.
	NodeLeave(ctx context.Context, node string) error
	// LeaseTake takes or renews the named cluster-wide lease for holder for ttl, when it is
	// free, ended or already the holder's, and reports whether holder has it: work that
	// must run on one node at a time (failure-policy sweeps, retention) runs under one.
	LeaseTake(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// Notify tells the other nodes that the endpoints have new due work.
	Notify(ctx context.Context, node string, endpointIDs []string) error
	// Listen calls fn with the endpoints other nodes notify, until ctx ends or its
	// connection fails (it returns the error; the caller listens again). Once listening,
	// and before any notification, it calls fn with no IDs: what was notified before is
	// unknown, so the caller looks at everything again.
	Listen(ctx context.Context, node string, fn func(endpointIDs []string)) error
}

// HeartbeatParams is a node's heartbeat.
type HeartbeatParams struct {
	Node string
	TTL  time.Duration
	// Now is the node's clock, for the due time of deliveries whose leases it voids.
	Now time.Time
	// Want is every endpoint with waiting work; the node takes unowned ones among them up
	// to its share.
	Want []string
}

// HeartbeatResult is what a node owns after its heartbeat.
type HeartbeatResult struct {
	Owned []string
	// Taken are the endpoints of Owned that the node did not own before this heartbeat.
	Taken []string
	// Nodes is how many nodes are alive, this one included; Share is how many endpoints
	// of Want each should own.
	Nodes, Share int
}
