package app_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
)

// Delivery control: limits, Retry-After, ordering, coalescing, health, failure
// policies, operational events and stats, each against a real receiver.

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("rate")
	rc := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}, "rate_limit": 20})
	const n = 60
	events := make([]map[string]any, n)
	for i := range events {
		events[i] = map[string]any{"type": "order.updated", "payload": map[string]any{"i": i}}
	}
	// The bucket holds at most 20 tokens when the batch is sent and gains 20 a second from
	// its first use, which is later: by any moment, at most 20 + 20/s × the time since
	// sent have started. The times are the attempts' own (sent is on the same clock):
	// a loaded machine only delays starts, and arrivals, which add each request's
	// connect, once showed the first burst's 20 new connections 0.7 s late while the
	// refilled tokens' reused them (60 arrivals within 1.27 s of the first).
	sent := time.Now()
	e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": events}, o.key)
	require.Eventually(t, func() bool { return len(rc.all()) >= n }, 3*waitFor, tick)
	require.Eventually(t, func() bool { return len(e.deliveries(o, "status=succeeded")) == n }, 3*waitFor, tick,
		"every delivery recorded as succeeded")
	var starts []time.Time
	for _, d := range e.deliveries(o, "status=succeeded") {
		starts = append(starts, e.delivery(o, d.ID).Attempts[0].StartedAt)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	// The other 40 take 2 s of refill (less a millisecond: stored times are truncated).
	last := starts[n-1].Sub(sent)
	require.GreaterOrEqual(t, last, 1999*time.Millisecond, "the 60th attempt at 20/s started %s after the batch was sent", last)
	inFirstSecond := 0
	for _, at := range starts {
		if at.Sub(sent) < time.Second {
			inFirstSecond++
		}
	}
	// 20 at once + 20 refilled = 40 (and one for the truncated times). Without the limit
	// all 60 start within milliseconds.
	require.LessOrEqual(t, inFirstSecond, 41, "attempts started in the first second after the batch was sent")
}

func TestBurstLimit(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("burst")
	var inFlight, peak atomic.Int32
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		inFlight.Add(-1)
		w.WriteHeader(http.StatusNoContent)
	})
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}, "burst_limit": 3})
	events := make([]map[string]any, 30)
	for i := range events {
		events[i] = map[string]any{"type": "order.updated", "payload": map[string]any{"i": i}}
	}
	e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": events}, o.key)
	require.Eventually(t, func() bool { return len(rc.all()) >= 30 }, 3*waitFor, tick)
	require.Equal(t, int32(3), peak.Load(), "at most 3 requests in flight, and the limit is used")
}

func TestRetryAfterHoldsTheEndpoint(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("throttled")
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}, "burst_limit": 1,
		"retry": map[string]any{"schedule": []string{"10ms"}, "max_age": "1m"}})
	first := e.publish(o, "order.updated", map[string]any{"n": 1})
	t0 := rc.next(t).At
	e.publish(o, "order.updated", map[string]any{"n": 2})
	second := rc.next(t)
	require.GreaterOrEqual(t, second.At.Sub(t0), 1900*time.Millisecond, "Retry-After: 2 holds every delivery of the endpoint")
	rc.next(t)
	d := e.waitStatus(o, e.onlyDelivery(o, first).ID, "succeeded")
	require.Len(t, d.Attempts, 2)
	require.Equal(t, 429, d.Attempts[0].Response.Status)
}

// TestOrderedKeyFollowsAtOnce: the next delivery of a key goes as soon as the one before
// it has been recorded, not at the dispatcher's next periodic look at the store (set to
// an hour here; it was 2 s, and a burst of twenty updates of one key took 38 s).
func TestOrderedKeyFollowsAtOnce(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *app.Config) { c.Dispatch.Resync = time.Hour })
	o := e.newOrg("ordered-burst")
	rc := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"product.*"}, "ordering": "key"})
	const n = 20
	var events []map[string]any
	for i := range n {
		events = append(events, map[string]any{"type": "product.inventoryChanged", "ordering_key": "sku-A",
			"payload": map[string]any{"n": i}})
	}
	e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": events}, o.key)
	require.Eventually(t, func() bool { return len(rc.all()) >= n }, waitFor, tick, "all %d delivered", n)
	for i, r := range rc.all() {
		require.Equal(t, strconv.Itoa(i+1), r.Header.Get("Webhook-Sequence"), "request %d", i)
	}
}

