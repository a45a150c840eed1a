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
//
// Scheduling (dispatch.go) sees only the ownership interface: it asks before every claim
// and every start whether this node may, and tells it of wake-ups and resyncs. The single
// process's form, soleOwner, answers yes and does nothing; clusterOwner holds the leases.

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/consign-dev/consign/internal/store"
)

// ownership decides which endpoints this node sends to.
type ownership interface {
	// run starts the background work (other nodes' notifications) until ctx ends; leave
	// hands the node's endpoints over once its attempts are recorded.
	run(ctx context.Context)
	leave()
	// owns reports whether this node may send to e now, mayClaim whether it may also
	// lease more of e's work, and lost whether e went to another node while a claim for
	// it ran (the claim's deliveries are then left to their leases). Called with d.mu
	// held.
	owns(e *epState, now time.Time) bool
	mayClaim(e *epState, now time.Time) bool
	lost(e *epState) bool
	// keeps reports whether e stays in the dispatcher's map while it has no work (an
	// owned endpoint stays until it is given up). Called with d.mu held.
	keeps(e *epState) bool
	// wakes takes a turn's wake-ups: local are the endpoints this process wrote work
	// for, already due. It reports whether a heartbeat is wanted soon (work for an
	// endpoint that no node is known to own). Called with d.mu and d.wakeMu held.
	wakes(local map[string]bool, now time.Time) (soon bool)
	// heartbeat renews ownership at each resync, given every endpoint with waiting work
	// and when it is due. Called without locks.
	heartbeat(ctx context.Context, now time.Time, due map[string]time.Time)
	// newLimiter is told of each token bucket made for an endpoint. Called with d.mu held.
	newLimiter(l *rate.Limiter, now time.Time)
	// count returns how many endpoints this node owns. Called with d.mu held.
	count() int
	// turn is Dispatcher.Turn.
	turn(name string, ttl time.Duration) func(context.Context) bool
}

// soleOwner is the ownership of a single process: it owns every endpoint.
type soleOwner struct{}

func (soleOwner) run(context.Context)                                        {}
func (soleOwner) leave()                                                     {}
func (soleOwner) owns(*epState, time.Time) bool                              { return true }
func (soleOwner) mayClaim(*epState, time.Time) bool                          { return true }
func (soleOwner) lost(*epState) bool                                         { return false }
func (soleOwner) keeps(*epState) bool                                        { return false }
func (soleOwner) wakes(map[string]bool, time.Time) bool                      { return false }
func (soleOwner) heartbeat(context.Context, time.Time, map[string]time.Time) {}
func (soleOwner) newLimiter(*rate.Limiter, time.Time)                        {}
func (soleOwner) count() int                                                 { return 0 }

func (soleOwner) turn(string, time.Duration) func(context.Context) bool {
	return func(context.Context) bool { return true }
}

// clusterOwner is the ownership of a node sharing its store with other nodes. It works
// on the dispatcher's per-endpoint state (epState.own, the buffers it drops) under the
// dispatcher's locks, as the comments on its fields say.
type clusterOwner struct {
	d           *Dispatcher
	cluster     store.Cluster
	node        string
	ttl         time.Duration // Config.OwnerTTL
	idleRelease time.Duration // Config.IdleRelease
	log         *slog.Logger

	// Guarded by d.mu. Sending to owned endpoints stops at fence unless a heartbeat
	// renews it; foreign are endpoints with work that other nodes owned at the last
	// heartbeat.
	fence   time.Time
	foreign map[string]bool

	// Guarded by d.wakeMu: endpoints other nodes told of, and endpoints to tell other
	// nodes of (notify sends them when notifyReady fires).
	wokenRemote map[string]bool
	toNotify    map[string]bool
	notifyReady chan struct{}
}

// epOwnership is the cluster's view of one endpoint (zero on a single process): whether
// this node owns it, gives it up once idle (draining), and since when it has had no work.
type epOwnership struct {
	owned     bool
	draining  bool
	idleSince time.Time
}

func newClusterOwner(d *Dispatcher, c store.Cluster) *clusterOwner {
	return &clusterOwner{d: d, cluster: c, node: d.cfg.Node, ttl: d.cfg.OwnerTTL, idleRelease: d.cfg.IdleRelease,
		log: d.log, foreign: map[string]bool{}, wokenRemote: map[string]bool{}, toNotify: map[string]bool{},
		notifyReady: make(chan struct{}, 1)}
}

// Node returns this process's name in the cluster.
func (d *Dispatcher) Node() string { return d.cfg.Node }

// Owned returns how many endpoints this node owns (with no cluster: 0, ownership is
// not tracked).
func (d *Dispatcher) Owned() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.own.count()
}

// Turn returns a function that says whether it is this node's turn to run the named work
// that must run on one node at a time: whether it holds (or now takes) the cluster-wide
// lease of that name for ttl. Without a cluster it is always this node's turn.
func (d *Dispatcher) Turn(name string, ttl time.Duration) func(context.Context) bool {
	return d.own.turn(name, ttl)
}

func (o *clusterOwner) run(ctx context.Context) {
	go o.listen(ctx)
	go o.notify(ctx)
}

func (o *clusterOwner) count() int {
	n := 0
	for _, e := range o.d.eps {
		if e.own.owned {
			n++
		}
	}
	return n
}

func (o *clusterOwner) owns(e *epState, now time.Time) bool {
	return e.own.owned && now.Before(o.fence)
}

func (o *clusterOwner) mayClaim(e *epState, now time.Time) bool {
	return o.owns(e, now) && !e.own.draining
}

func (o *clusterOwner) lost(e *epState) bool  { return !e.own.owned }
func (o *clusterOwner) keeps(e *epState) bool { return e.own.owned }

