package app_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
)

// What a partner gets after an outage, on the embedded store and on PostgreSQL.

// onEachStore runs test on the embedded store and on a PostgreSQL database of its own;
// test starts its app(s) with the mods it is given.
func onEachStore(t *testing.T, test func(t *testing.T, mods ...func(*app.Config))) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		test(t, postgresNodes(t))
	})
}

// partner is a receiver that answers as it is told: 200, or a failure status; failNext
// requests first fail with 500 whatever answer says.
type partner struct {
	*receiver
	answer   atomic.Int32
	failNext atomic.Int32
}

func newPartner(t *testing.T) *partner {
	p := &partner{}
	p.answer.Store(http.StatusOK)
	p.receiver = newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if p.failNext.Add(-1) >= 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(int(p.answer.Load()))
	})
	return p
}

// payloadN returns the "n" of a request's event payload, in an envelope or raw.
func payloadN(tb testing.TB, body []byte) int {
	tb.Helper()
	var v struct {
		N    *int `json:"n"`
		Data *struct {
			N int `json:"n"`
		} `json:"data"`
	}
	require.NoError(tb, json.Unmarshal(body, &v), "%s", body)
	if v.Data != nil {
		return v.Data.N
	}
	require.NotNil(tb, v.N, "%s", body)
	return *v.N
}

// TestWhatWaitedIsSentWhenBack: an event published while an endpoint is inactive —
// deactivated by hand, by a 410, by its failure policy, or a ReadyCloud webhook
// suspended — waits as a paused delivery and is sent, in order, once the endpoint is
// active again, rather than being skipped by fan-out and lost to the endpoint.
func TestWhatWaitedIsSentWhenBack(t *testing.T) {
	t.Parallel()
	for _, cause := range []string{"by hand", "410 Gone", "failure policy", "ReadyCloud suspension"} {
		t.Run(cause, func(t *testing.T) {
			t.Parallel()
			onEachStore(t, func(t *testing.T, mods ...func(*app.Config)) {
				e := start(t, mods...)
				o := e.newOrg("outage")
				p := newPartner(t)
				epPath := ""
				// One at a time, so the partner sees the order in which they are sent.
				settings := map[string]any{"burst_limit": 1, "retry": map[string]any{"schedule": []string{"30ms"}, "max_age": "1h"}}
				if cause == "ReadyCloud suspension" {
					w := e.c.must(http.StatusCreated, "POST", "/api/v2/orgs/"+o.id+"/webhooks/", map[string]any{"remote_url": p.URL + "/orders/v2/"}, o.key)
					epPath = "/v1/orgs/" + o.id + "/endpoints/" + strings.TrimSuffix(strings.TrimPrefix(w["url"].(string), "/api/v2/orgs/"+o.id+"/webhooks/"), "/")
					e.c.must(http.StatusOK, "PATCH", epPath, settings, o.key)
				} else {
					settings["url"], settings["topics"] = p.URL, []string{"order.*"}
					if cause == "failure policy" {
						settings["failure_policy"] = map[string]any{"max_failures": 1, "window": "1h"}
					}
					epPath = "/v1/orgs/" + o.id + "/endpoints/" + e.createEndpoint(o, settings)["id"].(string)
				}
				active := func() bool { return e.c.must(http.StatusOK, "GET", epPath, nil, o.key)["active"] == true }

				var before []string // events published before the outage began
				switch cause {
				case "by hand":
					e.c.must(http.StatusOK, "PATCH", epPath, map[string]any{"active": false}, o.key)
				case "410 Gone":
					p.answer.Store(http.StatusGone)
				default:
					p.answer.Store(http.StatusInternalServerError)
				}
				if cause != "by hand" {
					before = append(before, e.publish(o, "order.updated", map[string]any{"n": 0}))
					require.Eventually(t, func() bool { return !active() }, waitFor, tick, "deactivated")
					// An attempt in flight as the endpoint was deactivated ends first.
					e.waitStatus(o, e.onlyDelivery(o, before[0]).ID, "paused")
				}
				sentBefore := len(p.all())

				var during []string
				for n := 1; n <= 3; n++ {
					during = append(during, e.publish(o, "order.updated", map[string]any{"n": n}))
				}
				for _, id := range append(before, during...) {
					e.waitStatus(o, e.onlyDelivery(o, id).ID, "paused")
				}
				require.Len(t, p.all(), sentBefore, "nothing is sent while the endpoint is inactive")

				p.answer.Store(http.StatusOK)
				if cause == "ReadyCloud suspension" {
					r := e.c.raw("POST", "/api/v2/orgs/"+o.id+"/webhooks/"+strings.TrimPrefix(epPath, "/v1/orgs/"+o.id+"/endpoints/")+"/resume/?bearer_token="+url.QueryEscape(o.key), nil, "", nil)
					require.Equal(t, http.StatusOK, r.status, "%s", r.body)
				} else {
					e.c.must(http.StatusOK, "PATCH", epPath, map[string]any{"active": true}, o.key)
				}
				for _, id := range append(before, during...) {
					e.waitStatus(o, e.onlyDelivery(o, id).ID, "succeeded")
				}
				var order []int
				for _, r := range p.all()[sentBefore:] {
					order = append(order, payloadN(t, r.Body))
				}
				want := []int{1, 2, 3}
				if len(before) > 0 {
					want = []int{0, 1, 2, 3}
				}
				require.Equal(t, want, order, "what waited, each once, in the order it was published")
			})
		})
	}
}

