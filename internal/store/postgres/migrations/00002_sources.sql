-- Inbound sources and their receipts, as in the SQLite driver's 00002_sources.sql.

-- +goose Up
CREATE TABLE sources (
    id               text COLLATE "C" PRIMARY KEY,
    org_id           text COLLATE "C" NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name             text COLLATE "C" NOT NULL,
    topic            text COLLATE "C" NOT NULL,
    config           jsonb NOT NULL,
    token_hash       bytea NOT NULL UNIQUE,
    token_sealed     bytea NOT NULL,
    sealed           bytea,
    version          bigint NOT NULL,
    poll_next_at     timestamptz,
    poll_lease_until timestamptz,
    poll_last_at     timestamptz,
    poll_last_error  text COLLATE "C" NOT NULL,
    poll_last_new    integer NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX sources_org ON sources (org_id, id);
CREATE INDEX sources_poll ON sources (poll_next_at) WHERE poll_next_at IS NOT NULL;

-- status: pending, processed (event_id set), duplicate, rejected (reason). Of one
-- source's receipts with one dedupe key, at most one is pending or processed.
CREATE TABLE receipts (
    id          text COLLATE "C" PRIMARY KEY,
    org_id      text COLLATE "C" NOT NULL,
    source_id   text COLLATE "C" NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    via         text COLLATE "C" NOT NULL,
    status      text COLLATE "C" NOT NULL,
    topic       text COLLATE "C" NOT NULL,
    verified    boolean NOT NULL,
    reason      text COLLATE "C" NOT NULL,
    dedupe_key  text COLLATE "C",
    duplicate   boolean NOT NULL,
    event_id    text COLLATE "C",
    headers     jsonb NOT NULL,
    body        bytea NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX receipts_source ON receipts (source_id, id);
CREATE UNIQUE INDEX receipts_dedupe ON receipts (source_id, dedupe_key)
    WHERE status IN ('pending', 'processed') AND dedupe_key IS NOT NULL;
CREATE INDEX receipts_pending ON receipts (id) WHERE status = 'pending';

-- +goose Down
DROP TABLE receipts;
DROP TABLE sources;
