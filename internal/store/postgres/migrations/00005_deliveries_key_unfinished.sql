-- deliveries_key holds only unfinished keyed deliveries (pending, delivering, paused): the
-- check that a delivery heads its key, and coalescing, read the few deliveries still open
-- in a key instead of its whole history.

-- +goose Up
DROP INDEX deliveries_key;
CREATE INDEX deliveries_key ON deliveries (endpoint_id, ordering_key, sequence)
    WHERE ordering_key <> '' AND status IN ('pending', 'delivering', 'paused');

-- +goose Down
DROP INDEX deliveries_key;
CREATE INDEX deliveries_key ON deliveries (endpoint_id, ordering_key, sequence) WHERE ordering_key <> '';
