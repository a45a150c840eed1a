-- orgs.endpoints_version changes whenever any endpoint of the org is created, changed
-- (its secrets included: they raise the endpoint's version) or deleted, as in the
-- embedded store's migration 7. Fan-out on every node keeps each org's active endpoints
-- in memory and reads this one value per commit to know whether they are still current.
-- Health changes (health, failing_since) do not count: fan-out does not use them, and the
-- recorder writes them often.

-- +goose Up
ALTER TABLE orgs ADD COLUMN endpoints_version bigint NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE FUNCTION endpoints_org_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE orgs SET endpoints_version = endpoints_version + 1 WHERE id = OLD.org_id;
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.org_id <> OLD.org_id) THEN
        UPDATE orgs SET endpoints_version = endpoints_version + 1 WHERE id = NEW.org_id;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER endpoints_org_version AFTER INSERT OR DELETE OR UPDATE OF org_id, url, config, token_sealed, active, version
ON endpoints FOR EACH ROW EXECUTE FUNCTION endpoints_org_version();

-- +goose Down
DROP TRIGGER endpoints_org_version ON endpoints;
DROP FUNCTION endpoints_org_version();
ALTER TABLE orgs DROP COLUMN endpoints_version;
