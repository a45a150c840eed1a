package dispatch

// Several nodes on one database (docs/multinode.md). Each endpoint is sent to by the one
// node that owns it, so its token bucket, burst limit and ordering, all in this process's
// memory, hold for the cluster. Ownership is a lease in the store that the owner renews
// with every resync (its heartbeat). A node:
//   - claims and starts attempts only for endpoints it owns, and only until its fence (the
//     start of its last successful heartbeat plus the ownership TTL, less a margin), so a
//     node cut off from the database stops sending before another may take over;
//   - takes, at each heartbeat, its share of the endpoints with work that nobody owns;
//     an endpoint whose owner died is taken the same way once the owner's lease has ended,
//     and the store makes the dead node's leased deliveries due at once — the takeover
//     costs at most TTL + Resync (7 s by default);
//   - starts an endpoint's token bucket empty when it takes the endpoint, since the
//     previous owner may have just spent a full one;
//   - drains endpoints beyond its share (no new claims) and gives them up once nothing of
//     theirs is queued or in flight, and gives up endpoints idle for IdleRelease;
//   - tells the other nodes about new work for endpoints it does not own (NOTIFY), and
//     wakes its loop when they tell it (LISTEN), so work written on one node is sent by
//     another within milliseconds rather than at the next resync.
// Without a Cluster (the embedded store: one process) the node owns every endpoint.

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/consign-dev/consign/internal/store"
)

// Node returns this process's name in the cluster.
func (d *Dispatcher) Node() string { return d.cfg.Node }

// Owned returns how many endpoints this node owns (with no cluster: 0, ownership is
// not tracked).
func (d *Dispatcher) Owned() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, e := range d.eps {
		if e.owned {
			n++
		}
	}
	return n
}

// owns reports whether this node may send to e now.
func (d *Dispatcher) owns(e *epState, now time.Time) bool {
	return d.cluster == nil || (e.owned && now.Before(d.fence))
}

// mayClaim reports whether this node may lease more of e's work now.
func (d *Dispatcher) mayClaim(e *epState, now time.Time) bool {
	return d.owns(e, now) && !e.draining
}

// heartbeat renews this node's endpoints and takes its share of the unowned ones with
// work (due: every endpoint with waiting work). Called by the loop at each resync.
func (d *Dispatcher) heartbeat(ctx context.Context, now time.Time, due map[string]time.Time) {
	want := make([]string, 0, len(due))
	for id := range due {
		want = append(want, id)
	}
	// Nodes that start together should not all reach for the same endpoints first.
	rand.Shuffle(len(want), func(i, j int) { want[i], want[j] = want[j], want[i] })
	started := d.cfg.Now()
	res, err := d.cluster.Heartbeat(ctx, store.HeartbeatParams{Node: d.cfg.Node, TTL: d.cfg.OwnerTTL, Now: now, Want: want})
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("cluster heartbeat: sending stops when ownership may have lapsed", "err", err,
				"until", d.fence.Format(time.RFC3339Nano))
		}
		return
	}
	owned := make(map[string]bool, len(res.Owned))
	for _, id := range res.Owned {
		owned[id] = true
	}
	var disown []string
	d.mu.Lock()
	d.fence = started.Add(d.cfg.OwnerTTL - d.cfg.OwnerTTL/6)
	d.foreign = map[string]bool{}
	for _, id := range want {
		if !owned[id] {
			d.foreign[id] = true
		}
	}
	for id, e := range d.eps {
		if e.owned && !owned[id] {
			// Taken over while this node was cut off: its leases were voided, another node
			// sends now. Drop what waits here.
			d.log.Warn("lost ownership of an endpoint", "endpoint", id)
			d.dropQueue(e)
			e.owned, e.draining = false, false
		}
	}
	for id := range owned {
		e := d.ep(id)
		if !e.owned && e.limiter != nil {
			// The previous owner may have just spent its bucket: start empty, so the
			// endpoint never sees two buckets' worth at a change of owner.
			emptyBucket(e.limiter, now)
		}
		e.owned = true
	}
	for _, id := range res.Taken {
		// The store made the previous owner's leased deliveries due now.
		d.ep(id).due(now)
	}
	// Beyond the share: drain the endpoints with the least work here.
	var mine []*epState
	for _, id := range want {
		if owned[id] {
			mine = append(mine, d.eps[id])
		}
	}
	if surplus := len(mine) - res.Share; surplus > 0 && res.Nodes > 1 {
		sortByLoad(mine)
		for _, e := range mine {
			if surplus == 0 {
				break
			}
			e.draining = true
			surplus--
		}
	}
	for id, e := range d.eps {
		if !e.owned {
			continue
		}
		idle := len(e.queue) == 0 && e.inflight == 0 && e.reserved == 0
		_, busy := due[id]
		switch {
		case !idle || busy:
			e.idleSince = time.Time{}
		case e.idleSince.IsZero():
			e.idleSince = now
		}
		if idle && (e.draining || (!e.idleSince.IsZero() && now.Sub(e.idleSince) >= d.cfg.IdleRelease)) {
			e.owned, e.draining, e.idleSince = false, false, time.Time{}
			disown = append(disown, id)
		}
	}
	d.mu.Unlock()
	if len(disown) > 0 {
		if err := d.cluster.EndpointsDisown(ctx, d.cfg.Node, disown); err != nil && ctx.Err() == nil {
			// Not given up: the rows lapse by themselves after the TTL.
			d.log.Error("give up endpoints", "err", err)
		}
	}
}

