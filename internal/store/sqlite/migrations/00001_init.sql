-- Times are unix milliseconds (INTEGER). Endpoint settings that no query filters on are
-- one JSON document (config), so adding a setting needs no migration.

-- +goose Up
CREATE TABLE orgs (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    org_id     TEXT REFERENCES orgs (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX api_keys_org ON api_keys (org_id, id);

CREATE TABLE event_types (
    name          TEXT PRIMARY KEY,
    description   TEXT NOT NULL,
    schema        TEXT,
    available_for TEXT NOT NULL,
    builtin       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE endpoints (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    config          TEXT NOT NULL,
    token_sealed    BLOB,
    active          INTEGER NOT NULL,
    health          TEXT NOT NULL,
    disabled_at     INTEGER,
    disabled_reason TEXT NOT NULL,
    failing_since   INTEGER,
    version         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (org_id, url)
);
CREATE INDEX endpoints_org ON endpoints (org_id, id);

CREATE TABLE secrets (
    id          TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    sealed      BLOB NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE INDEX secrets_endpoint ON secrets (endpoint_id, id);

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    type            TEXT NOT NULL,
    payload         BLOB NOT NULL,
    idempotency_key TEXT,
    ordering_key    TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_org ON events (org_id, id);

-- ordering_key is set when the endpoint orders or coalesces by key; sequence (1, 2, 3… per
-- endpoint and key) only when it orders. Only the unfinished delivery with the lowest
-- sequence of a key may be claimed.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id     TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    ordering_key    TEXT NOT NULL,
    sequence        INTEGER NOT NULL,
    status          TEXT NOT NULL,
    attempts_count  INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    deadline_at     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (endpoint_id, next_attempt_at) WHERE status IN ('pending', 'delivering');
CREATE INDEX deliveries_key ON deliveries (endpoint_id, ordering_key, sequence) WHERE ordering_key <> '';
CREATE INDEX deliveries_org ON deliveries (org_id, id);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status, id);
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE ordering_keys (
    endpoint_id   TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    ordering_key  TEXT NOT NULL,
    last_sequence INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, ordering_key)
) WITHOUT ROWID;

CREATE TABLE attempts (
    delivery_id        TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    n                  INTEGER NOT NULL,
    endpoint_id        TEXT NOT NULL,
    ok                 INTEGER NOT NULL,
    started_at         INTEGER NOT NULL,
    duration_ms        INTEGER NOT NULL,
    request            TEXT NOT NULL,
    response_status    INTEGER,
    response_headers   TEXT,
    response_body      BLOB,
    response_truncated INTEGER NOT NULL,
    error              TEXT,
    PRIMARY KEY (delivery_id, n)
) WITHOUT ROWID;
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, started_at);

-- +goose Down
DROP TABLE attempts;
DROP TABLE ordering_keys;
DROP TABLE deliveries;
DROP TABLE events;
DROP TABLE secrets;
DROP TABLE endpoints;
DROP TABLE event_types;
DROP TABLE api_keys;
DROP TABLE orgs;
