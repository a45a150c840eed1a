package postgres

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consign-dev/consign/internal/store"
)

var _ store.Cluster = (*DB)(nil)

// notifyChannel carries "<node> <endpoint id>,<endpoint id>…" between nodes.
const notifyChannel = "consign_due"

// notifyIDs is how many endpoint IDs go in one notification: PostgreSQL caps a payload at
// 8,000 bytes, and an ID is under 40.
const notifyIDs = 150

func millis(d time.Duration) int64 { return d.Milliseconds() }

// Heartbeat renews the node and its endpoints and takes its share of the unowned ones, in
// one transaction.
func (db *DB) Heartbeat(ctx context.Context, p store.HeartbeatParams) (*store.HeartbeatResult, error) {
	res := &store.HeartbeatResult{}
	ttl := millis(p.TTL)
	err := db.retryTx(ctx, func(tx pgx.Tx) error {
		*res = store.HeartbeatResult{}
		if _, err := tx.Exec(ctx, `INSERT INTO nodes (id, started_at, alive_until) VALUES ($1, now(), now() + $2 * interval '1 millisecond')
			ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until`, p.Node, ttl); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM nodes WHERE alive_until < now() - interval '1 hour'`); err != nil {
			return err
		}
		// Owners whose lease ended are gone: their leased deliveries are due now, for
		// whichever node takes the endpoint next.
		if _, err := tx.Exec(ctx, `WITH gone AS (DELETE FROM endpoint_owners WHERE lease_until < now() RETURNING endpoint_id)
			UPDATE deliveries SET next_attempt_at = $1 WHERE endpoint_id IN (SELECT endpoint_id FROM gone)
			AND status = 'delivering' AND next_attempt_at > $1`, ts(p.Now)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE endpoint_owners SET lease_until = now() + $2 * interval '1 millisecond'
			WHERE node_id = $1 RETURNING endpoint_id`, p.Node, ttl)
		if res.Owned, err = collect(rows, err, scanString); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM nodes WHERE alive_until > now()`).Scan(&res.Nodes); err != nil {
			return err
		}
		res.Nodes = max(res.Nodes, 1)
		res.Share = (len(p.Want) + res.Nodes - 1) / res.Nodes
		owned := map[string]bool{}
		mine := 0
		for _, id := range res.Owned {
			owned[id] = true
		}
		var candidates []string
		for _, id := range p.Want {
			if owned[id] {
				mine++
			} else {
				candidates = append(candidates, id)
			}
		}
		// Take candidates a few at a time: some are owned by other nodes and are skipped.
		for len(candidates) > 0 && mine < res.Share {
			k := min(res.Share-mine, len(candidates))
			rows, err := tx.Query(ctx, `INSERT INTO endpoint_owners (endpoint_id, node_id, lease_until)
				SELECT id, $1, now() + $2 * interval '1 millisecond' FROM unnest($3::text[]) AS id
				ON CONFLICT (endpoint_id) DO NOTHING RETURNING endpoint_id`, p.Node, ttl, candidates[:k])
			taken, err := collect(rows, err, scanString)
			if err != nil {
				return err
			}
			candidates = candidates[k:]
			mine += len(taken)
			res.Taken = append(res.Taken, taken...)
		}
		res.Owned = append(res.Owned, res.Taken...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func scanString(row scanner) (string, error) {
	var s string
	err := row.Scan(&s)
	return s, err
}

// EndpointsDisown deletes the node's ownership rows of the endpoints.
func (db *DB) EndpointsDisown(ctx context.Context, node string, endpointIDs []string) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM endpoint_owners WHERE node_id = $1 AND endpoint_id = ANY($2)`, node, endpointIDs)
	return translate(err)
}

// NodeLeave ends the node's ownerships as if they had lapsed, and forgets the node.
func (db *DB) NodeLeave(ctx context.Context, node string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE endpoint_owners SET lease_until = now() - interval '1 millisecond' WHERE node_id = $1`, node); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM nodes WHERE id = $1`, node)
		return err
	})
}

// LeaseTake takes the named lease when it is free, ended or already holder's.
func (db *DB) LeaseTake(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	rows, err := db.pool.Query(ctx, `INSERT INTO cluster_leases (name, holder, lease_until) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
		WHERE cluster_leases.holder = excluded.holder OR cluster_leases.lease_until < now() RETURNING holder`, name, holder, millis(ttl))
	got, err := collect(rows, err, scanString)
	if err != nil {
		return false, translate(err)
	}
	return len(got) == 1, nil
}

// Notify sends the endpoint IDs on the notification channel, in as many notifications as
// the payload limit needs.
func (db *DB) Notify(ctx context.Context, node string, endpointIDs []string) error {
	b := &pgx.Batch{}
	for chunk := range slices.Chunk(endpointIDs, notifyIDs) {
		b.Queue(`SELECT pg_notify($1, $2)`, notifyChannel, node+" "+strings.Join(chunk, ","))
	}
	if b.Len() == 0 {
		return nil
	}
	return translate(db.pool.SendBatch(ctx, b).Close())
}

// Listen holds a connection of its own (outside the pool) that LISTENs on the
// notification channel, and ignores the node's own notifications.
func (db *DB) Listen(ctx context.Context, node string, fn func(endpointIDs []string)) error {
	cfg := db.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	fn(nil)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		from, ids, ok := strings.Cut(n.Payload, " ")
		if !ok || from == node || ids == "" {
			continue
		}
		fn(strings.Split(ids, ","))
	}
}
