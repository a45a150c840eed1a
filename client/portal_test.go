package client_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/client"
)

func TestPortalLinksAndBranding(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := start(t)
	c := s.c

	o, err := c.Orgs.Create(ctx, client.OrgInput{Name: "Acme Outdoor"})
	require.NoError(t, err)
	up, err := c.Orgs.Update(ctx, o.ID, client.OrgInput{Branding: &client.Branding{Name: "Acme Partner Hub", Color: "#0A7D4F"}})
	require.NoError(t, err)
	require.Equal(t, &client.Branding{Name: "Acme Partner Hub", Color: "#0a7d4f"}, up.Branding)
	require.Equal(t, "Acme Outdoor", up.Name, "a field not given keeps its value")

	_, err = c.Orgs.Update(ctx, o.ID, client.OrgInput{Branding: &client.Branding{Color: "green"}})
	var apiErr *client.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 422, apiErr.Status)
	require.Equal(t, "branding.color", apiErr.Errors[0].Field)

	before := time.Now()
	ttl := client.Duration(30 * time.Minute)
	l, err := c.PortalLinks.Create(ctx, o.ID, client.PortalLinkInput{ExpiresIn: &ttl, ReadOnly: true})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(l.URL, s.url+"/ui/portal/cpl_"), l.URL)
	require.True(t, l.ReadOnly)
	require.WithinDuration(t, before.Add(30*time.Minute), l.ExpiresAt, 5*time.Second)

	l, err = c.PortalLinks.Create(ctx, o.ID, client.PortalLinkInput{})
	require.NoError(t, err)
	require.False(t, l.ReadOnly)
	require.WithinDuration(t, before.Add(time.Hour), l.ExpiresAt, 5*time.Second, "an hour by default")
}
