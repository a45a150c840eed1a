-- The schema of the SQLite driver's 00001_init.sql, in PostgreSQL's types: times are
-- timestamptz (written in UTC at millisecond precision), binary data bytea, flags boolean,
-- documents Consign reads back whole jsonb. Text is COLLATE "C" so IDs and names sort
-- byte by byte, as in SQLite (pagination cursors compare IDs). Event payloads stay bytea: they are returned
-- byte for byte as accepted.

-- +goose Up
CREATE TABLE orgs (
    id         text COLLATE "C" PRIMARY KEY,
    name       text COLLATE "C" NOT NULL,
    role       text COLLATE "C" NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id         text COLLATE "C" PRIMARY KEY,
    org_id     text COLLATE "C" REFERENCES orgs (id) ON DELETE CASCADE,
    name       text COLLATE "C" NOT NULL,
    hash       bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);
CREATE INDEX api_keys_org ON api_keys (org_id, id);

-- schema stays text: a user's document is shown back as it was written.
CREATE TABLE event_types (
    name          text COLLATE "C" PRIMARY KEY,
    description   text COLLATE "C" NOT NULL,
    schema        text COLLATE "C",
    available_for jsonb NOT NULL,
    builtin       boolean NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE endpoints (
    id              text COLLATE "C" PRIMARY KEY,
    org_id          text COLLATE "C" NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url             text COLLATE "C" NOT NULL,
    config          jsonb NOT NULL,
    token_sealed    bytea,
    active          boolean NOT NULL,
    health          text COLLATE "C" NOT NULL,
    disabled_at     timestamptz,
    disabled_reason text COLLATE "C" NOT NULL,
    failing_since   timestamptz,
    version         bigint NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (org_id, url)
);
CREATE INDEX endpoints_org ON endpoints (org_id, id);

CREATE TABLE secrets (
    id          text COLLATE "C" PRIMARY KEY,
    endpoint_id text COLLATE "C" NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    sealed      bytea NOT NULL,
    public_key  text COLLATE "C" NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz
);
CREATE INDEX secrets_endpoint ON secrets (endpoint_id, id);

CREATE TABLE events (
    id              text COLLATE "C" PRIMARY KEY,
    org_id          text COLLATE "C" NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    type            text COLLATE "C" NOT NULL,
    payload         bytea NOT NULL,
    idempotency_key text COLLATE "C",
    ordering_key    text COLLATE "C" NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_org ON events (org_id, id);

-- ordering_key is set when the endpoint orders or coalesces by key; sequence (1, 2, 3… per
-- endpoint and key) only when it orders. Only the unfinished delivery with the lowest
-- sequence of a key may be claimed.
CREATE TABLE deliveries (
    id              text COLLATE "C" PRIMARY KEY,
    org_id          text COLLATE "C" NOT NULL,
    event_id        text COLLATE "C" NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id     text COLLATE "C" NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    event_type      text COLLATE "C" NOT NULL,
    ordering_key    text COLLATE "C" NOT NULL,
    sequence        bigint NOT NULL,
    status          text COLLATE "C" NOT NULL,
    attempts_count  integer NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    deadline_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (endpoint_id, next_attempt_at, id) WHERE status IN ('pending', 'delivering');
CREATE INDEX deliveries_key ON deliveries (endpoint_id, ordering_key, sequence) WHERE ordering_key <> '';
CREATE INDEX deliveries_org ON deliveries (org_id, id);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status, id);
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE ordering_keys (
    endpoint_id   text COLLATE "C" NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    ordering_key  text COLLATE "C" NOT NULL,
    last_sequence bigint NOT NULL,
    PRIMARY KEY (endpoint_id, ordering_key)
);

CREATE TABLE attempts (
    delivery_id        text COLLATE "C" NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    n                  integer NOT NULL,
    endpoint_id        text COLLATE "C" NOT NULL,
    ok                 boolean NOT NULL,
    started_at         timestamptz NOT NULL,
    duration_ms        bigint NOT NULL,
    request            jsonb NOT NULL,
    response_status    integer,
    response_headers   jsonb,
    response_body      bytea,
    response_truncated boolean NOT NULL,
    error              text COLLATE "C",
    PRIMARY KEY (delivery_id, n)
);
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
