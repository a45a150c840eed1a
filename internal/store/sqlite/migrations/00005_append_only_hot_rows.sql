-- Fewer pages written per delivery.
--
-- attempts becomes a rowid table: its rows (the request and response record, about half
-- a kilobyte) are appended in the order outcomes arrive, and only the small (delivery_id,
-- n) key goes into the middle of an index. Kept WITHOUT ROWID, every outcome of a fan-out
-- moved large rows around the middle of the table's tree.
--
-- deliveries_endpoint loses status: a delivery's entry no longer moves on every change of
-- state. The states that are looked up per endpoint and are rare (paused, to resume them;
-- failed, to list and recover them) have a partial index, which a query uses when it
-- repeats the index's condition (status IN ('paused', 'failed')); pending and delivering
-- rows are in deliveries_due.

-- +goose Up
CREATE TABLE attempts_rowid (
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
);
INSERT INTO attempts_rowid SELECT delivery_id, n, endpoint_id, ok, started_at, duration_ms, request, response_status,
    response_headers, response_body, response_truncated, error FROM attempts ORDER BY started_at;
DROP TABLE attempts;
ALTER TABLE attempts_rowid RENAME TO attempts;
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, started_at);

DROP INDEX deliveries_endpoint;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, id);
CREATE INDEX deliveries_unsent ON deliveries (endpoint_id, status, id) WHERE status IN ('paused', 'failed');

-- +goose Down
DROP INDEX deliveries_unsent;
DROP INDEX deliveries_endpoint;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status, id);

CREATE TABLE attempts_norowid (
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
INSERT INTO attempts_norowid SELECT delivery_id, n, endpoint_id, ok, started_at, duration_ms, request, response_status,
    response_headers, response_body, response_truncated, error FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_norowid RENAME TO attempts;
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, started_at);
