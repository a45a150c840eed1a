-- The business-key index as one B-tree: event_keys keeps its primary key (org_id, key,
-- event_id) and loses the index event_keys_event and the foreign key to events, which
-- made each key row three B-tree operations. An event's keys are recorded in its own
-- row (events.keys, a JSON array of strings; NULL when it has none): the store fills
-- the index from the rows it writes (event.go, indexKeys) and the trigger
-- event_keys_delete removes an event's key rows by primary key when the event goes
-- (retention, an org's deletion, by its rows or by the cascade from orgs).

-- +goose Up
ALTER TABLE events ADD COLUMN keys TEXT;
UPDATE events SET keys = (SELECT json_group_array(k.key) FROM event_keys k WHERE k.event_id = events.id)
    WHERE id IN (SELECT event_id FROM event_keys);
CREATE TABLE event_keys_new (
    org_id   TEXT NOT NULL,
    key      TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (org_id, key, event_id)
) WITHOUT ROWID;
INSERT INTO event_keys_new (org_id, key, event_id) SELECT org_id, key, event_id FROM event_keys;
DROP TABLE event_keys;
ALTER TABLE event_keys_new RENAME TO event_keys;
-- +goose StatementBegin
CREATE TRIGGER event_keys_delete AFTER DELETE ON events WHEN OLD.keys IS NOT NULL BEGIN
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key IN (SELECT value FROM json_each(OLD.keys)) AND event_id = OLD.id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER event_keys_delete;
CREATE TABLE event_keys_old (
    org_id   TEXT NOT NULL,
    key      TEXT NOT NULL,
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, key, event_id)
) WITHOUT ROWID;
INSERT INTO event_keys_old (org_id, key, event_id) SELECT org_id, key, event_id FROM event_keys;
DROP TABLE event_keys;
ALTER TABLE event_keys_old RENAME TO event_keys;
CREATE INDEX event_keys_event ON event_keys (event_id);
ALTER TABLE events DROP COLUMN keys;
