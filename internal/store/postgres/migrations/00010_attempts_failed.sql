-- The failure policy counts an endpoint's failed attempts within its window after every
-- batch of outcomes with failures: this index holds the failed attempts only, so a count
-- reads those (at most max_failures + 1 of them), not every attempt of the window, and
-- successful attempts cost nothing more to write.

-- +goose Up
CREATE INDEX attempts_failed ON attempts (endpoint_id, started_at) WHERE NOT ok;

-- +goose Down
DROP INDEX attempts_failed;
