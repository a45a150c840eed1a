-- Business keys: the values at the pointers an event type names (event_types.keys, a JSON
-- array; NULL on a built-in type until the catalog's own keys are filled in at start),
-- written with their event in the transaction that writes it, so ?key= finds every
-- acknowledged event and no other. A key row goes with its event (retention, org
-- deletion) through event_keys_event.

-- +goose Up
ALTER TABLE event_types ADD COLUMN keys TEXT;

CREATE TABLE event_keys (
    org_id   TEXT NOT NULL,
    key      TEXT NOT NULL,
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, key, event_id)
) WITHOUT ROWID;
CREATE INDEX event_keys_event ON event_keys (event_id);

-- +goose Down
DROP TABLE event_keys;
ALTER TABLE event_types DROP COLUMN keys;
