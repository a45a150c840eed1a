package app_test

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/testlog"
)

// expiring returns the certificate_expiring events ops received, by endpoint.
func expiring(tb testing.TB, ops *receiver) map[string][]map[string]any {
	tb.Helper()
	out := map[string][]map[string]any{}
	seen := map[string]bool{} // delivery is at least once: a resend (same webhook-id) is one announcement
	for _, r := range ops.all() {
		id := r.Header.Get("Webhook-Id")
		if seen[id] {
			continue
		}
		seen[id] = true
		var env struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		require.NoError(tb, json.Unmarshal(r.Body, &env))
		if env.Type == "consign.endpoint.certificate_expiring" {
			id, _ := env.Data["endpoint_id"].(string)
			out[id] = append(out[id], env.Data)
		}
	}
	return out
}

// TestCertificateExpiringIsAnnouncedOnce: a client certificate that expires within 14
// days is announced once — not again on later checks nor after a restart on the same
// data — one that expires in 30 days is not, and a new certificate is announced afresh.
func TestCertificateExpiringIsAnnouncedOnce(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "Consign test client CA")
	tlsIn := func(days int) map[string]any {
		c, k := ca.issue(t, "consign-client", time.Now().Add(time.Duration(days)*24*time.Hour), x509.ExtKeyUsageClientAuth)
		return map[string]any{"client_certificate": c, "client_key": k}
	}
	e := start(t, func(c *app.Config) { c.CertificateCheck = 100 * time.Millisecond })
	o := e.newOrg("certs")
	ops := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": ops.URL, "topics": []string{"consign.endpoint.certificate_expiring"}})
	partner := newReceiver(t, nil)
	soon := e.createEndpoint(o, map[string]any{"url": partner.URL, "topics": []string{"order.*"}, "tls": tlsIn(10)})
	later := e.createEndpoint(o, map[string]any{"url": partner.URL + "/later", "topics": []string{"order.*"}, "tls": tlsIn(30)})
	soonID, laterID := soon["id"].(string), later["id"].(string)

	require.Eventually(t, func() bool { return len(expiring(t, ops)[soonID]) > 0 }, waitFor, tick, "no certificate_expiring for the 10-day certificate")
	got := expiring(t, ops)[soonID][0]
	tlsReply := soon["tls"].(map[string]any)
	require.Equal(t, o.id, got["org_id"])
	require.Equal(t, tlsReply["subject"], got["subject"])
	require.Equal(t, tlsReply["issuer"], got["issuer"])
	wantNotAfter, err := time.Parse(time.RFC3339, tlsReply["not_after"].(string))
	require.NoError(t, err)
	gotNotAfter, err := time.Parse(time.RFC3339, got["not_after"].(string))
	require.NoError(t, err)
	require.True(t, wantNotAfter.Truncate(time.Second).Equal(gotNotAfter), "not_after %s, want %s", gotNotAfter, wantNotAfter)
	require.EqualValues(t, 9, got["days_left"], "10 days less a moment is 9 whole days")

	// Restart on the same data; a third endpoint's announcement shows a full check ran.
	cfg := app.Config{Addr: "127.0.0.1:0", DataDir: e.dir, InsecureTargets: true, AdminKey: adminKey,
		Logger: testlog.New(t, "app2"), CertificateCheck: 100 * time.Millisecond}
	e.close()
	e2 := startWith(t, cfg)
	third := e2.createEndpoint(o, map[string]any{"url": partner.URL + "/third", "topics": []string{"order.*"}, "tls": tlsIn(3)})
	thirdID := third["id"].(string)
	require.Eventually(t, func() bool { return len(expiring(t, ops)[thirdID]) > 0 }, waitFor, tick, "no certificate_expiring for the 3-day certificate")
	require.Never(t, func() bool {
		got := expiring(t, ops)
		return len(got[soonID]) != 1 || len(got[thirdID]) != 1 || len(got[laterID]) != 0
	}, time.Second, 50*time.Millisecond, "each expiring certificate is announced once, the 30-day one never")

	// A new certificate (still expiring soon) is announced again.
	e2.c.must(http.StatusOK, "PATCH", "/v1/orgs/"+o.id+"/endpoints/"+soonID, map[string]any{"tls": tlsIn(12)}, o.key)
	require.Eventually(t, func() bool { return len(expiring(t, ops)[soonID]) == 2 }, waitFor, tick, "the new certificate was not announced")
	require.EqualValues(t, 11, expiring(t, ops)[soonID][1]["days_left"])
}
