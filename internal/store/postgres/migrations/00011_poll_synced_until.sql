-- sources.poll_synced_until is the end of the last successful poll's window: the next
-- poll asks the provider for what came after it ({since} in the poll URL).

-- +goose Up
ALTER TABLE sources ADD COLUMN poll_synced_until timestamptz;

-- +goose Down
ALTER TABLE sources DROP COLUMN poll_synced_until;
