package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// TestEndpointAuthForm: an OAuth 2.0 endpoint made with the form shows its auth type
// and its client secret masked, never in clear; editing it with the mask as shown
// keeps the secret, and the signature it was given stays.
func TestEndpointAuthForm(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := context.Background()
	org := &consign.Org{Name: "Acme", Role: consign.RoleSeller}
	require.NoError(t, u.manage.CreateOrg(ctx, org))
	b := u.browser(t)
	token := b.signIn(adminKey)
	const secret = "client-secret-in-the-form-9f3e"

	res := b.post("/ui/orgs/"+org.ID+"/endpoints", url.Values{
		"csrf": {token}, "url": {"http://127.0.0.1:9/hooks"}, "topics": {"product.*"}, "active": {"on"},
		"auth_type": {"oauth2"}, "token_url": {"http://127.0.0.1:9/oauth/token"}, "client_id": {"acme-client"},
		"client_secret": {secret}, "scopes": {"orders:write, orders:read"}, "auth_style": {"params"},
	})
	require.Equal(t, http.StatusCreated, res.status, res.body)
	require.NotContains(t, res.body, secret)
	eps, err := u.manage.Endpoints(ctx, org.ID, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, eps, 1)
	e := eps[0]
	require.Equal(t, consign.Auth{Type: "oauth2", TokenURL: "http://127.0.0.1:9/oauth/token", ClientID: "acme-client",
		ClientSecret: secret, Scopes: []string{"orders:write", "orders:read"}, AuthStyle: "params"}, e.Auth)

	p := b.get("/ui/orgs/" + org.ID + "/endpoints/" + e.ID)
	require.Equal(t, http.StatusOK, p.status)
	require.Contains(t, p.body, "OAuth 2.0 client credentials")
	require.Contains(t, p.body, "<code>••••9f3e</code>")
	require.NotContains(t, p.body, secret)

	edit := b.get("/ui/orgs/" + org.ID + "/endpoints/" + e.ID + "/edit")
	require.Equal(t, http.StatusOK, edit.status)
	require.NotContains(t, edit.body, secret)
	shown := regexp.MustCompile(`name="client_secret" value="([^"]*)"`).FindStringSubmatch(edit.body)
	require.NotNil(t, shown, edit.body)
	require.Equal(t, "••••9f3e", shown[1])
	res = b.post("/ui/orgs/"+org.ID+"/endpoints/"+e.ID+"/edit", url.Values{
		"csrf": {token}, "url": {"http://127.0.0.1:9/hooks"}, "topics": {"product.*"}, "description": {"edited"},
		"method": {"POST"}, "payload_format": {"envelope"}, "auth_type": {"oauth2"}, "token_url": {"http://127.0.0.1:9/oauth/token"},
		"client_id": {"acme-client"}, "client_secret": {shown[1]}, "scopes": {"orders:write orders:read"}, "auth_style": {"params"},
	})
	require.Less(t, res.status, 400, res.body)
	got, err := u.manage.Endpoint(ctx, org.ID, e.ID)
	require.NoError(t, err)
	require.Equal(t, "edited", got.Description)
	require.Equal(t, secret, got.Auth.ClientSecret, "the mask sent back kept the secret")
}
