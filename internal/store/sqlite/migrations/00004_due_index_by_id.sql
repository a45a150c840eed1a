-- Claims take an endpoint's due deliveries in (next_attempt_at, id) order; with id in the
-- index that order is read off it, instead of sorting every due row of an endpoint with
-- a large backlog.

-- +goose Up
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (endpoint_id, next_attempt_at, id) WHERE status IN ('pending', 'delivering');

-- +goose Down
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (endpoint_id, next_attempt_at) WHERE status IN ('pending', 'delivering');
