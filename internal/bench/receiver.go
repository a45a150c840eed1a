package bench

import (
	"context"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// receiver is the webhook sink of a run: a plain net/http server on loopback that
// answers 204 at once. Deliveries go to /d/{bucket}/{endpoint}: each scenario has its own
// bucket, so a straggler of one scenario never counts for another. /ceiling is the bare
// target of the loopback ceiling: it only drains the body.
//
// The sink's own work is kept near the ceiling's, since it is not Consign's: the path is
// split by hand (a routing pattern allocated four times a request), and the record of
// what arrived holds no pointers, so the collector does not scan it (a fan-out run keeps
// 200,000 entries).
type receiver struct {
	url string
	srv *http.Server

	mu      sync.RWMutex
	buckets map[string]*bucket
	stray   atomic.Int64 // deliveries to an unknown bucket
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	r := &receiver{url: "http://" + ln.Addr().String(), buckets: map[string]*bucket{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/ceiling", func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/d/", r.deliver)
	r.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) close() { _ = r.srv.Close() }

func (r *receiver) deliver(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	now := time.Now()
	name, epText, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/d/"), "/")
	r.mu.RLock()
	b := r.buckets[name]
	r.mu.RUnlock()
	ep, err := strconv.Atoi(epText)
	if b == nil || err != nil {
		r.stray.Add(1)
	} else {
		var id string // req.Header.Get would canonicalize the name into a new string each time
		if v := req.Header["Webhook-Id"]; len(v) > 0 {
			id = v[0]
		}
		b.record(id, ep, now)
	}
	w.WriteHeader(http.StatusNoContent)
}

// record counts a delivery of id to endpoint ep of bucket name that arrived other than
// through HTTP (a broker's subscriber), as deliver does for a request.
func (r *receiver) record(name, id string, ep int, at time.Time) {
	r.mu.RLock()
	b := r.buckets[name]
	r.mu.RUnlock()
	if b == nil {
		r.stray.Add(1)
		return
	}
	b.record(id, ep, at)
}

// bucket returns a new bucket under name (replacing any other), with room for size
// deliveries; with firsts set it keeps the first arrival time of every webhook-id.
func (r *receiver) bucket(name string, firsts bool, size int) *bucket {
	b := newBucket(size)
	if firsts {
		b.first = make(map[string]time.Time, size)
	}
	r.mu.Lock()
	r.buckets[name] = b
	r.mu.Unlock()
	return b
}

// forget drops every bucket: what arrives for them from now on counts as stray.
func (r *receiver) forget() {
	r.mu.Lock()
	clear(r.buckets)
	r.mu.Unlock()
}

// URL is where endpoint ep of bucket name delivers.
func (r *receiver) endpointURL(name string, ep int) string {
	return fmt.Sprintf("%s/d/%s/%d", r.url, name, ep)
}

// deliveryKey is a delivery as the sink tells them apart: its webhook-id (a Consign
// event ID, 30 bytes) and endpoint, in an array so that the key holds no pointer. An id
// too long for it is kept in longSeen instead.
type deliveryKey struct {
	id [40]byte
	n  uint8
	ep int32
}

type longKey struct {
	id string
	ep int
}

// bucket counts one scenario's deliveries: per webhook-id and endpoint, so a repeat (a
// retry of a delivery that did arrive) counts once as a delivery and once as a duplicate.
type bucket struct {
	mu       sync.Mutex
	seen     map[deliveryKey]struct{}
	longSeen map[longKey]struct{}
	first    map[string]time.Time
	total    int
	unique   int
	last     time.Time // arrival of the latest new delivery
	markN    int       // see markAfter
	markAt   time.Time
	want     int
	wantSet  bool
	done     chan struct{} // closed when want new deliveries have arrived
	closed   bool
	waiters  []waiter // see await
}

// waiter is a publisher waiting for n new deliveries to have arrived.
type waiter struct {
	n  int
	ch chan struct{}
}

func (b *bucket) record(id string, ep int, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total++
	if !b.firstSeen(id, ep) {
		return
	}
	b.unique++
	b.last = at
	if b.unique == b.markN {
		b.markAt = at
	}
	if b.first != nil {
		if _, ok := b.first[id]; !ok {
			b.first[id] = at
		}
	}
	b.check()
}

func newBucket(size int) *bucket {
	return &bucket{seen: make(map[deliveryKey]struct{}, size), longSeen: map[longKey]struct{}{}, done: make(chan struct{})}
}

// firstSeen records that id arrived at ep and says whether it is the first time.
func (b *bucket) firstSeen(id string, ep int) bool {
	if len(id) > len(deliveryKey{}.id) || ep != int(int32(ep)) {
		k := longKey{id, ep}
		_, dup := b.longSeen[k]
		b.longSeen[k] = struct{}{}
		return !dup
	}
	k := deliveryKey{n: uint8(len(id)), ep: int32(ep)}
	copy(k.id[:], id)
	_, dup := b.seen[k]
	b.seen[k] = struct{}{}
	return !dup
}

// expect sets the number of deliveries to wait for, once it is known.
func (b *bucket) expect(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.want, b.wantSet = n, true
	b.check()
}

func (b *bucket) check() {
	if b.wantSet && !b.closed && b.unique >= b.want {
		b.closed = true
		close(b.done)
	}
	kept := b.waiters[:0]
	for _, w := range b.waiters {
		if b.unique >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	b.waiters = kept
}

// await returns once n new deliveries have arrived, or with ctx's error.
func (b *bucket) await(ctx context.Context, n int) error {
	b.mu.Lock()
	if b.unique >= n {
		b.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	b.waiters = append(b.waiters, waiter{n, ch})
	b.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// markAfter asks the bucket, before its deliveries start, to note when the n-th new
// delivery arrives (n > 0), for marked.
func (b *bucket) markAfter(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.markN = n
}

// marked returns the arrival of the delivery markAfter asked for; zero: not yet.
func (b *bucket) marked() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.markAt
}

// counts returns the new deliveries, the duplicates and the last new arrival.
func (b *bucket) counts() (unique, dups int, last time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.unique, b.total - b.unique, b.last
}

// firsts returns a copy of the first arrival time of every webhook-id.
func (b *bucket) firsts() map[string]time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.first)
}
