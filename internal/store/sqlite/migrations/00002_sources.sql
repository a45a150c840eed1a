-- Inbound sources and their receipts. A source's settings are one JSON document
-- (config); its credentials are one sealed document (sealed), and its ingest token is
-- kept sealed (to show the URL again) and hashed (to find the source by it). The poll's
-- schedule and lease are columns, because the poller queries them.

-- +goose Up
CREATE TABLE sources (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    topic            TEXT NOT NULL,
    config           TEXT NOT NULL,
    token_hash       BLOB NOT NULL UNIQUE,
    token_sealed     BLOB NOT NULL,
    sealed           BLOB,
    version          INTEGER NOT NULL,
    poll_next_at     INTEGER,
    poll_lease_until INTEGER,
    poll_last_at     INTEGER,
    poll_last_error  TEXT NOT NULL,
    poll_last_new    INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX sources_org ON sources (org_id, id);
CREATE INDEX sources_poll ON sources (poll_next_at) WHERE poll_next_at IS NOT NULL;

-- status: pending (accepted, becoming an event), processed (event_id set), duplicate,
-- rejected (reason). Of one source's receipts with one dedupe key, at most one is
-- pending or processed: that is the dedupe rule, enforced by receipts_dedupe.
CREATE TABLE receipts (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    source_id   TEXT NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    via         TEXT NOT NULL,
    status      TEXT NOT NULL,
    topic       TEXT NOT NULL,
    verified    INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    dedupe_key  TEXT,
    duplicate   INTEGER NOT NULL,
    event_id    TEXT,
    headers     TEXT NOT NULL,
    body        BLOB NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX receipts_source ON receipts (source_id, id);
CREATE UNIQUE INDEX receipts_dedupe ON receipts (source_id, dedupe_key)
    WHERE status IN ('pending', 'processed') AND dedupe_key IS NOT NULL;
CREATE INDEX receipts_pending ON receipts (id) WHERE status = 'pending';

-- +goose Down
DROP TABLE receipts;
DROP TABLE sources;
