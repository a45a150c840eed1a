-- Ordered deliveries without walks.
--
-- deliveries_key holds only unfinished keyed deliveries (pending, delivering, paused):
-- the check that a delivery heads its key, and coalescing, read the few deliveries still
-- waiting in a key instead of its whole history.
--
-- A keyed delivery created behind an unfinished one of its key waits with next_attempt_at
-- at waiting (2^62 ms, see delivery.go), out of reach of the claims' due range, so that a
-- claim does not step over every delivery queued behind its key's head. When a keyed
-- delivery finishes (ordered, or keyed for coalescing only: an endpoint may have changed
-- from one to the other with deliveries unfinished), the trigger makes its key's first
-- unfinished delivery due if it was waiting.

-- +goose Up
DROP INDEX deliveries_key;
CREATE INDEX deliveries_key ON deliveries (endpoint_id, ordering_key, sequence)
    WHERE ordering_key <> '' AND status IN ('pending', 'delivering', 'paused');

-- +goose StatementBegin
CREATE TRIGGER deliveries_next_of_key AFTER UPDATE OF status ON deliveries
WHEN OLD.ordering_key <> '' AND OLD.status IN ('pending', 'delivering', 'paused')
    AND NEW.status NOT IN ('pending', 'delivering', 'paused')
BEGIN
    UPDATE deliveries SET next_attempt_at = NEW.updated_at
    WHERE rowid = (SELECT h.rowid FROM deliveries h
        WHERE h.endpoint_id = NEW.endpoint_id AND h.ordering_key = NEW.ordering_key AND h.ordering_key <> ''
        AND h.status IN ('pending', 'delivering', 'paused')
        ORDER BY h.sequence LIMIT 1)
    AND next_attempt_at = 4611686018427387904;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER deliveries_next_of_key;
UPDATE deliveries SET next_attempt_at = updated_at WHERE next_attempt_at = 4611686018427387904;
DROP INDEX deliveries_key;
CREATE INDEX deliveries_key ON deliveries (endpoint_id, ordering_key, sequence) WHERE ordering_key <> '';
