package app_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
)

// stores are the two stores a replay test runs on: the embedded one and PostgreSQL.
func stores(tb testing.TB) map[string]func(*app.Config) {
	return map[string]func(*app.Config){
		"sqlite": func(*app.Config) {},
		"postgres": func(c *app.Config) {
			c.Database = pgtest.DSN(tb)
			c.EncryptionKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
		},
	}
}

// jobView is a job as the API shows it.
type jobView struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	Status     string `json:"status"`
	EndpointID string `json:"endpoint_id"`
	Error      string `json:"error"`
	Params     struct {
		Since time.Time `json:"since"`
		Until time.Time `json:"until"`
		Types []string  `json:"types"`
	} `json:"params"`
	Progress struct {
		Scanned int  `json:"scanned"`
		Created int  `json:"created"`
		Total   *int `json:"total"`
	} `json:"progress"`
	FinishedAt *time.Time `json:"finished_at"`
}

// replay starts a replay of the endpoint and returns its job.
func (e *env) replay(o org, endpointID string, body map[string]any) jobView {
	e.tb.Helper()
	r := e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints/"+endpointID+"/replay", body, o.key, nil)
	require.Equal(e.tb, http.StatusAccepted, r.status, "%s", r.body)
	var j jobView
	require.NoError(e.tb, json.Unmarshal(r.body, &j))
	require.Equal(e.tb, "/v1/orgs/"+o.id+"/jobs/"+j.ID, r.header.Get("Location"))
	return j
}

// waitJob polls a job until it has the status.
func (e *env) waitJob(o org, id, status string, within time.Duration) jobView {
	e.tb.Helper()
	var j jobView
	require.Eventually(e.tb, func() bool {
		r, err := e.c.send("GET", "/v1/orgs/"+o.id+"/jobs/"+id, nil, o.key, nil)
		if err != nil || r.status != http.StatusOK {
			return false
		}
		j = jobView{}
		return json.Unmarshal(r.body, &j) == nil && j.Status == status
	}, within, tick, "job %s never became %s; last seen %+v", id, status, &j)
	return j
}

// webhookIDs counts the requests a receiver got by webhook-id (the event ID).
func webhookIDs(rc *receiver) map[string]int {
	n := map[string]int{}
	for _, r := range rc.all() {
		n[r.Header.Get("webhook-id")]++
	}
	return n
}

// waitReceived waits until the receiver has n requests, then a moment for any more.
func waitReceived(t *testing.T, rc *receiver, n int, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return len(rc.all()) >= n }, within, tick, "received %d of %d", len(rc.all()), n)
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive about now
}

