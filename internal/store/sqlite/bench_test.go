package sqlite_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// BenchmarkDeliveryCycle measures the writer's share of one delivery as the dispatcher
// drives it on a healthy endpoint: the event and its delivery written leased (one durable
// transaction per batch of 500), then the first attempt's success recorded (one light
// transaction per batch). ns/op is per delivery.
func BenchmarkDeliveryCycle(b *testing.B) {
	ctx := b.Context()
	db := open(b, b.TempDir())
	b.Cleanup(func() { require.NoError(b, db.Close()) })
	start := time.Now().UTC().Truncate(time.Millisecond)
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, start), Name: "Acme", Role: consign.RoleBoth, CreatedAt: start, UpdatedAt: start}
	require.NoError(b, db.OrgInsert(ctx, org))
	ep := &store.EndpointRow{Endpoint: consign.Endpoint{
		ID: consign.NewID(consign.PrefixEndpoint, start), OrgID: org.ID, URL: "http://127.0.0.1:9000/hooks",
		Topics: []string{"order.*"}, Active: true, CreatedAt: start, UpdatedAt: start,
	}}
	require.NoError(b, ep.Normalize())
	require.NoError(b, db.EndpointInsert(ctx, ep, nil))
	payload := json.RawMessage(`{"order_id":1001,"note":"` + strings.Repeat("x", 1000) + `"}`)

	const batch = 500
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		now := start.Add(time.Duration(done) * time.Millisecond)
		ws := make([]*store.EventWrite, batch)
		outcomes := make([]*store.Outcome, batch)
		for i := range ws {
			ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: org.ID, Type: "order.created", Payload: payload, CreatedAt: now}
			d := store.NewDelivery{ID: consign.NewID(consign.PrefixDelivery, now), EndpointID: ep.ID, Endpoint: ep,
				Deadline: now.Add(72 * time.Hour), LeaseUntil: now.Add(time.Minute)}
			ws[i] = &store.EventWrite{Event: ev, Deliveries: []store.NewDelivery{d}}
			outcomes[i] = &store.Outcome{DeliveryID: d.ID, EndpointID: ep.ID, Status: consign.StatusSucceeded, At: now,
				Attempt: &consign.Attempt{N: 1, StartedAt: now, DurationMS: 1,
					Request: consign.AttemptRequest{Method: "POST", URL: ep.URL, Headers: map[string]string{
						"Content-Type": "application/json", "User-Agent": consign.UserAgent, "Webhook-Id": ev.ID,
						"Webhook-Timestamp": strconv.FormatInt(now.Unix(), 10),
						"Webhook-Signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
					}},
					Response: &consign.AttemptResponse{Status: 204, Headers: map[string]string{"Date": now.Format(time.RFC1123)}}}}
		}
		require.NoError(b, db.EventsInsert(ctx, ws))
		require.NoError(b, db.DeliveriesRecord(ctx, store.RecordParams{Outcomes: outcomes}))
	}
}

// BenchmarkEventsInsertOne measures a durable write of one event without deliveries, as
// ingest commits it when single-event requests do not overlap.
func BenchmarkEventsInsertOne(b *testing.B) {
	ctx := b.Context()
	db := open(b, b.TempDir())
	b.Cleanup(func() { require.NoError(b, db.Close()) })
	start := time.Now().UTC().Truncate(time.Millisecond)
	org := &consign.Org{ID: consign.NewID(consign.PrefixOrg, start), Name: "Acme", Role: consign.RoleBoth, CreatedAt: start, UpdatedAt: start}
	require.NoError(b, db.OrgInsert(ctx, org))
	payload := json.RawMessage(`{"order_id":1001}`)
	for b.Loop() {
		ev := &consign.Event{ID: consign.NewID(consign.PrefixEvent, start), OrgID: org.ID, Type: "order.created", Payload: payload, CreatedAt: start}
		require.NoError(b, db.EventsInsert(ctx, []*store.EventWrite{{Event: ev}}))
	}
}
