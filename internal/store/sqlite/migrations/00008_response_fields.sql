-- A delivery keeps the values its endpoint's response_fields (name → RFC 6901 pointer,
-- kept in endpoints.config) found in the JSON reply of the successful attempt, as one
-- JSON object of strings (Onport keeps both the vendor's reference and its id). NULL
-- when the endpoint names no fields or the reply had none of them.

-- +goose Up
ALTER TABLE deliveries ADD COLUMN response_fields TEXT;

-- +goose Down
ALTER TABLE deliveries DROP COLUMN response_fields;