// TestReplayDeliversWhatTheEndpointNeverHad: a partner's endpoint created after events
// were published gets, from a replay, exactly the events of its topics (and filter, and
// the types asked for) it never had, once each — not the ones it got live, not the ones
// of other orgs or outside the window — and the job says so.
func TestReplayDeliversWhatTheEndpointNeverHad(t *testing.T) {
	t.Parallel()
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := start(t, store)
			o, other := e.newOrg("acme"), e.newOrg("other")
			since := time.Now().UTC().Add(-time.Second)
			var before []string // published before the partner's endpoints existed
			byType := map[string]string{}
			for i := range 30 {
				typ := []string{"order.created", "order.updated", "inventory.updated"}[i%3]
				id := e.publish(o, typ, map[string]any{"n": i})
				before = append(before, id)
				byType[id] = typ
				e.publish(other, "order.created", map[string]any{"n": i})
			}
			partner := newReceiver(t, nil)
			ep := e.createEndpoint(o, map[string]any{"url": partner.URL + "/all", "topics": []string{"order.*"}})["id"].(string)
			typed := newReceiver(t, nil)
			epTyped := e.createEndpoint(o, map[string]any{"url": typed.URL + "/typed", "topics": []string{"order.*"}})["id"].(string)
			filtered := newReceiver(t, nil)
			epFiltered := e.createEndpoint(o, map[string]any{"url": filtered.URL + "/big", "topics": []string{"order.*"},
				"filter": map[string]any{"payload": map[string]any{"n": map[string]any{"$gte": 20}}}})["id"].(string)
			var live []string
			for i := range 6 {
				live = append(live, e.publish(o, "order.created", map[string]any{"n": 100 + i}))
			}
			waitReceived(t, partner, len(live), waitFor)

			all := e.replay(o, ep, map[string]any{"since": since})
			require.Equal(t, consign.JobReplay, all.Kind)
			require.Equal(t, ep, all.EndpointID)
			typedJob := e.replay(o, epTyped, map[string]any{"since": since, "types": []string{"order.updated"}})
			filteredJob := e.replay(o, epFiltered, map[string]any{"since": since})

			var orders, updates, big []string
			for i, id := range before {
				if byType[id] == "inventory.updated" {
					continue
				}
				orders = append(orders, id)
				if byType[id] == "order.updated" {
					updates = append(updates, id)
				}
				if i >= 20 {
					big = append(big, id)
				}
			}
			j := e.waitJob(o, all.ID, consign.JobCompleted, waitFor)
			require.Equal(t, len(orders), j.Progress.Created)
			require.Equal(t, len(before)+len(live), j.Progress.Scanned, "every event of the org's window was looked at")
			require.NotNil(t, j.Progress.Total)
			require.Equal(t, len(before)+len(live), *j.Progress.Total)
			require.NotNil(t, j.FinishedAt)
			waitReceived(t, partner, len(live)+len(orders), waitFor)
			got := webhookIDs(partner)
			require.Len(t, got, len(live)+len(orders), "only the org's order events, each once")
			for _, id := range append(orders, live...) {
				require.Equal(t, 1, got[id], "event %s delivered %d times", id, got[id])
			}

			j = e.waitJob(o, typedJob.ID, consign.JobCompleted, waitFor)
			require.Equal(t, len(updates), j.Progress.Created)
			require.Equal(t, []string{"order.updated"}, j.Params.Types)
			waitReceived(t, typed, len(live)+len(updates), waitFor)
			got = webhookIDs(typed)
			require.Len(t, got, len(live)+len(updates))
			for _, id := range updates {
				require.Equal(t, 1, got[id])
			}

			j = e.waitJob(o, filteredJob.ID, consign.JobCompleted, waitFor)
			require.Equal(t, len(big), j.Progress.Created, "the endpoint's filter holds for a replay")
			waitReceived(t, filtered, len(live)+len(big), waitFor)
			require.Len(t, webhookIDs(filtered), len(live)+len(big))

			// Again: the endpoint has every event of the window now, so nothing is created.
			again := e.waitJob(o, e.replay(o, ep, map[string]any{"since": since}).ID, consign.JobCompleted, waitFor)
			require.Zero(t, again.Progress.Created)
			time.Sleep(200 * time.Millisecond)
			require.Len(t, partner.all(), len(live)+len(orders))

			// The jobs are listed newest first, and an endpoint's alone on request.
			var l struct{ Data []jobView }
			e.c.get("/v1/orgs/"+o.id+"/jobs", o.key, &l)
			require.Len(t, l.Data, 4)
			require.Equal(t, again.ID, l.Data[0].ID)
			e.c.get("/v1/orgs/"+o.id+"/jobs?endpoint_id="+epTyped, o.key, &l)
			require.Len(t, l.Data, 1)
			require.Equal(t, typedJob.ID, l.Data[0].ID)
			// Another org sees none of them.
			for _, path := range []string{"/v1/orgs/" + o.id + "/jobs/" + all.ID, "/v1/orgs/" + other.id + "/jobs/" + all.ID} {
				st, _ := e.c.do("GET", path, nil, other.key)
				require.Equal(t, http.StatusNotFound, st, path)
			}
			// A finished job cannot be cancelled.
			st, p := e.c.do("POST", "/v1/orgs/"+o.id+"/jobs/"+all.ID+"/cancel", nil, o.key)
			require.Equal(t, http.StatusConflict, st, "%v", p)
		})
	}
}

