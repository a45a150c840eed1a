package app_test

// The seed profiles: each platform's webhook feature as its document
// (/work/shared/seeds) describes it, end to end, with the documents' own payloads
// (testdata/seeds; the JSON repaired where the pages lost brackets, every field kept).

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/inbound"
	"github.com/consign-dev/consign/webhook"
)

func seedFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile("testdata/seeds/" + name)
	require.NoError(tb, err)
	require.True(tb, json.Valid(b), "%s is not valid JSON", name)
	return b
}

// publishRaw publishes an event whose payload is the given JSON document.
func (e *env) publishRaw(o org, typ string, payload []byte) string {
	e.tb.Helper()
	return e.publish(o, typ, json.RawMessage(payload))
}

// rcWebhookKeys are the properties of a ReadyCloud webhook, exactly.
var rcWebhookKeys = []string{"created_at", "entity", "remote_url", "suspended_at", "token", "updated_at", "url"}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestSeedReadyCloud drives the v2 webhooks API with plain HTTP as ReadyCloud's curl
// examples do, delivers the seed's order as a raw PUT with "Auth: <token>", suspends the
// webhook after more than 3 failures within 6 h, and lifts the suspension.
func TestSeedReadyCloud(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("readycloud")
	other := e.newOrg("someone-else")
	base := "/api/v2/orgs/" + o.id + "/webhooks/"
	q := "?bearer_token=" + url.QueryEscape(o.key)
	jsonHdr := http.Header{"Content-Type": {"application/json"}}

	// curl --request POST --upload-file data.json ".../webhooks/?bearer_token=…": curl
	// appends the file's name to a URL ending in "/".
	r := e.c.raw("POST", base+"data.json"+q, seedFile(t, "readycloud_create.json"), "", jsonHdr)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	contact := r.json(t)
	require.Equal(t, rcWebhookKeys, keysOf(contact), "the seed's shape exactly")
	require.Equal(t, "contact", contact["entity"])
	require.Equal(t, "https://example.com/contacts/v2/", contact["remote_url"])
	require.Nil(t, contact["suspended_at"])
	require.NotEmpty(t, contact["token"])
	require.Regexp(t, `^/api/v2/orgs/`+o.id+`/webhooks/[^/]+/$`, contact["url"])

	// Entity defaults to orders; the Bearer header works as well.
	// The receiver fails with 204: a 2xx, but ReadyCloud counts only 200 as success.
	var healthy atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	r = e.c.raw("POST", base, map[string]any{"remote_url": rc.URL + "/orders/v2/"}, o.key, nil)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	orders := r.json(t)
	require.Equal(t, "orders", orders["entity"])
	ordersURL := orders["url"].(string)
	id := strings.TrimSuffix(strings.TrimPrefix(ordersURL, base), "/")

	// Validation: ReadyCloud's 400 {"<field>": ["…"]}, naming the allowed entities;
	// remote_url required.
	r = e.c.raw("POST", base+q, map[string]any{"entity": "invoices", "remote_url": "https://example.com/x/"}, "", nil)
	msgs := rcFieldErrors(t, r)
	require.Equal(t, []string{"entity"}, keysOf(msgs))
	for _, name := range []string{"orders", "packaging", "contact", "contact-address", "acceptance-scan", "webhook"} {
		require.Contains(t, msgs["entity"].([]any)[0], name)
	}
	r = e.c.raw("POST", base+q, map[string]any{"entity": "orders"}, "", nil)
	require.Equal(t, []string{"remote_url"}, keysOf(rcFieldErrors(t, r)))
	r = e.c.raw("POST", base+q, map[string]any{"remote_url": "ftp://example.com/x/"}, "", nil)
	require.Equal(t, []string{"remote_url"}, keysOf(rcFieldErrors(t, r)))

	// Authentication: none is 401 {"detail"} naming ?bearer_token=; another org's key
	// does not see this org (404 {"detail"}); a method the path lacks is 405 {"detail"}.
	for _, tc := range []struct {
		method, path string
		status       int
		detail       string
	}{
		{"GET", base, http.StatusUnauthorized, "?bearer_token="},
		{"GET", base + "?bearer_token=nope", http.StatusUnauthorized, "?bearer_token="},
		{"GET", base + "?bearer_token=" + url.QueryEscape(other.key), http.StatusNotFound, "not found"},
		{"PUT", base + q, http.StatusMethodNotAllowed, "PUT is not allowed"},
		{"GET", base + "ep_nope/" + q, http.StatusNotFound, "not found"},
	} {
		r := e.c.raw(tc.method, tc.path, nil, "", nil)
		require.Equal(t, tc.status, r.status, "%s %s: %s", tc.method, tc.path, r.body)
		require.Equal(t, "application/json", mediaType(r.header), "%s", r.body)
		body := r.json(t)
		require.Equal(t, []string{"detail"}, keysOf(body), "%s", r.body)
		require.Contains(t, body["detail"], tc.detail)
	}
	require.Equal(t, http.StatusOK, e.c.raw("GET", base, nil, adminKey, nil).status, "the admin key")

	// The list, paged: next/previous work and keep bearer_token only when it came that way.
	var page struct {
		Count    int              `json:"count"`
		Next     *string          `json:"next"`
		Previous *string          `json:"previous"`
		Results  []map[string]any `json:"results"`
	}
	e.c.get(base+q, "", &page)
	require.Equal(t, 2, page.Count)
	require.Nil(t, page.Next)
	require.Nil(t, page.Previous)
	require.Equal(t, []any{contact["url"], ordersURL}, []any{page.Results[0]["url"], page.Results[1]["url"]})
	require.Equal(t, rcWebhookKeys, keysOf(page.Results[0]))

	e.c.get(base+q+"&page_size=1", "", &page)
	require.Len(t, page.Results, 1)
	require.Nil(t, page.Previous)
	require.NotNil(t, page.Next)
	require.Contains(t, *page.Next, "bearer_token=")
	next := *page.Next
	page.Next, page.Previous = nil, nil
	e.c.get(next, "", &page)
	require.Equal(t, ordersURL, page.Results[0]["url"])
	require.Nil(t, page.Next)
	require.NotNil(t, page.Previous)
	e.c.get(*page.Previous, "", &page)
	require.Equal(t, contact["url"], page.Results[0]["url"])

	page.Next = nil
	e.c.get(base+"?page_size=1", o.key, &page)
	require.NotNil(t, page.Next)
	require.NotContains(t, *page.Next, "bearer_token", "a header-authenticated client's key stays out of URLs")
	require.Equal(t, http.StatusNotFound, e.c.raw("GET", base+"?page=9", nil, o.key, nil).status)

	// GET one by its url.
	var one map[string]any
	e.c.get(ordersURL+q, "", &one)
	require.Equal(t, orders, one)

	// It is an ordinary endpoint: PUT, raw, token auth, {3 failures, 6h}. The v1 PATCH
	// shortens its retries for the test.
	ep := e.c.must(http.StatusOK, "GET", "/v1/orgs/"+o.id+"/endpoints/"+id, nil, o.key)
	require.Equal(t, "PUT", ep["method"])
	require.Equal(t, "raw", ep["payload_format"])
	require.Equal(t, map[string]any{"type": "token", "token": orders["token"]}, ep["auth"])
	require.Equal(t, []any{"order.*"}, ep["topics"])
	fp := ep["failure_policy"].(map[string]any)
	require.EqualValues(t, 3, fp["max_failures"])
	require.Equal(t, "6h0m0s", fp["window"])
	require.Equal(t, []any{200.0}, ep["success_statuses"], "only 200 counts as success")
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+id,
		map[string]any{"retry": map[string]any{"schedule": []string{"30ms"}, "max_age": "1h"}}, o.key)

	// The seed's order, as ReadyCloud sends it.
	order := seedFile(t, "readycloud_order.json")
	ev := e.publishRaw(o, "order.updated", order)
	got := rc.next(t)
	require.Equal(t, "PUT", got.Method)
	require.Equal(t, "/orders/v2/", got.Path)
	require.Equal(t, orders["token"], got.Header.Get("Auth"))
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	require.Empty(t, got.Header.Get("Webhook-Signature"))
	require.JSONEq(t, string(order), string(got.Body), "the raw payload, not an envelope")

	// More than 3 failures within 6 h: suspended.
	require.Eventually(t, func() bool {
		var w map[string]any
		e.c.get(ordersURL+q, "", &w)
		return w["suspended_at"] != nil
	}, waitFor, tick)
	d := e.waitStatus(o, e.onlyDelivery(o, ev).ID, "paused")
	require.Greater(t, d.AttemptsCount, 3)
	require.Equal(t, http.StatusNoContent, d.Attempts[0].Response.Status)
	require.Contains(t, *d.Attempts[0].Error, "not one of the endpoint's success_statuses [200]")
	e.c.get(base+q, "", &page)
	require.Len(t, page.Results, 2, "a suspended webhook is still listed")

	// Lifting the suspension (POST …/resume/, or the v1 PATCH {"active": true}) sends
	// what waited.
	healthy.Store(true)
	r = e.c.raw("POST", ordersURL+"resume/"+q, nil, "", nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Nil(t, r.json(t)["suspended_at"])
	e.waitStatus(o, d.ID, "succeeded")

	// The acceptance-scan entity and its seed payload.
	scans := newReceiver(t, nil)
	r = e.c.raw("POST", base+q, map[string]any{"entity": "acceptance-scan", "remote_url": scans.URL + "/acceptance-scan/v2/"}, "", nil)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	scan := seedFile(t, "readycloud_acceptance_scan.json")
	e.publishRaw(o, "acceptance_scan.created", scan)
	got = scans.next(t)
	require.Equal(t, "PUT", got.Method)
	require.Equal(t, r.json(t)["token"], got.Header.Get("Auth"))
	require.JSONEq(t, string(scan), string(got.Body))

	// DELETE: 204, then gone.
	require.Equal(t, http.StatusNoContent, e.c.raw("DELETE", contact["url"].(string)+q, nil, "", nil).status)
	require.Equal(t, http.StatusNotFound, e.c.raw("GET", contact["url"].(string)+q, nil, "", nil).status)
	e.c.get(base+q, "", &page)
	require.Equal(t, 2, page.Count)

	// A v1 endpoint of another shape is not a ReadyCloud webhook.
	plain := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"}})
	require.Equal(t, http.StatusNotFound, e.c.raw("GET", base+plain["id"].(string)+"/"+q, nil, "", nil).status)
}

