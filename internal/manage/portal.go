package manage

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"github.com/consign-dev/consign"
)

// Portal links: a platform asks for one (POST …/portal-links) and sends its partner's
// browser to it; opening it once signs that browser into the dashboard for the org only.
// The token is 256 random bits shown once in the link's URL; the store keeps its SHA-256,
// as for API keys, so a copy of the database opens no portal.

// PortalTokenPrefix starts every portal link token, so that leaked ones are easy to scan for.
const PortalTokenPrefix = "cpl_"

// portalTokenLen is the length of a token: the prefix and 32 bytes in unpadded base64url.
const portalTokenLen = len(PortalTokenPrefix) + 43

// Bounds of a portal link's lifetime (expires_in).
const (
	MinPortalLinkTTL     = time.Minute
	MaxPortalLinkTTL     = 7 * 24 * time.Hour
	DefaultPortalLinkTTL = time.Hour
)

// portalPurgeAfter is how long a link is kept after it expires, so that opening it
// soon after still says "expired" rather than "unknown".
const portalPurgeAfter = 7 * 24 * time.Hour

// PortalLinkInput is the body of POST /v1/orgs/{org}/portal-links.
type PortalLinkInput struct {
	// ExpiresIn is how long the link may be opened: 1m to 168h (7 days); default 1h.
	ExpiresIn *consign.Duration `json:"expires_in,omitempty"`
	// ReadOnly makes the session it opens see everything and change nothing.
	ReadOnly bool `json:"read_only,omitempty"`
}

// CreatePortalLink makes a one-time portal link for the org and returns it with its
// token, which is not kept anywhere to show again.
func (s *Service) CreatePortalLink(ctx context.Context, orgID string, in PortalLinkInput) (*consign.PortalLink, string, error) {
	ttl := DefaultPortalLinkTTL
	if in.ExpiresIn != nil {
		ttl = time.Duration(*in.ExpiresIn)
		if ttl < MinPortalLinkTTL || ttl > MaxPortalLinkTTL {
			return nil, "", consign.Invalid("expires_in", `must be from "1m" to "168h" (7 days)`)
		}
	}
	if _, err := s.store.OrgGet(ctx, orgID); err != nil {
		return nil, "", err
	}
	now := s.now()
	l := &consign.PortalLink{ID: consign.NewID(consign.PrefixPortal, now), OrgID: orgID, ReadOnly: in.ReadOnly,
		ExpiresAt: now.Add(ttl), CreatedAt: now}
	var b [32]byte
	_, _ = rand.Read(b[:])
	token := PortalTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	if err := s.store.PortalLinkInsert(ctx, l, HashKey(token), now.Add(-portalPurgeAfter)); err != nil {
		return nil, "", err
	}
	return l, token, nil
}

// ValidPortalToken reports whether s has the shape of a portal link token, so that a
// mistyped or forged path is answered without a store read.
func ValidPortalToken(s string) bool {
	if len(s) != portalTokenLen || !strings.HasPrefix(s, PortalTokenPrefix) {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s[len(PortalTokenPrefix):])
	return err == nil && len(b) == 32
}

// UsePortalLink opens a portal link: it returns the link, now used, when it was unused
// and unexpired. Otherwise it says what happened, in words for the person who clicked
// it: ENOTFOUND for a token that is not a link (or whose org was deleted), EGONE for
// one used or expired.
func (s *Service) UsePortalLink(ctx context.Context, token string) (*consign.PortalLink, error) {
	const ask = "Ask the platform that sent you here for a new link."
	if !ValidPortalToken(token) {
		return nil, consign.Errorf(consign.ENOTFOUND, "This partner portal link is not valid: it may have been copied incompletely. "+ask)
	}
	l, claimed, err := s.store.PortalLinkUse(ctx, HashKey(token), s.now())
	switch {
	case consign.ErrorCode(err) == consign.ENOTFOUND:
		return nil, consign.Errorf(consign.ENOTFOUND, "This partner portal link is not known here: it may be mistyped, or withdrawn. "+ask)
	case err != nil:
		return nil, err
	case claimed:
		return l, nil
	case l.UsedAt != nil:
		return nil, consign.Errorf(consign.EGONE, "This partner portal link was already used (at %s UTC); each link opens the portal once. %s",
			l.UsedAt.UTC().Format("2006-01-02 15:04"), ask)
	}
	return nil, consign.Errorf(consign.EGONE, "This partner portal link expired at %s UTC. %s", l.ExpiresAt.UTC().Format("2006-01-02 15:04"), ask)
}
