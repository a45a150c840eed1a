package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/api"
)

// ids returns the ids of a list reply's data, in order.
func ids(r reply) []string {
	out := []string{}
	for _, x := range r.body["data"].([]any) {
		out = append(out, x.(map[string]any)["id"].(string))
	}
	return out
}

// TestSearchByKey: ?key= finds an org's events by the business keys their types name,
// and their deliveries, combined with the other filters; keys are checked when a type
// names them and when a search gives one.
func TestSearchByKey(t *testing.T) {
	t.Parallel()
	a := newAPI(t, api.Config{})
	org, key := a.org(t, "Acme")
	other, otherKey := a.org(t, "Birch")
	ep := a.must(t, http.StatusCreated, "POST", "/v1/orgs/"+org+"/endpoints", key,
		`{"url": "http://127.0.0.1:9/hook", "topics": ["order.*", "return.*"]}`).body["id"].(string)

	// A custom type names its keys; a bad pointer is a field error.
	problem(t, a.do(t, "POST", "/v1/event-types", adminKey, `{"name": "return.opened", "keys": ["/rma", "rma"]}`),
		http.StatusUnprocessableEntity, "invalid", "")
	rt := a.must(t, http.StatusCreated, "POST", "/v1/event-types", adminKey, `{"name": "return.opened", "keys": ["/rma", "/order_id", "/lines/*/sku"]}`)
	require.Equal(t, []any{"/rma", "/order_id", "/lines/*/sku"}, rt.body["keys"])
	// The built-in commerce types come with theirs.
	builtin := a.must(t, http.StatusOK, "GET", "/v1/event-types/order.created", key, "")
	require.Contains(t, builtin.body["keys"], "/order_id")

	publish := func(orgID, k, typ, payload string) string {
		t.Helper()
		return a.must(t, http.StatusAccepted, "POST", "/v1/orgs/"+orgID+"/events", k, `{"type": "`+typ+`", "payload": `+payload+`}`).body["id"].(string)
	}
	placed := publish(org, key, "order.created", `{"order_id": 1001, "line_items": [{"sku": "DB5-CAM-9"}]}`)
	lines := publish(org, key, "return.opened", `{"rma": "RMA-6", "lines": [{"sku": "DB5-CAM-9"}, {"sku": "TENT-2P"}]}`)
	other1001 := publish(org, key, "order.created", `{"order_id": 1002, "po_number": "PO-4411"}`)
	returned := publish(org, key, "return.opened", `{"rma": "RMA-7", "order_id": "1001"}`)
	publish(other, otherKey, "order.created", `{"order_id": 1001}`)
	_ = other1001

	search := func(path string) []string {
		t.Helper()
		return ids(a.must(t, http.StatusOK, "GET", "/v1/orgs/"+org+path, key, ""))
	}
	require.Equal(t, []string{returned, placed}, search("/events?key=1001"), "an integer and a string key alike, newest first")
	require.Equal(t, []string{placed}, search("/events?key=1001&type=order.created"))
	require.Equal(t, []string{lines}, search("/events?key=DB5-CAM-9"), "each line item's sku, of the type that names them")
	require.Equal(t, []string{lines}, search("/events?key=TENT-2P"))
	require.Equal(t, []string{other1001}, search("/events?key=PO-4411"))
	require.Equal(t, []string{}, search("/events?key=1003"))
	page := a.must(t, http.StatusOK, "GET", "/v1/orgs/"+org+"/events?key=1001&limit=1", key, "")
	require.Equal(t, []string{returned}, ids(page))
	require.Equal(t, []string{placed}, search("/events?key=1001&limit=1&cursor="+url.QueryEscape(page.body["next_cursor"].(string))))

	// A type with a schema: its keys are read by the schema's pass over the payload, or,
	// when the payload goes the schema's general way (an escaped member name here), by
	// a reading of their own; either way the event is found as soon as it is accepted.
	fulfilled := publish(org, key, "order.fulfilled", `{"id": "ord_77", "po_number": "PO-9", "lineItems": [{"sku": "S"}]}`)
	require.Equal(t, []string{fulfilled}, search("/events?key=ord_77"))
	require.Equal(t, []string{fulfilled}, search("/events?key=PO-9&type=order.fulfilled"))
	escaped := publish(org, key, "order.fulfilled", `{"\u0069d": 78, "id": "ord_78", "order_number": 5005}`)
	require.Equal(t, []string{escaped}, search("/events?key=ord_78"), "the last of a repeated member, as a decoder keeps it")
	require.Empty(t, search("/events?key=78"))
	require.Equal(t, []string{escaped}, search("/events?key=5005"))

	// Their deliveries: two events of 1001, one delivery each, to the one endpoint.
	ds := a.must(t, http.StatusOK, "GET", "/v1/orgs/"+org+"/deliveries?key=1001", key, "")
	require.Len(t, ds.body["data"], 2)
	for _, d := range ds.body["data"].([]any) {
		require.Equal(t, ep, d.(map[string]any)["endpoint_id"])
		require.Contains(t, []string{placed, returned}, d.(map[string]any)["event_id"])
	}
	require.Len(t, search("/deliveries?key=1001&endpoint_id="+ep+"&status=pending"), 2)
	require.Empty(t, search("/deliveries?key=1001&status=failed"))

	// Another org's key finds only its own events.
	require.Len(t, ids(a.must(t, http.StatusOK, "GET", "/v1/orgs/"+other+"/events?key=1001", otherKey, "")), 1)
	require.Empty(t, ids(a.must(t, http.StatusOK, "GET", "/v1/orgs/"+other+"/events?key=RMA-7", otherKey, "")))

	// A key the index cannot hold is a field error.
	for _, q := range []string{"/events?key=", "/deliveries?key=" + strings.Repeat("x", 129)} {
		r := a.do(t, "GET", "/v1/orgs/"+org+q, key, "")
		problem(t, r, http.StatusUnprocessableEntity, "invalid", "")
		require.Equal(t, "key", r.body["errors"].([]any)[0].(map[string]any)["field"])
	}

	// Changing a type's keys applies to what is published from then on (once the
	// node's catalog cache has it, within seconds); what was indexed stays.
	a.must(t, http.StatusOK, "PATCH", "/v1/event-types/return.opened", adminKey, `{"keys": ["/rma"]}`)
	n := 0
	require.Eventually(t, func() bool {
		n++
		rma := "RMA-8-" + strconv.Itoa(n)
		id := publish(org, key, "return.opened", `{"rma": "`+rma+`", "order_id": "9009"}`)
		return slices.Equal(search("/events?key="+rma), []string{id}) && !slices.Contains(search("/events?key=9009"), id)
	}, 10*time.Second, 100*time.Millisecond)
	require.Equal(t, []string{returned, placed}, search("/events?key=1001"), "indexed before the change: still found")
}