// rcFieldErrors checks that r is ReadyCloud's 400 for invalid input, {"<field>":
// ["…"]}, and returns it.
func rcFieldErrors(tb testing.TB, r *reply) map[string]any {
	tb.Helper()
	require.Equal(tb, http.StatusBadRequest, r.status, "%s", r.body)
	require.Equal(tb, "application/json", mediaType(r.header), "%s", r.body)
	m := r.json(tb)
	for k, v := range m {
		l, ok := v.([]any)
		require.True(tb, ok && len(l) > 0, "%s: want a list of messages: %s", k, r.body)
	}
	return m
}

// TestSeedModernDropship: the six topics with who may take them and their schemas, org
// roles limiting subscriptions, rate and burst limits, secrets with expiry added without
// downtime (values shown once), health and deactivation after failing for disable_after
// (72h by default, 1s here), and reactivation resuming.
func TestSeedModernDropship(t *testing.T) {
	t.Parallel()
	e := start(t)
	want := map[string][]any{
		"order.fulfilled":          {"buyer"},
		"order.cancelled":          {"buyer", "seller"},
		"product.selected":         {"buyer"},
		"product.inventoryChanged": {"buyer"},
		"product.unavailable":      {"buyer"},
		"variant.unavailable":      {"buyer"},
	}
	for name, roles := range want {
		et := e.c.must(http.StatusOK, "GET", "/v1/event-types/"+name, nil, adminKey)
		require.Equal(t, roles, et["available_for"], name)
		require.NotNil(t, et["schema"], name)
	}

	// Roles: a seller may take order.cancelled but not the buyers' topics.
	seller := e.newOrg("seller")
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+seller.id, map[string]any{"role": "seller"}, adminKey)
	sink := newReceiver(t, nil)
	r := e.c.raw("POST", "/v1/orgs/"+seller.id+"/endpoints", map[string]any{"url": sink.URL, "topics": []string{"order.fulfilled", "order.cancelled"}}, seller.key, nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	p := requireProblem(t, r)
	require.Contains(t, p.Detail, `"order.fulfilled" is available for buyers only`)
	e.createEndpoint(seller, map[string]any{"url": sink.URL, "topics": []string{"order.cancelled"}})

	buyer := e.newOrg("buyer")
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+buyer.id, map[string]any{"role": "buyer"}, adminKey)
	var healthy atomic.Bool
	healthy.Store(true)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	ep := e.createEndpoint(buyer, map[string]any{"url": rc.URL, "topics": []string{"order.fulfilled", "order.cancelled",
		"product.selected", "product.inventoryChanged", "product.unavailable", "variant.unavailable"},
		"rate_limit": 20, "burst_limit": 2, "secret_expires_at": expires,
		"retry":          map[string]any{"schedule": []string{"100ms"}, "max_age": "1h"},
		"failure_policy": map[string]any{"disable_after": "1s"}})
	epID := ep["id"].(string)
	first := ep["secret"].(string)
	require.True(t, strings.HasPrefix(first, "whsec_"))
	require.EqualValues(t, 20, ep["rate_limit"])
	require.EqualValues(t, 2, ep["burst_limit"])
	epPath := "/v1/orgs/" + buyer.id + "/endpoints/" + epID

	// Payloads are checked against the topic's schema.
	r = e.c.raw("POST", "/v1/orgs/"+buyer.id+"/events", map[string]any{"type": "variant.unavailable", "payload": map[string]any{"id": 1}}, buyer.key, nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
	r = e.c.raw("POST", "/v1/orgs/"+buyer.id+"/events", map[string]any{"type": "product.selected", "payload": []any{"not", "an", "object"}}, buyer.key, nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)

	// A second secret is added while the first still signs: both sign, no downtime; its
	// value is shown once and never listed.
	sec := e.c.must(http.StatusCreated, "POST", epPath+"/secrets", map[string]any{"expires_at": expires.Add(24 * time.Hour)}, buyer.key)
	second := sec["value"].(string)
	require.NotEmpty(t, second)
	lr := e.c.raw("GET", epPath+"/secrets", nil, buyer.key, nil)
	require.Equal(t, http.StatusOK, lr.status)
	require.NotContains(t, string(lr.body), first)
	require.NotContains(t, string(lr.body), second)
	require.NotContains(t, string(e.c.raw("GET", epPath, nil, buyer.key, nil).body), first)

	payloads := map[string]any{
		"product.unavailable": map[string]any{"id": "prod_123"},
		"variant.unavailable": map[string]any{"ids": []any{"var_1", "var_2"}},
		"product.selected":    map[string]any{"id": "prod_123", "title": "Doc Black Camo Sandal", "variants": []any{map[string]any{"id": "var_1", "sku": "DB5-CAM-9"}}},
		"order.fulfilled":     map[string]any{"id": "ord_9", "fulfillments": []any{map[string]any{"trackingNumber": "92055901755477000000000015"}}},
	}
	for typ, pl := range payloads {
		e.publish(buyer, typ, pl)
	}
	for range payloads {
		got := rc.next(t)
		// Both secrets verify the request (consumers may hold either).
		for _, s := range []string{first, second} {
			require.NoError(t, webhook.Verify(s, got.Header, got.Body))
		}
		require.Len(t, strings.Fields(got.Header.Get("Webhook-Signature")), 2)
	}

	// Failing: health "failing" (HEALTHY in Modern Dropship's terms, still sending), then
	// after disable_after deactivated with health "failed" (FAILED).
	healthy.Store(false)
	ev := e.publish(buyer, "order.cancelled", map[string]any{"id": "ord_10"})
	var got map[string]any
	require.Eventually(t, func() bool {
		got = e.c.must(http.StatusOK, "GET", epPath, nil, buyer.key)
		return got["active"] == false
	}, waitFor, tick)
	require.Equal(t, "failed", got["health"])
	require.Contains(t, got["disabled_reason"], "nothing accepted for 1s")
	d := e.waitStatus(buyer, e.onlyDelivery(buyer, ev).ID, "paused")

	// Reactivation resumes.
	healthy.Store(true)
	got = e.c.must(http.StatusOK, "PATCH", epPath, map[string]any{"active": true}, buyer.key)
	require.Equal(t, "healthy", got["health"])
	e.waitStatus(buyer, d.ID, "succeeded")
}

