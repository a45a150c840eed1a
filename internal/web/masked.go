package web

import (
	"context"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/store"
)

// maskedManage is the manage service as the dashboard reads endpoints: the password in
// an endpoint's URL (a broker's credential) masked on every page, as the API shows it.
// A form that sends the masked URL back keeps the stored password (manage.UpdateEndpoint).
type maskedManage struct{ *manage.Service }

func maskURL(e *consign.Endpoint) {
	if e != nil {
		e.URL = consign.MaskURL(e.URL)
	}
}

func (m maskedManage) Endpoint(ctx context.Context, orgID, id string) (*consign.Endpoint, error) {
	e, err := m.Service.Endpoint(ctx, orgID, id)
	maskURL(e)
	return e, err
}

func (m maskedManage) Endpoints(ctx context.Context, orgID string, p store.Page) ([]*consign.Endpoint, error) {
	eps, err := m.Service.Endpoints(ctx, orgID, p)
	for _, e := range eps {
		maskURL(e)
	}
	return eps, err
}

func (m maskedManage) CreateEndpoint(ctx context.Context, orgID string, in *manage.EndpointInput) (*manage.CreatedEndpoint, error) {
	c, err := m.Service.CreateEndpoint(ctx, orgID, in)
	if c != nil {
		maskURL(c.Endpoint)
	}
	return c, err
}

func (m maskedManage) UpdateEndpoint(ctx context.Context, orgID, id string, decode func(*manage.EndpointPatch) error) (*consign.Endpoint, error) {
	e, err := m.Service.UpdateEndpoint(ctx, orgID, id, decode)
	maskURL(e)
	return e, err
}
