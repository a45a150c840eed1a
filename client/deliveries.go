package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
)

// DeliveryService reads an org's deliveries and sends them again.
type DeliveryService struct{ c *Client }

// DeliveryListOptions selects a page of deliveries: of one endpoint, one event, in one
// status, of the events with a business key such as an order id (empty fields: any).
type DeliveryListOptions struct {
	Limit      int
	Cursor     string
	EndpointID string
	EventID    string
	Status     string
	Key        string
}

func (o *DeliveryListOptions) values() url.Values {
	if o == nil {
		return url.Values{}
	}
	q := (&ListOptions{Limit: o.Limit, Cursor: o.Cursor}).values()
	for k, v := range map[string]string{"endpoint_id": o.EndpointID, "event_id": o.EventID, "status": o.Status, "key": o.Key} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// List returns a page of an org's deliveries, without their attempts.
func (s *DeliveryService) List(ctx context.Context, org string, opts *DeliveryListOptions) (*Page[Delivery], error) {
	return list[Delivery](ctx, s.c, path("orgs", org, "deliveries"), opts.values())
}

// All iterates over every delivery of an org that opts selects, from opts.Cursor on.
func (s *DeliveryService) All(ctx context.Context, org string, opts *DeliveryListOptions) iter.Seq2[Delivery, error] {
	o := deref(opts)
	return all(ctx, o.Cursor, func(ctx context.Context, cursor string) (*Page[Delivery], error) {
		o.Cursor = cursor
		return s.List(ctx, org, &o)
	})
}

// Get returns a delivery with its attempts: each request, and what came back.
func (s *DeliveryService) Get(ctx context.Context, org, id string) (*Delivery, error) {
	var d Delivery
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("orgs", org, "deliveries", id), out: &d})
	return ptr(&d, err)
}

// Retry sends a delivery that failed or succeeded again now.
func (s *DeliveryService) Retry(ctx context.Context, org, id string) (*Delivery, error) {
	var d Delivery
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "deliveries", id, "retry"), out: &d})
	return ptr(&d, err)
}