// TestReactivationStartsAFreshWindow: failures from before a reactivation never count
// again, also after a restart. With max_failures 3, an endpoint deactivated after four
// failures and activated again takes one more failure in its stride (the retry
// succeeds); counted over the window as before, that failure deactivated it again at once.
func TestReactivationStartsAFreshWindow(t *testing.T) {
	t.Parallel()
	onEachStore(t, func(t *testing.T, mods ...func(*app.Config)) {
		dir := t.TempDir()
		mods = append(mods, func(c *app.Config) { c.DataDir = dir })
		e := start(t, mods...)
		o := e.newOrg("window")
		p := newPartner(t)
		p.answer.Store(http.StatusInternalServerError)
		ep := e.createEndpoint(o, map[string]any{"url": p.URL, "topics": []string{"order.*"},
			"retry":          map[string]any{"schedule": []string{"30ms"}, "max_age": "1h"},
			"failure_policy": map[string]any{"max_failures": 3, "window": "6h"}})
		epPath := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string)
		first := e.publish(o, "order.updated", map[string]any{"n": 1})
		require.Eventually(t, func() bool { return e.c.must(http.StatusOK, "GET", epPath, nil, o.key)["active"] == false }, waitFor, tick)
		d := e.waitStatus(o, e.onlyDelivery(o, first).ID, "paused")
		require.Greater(t, d.AttemptsCount, 3)

		// Activated again: the next attempt fails once more, then the partner is back.
		sent := len(p.all())
		p.answer.Store(http.StatusOK)
		p.failNext.Store(1)
		e.c.must(http.StatusOK, "PATCH", epPath, map[string]any{"active": true}, o.key)
		e.waitStatus(o, d.ID, "succeeded")
		require.Len(t, p.all(), sent+2, "one failure, one success")
		got := e.c.must(http.StatusOK, "GET", epPath, nil, o.key)
		require.Equal(t, true, got["active"], "one failure since the reactivation: %v", got["disabled_reason"])
		require.NotNil(t, got["reactivated_at"], "the fresh window's start")

		// A restart (a node's, or another node taking over) keeps the window's start: one
		// more failure makes two since the reactivation.
		e.close()
		e = start(t, mods...)
		p.failNext.Store(1)
		e.waitStatus(o, e.onlyDelivery(o, e.publish(o, "order.updated", map[string]any{"n": 2})).ID, "succeeded")
		require.Len(t, p.all(), sent+4)
		got = e.c.must(http.StatusOK, "GET", epPath, nil, o.key)
		require.Equal(t, true, got["active"], "two failures since the reactivation: %v", got["disabled_reason"])
		require.Equal(t, "healthy", got["health"])
	})
}

