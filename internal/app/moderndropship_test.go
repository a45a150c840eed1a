package app_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBurstLimitZeroIsNoLimit: Modern Dropship's "0 means no limit" for burst_limit: a
// slow partner with burst_limit 0 gets more requests at once than the old cap of 64,
// bounded only by the node-wide concurrency.
func TestBurstLimitZeroIsNoLimit(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("md-burst")
	const n = 100
	var inflight, most atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := inflight.Add(1)
		defer inflight.Add(-1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		if now >= n {
			once.Do(func() { close(release) })
		}
		// Held until all are in flight: 10 s for a loaded machine to open 100
		// connections, within the sender's 15 s timeout, so that no attempt fails and is
		// sent again.
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	ep := e.createEndpoint(o, map[string]any{"url": srv.URL, "topics": []string{"order.cancelled"}, "burst_limit": 0})
	require.EqualValues(t, 0, ep["burst_limit"])
	events := make([]map[string]any, n)
	for i := range events {
		events[i] = map[string]any{"type": "order.cancelled", "payload": map[string]any{"id": i}}
	}
	e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": events}, o.key)
	require.Eventually(t, func() bool {
		return e.count("/v1/orgs/"+o.id+"/deliveries", o.key) == n && len(e.deliveries(o, "status=succeeded")) == n
	}, 3*waitFor, tick)
	require.EqualValues(t, n, most.Load(), "all %d requests were in flight at once", n)
}

// TestEndpointURLNormalized: one configuration per target URL, compared after
// normalising scheme and host case, a default port and an empty path; a space in the
// path or query reaches the partner escaped, in a valid request line.
func TestEndpointURLNormalized(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("md-urls")
	ep := e.createEndpoint(o, map[string]any{"url": "https://EXAMPLE.com/x", "topics": []string{"order.cancelled"}, "active": false})
	require.Equal(t, "https://example.com/x", ep["url"])
	for _, u := range []string{"https://example.com/x", "HTTPS://Example.COM:443/x", "https://example.com:443/x"} {
		r := e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints", map[string]any{"url": u, "topics": []string{"order.cancelled"}}, o.key, nil)
		require.Equal(t, http.StatusConflict, r.status, "%s: %s", u, r.body)
		require.Contains(t, requireProblem(t, r).Detail, "https://example.com/x")
	}
	root := e.createEndpoint(o, map[string]any{"url": "https://Example.com", "topics": []string{"order.cancelled"}, "active": false})
	require.Equal(t, "https://example.com/", root["url"])
	r := e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints", map[string]any{"url": "https://example.com:443/", "topics": []string{"order.cancelled"}}, o.key, nil)
	require.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	// A PATCH to another endpoint's URL, spelled differently, is a conflict too.
	r = e.c.raw("PATCH", "/v1/orgs/"+o.id+"/endpoints/"+root["id"].(string), map[string]any{"url": "https://EXAMPLE.com:443/x"}, o.key, nil)
	require.Equal(t, http.StatusConflict, r.status, "%s", r.body)

	got := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r }))
	t.Cleanup(srv.Close)
	target := strings.ToUpper(srv.URL[:4]) + srv.URL[4:] + "/in box?q=a b&sku=DB5 CAM&ok=%2F"
	ep = e.createEndpoint(o, map[string]any{"url": target, "topics": []string{"order.cancelled"}})
	require.Equal(t, srv.URL+"/in%20box?q=a%20b&sku=DB5%20CAM&ok=%2F", ep["url"])
	e.publish(o, "order.cancelled", map[string]any{"id": "ord_1"})
	select {
	case req := <-got:
		require.Equal(t, "/in%20box?q=a%20b&sku=DB5%20CAM&ok=%2F", req.RequestURI)
		require.Equal(t, "/in box", req.URL.Path)
		require.Equal(t, "a b", req.URL.Query().Get("q"))
		require.Equal(t, "DB5 CAM", req.URL.Query().Get("sku"))
	case <-time.After(waitFor):
		t.Fatal("the partner got no request")
	}
}

// TestOrgRoleChangeRefused: a role change that the org's endpoints' topics do not allow
// is refused with 409, naming each endpoint and topic, instead of silently stopping them.
func TestOrgRoleChangeRefused(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("md-role")
	sink := newReceiver(t, nil)
	a := e.createEndpoint(o, map[string]any{"url": sink.URL + "/a", "topics": []string{"order.fulfilled", "order.cancelled"}})
	b := e.createEndpoint(o, map[string]any{"url": sink.URL + "/b", "topics": []string{"product.selected", "order.*"}})
	e.createEndpoint(o, map[string]any{"url": sink.URL + "/c", "topics": []string{"order.cancelled", "product.*"}})

	r := e.c.raw("PATCH", "/v1/orgs/"+o.id, map[string]any{"role": "seller"}, adminKey, nil)
	require.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	p := requireProblem(t, r)
	require.Contains(t, p.Detail, "a seller may not take topics that 2 of this org's endpoints subscribe to")
	require.Len(t, p.Errors, 2, "%s", r.body)
	require.Equal(t, "role", p.Errors[0].Field)
	msgs := p.Errors[0].Message + "\n" + p.Errors[1].Message
	require.Contains(t, msgs, a["id"].(string)+" ("+sink.URL+"/a) takes order.fulfilled (buyers only)")
	require.Contains(t, msgs, b["id"].(string)+" ("+sink.URL+"/b) takes product.selected (buyers only)")
	require.Equal(t, "both", e.c.must(http.StatusOK, "GET", "/v1/orgs/"+o.id, nil, adminKey)["role"], "nothing changed")

	// Buyer is fine: every topic named is available for buyers.
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id, map[string]any{"role": "buyer"}, adminKey)
	// Once the endpoints take only what a seller may, the change goes through.
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+a["id"].(string), map[string]any{"topics": []string{"order.cancelled"}}, o.key)
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+b["id"].(string), map[string]any{"topics": []string{"order.*"}}, o.key)
	got := e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id, map[string]any{"role": "seller"}, adminKey)
	require.Equal(t, "seller", got["role"])
}
