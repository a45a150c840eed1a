-- Jobs, as in the SQLite driver's 00013_jobs.sql.

-- +goose Up
CREATE TABLE jobs (
    id          text COLLATE "C" PRIMARY KEY,
    org_id      text COLLATE "C" NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    endpoint_id text COLLATE "C" NOT NULL,
    kind        text NOT NULL,
    status      text NOT NULL,
    params      text NOT NULL,
    scanned     bigint NOT NULL,
    created     bigint NOT NULL,
    total       bigint,
    cursor      text COLLATE "C" NOT NULL,
    error       text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX jobs_org ON jobs (org_id, id);
CREATE INDEX jobs_running ON jobs (id) WHERE status = 'running';
CREATE UNIQUE INDEX jobs_replay_running ON jobs (endpoint_id) WHERE kind = 'replay' AND status = 'running';

-- +goose Down
DROP TABLE jobs;
