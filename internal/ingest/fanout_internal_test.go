package ingest

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/sqlite"
)

// TestEndpointCacheBounded: the endpoints fan-out keeps stay within the cache's bounds on
// orgs and on endpoints, starting over when the next org would pass either, and an org's
// endpoints read again replace its old ones in the count.
func TestEndpointCacheBounded(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	var orgs []string
	for i := range 4 {
		org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleSeller, CreatedAt: now, UpdatedAt: now}
		require.NoError(t, st.OrgInsert(ctx, org))
		for j := range 3 {
			ep := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, now), OrgID: org.ID,
				URL: fmt.Sprintf("https://erp.example.com/%d/%d", i, j), Topics: []string{"*"}, Active: true, CreatedAt: now, UpdatedAt: now}}
			require.NoError(t, ep.Normalize())
			require.NoError(t, st.EndpointInsert(ctx, ep, nil))
		}
		orgs = append(orgs, org.ID)
	}
	c := newEndpointCache(st, slog.Default())
	c.maxOrgs, c.maxEndpoints = 3, 7

	for i, want := range []struct{ orgs, endpoints int }{{1, 3}, {2, 6}, {1, 3}, {2, 6}} {
		o, err := c.get(ctx, orgs[i])
		require.NoError(t, err)
		require.Len(t, o.all, 3)
		require.Len(t, c.orgs, want.orgs, "orgs kept after org %d", i)
		require.Equal(t, want.endpoints, c.endpoints, "endpoints kept after org %d", i)
	}
	// A change makes the org's endpoints read again: the count does not grow.
	before := c.orgs[orgs[3]].version
	require.NoError(t, st.SecretInsert(ctx, &store.SecretRow{Sealed: []byte("sealed"),
		Secret: consign.Secret{ID: consign.NewID(consign.PrefixSecret, now), EndpointID: c.orgs[orgs[3]].all[0].ep.ID, CreatedAt: now}}))
	o, err := c.get(ctx, orgs[3])
	require.NoError(t, err)
	require.Same(t, c.orgs[orgs[3]], o)
	require.Greater(t, o.version, before, "read again after the change")
	require.Equal(t, 6, c.endpoints)
	require.Len(t, c.orgs, 2)
}