func TestOrderingByKey(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("ordered")
	var mu sync.Mutex
	failed := map[string]int{}
	var rc *receiver
	rc = newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		var env struct {
			Data struct {
				Key string
				N   int
			}
		}
		_ = json.Unmarshal(rc.all()[n-1].Body, &env)
		mu.Lock()
		defer mu.Unlock()
		// A-1 fails twice before it is accepted: must wait; B flows on.
		if env.Data.Key == "A" && env.Data.N == 1 && failed["A1"] < 2 {
			failed["A1"]++
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"product.*"}, "ordering": "key",
		"retry": map[string]any{"schedule": []string{"150ms"}, "max_age": "1m"}})
	var events []map[string]any
	for _, k := range []struct {
		key string
		n   int
	}{{"A", 1}, {"A", 2}, {"B", 1}, {"A", 3}, {"B", 2}} {
		events = append(events, map[string]any{"type": "product.inventoryChanged", "ordering_key": "sku-" + k.key,
			"payload": map[string]any{"key": k.key, "n": k.n}})
	}
	e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": events}, o.key)
	require.Eventually(t, func() bool { return len(rc.all()) >= 7 }, waitFor, tick) // 5 + 2 failures
	type seen struct {
		key      string
		n        int
		seq      string
		accepted bool
		at       time.Time
	}
	var order []seen
	mu.Lock()
	aFailures := failed["A1"]
	mu.Unlock()
	require.Equal(t, 2, aFailures)
	for _, r := range rc.all() {
		var env struct {
			Data struct {
				Key string
				N   int
			}
		}
		require.NoError(t, json.Unmarshal(r.Body, &env))
		order = append(order, seen{key: env.Data.Key, n: env.Data.N, seq: r.Header.Get("Webhook-Sequence"), at: r.At})
	}
	// Per key, requests arrive in event order, and each carries its sequence number.
	last := map[string]int{}
	for _, s := range order {
		require.GreaterOrEqual(t, s.n, last[s.key], "key %s: %d arrived after %d", s.key, s.n, last[s.key])
		last[s.key] = s.n
		require.Equal(t, strconv.Itoa(s.n), s.seq, "webhook-sequence of %s-%d", s.key, s.n)
	}
	// B is not held up by A's failures: both B events arrive before A-2.
	idx := func(key string, n int) int {
		for i, s := range order {
			if s.key == key && s.n == n {
				return i
			}
		}
		return -1
	}
	require.Less(t, idx("B", 2), idx("A", 2), "key B waited for key A: %+v", order)
}

func TestCoalescing(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("coalesce")
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			<-release // hold the first request until the newer events are in
		}
		w.WriteHeader(http.StatusOK)
	})
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"product.inventoryChanged"}, "coalesce": true, "burst_limit": 1})
	level := func(q int) string {
		ev := e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events", map[string]any{
			"type": "product.inventoryChanged", "ordering_key": "SKU-9", "payload": map[string]any{"sku": "SKU-9", "quantity": q}}, o.key)
		return ev["id"].(string)
	}
	e1 := level(10)
	rc.next(t) // e1 is in flight and held
	e2 := level(9)
	// e2 is taken into the endpoint's buffer (one in flight, one waiting); later ones wait
	// in the store, where a newer level supersedes them.
	require.Eventually(t, func() bool { return e.onlyDelivery(o, e2).Status == "delivering" }, waitFor, tick)
	e3, e4, e5 := level(8), level(7), level(6)
	close(release)
	for _, id := range []string{e1, e2, e5} {
		e.waitStatus(o, e.onlyDelivery(o, id).ID, "succeeded")
	}
	for _, id := range []string{e3, e4} {
		d := e.onlyDelivery(o, id)
		require.Equal(t, "superseded", d.Status, "event %s", id)
		require.Zero(t, d.AttemptsCount)
	}
	var quantities []int
	for _, r := range rc.all() {
		var env struct{ Data struct{ Quantity int } }
		require.NoError(t, json.Unmarshal(r.Body, &env))
		quantities = append(quantities, env.Data.Quantity)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(quantities)))
	require.Equal(t, []int{10, 9, 6}, quantities, "only the newest pending level is sent")
}

