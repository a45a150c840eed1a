-- The events an endpoint's filter turned away, counted by the minute (minute: the unix
-- time in ms of its start), for the filtered figure of the endpoint's stats. Fan-out
-- adds to it in the transaction that writes the events; retention deletes old minutes
-- and EndpointDelete an endpoint's.

-- +goose Up
CREATE TABLE endpoint_filtered (
    endpoint_id TEXT NOT NULL,
    minute INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, minute)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE endpoint_filtered;