// TestReplayRefusesBadRequests: each bad field is named with what to do instead.
func TestReplayRefusesBadRequests(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *app.Config) { c.Retention = 48 * time.Hour })
	o := e.newOrg("acme")
	rc := newReceiver(t, nil)
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}})["id"].(string)
	now := time.Now().UTC()
	for _, tc := range []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"NoSince", map[string]any{}, []string{"since"}},
		{"SinceAfterUntil", map[string]any{"since": now.Add(-time.Hour), "until": now.Add(-2 * time.Hour)}, []string{"since"}},
		{"UntilInFuture", map[string]any{"since": now.Add(-time.Hour), "until": now.Add(time.Hour)}, []string{"until"}},
		{"OlderThanRetention", map[string]any{"since": now.Add(-72 * time.Hour)}, []string{"since"}},
		{"UnknownType", map[string]any{"since": now.Add(-time.Hour), "types": []string{"order.teleported"}}, []string{"types"}},
		{"TypeNotSubscribed", map[string]any{"since": now.Add(-time.Hour), "types": []string{"inventory.updated"}}, []string{"types"}},
		{"Several", map[string]any{"types": []string{"nope"}}, []string{"since", "types"}},
	} {
		r := e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints/"+ep+"/replay", tc.body, o.key, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", tc.name, r.body)
		require.ElementsMatch(t, tc.fields, requireProblem(t, r).fields(), "%s: %s", tc.name, r.body)
	}
	st, _ := e.c.do("POST", "/v1/orgs/"+o.id+"/endpoints/ep_nope/replay", map[string]any{"since": now.Add(-time.Hour)}, o.key)
	require.Equal(t, http.StatusNotFound, st)
	st, _ = e.c.do("GET", "/v1/orgs/"+o.id+"/jobs/job_nope", nil, o.key)
	require.Equal(t, http.StatusNotFound, st)
}

// TestReplayInactiveEndpoint: a replay of an inactive endpoint creates its deliveries
// paused, as fan-out does; they are sent once it is activated.
func TestReplayInactiveEndpoint(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	since := time.Now().UTC().Add(-time.Second)
	var ids []string
	for i := range 5 {
		ids = append(ids, e.publish(o, "order.created", map[string]any{"n": i}))
	}
	rc := newReceiver(t, nil)
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}, "active": false})["id"].(string)
	j := e.waitJob(o, e.replay(o, ep, map[string]any{"since": since}).ID, consign.JobCompleted, waitFor)
	require.Equal(t, len(ids), j.Progress.Created)
	for _, id := range ids {
		require.Equal(t, consign.StatusPaused, e.onlyDelivery(o, id).Status)
	}
	require.Empty(t, rc.all())
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+ep, map[string]any{"active": true}, o.key)
	waitReceived(t, rc, len(ids), waitFor)
	require.Len(t, webhookIDs(rc), len(ids))
}

// TestRecoverIsAJob: a recover run is recorded as a completed job with its count.
func TestRecoverIsAJob(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}, "retry": fastRetry("100ms")})["id"].(string)
	since := time.Now().UTC().Add(-time.Second)
	id := e.publish(o, "order.created", map[string]any{"n": 1})
	e.waitStatus(o, e.onlyDelivery(o, id).ID, consign.StatusFailed)
	rep := e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/endpoints/"+ep+"/recover", map[string]any{"since": since}, o.key)
	require.Equal(t, float64(1), rep["requeued"])
	require.Equal(t, consign.JobRecover, rep["kind"])
	require.Equal(t, consign.JobCompleted, rep["status"])
	var j jobView
	e.c.get(fmt.Sprintf("/v1/orgs/%s/jobs/%s", o.id, rep["id"]), o.key, &j)
	require.Equal(t, 1, j.Progress.Created)
	require.Equal(t, ep, j.EndpointID)
}

