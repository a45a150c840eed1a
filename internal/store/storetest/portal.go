package storetest

import (
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

func testPortal(t *testing.T, open opener) {
	t.Run("Branding", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		o := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme", Role: consign.RoleBoth, CreatedAt: now, UpdatedAt: now,
			Branding: &consign.Branding{Name: "Acme Partner Hub", LogoURL: "https://cdn.acme.example/logo.png", Color: "#0a7d4f"}}
		require.NoError(t, s.OrgInsert(t.Context(), o))
		got, err := s.OrgGet(t.Context(), o.ID)
		require.NoError(t, err)
		require.Equal(t, o, got, "branding kept on insert")

		tests := []struct {
			name string
			b    *consign.Branding
		}{
			{"Changed", &consign.Branding{Name: "Acme Vendors", Color: "#112233"}},
			{"Removed", nil},
			{"Added", &consign.Branding{LogoURL: "data:image/png;base64,iVBORw0KGgo="}},
		}
		for _, tt := range tests { // in order: each changes the one before
			o.Branding, o.UpdatedAt = tt.b, o.UpdatedAt.Add(time.Second)
			require.NoError(t, s.OrgUpdate(t.Context(), o), tt.name)
			got, err := s.OrgGet(t.Context(), o.ID)
			require.NoError(t, err, tt.name)
			require.Equal(t, tt.b, got.Branding, tt.name)
		}
	})

	link := func(tb testing.TB, s store.Store, org string, token string, expires time.Time) *consign.PortalLink {
		tb.Helper()
		l := &consign.PortalLink{ID: consign.NewID(consign.PrefixPortal, now), OrgID: org, ReadOnly: true, ExpiresAt: expires, CreatedAt: now}
		h := sha256.Sum256([]byte(token))
		require.NoError(tb, s.PortalLinkInsert(tb.Context(), l, h[:], now.Add(-24*time.Hour)))
		return l
	}
	hash := func(token string) []byte { h := sha256.Sum256([]byte(token)); return h[:] }

	t.Run("LinkUsedOnce", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		o := insertOrg(t, s, now)
		want := link(t, s, o.ID, "tok-1", now.Add(time.Hour))

		got, claimed, err := s.PortalLinkUse(t.Context(), hash("tok-1"), now.Add(time.Minute))
		require.NoError(t, err)
		require.True(t, claimed, "the first use claims the link")
		usedAt := now.Add(time.Minute)
		want.UsedAt = &usedAt
		require.Equal(t, want, got)

		got, claimed, err = s.PortalLinkUse(t.Context(), hash("tok-1"), now.Add(2*time.Minute))
		require.NoError(t, err)
		require.False(t, claimed, "a used link cannot be used again")
		require.Equal(t, want, got, "the second use changes nothing")
	})

	t.Run("LinkExpired", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		o := insertOrg(t, s, now)
		link(t, s, o.ID, "tok-2", now.Add(time.Hour))
		for _, at := range []time.Time{now.Add(time.Hour), now.Add(2 * time.Hour)} {
			got, claimed, err := s.PortalLinkUse(t.Context(), hash("tok-2"), at)
			require.NoError(t, err)
			require.False(t, claimed, "a link is expired from its expires_at on")
			require.Nil(t, got.UsedAt)
		}
	})

	t.Run("LinkUnknown", func(t *testing.T) {
		t.Parallel()
		_, _, err := open(t).PortalLinkUse(t.Context(), hash("never-made"), now)
		requireCode(t, consign.ENOTFOUND, err)
	})

	t.Run("LinkClaimedByOneOfManyAtOnce", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		o := insertOrg(t, s, now)
		link(t, s, o.ID, "tok-3", now.Add(time.Hour))
		var wg sync.WaitGroup
		var mu sync.Mutex
		claims := 0
		for range 8 {
			wg.Go(func() {
				_, claimed, err := s.PortalLinkUse(t.Context(), hash("tok-3"), now.Add(time.Second))
				require.NoError(t, err)
				if claimed {
					mu.Lock()
					claims++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Equal(t, 1, claims)
	})

	t.Run("OldLinksPurgedOnInsert", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		o := insertOrg(t, s, now)
		link(t, s, o.ID, "old", now.Add(-25*time.Hour)) // expired before the purge horizon
		link(t, s, o.ID, "recent", now.Add(-23*time.Hour))
		link(t, s, o.ID, "new", now.Add(time.Hour)) // purges "old", keeps "recent"
		_, _, err := s.PortalLinkUse(t.Context(), hash("old"), now)
		requireCode(t, consign.ENOTFOUND, err)
		_, claimed, err := s.PortalLinkUse(t.Context(), hash("recent"), now)
		require.NoError(t, err)
		require.False(t, claimed)
	})

	t.Run("LinksGoWithTheirOrg", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		o := insertOrg(t, s, now)
		link(t, s, o.ID, "tok-4", now.Add(time.Hour))
		require.NoError(t, s.OrgDelete(t.Context(), o.ID))
		_, _, err := s.PortalLinkUse(t.Context(), hash("tok-4"), now)
		requireCode(t, consign.ENOTFOUND, err)
	})
}
