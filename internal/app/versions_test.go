package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/webhook"
)

// Two versions of purchase_order.created: 2026-06-01 renamed number to po_number,
// 2026-12-01 replaced total (a number) with amount {value in cents, currency}. Each
// downgrade undoes its own change.
var poVersions = []map[string]any{
	{"version": "2026-06-01", "downgrade": `function downgrade(p) { p.number = p.po_number; delete p.po_number; return p }`},
	{"version": "2026-12-01", "downgrade": `function downgrade(p) {
		if (!p.amount) throw new Error("no amount on " + p.po_number);
		p.total = p.amount.value / 100; delete p.amount; return p }`,
		"schema": map[string]any{"type": "object", "required": []string{"po_number", "amount"}}},
}

func (e *env) addVersions(typ string, vs []map[string]any) {
	e.tb.Helper()
	for _, v := range vs {
		got := e.c.must(http.StatusCreated, "POST", "/v1/event-types/"+typ+"/versions", v, adminKey)
		require.Equal(e.tb, v["version"], got["version"])
	}
}

// versioned is a delivered body with its version.
type versioned struct {
	Type    string          `json:"type"`
	Version *string         `json:"version"`
	Data    json.RawMessage `json:"data"`
}

func readEnvelope(tb testing.TB, body []byte) versioned {
	tb.Helper()
	var env versioned
	require.NoError(tb, json.Unmarshal(body, &env), "%s", body)
	return env
}

// TestPinnedEndpointsReceiveDowngradedPayloads: an endpoint that pins no version
// receives the newest payload; one pinned to a date receives it converted down through
// every version after that date, named in the envelope and signed as received; an event
// published before the versions existed is never converted.
func TestPinnedEndpointsReceiveDowngradedPayloads(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	const typ = "purchase_order.created"
	tests := []struct {
		name, pin string
		want      string // the payload received
		version   string // the envelope's version
	}{
		{"not pinned", "", `{"po_number":"PO-1","amount":{"value":1250,"currency":"USD"}}`, "2026-12-01"},
		{"pinned to the newest", "2026-12-01", `{"po_number":"PO-1","amount":{"value":1250,"currency":"USD"}}`, "2026-12-01"},
		{"pinned between", "2026-09-15", `{"po_number":"PO-1","total":12.5}`, "2026-09-15"},
		{"pinned to the first", "2026-06-01", `{"po_number":"PO-1","total":12.5}`, "2026-06-01"},
		{"pinned before every version", "2025-01-31", `{"number":"PO-1","total":12.5}`, "2025-01-31"},
	}
	type target struct {
		rc     *receiver
		id     string
		secret string
	}
	targets := make([]target, len(tests))
	for i, tt := range tests {
		rc := newReceiver(t, nil)
		// Created inactive: what is published meanwhile waits (paused) for activation.
		ep := e.createEndpoint(o, map[string]any{"url": rc.URL + "/po", "topics": []string{"purchase_order.*"}, "version": tt.pin, "active": false})
		if tt.pin == "" {
			require.Nil(t, ep["version"])
		} else {
			require.Equal(t, tt.pin, ep["version"])
		}
		targets[i] = target{rc: rc, id: ep["id"].(string), secret: ep["secret"].(string)}
	}

	before := e.publish(o, typ, map[string]any{"number": "PO-0", "total": 3})
	time.Sleep(5 * time.Millisecond) // the versions are added after that event, not in its millisecond
	e.addVersions(typ, poVersions)
	// Published in the newest version: its schema checks the payload.
	r := e.c.raw("POST", "/v1/orgs/"+o.id+"/events", map[string]any{"type": typ, "payload": map[string]any{"number": "PO-2", "total": 3}}, o.key, nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
	after := e.publish(o, typ, map[string]any{"po_number": "PO-1", "amount": map[string]any{"value": 1250, "currency": "USD"}})
	for _, tg := range targets {
		e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+tg.id, map[string]any{"active": true}, o.key)
	}

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]*received{}
			for range 2 {
				req := targets[i].rc.next(t)
				require.NoError(t, webhook.Verify(targets[i].secret, req.Header, req.Body), "signed as received")
				got[req.Header.Get("Webhook-Id")] = req
			}
			env := readEnvelope(t, got[after].Body)
			require.JSONEq(t, tt.want, string(env.Data))
			require.NotNil(t, env.Version, "%s", got[after].Body)
			require.Equal(t, tt.version, *env.Version)

			// The event from before the versions is in the type's first shape: no
			// downgrade applies to it, whatever the pin.
			env = readEnvelope(t, got[before].Body)
			require.JSONEq(t, `{"number":"PO-0","total":3}`, string(env.Data))
		})
	}
}

