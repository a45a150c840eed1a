package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/ingest"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/sqlite"
)

// keysStore remembers the business keys ingest wrote with each event, by payload.
type keysStore struct {
	*sqlite.DB
	mu   sync.Mutex
	keys map[string][]string
}

func (m *keysStore) EventsInsert(ctx context.Context, ws []*store.EventWrite) error {
	err := m.DB.EventsInsert(ctx, ws)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range ws {
		m.keys[string(w.Event.Payload)] = w.Keys
	}
	return err
}

// TestReadPayloadAsPublish: a payload checked where it stands in a body (ReadPayload)
// is accepted or refused by Publish exactly as one Publish checks itself, with the same
// business keys; ReadPayload accepts the payloads the one-pass check decides and finds
// each one's end in the body.
func TestReadPayloadAsPublish(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, org, now := storeWithOrg(t)
	ks := &keysStore{DB: st, keys: map[string][]string{}}
	et := &consign.EventType{Name: "order.fulfilled", CreatedAt: now, UpdatedAt: now, Keys: []string{"/order_id", "/lines/*/sku"},
		Schema: json.RawMessage(`{"type":"object","required":["order_id"],"properties":{"order_id":{"type":["integer","string"]},
			"lines":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string"}}}}}}`)}
	require.NoError(t, st.EventTypeInsert(ctx, et))
	require.NoError(t, st.EventTypeInsert(ctx, &consign.EventType{Name: "order.noted", CreatedAt: now, UpdatedAt: now, Keys: []string{"/order_id"}}))
	svc := ingest.New(ks, ingest.Config{})
	t.Cleanup(svc.Close)

	var prev *ingest.EventInput // the event before, as a body's reader passes it
	for i, tt := range []struct {
		typ, payload string
		read         bool // ReadPayload accepts it
	}{
		{"order.fulfilled", `{"order_id":%d,"lines":[{"sku":"A"},{"sku":"B"}]}`, true},
		{"order.fulfilled", `{"order_id":"o-%d", "lines":[]}`, true},
		{"order.noted", `{"order_id":%d,"lines":[{"sku":1}]}`, false}, // after order.fulfilled: its own type's check
		{"order.fulfilled", `{"order_id":%d,"lines":[{"sku":1}]}`, false},
		{"order.fulfilled", `{"order_id":%d,"lines":[{"sku":"\u0041"}]}`, true},
		{"order.fulfilled", `{"order_\u0069d":%d}`, false}, // an escaped key: unsure
		{"order.fulfilled", `{"order_id":true,"n":%d}`, false},
		{"order.fulfilled", `{"lines":[],"n":%d}`, false},
		{"order.fulfilled", `{"order_id":%d,"lines":[{"sku":1}]}`, false},
		{"order.noted", `{"order_id":%d}`, false}, // no schema
		{"order.unknown", `{"order_id":%d}`, false},
		{"consign.endpoint.disabled", `{"order_id":%d}`, false},
	} {
		payload := fmt.Sprintf(tt.payload, i)
		body := []byte(payload + `,"idempotency_key":"k"}]}`)
		var read ingest.EventInput
		read.Type = tt.typ
		n, _ := svc.ReadPayload(ctx, tt.typ, body, &read, prev)
		prev = &read
		require.Equal(t, tt.read, n > 0, payload)
		if n > 0 {
			require.Equal(t, payload, string(body[:n]))
		}
		read.Type, read.Payload = tt.typ, json.RawMessage(payload)
		_, errRead := svc.Publish(ctx, org.ID, []ingest.EventInput{read})
		keysRead := ks.keys[payload]
		delete(ks.keys, payload)
		_, errPlain := svc.Publish(ctx, org.ID, []ingest.EventInput{{Type: tt.typ, Payload: json.RawMessage(payload)}})
		require.Equal(t, fmt.Sprint(errPlain), fmt.Sprint(errRead), payload)
		require.Equal(t, ks.keys[payload], keysRead, payload)
		if tt.read {
			require.NoError(t, errRead)
			require.NotEmpty(t, keysRead, payload)
		}
	}
}

// TestReadPayloadTypeChanged: a payload checked against a type that changed before
// Publish is checked again against the type as it is now.
func TestReadPayloadTypeChanged(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, org, now := storeWithOrg(t)
	et := &consign.EventType{Name: "order.fulfilled", CreatedAt: now, UpdatedAt: now,
		Schema: json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"integer"}}}`)}
	require.NoError(t, st.EventTypeInsert(ctx, et))
	svc := ingest.New(st, ingest.Config{})
	t.Cleanup(svc.Close)
	payload := []byte(`{"order_id":1001}`)
	var in ingest.EventInput
	n, verbatim := svc.ReadPayload(ctx, et.Name, payload, &in, nil)
	require.Equal(t, len(payload), n)
	require.True(t, verbatim)

	et.Schema = json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"string"}}}`)
	et.UpdatedAt = now.Add(time.Second)
	require.NoError(t, st.EventTypeUpdate(ctx, et))
	svc.ForgetType(et.Name)
	in.Type, in.Payload = et.Name, payload
	_, err := svc.Publish(ctx, org.ID, []ingest.EventInput{in})
	require.ErrorContains(t, err, "does not match the schema of order.fulfilled")
}
