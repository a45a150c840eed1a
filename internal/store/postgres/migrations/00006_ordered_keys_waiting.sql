-- Ordered deliveries without walks (as the embedded store's migration 6).
--
-- A delivery of an ordered key created behind an unfinished one of its key waits with
-- next_attempt_at at 9999-12-31 (waitingAt in delivery.go), out of reach of the claims'
-- due range, so that a claim does not step over every delivery queued behind its key's
-- head. When a keyed delivery finishes, the trigger makes its key's first unfinished
-- delivery due if it was waiting.
--
-- Two transactions must not miss each other: one adding a delivery behind an unfinished
-- head (which it sees unfinished), one finishing that head (which must see the new
-- delivery to make it due). The writer of a new ordered delivery holds its key's row in
-- ordering_keys until it commits (taking the next sequence number); the trigger takes the
-- same row first, so it runs either after the writer committed (and sees its delivery) or
-- before the writer looks (which then sees the head finished and makes its delivery due).

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION deliveries_next_of_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM ordering_keys WHERE endpoint_id = NEW.endpoint_id AND ordering_key = NEW.ordering_key FOR UPDATE;
    UPDATE deliveries SET next_attempt_at = NEW.updated_at
    WHERE id = (SELECT h.id FROM deliveries h
        WHERE h.endpoint_id = NEW.endpoint_id AND h.ordering_key = NEW.ordering_key AND h.ordering_key <> ''
        AND h.status IN ('pending', 'delivering', 'paused')
        ORDER BY h.sequence LIMIT 1)
    AND next_attempt_at = '9999-12-31 00:00:00+00';
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER deliveries_next_of_key AFTER UPDATE OF status ON deliveries
FOR EACH ROW WHEN (OLD.ordering_key <> '' AND OLD.status IN ('pending', 'delivering', 'paused')
    AND NEW.status NOT IN ('pending', 'delivering', 'paused'))
EXECUTE FUNCTION deliveries_next_of_key();

-- +goose Down
DROP TRIGGER deliveries_next_of_key ON deliveries;
DROP FUNCTION deliveries_next_of_key();
UPDATE deliveries SET next_attempt_at = updated_at WHERE next_attempt_at = '9999-12-31 00:00:00+00';
