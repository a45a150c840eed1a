-- The partner portal, as in the SQLite driver's 00014_partner_portal.sql.

-- +goose Up
ALTER TABLE orgs ADD COLUMN branding text;

CREATE TABLE portal_links (
    id         text COLLATE "C" PRIMARY KEY,
    org_id     text COLLATE "C" NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    hash       bytea NOT NULL UNIQUE,
    read_only  boolean NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL
);
CREATE INDEX portal_links_org ON portal_links (org_id);
CREATE INDEX portal_links_expires ON portal_links (expires_at);

-- +goose Down
DROP TABLE portal_links;
ALTER TABLE orgs DROP COLUMN branding;