// TestSeedOnport: the seed's purchase order POSTed raw to the vendor's URL with the
// vendor's headers; the vendor's reply kept on the attempt and its reference on the
// delivery; a test send first.
func TestSeedOnport(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("onport")
	var n atomic.Int32
	vendor := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		i := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Vendor-Request", "req-"+string(rune('0'+i)))
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"status": "received", "reference": "VND-` + string(rune('0'+i)) + `", "data": {"id": ` + string(rune('0'+i)) + `0}}`))
	})
	body := map[string]any{"url": vendor.URL + "/api/purchase-orders", "topics": []string{"purchase_order.created"},
		"payload_format": "raw", "headers": map[string]string{"X-Api-Key": "vendor-key-1", "X-Vendor-Account": "jetti"},
		"response_reference_pointer": "reference"}
	r := e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints", body, o.key, nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
	require.Contains(t, requireProblem(t, r).fields(), "response_reference_pointer")
	body["response_reference_pointer"] = "/reference"
	// Onport keeps both the vendor's reference and its id: response_fields, at most 8.
	for _, bad := range []struct {
		fields map[string]string
		field  string
	}{
		{map[string]string{"id": "data/id"}, "response_fields.id"},
		{map[string]string{"id": ""}, "response_fields.id"},
		{map[string]string{"vendor id": "/id"}, "response_fields"},
		{map[string]string{"a": "/a", "b": "/b", "c": "/c", "d": "/d", "e": "/e", "f": "/f", "g": "/g", "h": "/h", "i": "/i"}, "response_fields"},
	} {
		body["response_fields"] = bad.fields
		r = e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints", body, o.key, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%v: %s", bad.fields, r.body)
		require.Contains(t, requireProblem(t, r).fields(), bad.field, "%v", bad.fields)
	}
	body["response_fields"] = map[string]string{"vendorReceivedReference": "/reference", "vendorReceivedId": "/data/id"}
	ep := e.createEndpoint(o, body)
	epID := ep["id"].(string)
	require.Equal(t, "/reference", ep["response_reference_pointer"])
	require.Equal(t, map[string]any{"vendorReceivedReference": "/reference", "vendorReceivedId": "/data/id"}, ep["response_fields"])
	require.Equal(t, "POST", ep["method"])

	po := seedFile(t, "onport_purchase_order.json")

	// A test send first, with the seed's payload.
	test := e.c.must(http.StatusOK, "POST", "/v1/orgs/"+o.id+"/endpoints/"+epID+"/test",
		map[string]any{"type": "purchase_order.created", "payload": json.RawMessage(po)}, o.key)
	require.Equal(t, "succeeded", test["status"])
	att := test["attempt"].(map[string]any)
	require.EqualValues(t, 201, att["response"].(map[string]any)["status"])
	got := vendor.next(t)
	require.JSONEq(t, string(po), string(got.Body))

	// Live.
	ev := e.publishRaw(o, "purchase_order.created", po)
	got = vendor.next(t)
	require.Equal(t, "POST", got.Method)
	require.Equal(t, "/api/purchase-orders", got.Path)
	require.Equal(t, "vendor-key-1", got.Header.Get("X-Api-Key"))
	require.Equal(t, "jetti", got.Header.Get("X-Vendor-Account"))
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	require.JSONEq(t, string(po), string(got.Body), "the raw purchase order, every field")

	d := e.waitStatus(o, e.onlyDelivery(o, ev).ID, "succeeded")
	require.Len(t, d.Attempts, 1)
	resp := d.Attempts[0].Response
	require.NotNil(t, resp)
	require.Equal(t, 201, resp.Status)
	require.Equal(t, "req-2", resp.Headers["X-Vendor-Request"])
	require.JSONEq(t, `{"status": "received", "reference": "VND-2", "data": {"id": 20}}`, resp.Body)
	var full map[string]any
	e.c.get("/v1/orgs/"+o.id+"/deliveries/"+d.ID, o.key, &full)
	require.Equal(t, "VND-2", full["response_reference"])
	require.Equal(t, map[string]any{"vendorReceivedReference": "VND-2", "vendorReceivedId": "20"}, full["response_fields"],
		"values are strings, a number as its JSON text")
	var td2 map[string]any
	e.c.get("/v1/orgs/"+o.id+"/deliveries/"+test["delivery_id"].(string), o.key, &td2)
	require.Equal(t, "VND-1", td2["response_reference"], "the test send's reply too")

	// Lists show it as well; an endpoint without a pointer stores none.
	var l struct{ Data []map[string]any }
	e.c.get("/v1/orgs/"+o.id+"/deliveries?event_id="+ev, o.key, &l)
	require.Equal(t, "VND-2", l.Data[0]["response_reference"])
	require.Equal(t, "20", l.Data[0]["response_fields"].(map[string]any)["vendorReceivedId"])
	// A PATCH of response_fields replaces them as a whole.
	ep = e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+epID,
		map[string]any{"response_reference_pointer": "", "response_fields": map[string]string{"status": "/status"}}, o.key)
	require.Equal(t, map[string]any{"status": "/status"}, ep["response_fields"])
	ev2 := e.publishRaw(o, "purchase_order.created", po)
	vendor.next(t)
	d2 := e.waitStatus(o, e.onlyDelivery(o, ev2).ID, "succeeded")
	full = nil
	e.c.get("/v1/orgs/"+o.id+"/deliveries/"+d2.ID, o.key, &full)
	require.Nil(t, full["response_reference"])
	require.Equal(t, map[string]any{"status": "received"}, full["response_fields"])
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+epID, map[string]any{"response_fields": nil}, o.key)
	full = nil
	e.c.get("/v1/orgs/"+o.id+"/endpoints/"+epID, o.key, &full)
	require.NotContains(t, full, "response_fields", "null removes them all")
}

// TestSeedDropStreamDeposco: per-merchant ingest URLs for Deposco's shipment webhooks
// (one without a shared secret, as DropStream advises today, one with), and the daily
// fallback sync (cron "0 0 * * *" in the merchant's time zone; an interval in the test)
// filling the gaps. The payload is made up: the seed shows none.
func TestSeedDropStreamDeposco(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("dropstream")
	rc := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"shipment.created"}})

	tmpl := seedFile(t, "deposco_shipment.json")
	shipment := func(id string) []byte {
		var m map[string]any
		require.NoError(t, json.Unmarshal(tmpl, &m))
		m["id"] = id
		b, _ := json.Marshal(m)
		return b
	}
	var mu sync.Mutex
	var listed []json.RawMessage
	deposco := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer deposco-api-key" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"shipments": listed})
	})

	daily := map[string]any{"url": deposco.URL + "/shipments", "headers": map[string]string{"Authorization": "Bearer deposco-api-key"},
		"items_pointer": "/shipments", "id_pointer": "/id", "cron": "0 0 * * *", "timezone": "America/Chicago"}
	before := time.Now()
	plainSrc := e.createSource(o, map[string]any{"name": "Merchant A (Deposco)", "topic": "shipment.created",
		"verify": map[string]any{"type": "none"}, "dedupe": map[string]any{"json_pointer": "/id"}, "poll": daily})
	signedSrc := e.createSource(o, map[string]any{"name": "Merchant B (Deposco)", "topic": "shipment.created",
		"verify": map[string]any{"type": "hmac-sha256", "header": "X-Deposco-Signature", "secret": "merchant-b-shared-secret"},
		"dedupe": map[string]any{"json_pointer": "/id"}})
	require.NotEqual(t, plainSrc.IngestURL, signedSrc.IngestURL, "one URL per merchant")

	// The daily sync: next run at midnight in Chicago, as the pure schedule computes it.
	require.NotNil(t, plainSrc.PollStatus)
	require.NotNil(t, plainSrc.PollStatus.NextRunAt)
	p := &consign.SourcePoll{Cron: "0 0 * * *", Timezone: "America/Chicago"}
	lo, err := inbound.NextRun(p, before.Add(-time.Second))
	require.NoError(t, err)
	hi, err := inbound.NextRun(p, time.Now())
	require.NoError(t, err)
	require.Contains(t, []time.Time{lo, hi}, plainSrc.PollStatus.NextRunAt.UTC())
	fixed, err := inbound.NextRun(p, time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC), fixed, "00:00 CST is 06:00 UTC")

	// Webhooks: A's arrive unsigned; B's must carry the shared secret's HMAC.
	for _, id := range []string{"SHP-1", "SHP-2", "SHP-4"} {
		require.Equal(t, http.StatusOK, e.post(plainSrc.IngestURL, shipment(id), nil).status)
	}
	b := shipment("SHP-B1")
	require.Equal(t, http.StatusUnauthorized, e.post(signedSrc.IngestURL, b, nil).status)
	require.Equal(t, http.StatusOK, e.post(signedSrc.IngestURL, b, http.Header{"X-Deposco-Signature": {hexMAC("merchant-b-shared-secret", b)}}).status)
	// A duplicate is accepted and makes no event.
	require.Equal(t, http.StatusOK, e.post(plainSrc.IngestURL, shipment("SHP-1"), nil).status)

	// The fallback sync lists 1 to 5; only 3 and 5 become events. (Every second here.)
	mu.Lock()
	for _, id := range []string{"SHP-1", "SHP-2", "SHP-3", "SHP-4", "SHP-5"} {
		listed = append(listed, shipment(id))
	}
	mu.Unlock()
	daily["interval"], daily["cron"], daily["timezone"] = "1s", "", ""
	e.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/sources/"+plainSrc.ID, map[string]any{"poll": daily}, o.key)
	require.Eventually(t, func() bool { return len(e.receipts(o, plainSrc.ID, "via=poll")) == 2 }, waitFor, tick)
	var keys []string
	for _, r := range e.receipts(o, plainSrc.ID, "via=poll") {
		keys = append(keys, *r.DedupeKey)
	}
	slices.Sort(keys)
	require.Equal(t, []string{"SHP-3", "SHP-5"}, keys)

	// Six shipments, six events, each delivered once with its full payload.
	require.Eventually(t, func() bool { return len(e.eventsOf(o, "shipment.created")) == 6 }, waitFor, tick)
	seen := map[string]bool{}
	for range 6 {
		var env struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal(rc.next(t).Body, &env))
		require.Equal(t, "shipment.created", env.Type)
		var s map[string]any
		require.NoError(t, json.Unmarshal(env.Data, &s))
		require.Len(t, s["lines"], 2, "kit lines and their components arrive intact")
		seen[s["id"].(string)] = true
	}
	require.Len(t, seen, 6)
}