// TestReplayKeepsLimitsAndLiveTraffic: a big replay is sent at the endpoint's rate, keeps
// at most Jobs.MaxQueued of its deliveries queued, and another endpoint's live traffic
// goes on beside it without waiting.
func TestReplayKeepsLimitsAndLiveTraffic(t *testing.T) {
	t.Parallel()
	const (
		past      = 400
		rate      = 100 // a second
		burst     = 5
		maxQueued = 50
	)
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := start(t, store, func(c *app.Config) { c.Jobs.MaxQueued, c.Jobs.PageSize = maxQueued, maxQueued })
			o := e.newOrg("acme")
			since := time.Now().UTC().Add(-time.Second)
			batch := make([]map[string]any, past)
			for i := range batch {
				batch[i] = map[string]any{"type": "order.created", "payload": map[string]any{"n": i}}
			}
			e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": batch[:past/2]}, o.key)
			e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": batch[past/2:]}, o.key)
			partner := newReceiver(t, nil)
			ep := e.createEndpoint(o, map[string]any{"url": partner.URL, "topics": []string{"order.created"},
				"rate_limit": rate, "burst_limit": burst})["id"].(string)
			live := newReceiver(t, nil)
			e.createEndpoint(o, map[string]any{"url": live.URL, "topics": []string{"order.updated"}})
			j := e.replay(o, ep, map[string]any{"since": since})

			// Live traffic to the other endpoint while the replay runs: each event arrives
			// promptly, and the replayed endpoint's queue stays bounded.
			published := map[string]time.Time{}
			maxPending := 0
			for i := 0; len(partner.all()) < past/2; i++ {
				at := time.Now()
				published[e.publish(o, "order.updated", map[string]any{"n": i})] = at
				var l struct{ Data []json.RawMessage }
				e.c.get("/v1/orgs/"+o.id+"/deliveries?limit=500&status=pending&endpoint_id="+ep, o.key, &l)
				maxPending = max(maxPending, len(l.Data))
				time.Sleep(20 * time.Millisecond)
			}
			require.LessOrEqual(t, maxPending, maxQueued, "the replay keeps at most Jobs.MaxQueued queued")
			require.Positive(t, maxPending)
			e.waitJob(o, j.ID, consign.JobCompleted, 30*time.Second)
			waitReceived(t, partner, past, 30*time.Second)
			require.Len(t, webhookIDs(partner), past)

			waitReceived(t, live, len(published), waitFor)
			var lags []time.Duration
			for _, r := range live.all() {
				at, ok := published[r.Header.Get("webhook-id")]
				require.True(t, ok)
				lags = append(lags, r.At.Sub(at))
			}
			slices.Sort(lags)
			median, worst := lags[len(lags)/2], lags[len(lags)-1]
			t.Logf("%d live events beside the replay, delivered a median %v and at most %v after their publish", len(lags), median, worst)
			// Live events that queued behind the replay would wait for the rest of it (its
			// 400 deliveries take about 3 s at 100/s): the median stays well under that, and
			// no event waits as long as the replay runs. A single late one on a busy
			// machine is the machine's, not the replay's.
			require.Less(t, median, 500*time.Millisecond, "live traffic does not wait for the replay")

			// The replay went at the endpoint's rate: its token bucket holds a second's worth,
			// so no second holds more than twice the rate (give or take the burst in flight,
			// as the receiver times arrivals, not sends), and the whole took as long as the
			// rate says after the first second's bucket.
			got := partner.all()
			for i := range got {
				n := 0
				for _, r := range got[i:] {
					if r.At.Sub(got[i].At) >= time.Second {
						break
					}
					n++
				}
				require.LessOrEqual(t, n, 2*rate+burst, "deliveries within a second of %v", got[i].At)
			}
			took := got[len(got)-1].At.Sub(got[0].At)
			t.Logf("%d replayed deliveries in %v at a rate limit of %d/s", past, took.Round(time.Millisecond), rate)
			require.Less(t, worst, took, "no live event waited for the whole replay")
			require.Greater(t, took, time.Duration(past-rate)*time.Second/rate*95/100, "%d deliveries at %d/s", past, rate)
		})
	}
}

