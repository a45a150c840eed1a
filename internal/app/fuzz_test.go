package app_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
)

// Fuzz targets: arbitrary bytes as the body of the two routes that take the richest
// input. One app serves a whole fuzz run (each fuzzing worker starts its own); every
// reply must be a 2xx with a JSON object, or a 4xx problem+json, never a 5xx.

// startFuzz starts an app with a discarding logger (the fuzzer runs many thousands of
// inputs) and returns it with an org to post to.
func startFuzz(f *testing.F) (*env, org) {
	e := start(f, func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) })
	return e, e.newOrg("fuzz")
}

// checkFuzzReply asserts the contract on one reply.
func checkFuzzReply(t *testing.T, r *reply, ok ...int) {
	t.Helper()
	require.Less(t, r.status, 500, "never a 5xx: %s", r.body)
	if r.status >= 400 {
		requireProblem(t, r)
		return
	}
	require.Contains(t, ok, r.status, "%s", r.body)
	require.Equal(t, "application/json", mediaType(r.header))
	// Raw values: a payload may hold numbers no float64 can (1e999), which is valid JSON.
	var v map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.body, &v), "%s", r.body)
	var id string
	require.NoError(t, json.Unmarshal(v["id"], &id), "%s", r.body)
	require.NotEmpty(t, id, "%s", r.body)
}

func FuzzDecodeEndpoint(f *testing.F) {
	e, o := startFuzz(f)
	path := "/v1/orgs/" + o.id + "/endpoints"
	for _, s := range []string{
		`{"url":"https://example.com/a","topics":["order.*"]}`,
		`{"url":"https://example.com/b","topics":["*"],"method":"PUT","payload_format":"raw","headers":{"X-A":"1"},"auth":{"type":"token","token":"t"}}`,
		`{"url":"https://example.com/c","topics":["order.fulfilled","product.inventoryChanged"],"rate_limit":10.5,"burst_limit":3,"ordering":"key","coalesce":true}`,
		`{"url":"https://example.com/d","topics":["*"],"retry":{"schedule":["10ms","1s","3d"],"max_age":"72h"},"failure_policy":{"disable_after":"3d","max_failures":3,"window":"6h"}}`,
		`{"url":"https://example.com/e","topics":["*"],"active":false,"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","secret_expires_at":"2099-01-01T00:00:00Z"}`,
		`{"url":"https://example.com/f","topics":["*"],"description":"d","colour":"red"}`,
		`{"url":"https://example.com/g","topics":"order.*"}`,
		`{"url":"ftp://example.com/","topics":["*"]}`,
		`{"url":"http://[::1","topics":["*"]}`,
		`{"url":"https://example.com/h","topics":["*"],"retry":{"schedule":["-1s"],"max_age":"1e400h"}}`,
		`{"url":"https://example.com/i","topics":["*"],"headers":{"Webhook-Id":"x","":"y","X\r\nB":"z"}}`,
		`{"url":"https://example.com/j","topics":["*"],"rate_limit":1e309}`,
		`{"url":"https://example.com/k","topics":["*"],"burst_limit":99999999999999999999}`,
		`{"url":"https://example.com/l","topics":[null,1,{}]}`,
		`{"url":"https://example.com/m","topics":["*"],"secret":"whsk_AAAA"}`,
		`{"url":"https://example.com/n","topics":["*"]}{}`,
		`{"url":"https://example.com/o","topics":["*"],"url":"https://example.com/p"}`,
		`{"url":"https://example.com/\u0000","topics":["*"]}`,
		`{"url":"https://example.com/q","topics":["*"],"failure_policy":{"max_failures":-1}}`,
		`{"":0}`, `null`, `[]`, `{}`, `""`, `0`, ``, `{`, `{"url":`, "\xff\xfe", `{"topics":["` + string(make([]byte, 200)) + `"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := e.c.send("POST", path, body, o.key, nil)
		require.NoError(t, err)
		checkFuzzReply(t, r, http.StatusCreated)
	})
}

func FuzzCreateEvent(f *testing.F) {
	e, o := startFuzz(f)
	path := "/v1/orgs/" + o.id + "/events"
	for _, s := range []string{
		`{"type":"order.created","payload":{"id":1}}`,
		`{"type":"order.fulfilled","payload":{"order":{"id":"o1","lines":[1,2,3]}},"idempotency_key":"k1","ordering_key":"o1"}`,
		`{"type":"product.inventoryChanged","payload":[1,"two",3.0,true,null]}`,
		`{"type":"shipment.created","payload":"a string"}`,
		`{"type":"inventory.updated","payload":0}`,
		`{"type":"order.created","payload":null}`,
		`{"type":"order.created"}`,
		`{"type":"no.such.type","payload":{}}`,
		`{"type":"consign.test","payload":{}}`,
		`{"type":"order..created","payload":{}}`,
		`{"type":5,"payload":{}}`,
		`{"type":"order.created","payload":{},"extra":1}`,
		`{"type":"order.created","payload":{},"idempotency_key":"a\nb"}`,
		`{"type":"order.created","payload":{"x":"\ud800"}}`,
		`{"type":"order.created","payload":{"a":1e999}}`,
		`{"type":"order.created","payload":{}}{"type":"order.created","payload":{}}`,
		`{"type":"order.created","payload":{"deep":[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}}`,
		`{"":true}`, `null`, `[]`, `{}`, `""`, ``, `{`, `{"type":`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := e.c.send("POST", path, body, o.key, nil)
		require.NoError(t, err)
		checkFuzzReply(t, r, http.StatusAccepted, http.StatusOK)
	})
}
