package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// scrape returns the /metrics text.
func (e *env) scrape() string {
	e.tb.Helper()
	resp, err := http.Get(e.app.URL() + "/metrics")
	require.NoError(e.tb, err)
	defer resp.Body.Close()
	require.Equal(e.tb, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.tb, err)
	return string(b)
}

func TestMetricsCountPublishAndDelivery(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	rc := newReceiver(t, status(http.StatusOK))
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL + "/hooks", "topics": []string{"*"}})
	evID := e.publish(o, "order.fulfilled", map[string]any{"n": 1})
	rc.next(t)
	e.waitStatus(o, e.onlyDelivery(o, evID).ID, "succeeded")

	wants := []string{
		`consign_events_total{result="accepted"} 1`,
		`consign_deliveries_total{endpoint_id="` + ep["id"].(string) + `",outcome="succeeded"} 1`,
		`consign_attempt_duration_seconds_count{outcome="succeeded"} 1`,
		`consign_store_operation_duration_seconds_count{method="EventsInsert"}`,
		`consign_dispatch_queued 0`,
		`consign_endpoints_with_due_work`,
		`consign_endpoints_unhealthy{health="failing"} 0`,
	}
	var text string
	require.Eventually(t, func() bool {
		text = e.scrape()
		for _, w := range wants {
			if !strings.Contains(text, w) {
				return false
			}
		}
		return true
	}, waitFor, tick, "metrics lack one of %q:\n%s", wants, func() string { return consignLines(text) }())
}

// consignLines returns the samples of Consign's own metrics, but the store's buckets.
func consignLines(text string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "consign_") && !strings.Contains(line, "_bucket{") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func TestMetricsCountInboundReceipts(t *testing.T) {
	t.Parallel()
	e := start(t)
	r, err := http.Post(e.app.URL()+"/in/no-such-token", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusNotFound, r.StatusCode)
	require.Contains(t, consignLines(e.scrape()), `consign_inbound_receipts_total{result="not_found"} 1`)
}

func TestOpenAPIServedWithoutKey(t *testing.T) {
	t.Parallel()
	e := start(t)
	resp, err := http.Get(e.app.URL() + "/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	require.Equal(t, "3.1.0", doc.OpenAPI)
	require.Contains(t, doc.Paths, "/v1/orgs/{org}/events")
	require.Contains(t, doc.Paths, "/in/{token}")
}
