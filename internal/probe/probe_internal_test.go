package probe

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIDsFor: each placeholder of the OpenAPI document's paths gets the object of its
// kind; a placeholder the probe has no object for skips the operation.
func TestIDsFor(t *testing.T) {
	t.Parallel()
	b := tenant{endpoint: "ep_1", secret: "sec_1", event: "evt_1", delivery: "dlv_1", source: "src_1", receipt: "rcp_1", keyID: "key_1"}
	for _, tc := range []struct{ tmpl, want string }{
		{"/v1/orgs/{org}", "/v1/orgs/org_a"},
		{"/v1/orgs/{org}/endpoints/{id}/secrets/{sid}", "/v1/orgs/org_a/endpoints/ep_1/secrets/sec_1"},
		{"/v1/orgs/{org}/events/{id}", "/v1/orgs/org_a/events/evt_1"},
		{"/v1/orgs/{org}/deliveries/{id}/retry", "/v1/orgs/org_a/deliveries/dlv_1/retry"},
		{"/v1/orgs/{org}/sources/{id}/receipts/{rid}", "/v1/orgs/org_a/sources/src_1/receipts/rcp_1"},
		{"/v1/orgs/{org}/keys/{id}", "/v1/orgs/org_a/keys/key_1"},
		{"/api/v2/orgs/{org}/webhooks/{id}/", "/api/v2/orgs/org_a/webhooks/ep_1/"},
		{"/v1/orgs/{org}/widgets/{id}", ""},
		{"/in/{token}", ""},
	} {
		got, ok := idsFor(tc.tmpl, "org_a", b)
		require.Equal(t, tc.want != "", ok, tc.tmpl)
		require.Equal(t, tc.want, got, tc.tmpl)
	}
}

// TestLiteral: the hosts a resolver takes without DNS are literal; names are not.
func TestLiteral(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"https://127.0.0.1/", "https://2130706433/", "https://0x7f.1/", "https://[::1]/", "https://0177.0.0.1/"} {
		require.True(t, literal(u), u)
	}
	for _, u := range []string{"https://localhost/", "https://face.cafe/", "https://metadata/", "file:///etc/passwd"} {
		require.False(t, literal(u), u)
	}
}

func TestReplyProblem(t *testing.T) {
	for _, tc := range []struct {
		name, path, ct, body string
		want                 bool
	}{
		{"problem+json", "/v1/orgs/o/events", "application/problem+json", `{"title":"x"}`, true},
		{"plain JSON on the v1 API", "/v1/orgs/o/events", "application/json", `{"detail":"x"}`, false},
		{"ReadyCloud detail", "/api/v2/orgs/o/webhooks/", "application/json", `{"detail":"bad body"}`, true},
		{"ReadyCloud field errors", "/api/v2/orgs/o/webhooks/", "application/json", `{"remote_url":["is required"]}`, true},
		{"ReadyCloud empty detail", "/api/v2/orgs/o/webhooks/", "application/json", `{"detail":""}`, false},
		{"ReadyCloud field not a list", "/api/v2/orgs/o/webhooks/", "application/json", `{"remote_url":"is required"}`, false},
		{"ReadyCloud empty object", "/api/v2/orgs/o/webhooks/", "application/json", `{}`, false},
		{"ReadyCloud text", "/api/v2/orgs/o/webhooks/", "text/plain", `{"detail":"x"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &reply{path: tc.path, status: 400, header: http.Header{"Content-Type": {tc.ct}}, body: []byte(tc.body)}
			if got := r.problem(); got != tc.want {
				t.Errorf("problem() = %v, want %v", got, tc.want)
			}
		})
	}
}
