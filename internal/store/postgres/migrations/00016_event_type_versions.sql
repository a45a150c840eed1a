-- An event type's payload versions, oldest first, as one JSON array (NULL: none), as in
-- the SQLite driver's 00016_event_type_versions.sql. text, not jsonb: the downgrade code
-- and schemas come back byte for byte.

-- +goose Up
ALTER TABLE event_types ADD COLUMN versions text COLLATE "C";

-- +goose Down
ALTER TABLE event_types DROP COLUMN versions;