// TestFailingDowngradeFailsTheDelivery: a downgrade that throws fails the pinned
// endpoint's delivery at once, with the error in its attempt log and nothing sent,
// while an endpoint that is not pinned receives the event.
func TestFailingDowngradeFailsTheDelivery(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	const typ = "purchase_order.created"
	e.addVersions(typ, []map[string]any{{"version": "2026-12-01", "downgrade": poVersions[1]["downgrade"]}})
	newest, pinned := newReceiver(t, nil), newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": newest.URL, "topics": []string{typ}})
	ep := e.createEndpoint(o, map[string]any{"url": pinned.URL, "topics": []string{typ}, "version": "2026-06-01", "retry": fastRetry("1h")})

	id := e.publish(o, typ, map[string]any{"po_number": "PO-9"}) // no amount: the downgrade throws
	require.JSONEq(t, `{"po_number":"PO-9"}`, string(readEnvelope(t, newest.next(t).Body).Data))
	var d delivery
	for _, x := range e.deliveries(o, "event_id="+id) {
		if x.EndpointID == ep["id"] {
			d = e.waitStatus(o, x.ID, consign.StatusFailed)
		}
	}
	time.Sleep(100 * time.Millisecond) // two retry waits: none may come
	d = e.delivery(o, d.ID)
	require.Equal(t, consign.StatusFailed, d.Status)
	require.Len(t, d.Attempts, 1, "no retry")
	require.NotNil(t, d.Attempts[0].Error)
	require.Contains(t, *d.Attempts[0].Error, "converting the payload to the endpoint's version 2026-06-01 failed at version 2026-12-01: the downgrade threw: Error: no amount on PO-9")
	require.Nil(t, d.Attempts[0].Response)
	require.Empty(t, pinned.all(), "nothing was sent")
}

