package dispatch

import (
	"context"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// Retry sends a finished delivery again now: it becomes pending, due at once, with a
// fresh deadline of the endpoint's max_age. A delivery still waiting or in flight, or one
// whose endpoint is inactive, is refused with ECONFLICT and a message saying why.
func (d *Dispatcher) Retry(ctx context.Context, orgID, id string) (*consign.Delivery, error) {
	dl, err := d.store.DeliveryGet(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	if dl.Status == consign.StatusDelivering || dl.Status == consign.StatusPending {
		return nil, consign.Errorf(consign.ECONFLICT, "delivery %s is %s already; it will be sent without a retry", id, dl.Status)
	}
	ep, err := d.endpoints.Endpoint(ctx, orgID, dl.EndpointID)
	if err != nil {
		return nil, err
	}
	if !ep.Active {
		return nil, consign.Errorf(consign.ECONFLICT, "endpoint %s is inactive; activate it (PATCH {\"active\": true}) first", ep.ID)
	}
	now := d.cfg.Now().UTC()
	dl, err = d.store.DeliveryRequeue(ctx, orgID, id, now, now.Add(time.Duration(ep.Retry.MaxAge)))
	if err != nil {
		return nil, err
	}
	d.Wake(ep.ID)
	return dl, nil
}

// RecoverInput selects an endpoint's deliveries to send again.
type RecoverInput struct {
	Since    time.Time
	Until    *time.Time // default: now
	Statuses []string   // default: failed
	Types    []string   // default: all
}

// Recover re-queues an endpoint's deliveries created in [Since, Until] with one of the
// statuses (failed by default); they are sent within the endpoint's limits, each with a
// fresh deadline. It returns how many were re-queued.
func (d *Dispatcher) Recover(ctx context.Context, orgID, endpointID string, in RecoverInput) (int, error) {
	var v consign.Validation
	if in.Since.IsZero() {
		v.Add("since", "is required (RFC 3339 time)")
	}
	for _, st := range in.Statuses {
		if !consign.ValidStatus(st) {
			v.Add("status", "%q is not a delivery status", st)
		}
	}
	if err := v.Err(); err != nil {
		return 0, err
	}
	ep, err := d.endpoints.Endpoint(ctx, orgID, endpointID)
	if err != nil {
		return 0, err
	}
	now := d.cfg.Now().UTC()
	p := store.RecoverParams{OrgID: ep.OrgID, EndpointID: ep.ID, Since: in.Since, Statuses: in.Statuses, Types: in.Types,
		Now: now, Deadline: now.Add(time.Duration(ep.Retry.MaxAge))}
	if in.Until != nil {
		p.Until = *in.Until
	}
	n, err := d.store.DeliveriesRecover(ctx, p)
	if err != nil {
		return 0, err
	}
	d.Wake(ep.ID)
	return n, nil
}