func TestFailurePolicyDisablesAndReactivationResumes(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("policy")
	var healthy atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	})
	ops := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": ops.URL, "topics": []string{"consign.*"}})
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"},
		"retry":          map[string]any{"schedule": []string{"30ms"}, "max_age": "1h"},
		"failure_policy": map[string]any{"max_failures": 3, "window": "6h"}})
	epID := ep["id"].(string)
	ev := e.publish(o, "order.updated", map[string]any{"id": 1})

	// More than three failures within the window: deactivated, health failed, paused.
	var got map[string]any
	require.Eventually(t, func() bool {
		got = e.c.must(http.StatusOK, "GET", "/v1/orgs/"+o.id+"/endpoints/"+epID, nil, o.key)
		return got["active"] == false
	}, waitFor, tick)
	require.Equal(t, "failed", got["health"])
	require.Contains(t, got["disabled_reason"], "failed attempts within 6h0m0s (more than 3)")
	require.NotNil(t, got["disabled_at"])
	d := e.waitStatus(o, e.onlyDelivery(o, ev).ID, "paused")
	require.GreaterOrEqual(t, d.AttemptsCount, 4)

	// Operators hear about it through consign.endpoint.disabled.
	disabled := waitOp(t, ops, "consign.endpoint.disabled")
	require.Equal(t, epID, disabled["endpoint_id"])

	// An event published while inactive waits for it, paused.
	meanwhile := e.waitStatus(o, e.onlyDelivery(o, e.publish(o, "order.updated", map[string]any{"id": 2})).ID, "paused")

	// Activation resets health and sends what was paused.
	healthy.Store(true)
	got = e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+epID, map[string]any{"active": true}, o.key)
	require.Equal(t, "healthy", got["health"])
	require.Nil(t, got["disabled_at"])
	e.waitStatus(o, d.ID, "succeeded")
	e.waitStatus(o, meanwhile.ID, "succeeded")
	enabled := waitOp(t, ops, "consign.endpoint.enabled")
	require.Equal(t, epID, enabled["endpoint_id"])
}

func TestDisableAfterNothingAccepted(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("disable-after")
	rc := newReceiver(t, status(http.StatusServiceUnavailable))
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"},
		"retry":          map[string]any{"schedule": []string{"100ms"}, "max_age": "1h"},
		"failure_policy": map[string]any{"disable_after": "1s"}})
	epID := ep["id"].(string)
	e.publish(o, "order.updated", map[string]any{"id": 1})
	require.Eventually(t, func() bool {
		got := e.c.must(http.StatusOK, "GET", "/v1/orgs/"+o.id+"/endpoints/"+epID, nil, o.key)
		return got["health"] == "failing" && got["failing_since"] != nil
	}, waitFor, tick, "a failed attempt makes the endpoint failing")
	var got map[string]any
	require.Eventually(t, func() bool {
		got = e.c.must(http.StatusOK, "GET", "/v1/orgs/"+o.id+"/endpoints/"+epID, nil, o.key)
		return got["active"] == false
	}, waitFor, tick)
	require.Contains(t, got["disabled_reason"], "nothing accepted for 1s")
}

func TestExhaustedDeliveryIsAnnounced(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("exhausted")
	rc := newReceiver(t, status(http.StatusInternalServerError))
	ops := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": ops.URL, "topics": []string{"consign.delivery.exhausted"}})
	// "*" takes every partner event but never Consign's own.
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}, "retry": fastRetry("300ms")})
	ev := e.publish(o, "order.updated", map[string]any{"id": 1})
	d := e.waitStatus(o, e.deliveries(o, "event_id="+ev)[0].ID, "failed")
	ex := waitOp(t, ops, "consign.delivery.exhausted")
	require.Equal(t, d.ID, ex["delivery_id"])
	require.Equal(t, ev, ex["event_id"])
	require.EqualValues(t, 500, ex["last_status"])
	for _, r := range rc.all() {
		require.NotContains(t, string(r.Body), "consign.", "the * endpoint got an operational event")
	}
}

