-- A delivery keeps the reference its endpoint returned for it, as in the SQLite driver's
-- 00003_response_reference.sql (the pointer itself lives in endpoints.config).

-- +goose Up
ALTER TABLE deliveries ADD COLUMN response_reference text;

-- +goose Down
ALTER TABLE deliveries DROP COLUMN response_reference;
