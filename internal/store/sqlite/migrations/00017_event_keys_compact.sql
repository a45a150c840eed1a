-- The business-key index as one B-tree: event_keys keeps its primary key (org_id, key,
-- event_id) and loses the index event_keys_event and the foreign key to events, which
-- made each key row three B-tree operations. An event's keys are recorded in its own
-- row (events.keys, a JSON array of strings; NULL when it has none): the store fills
-- the index with each event it writes (event.go: an event's first 16 keys) and
-- the trigger event_keys_delete removes an event's key rows by primary key when the
-- event goes (retention, an org's deletion, by its rows or by the cascade from orgs),
-- one statement for each of the 16 places in events.keys (a key IN (SELECT … json_each)
-- would build a temporary table for every event deleted).

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
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[0]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[1]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[2]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[3]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[4]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[5]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[6]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[7]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[8]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[9]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[10]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[11]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[12]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[13]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[14]') AND event_id = OLD.id;
    DELETE FROM event_keys WHERE org_id = OLD.org_id AND key = json_extract(OLD.keys, '$[15]') AND event_id = OLD.id;
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
