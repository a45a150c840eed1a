package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/webhook"
)

// TestTransformationRewritesBeforeSigning: the partner receives the webhook as the
// endpoint's transformation left it (a field renamed, another path, a header added), and
// the signature verifies over that body.
func TestTransformationRewritesBeforeSigning(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	rc := newReceiver(t, nil)
	code := `function handler(webhook) {
		webhook.payload.id = webhook.payload.order_id;
		delete webhook.payload.order_id;
		webhook.url = webhook.url + "/" + webhook.type;
		webhook.headers["X-Event-Kind"] = webhook.type;
		return webhook;
	}`
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL + "/hooks", "topics": []string{"order.*"}, "transformation": code})
	require.Equal(t, code, ep["transformation"])
	secret := ep["secret"].(string)

	evID := e.publish(o, "order.created", map[string]any{"order_id": "ord_1", "total": 12.5})
	got := rc.next(t)
	require.Equal(t, "/hooks/order.created", got.Path)
	require.Equal(t, "order.created", got.Header.Get("X-Event-Kind"))
	require.NoError(t, webhook.Verify(secret, got.Header, got.Body), "the signature covers the transformed body")
	var env struct{ Data json.RawMessage }
	require.NoError(t, json.Unmarshal(got.Body, &env))
	require.JSONEq(t, `{"id":"ord_1","total":12.5}`, string(env.Data))

	d := e.waitStatus(o, e.onlyDelivery(o, evID).ID, consign.StatusSucceeded)
	require.Equal(t, rc.URL+"/hooks/order.created", d.Attempts[0].Request.URL, "the attempt shows the request as sent")
}

// TestTransformationFailuresAreFinal: a transformation that cancels, throws, loops,
// returns something else than the webhook or points it at a refused URL ends the
// delivery at once (no retry), with the reason on its attempt, while another endpoint of
// the org keeps receiving.
func TestTransformationFailuresAreFinal(t *testing.T) {
	t.Parallel()
	// Without --insecure-targets, as in production: a private URL is refused. The
	// receivers here are on loopback, so only the healthy endpoint below reaches one,
	// through a registry check that this test's own targets pass.
	e := start(t, func(c *app.Config) { c.InsecureTargets = false })
	o := e.newOrg("acme")
	tests := []struct {
		name, code, status, err string
	}{
		{"cancel", `function handler(w) { w.cancel = w.payload.total < 100; return w }`, consign.StatusCancelled, "cancelled by the endpoint's transformation"},
		{"throw", `function handler(w) { throw new Error("no total") }`, consign.StatusFailed, "the transformation threw: Error: no total"},
		{"loop forever", `function handler(w) { for (;;) {} }`, consign.StatusFailed, "ran longer than 50ms"},
		{"not an object", `function handler(w) { return 42 }`, consign.StatusFailed, "the handler returned the number 42, not the webhook object"},
		{"private url", `function handler(w) { w.url = "http://10.0.0.7/hooks"; return w }`, consign.StatusFailed, `webhook.url "http://10.0.0.7/hooks"`},
	}
	eps := map[string]string{}
	for _, tt := range tests {
		ep := e.createEndpoint(o, map[string]any{"url": "https://partner.example.com/" + strings.ReplaceAll(tt.name, " ", "-"),
			"topics": []string{"order.*"}, "transformation": tt.code, "retry": fastRetry("1h")})
		eps[ep["id"].(string)] = tt.name
	}
	for range 3 {
		evID := e.publish(o, "order.created", map[string]any{"total": 12.5})
		ds := e.deliveries(o, "event_id="+evID)
		require.Len(t, ds, len(tests))
		for _, d := range ds {
			name := eps[d.EndpointID]
			var tt = tests[0]
			for _, x := range tests {
				if x.name == name {
					tt = x
				}
			}
			t.Run(name, func(t *testing.T) {
				d := e.waitStatus(o, d.ID, tt.status)
				time.Sleep(100 * time.Millisecond) // two retry waits: none may come
				d = e.delivery(o, d.ID)
				require.Equal(t, tt.status, d.Status)
				require.Len(t, d.Attempts, 1, "no retry")
				require.NotNil(t, d.Attempts[0].Error)
				require.Contains(t, *d.Attempts[0].Error, tt.err)
				require.Nil(t, d.Attempts[0].Response, "nothing was sent")
			})
		}
	}
	var ep map[string]any
	e.c.get("/v1/orgs/"+o.id+"/endpoints/"+func() string {
		for id, name := range eps {
			if name == "cancel" {
				return id
			}
		}
		return ""
	}(), o.key, &ep)
	require.Equal(t, "healthy", ep["health"], "a cancelled delivery is no failure of the endpoint")
}

