-- endpoints.reactivated_at is when an endpoint was last activated again after being
-- inactive: its failure policy's max_failures counts only failed attempts made since, so
-- failures from before an outage never count again, on any node and after a restart.

-- +goose Up
ALTER TABLE endpoints ADD COLUMN reactivated_at timestamptz;

-- +goose Down
ALTER TABLE endpoints DROP COLUMN reactivated_at;
