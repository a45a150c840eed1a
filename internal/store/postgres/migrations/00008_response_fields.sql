-- A delivery keeps the values its endpoint's response_fields found in the successful
-- reply, as in the SQLite driver's 00008_response_fields.sql.

-- +goose Up
ALTER TABLE deliveries ADD COLUMN response_fields jsonb;

-- +goose Down
ALTER TABLE deliveries DROP COLUMN response_fields;
