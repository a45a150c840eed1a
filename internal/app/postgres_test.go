package app_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/manage"
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

// TestPostgresNodesShareEndpoints: the endpoints with work spread over the nodes when a
// node joins (the first hands over its surplus once idle), and a node that stops hands its
// endpoints over at once, without waiting for its ownership to lapse.
func TestPostgresNodesShareEndpoints(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	shared := func(c *app.Config) {
		c.Database, c.EncryptionKey = dsn, key
		c.Dispatch.Resync, c.Dispatch.OwnerTTL = 200*time.Millisecond, time.Minute
	}
	n1 := start(t, shared)
	// Every attempt fails and is retried: each endpoint always has waiting work.
	rc := newReceiver(t, status(http.StatusServiceUnavailable))
	o := n1.newOrg("acme")
	const endpoints = 4
	for i := range endpoints {
		n1.createEndpoint(o, map[string]any{"url": fmt.Sprintf("%s/hooks/%d", rc.URL, i), "topics": []string{"order.*"},
			"retry": fastRetry("1h")})
	}
	n1.publish(o, "order.created", map[string]any{"n": 1})

	db, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	owned := func() map[string]int {
		rows, err := db.Query(t.Context(), `SELECT node_id, count(*) FROM endpoint_owners WHERE lease_until > now() GROUP BY node_id`)
		require.NoError(t, err)
		m := map[string]int{}
		var node string
		var n int
		_, err = pgx.ForEachRow(rows, []any{&node, &n}, func() error { m[node] = n; return nil })
		require.NoError(t, err)
		return m
	}
	node1 := n1.app.Dispatcher.Node()
	require.Eventually(t, func() bool { return owned()[node1] == endpoints }, waitFor, tick, "alone, node 1 owns every endpoint: %v", owned())

	n2 := start(t, shared)
	node2 := n2.app.Dispatcher.Node()
	require.Eventually(t, func() bool { o := owned(); return o[node1] == endpoints/2 && o[node2] == endpoints/2 }, waitFor, tick,
		"two nodes share the endpoints: %v", owned())
	require.Eventually(t, func() bool {
		metrics := n2.c.raw("GET", "/metrics", nil, "", nil)
		return strings.Contains(string(metrics.body), fmt.Sprintf("consign_cluster_endpoints_owned %d\n", endpoints/2))
	}, waitFor, tick, "node 2's metrics show what it owns")

	// Ownership lasts a minute here: node 2 takes node 1's endpoints this fast only because
	// node 1 handed them over as it stopped.
	n1.close()
	require.Eventually(t, func() bool { return owned()[node2] == endpoints }, waitFor, tick, "node 2 took over: %v", owned())
	before := len(rc.all())
	require.Eventually(t, func() bool { return len(rc.all()) > before+endpoints }, waitFor, tick, "node 2 sends")
}

// TestRevocation: a deleted key, and every key of a deleted org, is refused at once by the
// node that deleted it, and by the other nodes once manage.KeyCacheTTL has passed (the
// bound README and docs/multinode.md state), on the embedded store and on two PostgreSQL
// nodes.
func TestRevocation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		nodes func(t *testing.T) (here, there *env)
	}{
		{"sqlite", func(t *testing.T) (*env, *env) { n := start(t); return n, n }},
		{"postgres two nodes", func(t *testing.T) (*env, *env) {
			dsn := pgtest.DSN(t)
			key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
			shared := func(c *app.Config) { c.Database, c.EncryptionKey = dsn, key }
			return start(t, shared), start(t, shared)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			here, there := tc.nodes(t)
			o := here.newOrg("acme")
			second := here.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/keys", map[string]any{"name": "second"}, adminKey)
			works := func(n *env, key string) int {
				return n.c.raw("GET", "/v1/orgs/"+o.id+"/endpoints", nil, key, nil).status
			}
			for _, step := range []struct {
				what   string
				key    string
				revoke string
			}{
				{"a deleted key", second["key"].(string), "/v1/orgs/" + o.id + "/keys/" + second["id"].(string)},
				{"the key of a deleted org", o.key, "/v1/orgs/" + o.id},
			} {
				for _, n := range []*env{here, there} {
					require.Equal(t, http.StatusOK, works(n, step.key), "the key works on each node (which caches it)")
				}
				here.c.must(http.StatusNoContent, "DELETE", step.revoke, nil, adminKey)
				revoked := time.Now()
				require.Equal(t, http.StatusUnauthorized, works(here, step.key), "%s still works on the node that deleted it", step.what)
				time.Sleep(time.Until(revoked.Add(manage.KeyCacheTTL)))
				require.Equal(t, http.StatusUnauthorized, works(there, step.key), "%s still works on another node %s later", step.what, manage.KeyCacheTTL)
			}
		})
	}
}