// TestDiscardPausedCancelsWhatWaited: {"active": true, "discard_paused": true} activates
// the endpoint and cancels what waited for it; what is published afterwards is sent.
func TestDiscardPausedCancelsWhatWaited(t *testing.T) {
	t.Parallel()
	onEachStore(t, func(t *testing.T, mods ...func(*app.Config)) {
		e := start(t, mods...)
		o := e.newOrg("discard")
		p := newPartner(t)
		ep := e.createEndpoint(o, map[string]any{"url": p.URL, "topics": []string{"order.*"}, "active": false})
		epPath := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string)
		var waited []string
		for n := range 3 {
			waited = append(waited, e.waitStatus(o, e.onlyDelivery(o, e.publish(o, "order.updated", map[string]any{"n": n})).ID, "paused").ID)
		}

		st, body := e.c.do("PATCH", epPath, map[string]any{"discard_paused": true}, o.key)
		require.Equal(t, http.StatusUnprocessableEntity, st, "%v", body)
		require.Equal(t, "discard_paused", fieldOf(body))
		require.Equal(t, false, e.c.must(http.StatusOK, "GET", epPath, nil, o.key)["active"], "nothing changed")

		got := e.c.must(http.StatusOK, "PATCH", epPath, map[string]any{"active": true, "discard_paused": true}, o.key)
		require.Equal(t, true, got["active"])
		for _, id := range waited {
			require.Equal(t, "cancelled", e.delivery(o, id).Status)
		}
		after := e.publish(o, "order.updated", map[string]any{"n": 9})
		e.waitStatus(o, e.onlyDelivery(o, after).ID, "succeeded")
		reqs := p.all()
		require.Len(t, reqs, 1, "only what came after the activation")
		require.Equal(t, after, reqs[0].Header.Get("webhook-id"))
	})
}

// TestBurstOfFailuresTripsThePolicy: the failure policy is judged on every recorded
// failure. A max_failures 3 endpoint fails once, then three more times within the next
// second, then succeeds: it is deactivated all the same, on one node or two. A policy
// checked at most once a second, or not after a success, would let that burst slip.
func TestBurstOfFailuresTripsThePolicy(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, nodes []*env) {
		e := nodes[0]
		o := e.newOrg("burst")
		p := newPartner(t)
		p.failNext.Store(4)
		ep := e.createEndpoint(o, map[string]any{"url": p.URL, "topics": []string{"order.*"},
			"retry":          map[string]any{"schedule": []string{"2s"}, "max_age": "1h"},
			"failure_policy": map[string]any{"max_failures": 3, "window": "1h"}})
		epPath := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string)

		first := e.onlyDelivery(o, e.publish(o, "order.updated", map[string]any{"n": 0})).ID
		require.Eventually(t, func() bool { return e.delivery(o, first).AttemptsCount == 1 }, waitFor, tick, "the first failure recorded")
		for n := 1; n <= 3; n++ {
			nodes[n%len(nodes)].publish(o, "order.updated", map[string]any{"n": n})
		}
		var got map[string]any
		require.Eventually(t, func() bool {
			got = e.c.must(http.StatusOK, "GET", epPath, nil, o.key)
			return got["active"] == false
		}, waitFor, tick, "four failures, then successes: deactivated all the same")
		require.Contains(t, got["disabled_reason"], "4 failed attempts within 1h0m0s (more than 3)")
		require.Equal(t, "failed", got["health"])
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		run(t, []*env{start(t)})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		onPostgres := postgresNodes(t)
		run(t, []*env{start(t, onPostgres)})
	})
	t.Run("postgres, two nodes", func(t *testing.T) {
		t.Parallel()
		onPostgres := postgresNodes(t)
		run(t, []*env{start(t, onPostgres), start(t, onPostgres)})
	})
}

// postgresNodes returns a mod that starts an app on one PostgreSQL database of the test,
// the same for every node started with it.
func postgresNodes(t *testing.T) func(*app.Config) {
	dsn := pgtest.DSN(t)
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	return func(c *app.Config) { c.Database, c.EncryptionKey = dsn, key }
}
