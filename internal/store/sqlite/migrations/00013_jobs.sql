-- Jobs: replays (a new partner's backfill) and recover runs, with a replay's progress and
-- cursor (the ID of the last event it scanned). A replay writes each step's deliveries
-- and its cursor in one transaction (store.JobStore). endpoint_id has no foreign key: a
-- job outlives its endpoint as a record (a replay whose endpoint is deleted fails).
-- jobs_replay_running lets one replay of an endpoint run at a time.

-- +goose Up
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    params      TEXT NOT NULL,
    scanned     INTEGER NOT NULL,
    created     INTEGER NOT NULL,
    total       INTEGER,
    cursor      TEXT NOT NULL,
    error       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX jobs_org ON jobs (org_id, id);
CREATE INDEX jobs_running ON jobs (id) WHERE status = 'running';
CREATE UNIQUE INDEX jobs_replay_running ON jobs (endpoint_id) WHERE kind = 'replay' AND status = 'running';

-- +goose Down
DROP TABLE jobs;