func TestHealthAndStats(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("stats")
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n%4 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}, "burst_limit": 1,
		"retry": map[string]any{"schedule": []string{"20ms"}, "max_age": "1m"}})
	epID := ep["id"].(string)
	for i := range 9 {
		e.publish(o, "order.updated", map[string]any{"i": i})
	}
	require.Eventually(t, func() bool { return len(e.deliveries(o, "status=succeeded")) == 9 }, waitFor, tick)
	var st struct {
		Deliveries   map[string]int `json:"deliveries"`
		Attempts     int            `json:"attempts"`
		Succeeded    int            `json:"succeeded"`
		Failed       int            `json:"failed"`
		SuccessRate  *float64       `json:"success_rate"`
		LatencyP50MS *int64         `json:"latency_p50_ms"`
		LatencyP99MS *int64         `json:"latency_p99_ms"`
		Window       string         `json:"window"`
	}
	e.c.get("/v1/orgs/"+o.id+"/endpoints/"+epID+"/stats?window=1h", o.key, &st)
	require.Equal(t, "1h0m0s", st.Window)
	require.Equal(t, map[string]int{"succeeded": 9}, st.Deliveries)
	require.Equal(t, st.Succeeded+st.Failed, st.Attempts)
	require.Equal(t, 9, st.Succeeded)
	require.GreaterOrEqual(t, st.Failed, 2) // every fourth request failed
	require.NotNil(t, st.SuccessRate)
	require.InDelta(t, float64(st.Succeeded)/float64(st.Attempts), *st.SuccessRate, 1e-9)
	require.NotNil(t, st.LatencyP50MS)
	require.NotNil(t, st.LatencyP99MS)
	require.LessOrEqual(t, *st.LatencyP50MS, *st.LatencyP99MS)
	got := e.c.must(http.StatusOK, "GET", "/v1/orgs/"+o.id+"/endpoints/"+epID, nil, o.key)
	require.Equal(t, "healthy", got["health"], "the last attempt succeeded")

	r := e.c.raw("GET", "/v1/orgs/"+o.id+"/endpoints/"+epID+"/stats?window=forever", nil, o.key, nil)
	require.Contains(t, requireProblem(t, r).fields(), "window")
}

// waitOp waits for an operational event of type typ at the receiver and returns its data.
func waitOp(tb testing.TB, rc *receiver, typ string) map[string]any {
	tb.Helper()
	var data map[string]any
	require.Eventually(tb, func() bool {
		for _, r := range rc.all() {
			var env struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			}
			if json.Unmarshal(r.Body, &env) == nil && env.Type == typ {
				data = env.Data
				return true
			}
		}
		return false
	}, waitFor, tick, "no %s event arrived", typ)
	return data
}

// TestDispatchStateInStats: an endpoint's stats carry how this node sends to it now —
// attempts in flight and queued under its burst limit, its quickest round trip, and the
// pause it gets after failing in a row — and null for an endpoint it holds nothing for.
func TestDispatchStateInStats(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("dispatch-state")
	state := func(epID string) *consign.EndpointDispatch {
		var st struct {
			Dispatch *consign.EndpointDispatch `json:"dispatch"`
		}
		e.c.get("/v1/orgs/"+o.id+"/endpoints/"+epID+"/stats", o.key, &st)
		return st.Dispatch
	}

	idle := e.createEndpoint(o, map[string]any{"url": "https://idle.example.com/hooks", "topics": []string{"variant.unavailable"}})
	require.Nil(t, state(idle["id"].(string)), "no work: nothing held for it")

	slow := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		time.Sleep(300 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	slowID := e.createEndpoint(o, map[string]any{"url": slow.URL, "topics": []string{"order.updated"}, "burst_limit": 4})["id"].(string)
	events := make([]map[string]any, 40)
	for i := range events {
		events[i] = map[string]any{"type": "order.updated", "payload": map[string]any{"i": i}}
	}
	e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": events}, o.key)
	var busy *consign.EndpointDispatch
	require.Eventually(t, func() bool {
		busy = state(slowID)
		return busy != nil && busy.InFlight == 4 && busy.Queued > 0 && busy.RoundTripMinMS != nil
	}, waitFor, tick, "four in flight, the rest queued, round trips known: %+v", busy)
	require.Equal(t, 4, busy.BurstLimit)
	require.Equal(t, 4, busy.Concurrency, "a slow endpoint that does not queue keeps its whole burst")
	require.GreaterOrEqual(t, *busy.RoundTripMinMS, 300.0)
	require.Zero(t, busy.ConsecutiveFailures)
	require.Nil(t, busy.HeldUntil)

	failing := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	failingID := e.createEndpoint(o, map[string]any{"url": failing.URL, "topics": []string{"order.created"},
		"retry": map[string]any{"schedule": []string{"10ms"}, "max_age": "1h"}})["id"].(string)
	for i := range 6 {
		e.publish(o, "order.created", map[string]any{"i": i})
	}
	var held *consign.EndpointDispatch
	require.Eventually(t, func() bool {
		held = state(failingID)
		return held != nil && held.ConsecutiveFailures >= 5 && held.HeldUntil != nil
	}, waitFor, tick, "failing in a row: held between probes: %+v", held)
	require.True(t, held.HeldUntil.After(time.Now().Add(-time.Second)), "held until a time to come: %s", held.HeldUntil)
}