// newLimiter starts a bucket empty: another node may have sent a burst a moment ago.
func (o *clusterOwner) newLimiter(l *rate.Limiter, now time.Time) {
	emptyBucket(l, now)
}

// wakes queues local work for endpoints this node does not own to be told to the other
// nodes, and makes endpoints the other nodes told of due.
func (o *clusterOwner) wakes(local map[string]bool, now time.Time) (soon bool) {
	for id := range local {
		if e := o.d.eps[id]; !e.own.owned {
			o.toNotify[id] = true
			soon = soon || !o.foreign[id]
		}
	}
	for id := range o.wokenRemote {
		e := o.d.ep(id)
		e.due(now)
		soon = soon || (!e.own.owned && !o.foreign[id])
	}
	clear(o.wokenRemote)
	if len(o.toNotify) > 0 {
		select {
		case o.notifyReady <- struct{}{}:
		default:
		}
	}
	return soon
}

// heartbeat renews this node's endpoints and takes its share of the unowned ones with
// work (due: every endpoint with waiting work). Called by the loop at each resync.
func (o *clusterOwner) heartbeat(ctx context.Context, now time.Time, due map[string]time.Time) {
	d := o.d
	want := make([]string, 0, len(due))
	for id := range due {
		want = append(want, id)
	}
	// Nodes that start together should not all reach for the same endpoints first.
	rand.Shuffle(len(want), func(i, j int) { want[i], want[j] = want[j], want[i] })
	started := d.cfg.Now()
	res, err := o.cluster.Heartbeat(ctx, store.HeartbeatParams{Node: o.node, TTL: o.ttl, Now: now, Want: want})
	if err != nil {
		if ctx.Err() == nil {
			d.mu.Lock()
			fence := o.fence
			d.mu.Unlock()
			o.log.Error("cluster heartbeat: sending stops when ownership may have lapsed", "err", err,
				"until", fence.Format(time.RFC3339Nano))
		}
		return
	}
	owned := make(map[string]bool, len(res.Owned))
	for _, id := range res.Owned {
		owned[id] = true
	}
	var disown []string
	d.mu.Lock()
	o.fence = started.Add(o.ttl - o.ttl/6)
	o.foreign = map[string]bool{}
	for _, id := range want {
		if !owned[id] {
			o.foreign[id] = true
		}
	}
	for id, e := range d.eps {
		if e.own.owned && !owned[id] {
			// Taken over while this node was cut off: its leases were voided, another node
			// sends now. Drop what waits here.
			o.log.Warn("lost ownership of an endpoint", "endpoint", id)
			d.dropQueue(e)
			e.own.owned, e.own.draining = false, false
		}
	}
	for id := range owned {
		e := d.ep(id)
		if !e.own.owned && e.limiter != nil {
			// The previous owner may have just spent its bucket: start empty, so the
			// endpoint never sees two buckets' worth at a change of owner.
			emptyBucket(e.limiter, now)
		}
		e.own.owned = true
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
			e.own.draining = true
			surplus--
		}
	}
	for id, e := range d.eps {
		if !e.own.owned {
			continue
		}
		idle := len(e.queue) == 0 && e.inflight == 0 && e.reserved == 0
		_, busy := due[id]
		switch {
		case !idle || busy:
			e.own.idleSince = time.Time{}
		case e.own.idleSince.IsZero():
			e.own.idleSince = now
		}
		if idle && (e.own.draining || (!e.own.idleSince.IsZero() && now.Sub(e.own.idleSince) >= o.idleRelease)) {
			e.own = epOwnership{}
			disown = append(disown, id)
		}
	}
	d.mu.Unlock()
	if len(disown) > 0 {
		if err := o.cluster.EndpointsDisown(ctx, o.node, disown); err != nil && ctx.Err() == nil {
			// Not given up: the rows lapse by themselves after the TTL.
			o.log.Error("give up endpoints", "err", err)
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

// wakeRemote is Wake for endpoints another node wrote work for: it is not told again.
func (o *clusterOwner) wakeRemote(endpointIDs []string) {
	o.d.wake(o.wokenRemote, endpointIDs)
}

// listen relays other nodes' notifications to the loop until ctx ends.
func (o *clusterOwner) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := o.cluster.Listen(ctx, o.node, o.wakeRemote)
		if ctx.Err() != nil {
			return
		}
		o.log.Warn("listen for other nodes' work: retrying in 1s", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// notify tells the other nodes about work for endpoints this node does not own, batched:
// whatever queued while the last notification was sent goes in the next.
func (o *clusterOwner) notify(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.notifyReady:
		}
		o.d.wakeMu.Lock()
		ids := make([]string, 0, len(o.toNotify))
		for id := range o.toNotify {
			ids = append(ids, id)
		}
		clear(o.toNotify)
		o.d.wakeMu.Unlock()
		if len(ids) == 0 {
			continue
		}
		if err := o.cluster.Notify(ctx, o.node, ids); err != nil && ctx.Err() == nil {
			// The owners see the work at their next resync instead.
			o.log.Warn("notify other nodes", "err", err)
		}
	}
}

// leave hands this node's endpoints over at shutdown, once its attempts are recorded.
func (o *clusterOwner) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.cluster.NodeLeave(ctx, o.node); err != nil {
		o.log.Warn("leave the cluster: other nodes take over when the leases end", "err", err)
	}
}

func (o *clusterOwner) turn(name string, ttl time.Duration) func(context.Context) bool {
	return func(ctx context.Context) bool {
		ok, err := o.cluster.LeaseTake(ctx, name, o.node, ttl)
		if err != nil && ctx.Err() == nil {
			o.log.Error("take cluster lease", "lease", name, "err", err)
		}
		return ok
	}
}
