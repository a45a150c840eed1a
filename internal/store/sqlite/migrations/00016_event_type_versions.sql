-- An event type's payload versions (consign.EventTypeVersion: version, schema, downgrade,
-- created_at), oldest first, as one JSON array; NULL when the type has none. The catalog
-- is small and read whole, and no query looks into a version.

-- +goose Up
ALTER TABLE event_types ADD COLUMN versions TEXT;

-- +goose Down
ALTER TABLE event_types DROP COLUMN versions;
