package client

import (
	"context"
	"net/http"
	"time"
)

// PortalLinkService makes partner portal links: one-time links that sign a browser into
// the dashboard for one org only, with no API key in the browser.
type PortalLinkService struct{ c *Client }

// PortalLinkInput is a new link's settings; the zero value is a 1-hour link that allows
// changes.
type PortalLinkInput struct {
	// ExpiresIn is how long the link may be opened: 1m to 168h; nil: 1h.
	ExpiresIn *Duration `json:"expires_in,omitempty"`
	// ReadOnly makes the portal show everything and change nothing.
	ReadOnly bool `json:"read_only,omitempty"`
}

// PortalLink is a new link. URL holds its token and is not shown again: send the
// partner's browser (or your page's iframe) to it.
type PortalLink struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
	ReadOnly  bool      `json:"read_only"`
}

// Create makes a portal link for an org.
func (s *PortalLinkService) Create(ctx context.Context, org string, in PortalLinkInput) (*PortalLink, error) {
	var l PortalLink
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "portal-links"), body: in, out: &l})
	return ptr(&l, err)
}
