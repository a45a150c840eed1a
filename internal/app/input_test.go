package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// badInput is a request the API must refuse with a problem+json reply.
type badInput struct {
	name   string
	body   any // sent as is when []byte or string, else as JSON
	status int
	field  string // an errors[].field the reply must name; "" when none applies
	detail string // a phrase the detail must contain; "" to skip
}

// checkBad sends each bad input and checks the reply, and that nothing was written:
// count (a list route) returns the same number before and after.
func checkBad(t *testing.T, e *env, key, method, path, countPath string, cases []badInput) {
	t.Helper()
	before := e.count(countPath, key)
	for _, tc := range cases {
		r := e.c.raw(method, path, tc.body, key, nil)
		require.Equal(t, tc.status, r.status, "%s: %s", tc.name, r.body)
		p := requireProblem(t, r)
		if tc.field != "" {
			require.Contains(t, p.fields(), tc.field, "%s: %s", tc.name, r.body)
		}
		if tc.detail != "" {
			require.Contains(t, p.Detail, tc.detail, "%s: %s", tc.name, r.body)
		}
	}
	require.Equal(t, before, e.count(countPath, key), "a refused request writes nothing")
}

// TestBadInput checks that malformed, invalid and oversize requests get a 4xx
// problem+json that names the problem, never a 500, and write nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("input")
	endpoints := "/v1/orgs/" + o.id + "/endpoints"
	events := "/v1/orgs/" + o.id + "/events"
	big := strings.Repeat("x", 300<<10)

	t.Run("endpoints", func(t *testing.T) {
		t.Parallel()
		ep := func(extra string) string {
			return `{"url":"https://example.com/hook","topics":["order.*"]` + extra + `}`
		}
		checkBad(t, e, o.key, "POST", endpoints, endpoints, []badInput{
			{"unknown field", ep(`,"colour":"red"`), 400, "colour", "colour"},
			{"wrong type", `{"url":"https://example.com/hook","topics":"x"}`, 400, "topics", "topics"},
			{"wrong nested type", ep(`,"retry":{"schedule":"5s"}`), 400, "retry.schedule", "retry.schedule"},
			{"wrong type of header value", ep(`,"headers":{"X-A":1}`), 400, "", "headers"},
			{"malformed JSON", `{"url": "https://example.com/hook",`, 400, "", ""},
			{"not JSON", `url=https://example.com`, 400, "", ""},
			{"empty body", ``, 400, "", "empty"},
			{"two JSON values", ep(``) + `{}`, 400, "", ""},
			{"JSON array", `[]`, 400, "", ""},
			{"body over 256 KiB", ep(`,"description":"` + big + `"`), 413, "", ""},
			{"ftp URL", `{"url":"ftp://example.com/x","topics":["*"]}`, 422, "url", "ftp"},
			{"no URL", `{"topics":["*"]}`, 422, "url", ""},
			{"relative URL", `{"url":"/hook","topics":["*"]}`, 422, "url", ""},
			{"invalid duration", ep(`,"retry":{"schedule":["soon"]}`), 400, "", "soon"},
			{"retry wait too short", ep(`,"retry":{"schedule":["1ms"]}`), 422, "retry.schedule", ""},
			{"method", ep(`,"method":"DELETE"`), 422, "method", ""},
			{"payload format", ep(`,"payload_format":"xml"`), 422, "payload_format", ""},
			{"auth type", ep(`,"auth":{"type":"digest"}`), 422, "auth.type", ""},
			{"reserved header", ep(`,"headers":{"webhook-id":"x"}`), 422, "headers", ""},
			{"control character in a header value", ep(`,"headers":{"X-Partner-Key":"abc\u0007"}`), 422, "headers", "X-Partner-Key"},
			{"escape in a header value", ep(`,"headers":{"X-Color":"\u001b[31m"}`), 422, "headers", "X-Color"},
			{"unknown topic", `{"url":"https://example.com/hook","topics":["no.such.type"]}`, 422, "topics", "no.such.type"},
			{"no topics", `{"url":"https://example.com/hook","topics":[]}`, 422, "topics", ""},
			{"bad topic", `{"url":"https://example.com/hook","topics":["order.**"]}`, 422, "topics", ""},
			{"bad secret", ep(`,"secret":"whsec_short"`), 422, "secret", ""},
		})

		// One endpoint per URL per org.
		e.c.must(http.StatusCreated, "POST", endpoints, ep(``), o.key)
		checkBad(t, e, o.key, "POST", endpoints, endpoints, []badInput{
			{"duplicate URL", ep(``), 409, "", "https://example.com/hook"},
		})
	})

	t.Run("events", func(t *testing.T) {
		t.Parallel()
		// A custom type whose payloads must match a JSON Schema (admin only).
		e.c.must(http.StatusCreated, "POST", "/v1/event-types", map[string]any{
			"name": "input.widget",
			"schema": map[string]any{
				"type": "object", "required": []string{"sku"},
				"properties": map[string]any{"sku": map[string]any{"type": "string"}, "qty": map[string]any{"type": "integer"}},
			},
		}, adminKey)
		checkBad(t, e, o.key, "POST", events, events, []badInput{
			{"unknown field", `{"type":"order.created","payload":{},"priority":1}`, 400, "priority", "priority"},
			{"wrong type", `{"type":5,"payload":{}}`, 400, "type", "type"},
			{"malformed JSON", `{"type":"order.created","payload":{`, 400, "", ""},
			{"empty body", ``, 400, "", "empty"},
			{"body over 256 KiB", `{"type":"order.created","payload":{"x":"` + big + `"}}`, 413, "", ""},
			{"unknown type", `{"type":"no.such.type","payload":{}}`, 422, "type", "no.such.type"},
			{"bad type name", `{"type":"order created","payload":{}}`, 422, "type", ""},
			{"operational type", `{"type":"consign.endpoint.disabled","payload":{}}`, 422, "type", ""},
			{"no payload", `{"type":"order.created"}`, 422, "payload", ""},
			{"null payload", `{"type":"order.created","payload":null}`, 422, "payload", ""},
			{"schema: missing property", `{"type":"input.widget","payload":{"qty":1}}`, 422, "payload", "sku"},
			{"schema: wrong type", `{"type":"input.widget","payload":{"sku":"A","qty":"many"}}`, 422, "payload", ""},
			{"idempotency key too long", `{"type":"order.created","payload":{},"idempotency_key":"` + strings.Repeat("k", 300) + `"}`, 422, "idempotency_key", ""},
		})
		r := e.c.raw("POST", events, `{"type":"input.widget","payload":{"sku":"A","qty":2}}`, o.key, nil)
		require.Equal(t, http.StatusAccepted, r.status, "a payload matching the schema: %s", r.body)
	})

	t.Run("event types", func(t *testing.T) {
		t.Parallel()
		types := "/v1/event-types"
		for _, tc := range []badInput{
			{"invalid schema", map[string]any{"name": "input.broken", "schema": map[string]any{"type": 12}}, 422, "schema", ""},
			{"bad name", map[string]any{"name": "bad name"}, 422, "name", ""},
			{"reserved name", map[string]any{"name": "consign.mine"}, 422, "name", ""},
			{"exists", map[string]any{"name": "order.created"}, 409, "", ""},
			{"schema refers to itself", map[string]any{"name": "input.broken", "schema": map[string]any{"$ref": "#"}}, 422, "schema", "refers to itself"},
			{"schema 1,000 levels deep", `{"name": "input.broken", "schema": ` + strings.Repeat(`{"properties":{"a":`, 1000) + `{}` + strings.Repeat(`}}`, 1000) + `}`,
				422, "schema", "levels deep"},
		} {
			r := e.c.raw("POST", types, tc.body, adminKey, nil)
			require.Equal(t, tc.status, r.status, "%s: %s", tc.name, r.body)
			p := requireProblem(t, r)
			if tc.field != "" {
				require.Contains(t, p.fields(), tc.field, "%s: %s", tc.name, r.body)
			}
			if tc.detail != "" {
				require.Contains(t, p.Detail, tc.detail, "%s: %s", tc.name, r.body)
			}
		}
		e.c.must(http.StatusNotFound, "GET", types+"/input.broken", nil, adminKey)
	})

	t.Run("orgs", func(t *testing.T) {
		t.Parallel()
		checkBad(t, e, adminKey, "POST", "/v1/orgs", "/v1/orgs", []badInput{
			{"no name", `{}`, 422, "name", ""},
			{"role", `{"name":"x","role":"admin"}`, 422, "role", ""},
			{"wrong role type", `{"name":"x","role":1}`, 400, "role", ""},
			{"unknown field", `{"name":"x","plan":"gold"}`, 400, "plan", ""},
		})
	})

	t.Run("authentication", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct{ name, header string }{
			{"no key", ""},
			{"invalid key", "Bearer csk_not_a_key"},
			{"not bearer", "Basic " + o.key},
			{"empty bearer", "Bearer "},
		} {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Authorization", tc.header)
			}
			r := e.c.raw("GET", events, nil, "", h)
			require.Equal(t, http.StatusUnauthorized, r.status, "%s: %s", tc.name, r.body)
			requireProblem(t, r)
			require.NotEmpty(t, r.header.Get("WWW-Authenticate"), tc.name)
		}
		r := e.c.raw("POST", events, `{"type":"order.created","payload":{}}`, "", nil)
		require.Equal(t, http.StatusUnauthorized, r.status)
	})

	t.Run("list limits", func(t *testing.T) {
		t.Parallel()
		for _, q := range []string{"limit=0", "limit=1000", "limit=501", "limit=-1", "limit=ten"} {
			for _, path := range []string{events, endpoints, "/v1/orgs/" + o.id + "/deliveries", "/v1/orgs/" + o.id + "/keys"} {
				r := e.c.raw("GET", path+"?"+q, nil, o.key, nil)
				require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s?%s: %s", path, q, r.body)
				require.Contains(t, requireProblem(t, r).fields(), "limit")
			}
		}
		e.c.must(http.StatusOK, "GET", events+"?limit=500", nil, o.key)
		e.c.must(http.StatusOK, "GET", events+"?limit=1", nil, o.key)
		r := e.c.raw("GET", "/v1/orgs/"+o.id+"/deliveries?status=lost", nil, o.key, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
		requireProblem(t, r)
	})

	t.Run("unknown routes and ids", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/v1/nothing", "/v1/orgs/" + o.id + "/endpoints/ep_missing",
			"/v1/orgs/" + o.id + "/events/evt_missing", "/v1/orgs/" + o.id + "/deliveries/dlv_missing", "/v1/orgs/org_missing"} {
			r := e.c.raw("GET", path, nil, adminKey, nil)
			require.Equal(t, http.StatusNotFound, r.status, "%s: %s", path, r.body)
			requireProblem(t, r)
		}
	})
}

func TestWrongMethodIs405(t *testing.T) {
	t.Parallel()
	e := start(t)
	r := e.c.raw("PUT", "/v1/orgs", map[string]any{"name": "x"}, adminKey, nil)
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	require.Contains(t, r.header.Get("Allow"), "POST")
	require.Contains(t, requireProblem(t, r).Detail, "PUT is not allowed on /v1/orgs")
	r = e.c.raw("GET", "/v1/nothing-here", nil, adminKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	requireProblem(t, r)
}
