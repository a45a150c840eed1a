-- A delivery keeps the reference its endpoint returned for it (Onport's
-- vendorReceivedReference): the value the endpoint's response_reference_pointer (an
-- RFC 6901 pointer, kept in endpoints.config) found in the JSON reply of the successful
-- attempt. NULL when the endpoint sets no pointer or the reply had no value there.

-- +goose Up
ALTER TABLE deliveries ADD COLUMN response_reference TEXT;

-- +goose Down
ALTER TABLE deliveries DROP COLUMN response_reference;