// TestReplayTwoNodes: with two nodes on one PostgreSQL database, a replay runs on one of
// them at a time (a cluster lease per job) and each event gets one delivery.
func TestReplayTwoNodes(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	shared := func(c *app.Config) {
		c.Database, c.EncryptionKey = dsn, key
		c.Jobs.Poll, c.Jobs.MaxQueued, c.Jobs.PageSize = 50*time.Millisecond, 100, 100
	}
	n1, n2 := start(t, shared), start(t, shared)
	o := n1.newOrg("acme")
	since := time.Now().UTC().Add(-time.Second)
	const past = 600
	batch := make([]map[string]any, past/2)
	for i := range batch {
		batch[i] = map[string]any{"type": "order.created", "payload": map[string]any{"n": i}}
	}
	n1.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": batch}, o.key)
	n2.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": batch}, o.key)
	rc := newReceiver(t, nil)
	ep := n1.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}})["id"].(string)
	j := n2.replay(o, ep, map[string]any{"since": since})
	done := n1.waitJob(o, j.ID, consign.JobCompleted, 30*time.Second)
	require.Equal(t, past, done.Progress.Created)
	waitReceived(t, rc, past, 30*time.Second)
	got := webhookIDs(rc)
	require.Len(t, got, past)
	for id, n := range got {
		require.Equal(t, 1, n, "event %s", id)
	}
}

// TestReplayCancel: a running replay holds its endpoint (a second is refused with 409);
// cancelled, it creates nothing more, and the endpoint may be replayed again.
func TestReplayCancel(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *app.Config) { c.Jobs.MaxQueued, c.Jobs.PageSize = 20, 20 })
	o := e.newOrg("acme")
	since := time.Now().UTC().Add(-time.Second)
	batch := make([]map[string]any, 300)
	for i := range batch {
		batch[i] = map[string]any{"type": "order.created", "payload": map[string]any{"n": i}}
	}
	e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": batch}, o.key)
	rc := newReceiver(t, nil)
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}, "rate_limit": 20})["id"].(string)
	j := e.replay(o, ep, map[string]any{"since": since})

	r := e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints/"+ep+"/replay", map[string]any{"since": since}, o.key, nil)
	require.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	require.Contains(t, requireProblem(t, r).Detail, "cancel")

	require.Eventually(t, func() bool { return len(rc.all()) > 0 }, waitFor, tick)
	var cancelled jobView
	require.NoError(t, json.Unmarshal(e.c.raw("POST", "/v1/orgs/"+o.id+"/jobs/"+j.ID+"/cancel", nil, o.key, nil).body, &cancelled))
	require.Equal(t, consign.JobCancelled, cancelled.Status)
	require.NotNil(t, cancelled.FinishedAt)
	require.Less(t, cancelled.Progress.Created, len(batch))
	time.Sleep(500 * time.Millisecond) // a step after the cancel would show by now
	var after jobView
	e.c.get("/v1/orgs/"+o.id+"/jobs/"+j.ID, o.key, &after)
	require.Equal(t, consign.JobCancelled, after.Status)
	require.Equal(t, cancelled.Progress, after.Progress, "no step after the cancel")

	// Replayed again (without a rate limit now), the endpoint gets the rest.
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+ep, map[string]any{"rate_limit": 0}, o.key)
	again := e.waitJob(o, e.replay(o, ep, map[string]any{"since": since}).ID, consign.JobCompleted, 30*time.Second)
	require.Equal(t, len(batch)-after.Progress.Created, again.Progress.Created)
}
