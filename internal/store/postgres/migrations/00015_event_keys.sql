-- Business keys, as in the SQLite driver's 00015_event_keys.sql.

-- +goose Up
ALTER TABLE event_types ADD COLUMN keys jsonb;

CREATE TABLE event_keys (
    org_id   text COLLATE "C" NOT NULL,
    key      text COLLATE "C" NOT NULL,
    event_id text COLLATE "C" NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, key, event_id)
);
CREATE INDEX event_keys_event ON event_keys (event_id);

-- +goose Down
DROP TABLE event_keys;
ALTER TABLE event_types DROP COLUMN keys;