// TestVersionsAreCheckedWhenAdded: a version that is not a later date, a schema that does
// not compile or a downgrade that does not define downgrade(payload) is refused with a
// field error; the catalog shows the versions added.
func TestVersionsAreCheckedWhenAdded(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	const typ = "purchase_order.created"
	path := "/v1/event-types/" + typ + "/versions"
	e.addVersions(typ, poVersions[:1])
	ok := `function downgrade(p) { return p }`
	tests := []struct {
		name   string
		body   map[string]any
		fields []string
		detail string
	}{
		{"not a date", map[string]any{"version": "12/01/2026", "downgrade": ok}, []string{"version"}, "not a date YYYY-MM-DD"},
		{"no such day", map[string]any{"version": "2026-02-30", "downgrade": ok}, []string{"version"}, "not a date"},
		{"no version", map[string]any{"downgrade": ok}, []string{"version"}, "is required"},
		{"not later", map[string]any{"version": "2026-06-01", "downgrade": ok}, []string{"version"}, "later than the newest version, 2026-06-01"},
		{"earlier", map[string]any{"version": "2026-01-01", "downgrade": ok}, []string{"version"}, "later than"},
		{"no downgrade", map[string]any{"version": "2026-12-01"}, []string{"downgrade"}, "is empty: define function downgrade(payload)"},
		{"syntax error", map[string]any{"version": "2026-12-01", "downgrade": "function downgrade(p) { return p"}, []string{"downgrade"}, "does not compile"},
		{"a handler instead", map[string]any{"version": "2026-12-01", "downgrade": "function handler(w) { return w }"}, []string{"downgrade"}, "defines no function downgrade"},
		{"throws at load", map[string]any{"version": "2026-12-01", "downgrade": `throw new Error("x"); function downgrade(p) { return p }`}, []string{"downgrade"}, "the downgrade threw"},
		{"bad schema", map[string]any{"version": "2026-12-01", "downgrade": ok, "schema": map[string]any{"type": 5}}, []string{"schema"}, "schema"},
		{"everything", map[string]any{"version": "x", "downgrade": "(", "schema": map[string]any{"type": 5}}, []string{"downgrade", "schema", "version"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.c.raw("POST", path, tt.body, adminKey, nil)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
			p := requireProblem(t, r)
			fields := p.fields()
			require.ElementsMatch(t, tt.fields, fields)
			require.Contains(t, p.Detail, tt.detail)
		})
	}
	for _, tt := range []struct {
		name, method, path, key string
		status                  int
	}{
		{"an org key may not add", "POST", path, o.key, http.StatusForbidden},
		{"unknown type", "POST", "/v1/event-types/no.such/versions", adminKey, http.StatusNotFound},
		{"Consign's own type", "POST", "/v1/event-types/consign.test/versions", adminKey, http.StatusUnprocessableEntity},
		{"unknown version", "GET", path + "/2027-01-01", o.key, http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.c.raw(tt.method, tt.path, map[string]any{"version": "2026-12-01", "downgrade": ok}, tt.key, nil)
			require.Equal(t, tt.status, r.status, "%s", r.body)
			requireProblem(t, r)
		})
	}

	e.addVersions(typ, poVersions[1:])
	var list struct{ Data []consign.EventTypeVersion }
	e.c.get(path, o.key, &list)
	require.Len(t, list.Data, 2)
	require.Equal(t, "2026-06-01", list.Data[0].Version)
	require.Equal(t, poVersions[1]["downgrade"], list.Data[1].Downgrade)
	require.JSONEq(t, `{"type":"object","required":["po_number","amount"]}`, string(list.Data[1].Schema))
	var et consign.EventType
	e.c.get("/v1/event-types/"+typ, o.key, &et)
	require.Equal(t, list.Data, et.Versions, "the type shows its versions")
	var one consign.EventTypeVersion
	e.c.get(path+"/2026-06-01", o.key, &one)
	require.Equal(t, list.Data[0], one)

	// An endpoint's pin must be a date.
	for _, pin := range []string{"latest", "2026-6-1", strings.Repeat("9", 200)} {
		r := e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints", map[string]any{"url": "https://partner.example.com/h", "topics": []string{typ}, "version": pin}, o.key, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
		require.Equal(t, []string{"version"}, requireProblem(t, r).fields())
	}
}

// TestTransformationTestSeesThePinnedVersion: trying a pinned endpoint's transformation
// runs it on the sample converted to the endpoint's version, as a delivery would.
func TestTransformationTestSeesThePinnedVersion(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	const typ = "purchase_order.created"
	e.addVersions(typ, poVersions)
	ep := e.createEndpoint(o, map[string]any{"url": "https://partner.example.com/po", "topics": []string{typ}, "version": "2026-09-01",
		"transformation": `function handler(w) { w.payload.seen = "v1"; return w }`})
	path := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string) + "/transformation/test"
	got := e.c.must(http.StatusOK, "POST", path, map[string]any{"type": typ,
		"payload": map[string]any{"po_number": "PO-1", "amount": map[string]any{"value": 990, "currency": "EUR"}}}, o.key)
	b, _ := json.Marshal(got["webhook"].(map[string]any)["payload"])
	require.JSONEq(t, `{"po_number":"PO-1","total":9.9,"seen":"v1"}`, string(b))
	got = e.c.must(http.StatusOK, "POST", path, map[string]any{"type": typ, "payload": map[string]any{"po_number": "PO-2"}}, o.key)
	require.Equal(t, false, got["ok"])
	require.Contains(t, got["error"], "failed at version 2026-12-01: the downgrade threw: Error: no amount on PO-2")
}