// emptyBucket spends every token l holds at now.
func emptyBucket(l *rate.Limiter, now time.Time) {
	l.AllowN(now, int(l.TokensAt(now)))
}

// sortByLoad orders endpoints by the work this node holds for them, least first.
func sortByLoad(es []*epState) {
	load := func(e *epState) int { return len(e.queue) + e.inflight + e.reserved }
	slices.SortFunc(es, func(a, b *epState) int { return load(a) - load(b) })
}

// dropQueue forgets e's buffered deliveries without sending them.
func (d *Dispatcher) dropQueue(e *epState) {
	for _, q := range e.queue {
		delete(d.held, q.claim.DeliveryID)
	}
	d.queued -= len(e.queue)
	e.queue = nil
}

// wakeRemote is Wake for endpoints another node wrote work for: it is not told again.
func (d *Dispatcher) wakeRemote(endpointIDs []string) {
	d.wake(d.wokenRemote, endpointIDs)
}

// listen relays other nodes' notifications to the loop until ctx ends.
func (d *Dispatcher) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := d.cluster.Listen(ctx, d.cfg.Node, d.wakeRemote)
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("listen for other nodes' work: retrying in 1s", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// notify tells the other nodes about work for endpoints this node does not own, batched:
// whatever queued while the last notification was sent goes in the next.
func (d *Dispatcher) notify(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.notifyReady:
		}
		d.wakeMu.Lock()
		ids := make([]string, 0, len(d.toNotify))
		for id := range d.toNotify {
			ids = append(ids, id)
		}
		clear(d.toNotify)
		d.wakeMu.Unlock()
		if len(ids) == 0 {
			continue
		}
		if err := d.cluster.Notify(ctx, d.cfg.Node, ids); err != nil && ctx.Err() == nil {
			// The owners see the work at their next resync instead.
			d.log.Warn("notify other nodes", "err", err)
		}
	}
}

// leave hands this node's endpoints over at shutdown, once its attempts are recorded.
func (d *Dispatcher) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.cluster.NodeLeave(ctx, d.cfg.Node); err != nil {
		d.log.Warn("leave the cluster: other nodes take over when the leases end", "err", err)
	}
}

// Turn returns a function that says whether it is this node's turn to run the named work
// that must run on one node at a time: whether it holds (or now takes) the cluster-wide
// lease of that name for ttl. Without a cluster it is always this node's turn.
func (d *Dispatcher) Turn(name string, ttl time.Duration) func(context.Context) bool {
	if d.cluster == nil {
		return func(context.Context) bool { return true }
	}
	return func(ctx context.Context) bool {
		ok, err := d.cluster.LeaseTake(ctx, name, d.cfg.Node, ttl)
		if err != nil && ctx.Err() == nil {
			d.log.Error("take cluster lease", "lease", name, "err", err)
		}
		return ok
	}
}
