-- The partner portal: an org's branding (JSON: name, logo_url, color) and one-time
-- portal links, stored by the SHA-256 of their token, never the token.

-- +goose Up
ALTER TABLE orgs ADD COLUMN branding TEXT;

CREATE TABLE portal_links (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    hash       BLOB NOT NULL UNIQUE,
    read_only  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX portal_links_org ON portal_links (org_id);
CREATE INDEX portal_links_expires ON portal_links (expires_at);

-- +goose Down
DROP TABLE portal_links;
ALTER TABLE orgs DROP COLUMN branding;
