-- orgs.endpoints_version changes whenever any endpoint of the org is created, changed
-- (its secrets included: they raise the endpoint's version) or deleted. Fan-out keeps
-- each org's active endpoints in memory and reads this one value per commit to know
-- whether they are still current. Health changes (health, failing_since) do not count:
-- fan-out does not use them, and the recorder writes them often.

-- +goose Up
ALTER TABLE orgs ADD COLUMN endpoints_version INTEGER NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE TRIGGER endpoints_inserted AFTER INSERT ON endpoints
BEGIN
    UPDATE orgs SET endpoints_version = endpoints_version + 1 WHERE id = NEW.org_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER endpoints_changed AFTER UPDATE OF org_id, url, config, token_sealed, active, version ON endpoints
BEGIN
    UPDATE orgs SET endpoints_version = endpoints_version + 1 WHERE id IN (OLD.org_id, NEW.org_id);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER endpoints_deleted AFTER DELETE ON endpoints
BEGIN
    UPDATE orgs SET endpoints_version = endpoints_version + 1 WHERE id = OLD.org_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER endpoints_deleted;
DROP TRIGGER endpoints_changed;
DROP TRIGGER endpoints_inserted;
ALTER TABLE orgs DROP COLUMN endpoints_version;