// TestLoopingTransformationCostsOthersNothing: while one endpoint's transformation runs
// into its limit on every delivery, another endpoint receives every event.
func TestLoopingTransformationCostsOthersNothing(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	rc := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": rc.URL + "/ok", "topics": []string{"order.*"}})
	e.createEndpoint(o, map[string]any{"url": rc.URL + "/loop", "topics": []string{"order.*"},
		"transformation": `function handler(w) { for (;;) {} }`})
	const n = 20
	var ids []string
	for range n {
		ids = append(ids, e.publish(o, "order.created", map[string]any{"total": 1}))
	}
	for range n {
		require.Equal(t, "/ok", rc.next(t).Path)
	}
	for _, id := range ids {
		for _, d := range e.deliveries(o, "event_id="+id) {
			if d.Status != consign.StatusSucceeded {
				d = e.waitStatus(o, d.ID, consign.StatusFailed)
				require.Contains(t, *d.Attempts[0].Error, "ran longer than 50ms")
			}
		}
	}
	require.Len(t, rc.all(), n, "the looping endpoint got nothing")
}

// TestTransformationIsCheckedWhenWritten: code that does not compile, or defines no
// handler, is refused with a field error at creation and update.
func TestTransformationIsCheckedWhenWritten(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	for _, code := range []string{"function handler(w) { return w", "function other(w) { return w }", strings.Repeat("x", consign.MaxTransformation+1)} {
		r := e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints", map[string]any{"url": "https://partner.example.com/h",
			"topics": []string{"order.*"}, "transformation": code}, o.key, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
		require.Equal(t, []string{"transformation"}, requireProblem(t, r).fields())
	}
	ep := e.createEndpoint(o, map[string]any{"url": "https://partner.example.com/h", "topics": []string{"order.*"}})
	path := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string)
	r := e.c.raw("PATCH", path, map[string]any{"transformation": "function handler(w) {"}, o.key, nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
	require.Contains(t, requireProblem(t, r).Detail, "transformation: does not compile")
	got := e.c.must(http.StatusOK, "PATCH", path, map[string]any{"transformation": "function handler(w) { return w }"}, o.key)
	require.Equal(t, "function handler(w) { return w }", got["transformation"])
	got = e.c.must(http.StatusOK, "PATCH", path, map[string]any{"transformation": ""}, o.key)
	require.Nil(t, got["transformation"], "an empty transformation removes it")
}

// TestTransformationTestRoute: POST …/transformation/test shows what the stored code or
// the code given makes of an event, and sends nothing.
func TestTransformationTestRoute(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	rc := newReceiver(t, nil)
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL + "/hooks", "topics": []string{"order.*"},
		"headers": map[string]string{"X-Api-Key": "key_0123456789abcdef"},
		"transformation": `function handler(w) {
			w.payload = {n: w.payload.total * 2}; w.method = "PUT";
			w.headers["X-Copy"] = "Bearer " + w.headers["X-Api-Key"]; w.headers["X-Kind"] = w.type;
			return w }`})
	path := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string) + "/transformation/test"
	tests := []struct {
		name string
		body map[string]any
		want string
	}{
		{"stored code", map[string]any{"type": "order.created", "payload": map[string]any{"total": 2}},
			// Values of the endpoint's sealed headers stay masked, even copied by the code.
			`{"ok":true,"cancelled":false,"webhook":{"type":"order.created","payload":{"n":4},"url":"` + rc.URL +
				`/hooks","method":"PUT","headers":{"X-Api-Key":"••••cdef","X-Copy":"••••cdef","X-Kind":"order.created"}}}`},
		{"code given", map[string]any{"type": "order.created", "payload": map[string]any{"total": 2},
			"code": `function handler(w) { w.cancel = true; return w }`}, `{"ok":true,"cancelled":true}`},
		{"a failing run", map[string]any{"type": "order.created", "payload": map[string]any{},
			"code": `function handler(w) { return null }`},
			`{"ok":false,"cancelled":false,"error":"the handler returned nothing: it must end with return webhook"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.c.raw("POST", path, tt.body, o.key, nil)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			require.JSONEq(t, tt.want, string(r.body))
		})
	}
	r := e.c.raw("POST", path, map[string]any{"type": "order.created", "code": "function handler( {"}, o.key, nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
	require.Equal(t, []string{"code"}, requireProblem(t, r).fields())
	require.Empty(t, rc.all(), "a test of the transformation sends nothing")
	require.Zero(t, e.count("/v1/orgs/"+o.id+"/deliveries", o.key), "and records no delivery")
}
