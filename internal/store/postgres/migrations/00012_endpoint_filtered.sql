-- The events an endpoint's filter turned away, counted by the minute, as in the SQLite
-- driver's 00012_endpoint_filtered.sql.

-- +goose Up
CREATE TABLE endpoint_filtered (
    endpoint_id text NOT NULL,
    minute timestamptz NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (endpoint_id, minute)
);

-- +goose Down
DROP TABLE endpoint_filtered;
