package app_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
)

// TestPostgresTwoNodes runs two nodes on one PostgreSQL database: events published on
// either node reach the endpoint exactly once each, and either node sees every delivery.
func TestPostgresTwoNodes(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	shared := func(c *app.Config) { c.Database, c.EncryptionKey = dsn, key }
	n1 := start(t, shared)
	n2 := start(t, shared)

	byID := map[string]int{}
	rc := newReceiver(t, nil)
	o := n1.newOrg("acme")
	n1.createEndpoint(o, map[string]any{"url": rc.URL + "/hooks", "topics": []string{"order.*"}})

	const events = 40
	var ids []string
	for i := range events {
		node := n1
		if i%2 == 1 {
			node = n2
		}
		ids = append(ids, node.publish(o, "order.created", map[string]any{"n": i}))
	}
	deadline := time.Now().Add(waitFor)
	for {
		got := rc.all()
		if len(got) >= events || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive about now
	for _, r := range rc.all() {
		byID[r.Header.Get("webhook-id")]++
	}
	for _, id := range ids {
		require.Equal(t, 1, byID[id], "event %s delivered %d times", id, byID[id])
	}
	require.Len(t, byID, events)
	for _, id := range []string{ids[0], ids[1]} {
		d := n2.onlyDelivery(o, id)
		n1.waitStatus(o, d.ID, consign.StatusSucceeded)
	}
	require.Len(t, n2.deliveries(o, "limit=100"), events)
}
