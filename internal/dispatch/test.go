package dispatch

import (
	"context"
	"encoding/json"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// SendTest sends one event of type typ (with the given payload, or a sample) to one
// endpoint now, outside the queue, records it as a delivery with one attempt, and
// returns that delivery. A failed test send is not retried.
func (d *Dispatcher) SendTest(ctx context.Context, orgID, endpointID, typ string, payload json.RawMessage) (*consign.Delivery, error) {
	now := d.cfg.Now().UTC().Truncate(time.Millisecond)
	if _, err := d.endpoints.Endpoint(ctx, orgID, endpointID); err != nil {
		return nil, err
	}
	if typ == "" {
		typ = consign.TypeTest
	}
	if len(payload) == 0 {
		payload = json.RawMessage(`{"test":true,"message":"This is a test event from Consign."}`)
	}
	ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: orgID, Type: typ, Payload: payload, CreatedAt: now}
	dlv := store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, now), EndpointID: endpointID, Deadline: now,
		LeaseUntil: now.Add(d.cfg.Lease)}
	if err := d.store.EventsInsert(ctx, []*store.EventWrite{{Event: ev, Deliveries: []store.NewDelivery{dlv}}}); err != nil {
		return nil, err
	}
	c := &store.Claim{DeliveryID: dlv.ID, OrgID: orgID, EndpointID: endpointID, EventID: ev.ID, EventType: typ,
		Payload: payload, EventCreatedAt: now, Deadline: now}
	// Load the endpoint afresh: a test usually follows an edit.
	d.cache.forget(endpointID)
	o, _, _ := d.attempt(ctx, c, true)
	if o.Status == consign.StatusPaused && o.Attempt == nil {
		o.Status = consign.StatusCancelled // an inactive endpoint is not tested; keep nothing queued
	}
	if err := d.store.DeliveriesRecord(ctx, store.RecordParams{Outcomes: []*store.Outcome{o}, Health: healthOf([]*store.Outcome{o})}); err != nil {
		return nil, err
	}
	return d.store.DeliveryGet(ctx, orgID, dlv.ID)
}
