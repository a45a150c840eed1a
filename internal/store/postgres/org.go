package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// OrgInsert stores a new org.
func (db *DB) OrgInsert(ctx context.Context, o *consign.Org) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO orgs (id, name, role, branding, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		o.ID, o.Name, o.Role, brandingJSON(o.Branding), ts(o.CreatedAt), ts(o.UpdatedAt))
	return translate(err)
}

const orgColumns = `id, name, role, branding, created_at, updated_at`

func scanOrg(row scanner) (*consign.Org, error) {
	var o consign.Org
	var branding *string
	if err := row.Scan(&o.ID, &o.Name, &o.Role, &branding, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return nil, err
	}
	if branding != nil {
		o.Branding = new(consign.Branding)
		if err := json.Unmarshal([]byte(*branding), o.Branding); err != nil {
			return nil, fmt.Errorf("org %s: branding: %w", o.ID, err)
		}
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return &o, nil
}

// OrgGet returns one org.
func (db *DB) OrgGet(ctx context.Context, id string) (*consign.Org, error) {
	o, err := scanOrg(db.pool.QueryRow(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "org", id)
	}
	return o, nil
}

// OrgList returns orgs newest first.
func (db *DB) OrgList(ctx context.Context, p store.Page) ([]*consign.Org, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id < $1 ORDER BY id DESC LIMIT $2`, p.Below(), p.Size())
	return collect(rows, err, scanOrg)
}

// brandingJSON is an org's branding as stored: JSON, or NULL for none.
func brandingJSON(b *consign.Branding) *string {
	if b == nil {
		return nil
	}
	j, _ := json.Marshal(b) // three strings: cannot fail
	s := string(j)
	return &s
}

// OrgUpdate saves an org's name, role and branding.
func (db *DB) OrgUpdate(ctx context.Context, o *consign.Org) error {
	tag, err := db.pool.Exec(ctx, `UPDATE orgs SET name = $1, role = $2, branding = $3, updated_at = $4 WHERE id = $5`,
		o.Name, o.Role, brandingJSON(o.Branding), ts(o.UpdatedAt), o.ID)
	return translate(mustAffect(tag, err, "org", o.ID))
}

// OrgDelete removes an org; foreign keys cascade to everything it owns.
func (db *DB) OrgDelete(ctx context.Context, id string) error {
	return db.retryTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM orgs WHERE id = $1`, id)
		return mustAffect(tag, err, "org", id)
	})
}

// KeyInsert stores an API key's hash.
func (db *DB) KeyInsert(ctx context.Context, k *consign.APIKey, hash []byte) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO api_keys (id, org_id, name, hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		k.ID, nullString(k.OrgID), k.Name, hash, ts(k.CreatedAt))
	return translate(err)
}

func scanKey(row scanner) (*consign.APIKey, error) {
	var k consign.APIKey
	var org *string
	if err := row.Scan(&k.ID, &org, &k.Name, &k.CreatedAt); err != nil {
		return nil, err
	}
	if org != nil {
		k.OrgID = *org
	}
	k.CreatedAt = k.CreatedAt.UTC()
	return &k, nil
}

// KeyByHash finds the key with the given hash.
func (db *DB) KeyByHash(ctx context.Context, hash []byte) (*consign.APIKey, error) {
	k, err := scanKey(db.pool.QueryRow(ctx, `SELECT id, org_id, name, created_at FROM api_keys WHERE hash = $1`, hash))
	if err != nil {
		return nil, notFound(err, "key", "")
	}
	return k, nil
}

// KeyList lists an org's keys newest first.
func (db *DB) KeyList(ctx context.Context, orgID string, p store.Page) ([]*consign.APIKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, org_id, name, created_at FROM api_keys WHERE org_id = $1 AND id < $2
		ORDER BY id DESC LIMIT $3`, orgID, p.Below(), p.Size())
	return collect(rows, err, scanKey)
}

// KeyDelete removes an org's key.
func (db *DB) KeyDelete(ctx context.Context, orgID, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM api_keys WHERE org_id = $1 AND id = $2`, orgID, id)
	return translate(mustAffect(tag, err, "key", id))
}

// AdminKeyExists reports whether an admin key is stored.
func (db *DB) AdminKeyExists(ctx context.Context) (bool, error) {
	var ok bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE org_id IS NULL)`).Scan(&ok)
	return ok, translate(err)
}

// EventTypeEnsure inserts missing types.
func (db *DB) EventTypeEnsure(ctx context.Context, types []consign.EventType) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		for i := range types {
			if err := insertEventType(ctx, tx, &types[i], true); err != nil {
				return err
			}
		}
		return nil
	})
}

// EventTypeInsert stores a custom type.
func (db *DB) EventTypeInsert(ctx context.Context, t *consign.EventType) error {
	return db.tx(ctx, func(tx pgx.Tx) error { return insertEventType(ctx, tx, t, false) })
}

func insertEventType(ctx context.Context, tx pgx.Tx, t *consign.EventType, ignoreExisting bool) error {
	q := `INSERT INTO event_types (name, description, schema, available_for, builtin, created_at, updated_at, keys, versions)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	if ignoreExisting {
		q += ` ON CONFLICT (name) DO UPDATE SET keys = excluded.keys WHERE event_types.keys IS NULL`
	}
	af, _ := json.Marshal(t.AvailableFor)
	_, err := tx.Exec(ctx, q, t.Name, t.Description, nullRaw(t.Schema), json.RawMessage(af), t.Builtin, ts(t.CreatedAt), ts(t.UpdatedAt),
		keysJSON(t.Keys), nullRaw(store.EncodeVersions(t.Versions)))
	return err
}

const eventTypeColumns = `name, description, schema, available_for, builtin, created_at, updated_at, keys, versions`

// keysJSON is an event type's keys as stored: a JSON array, empty when it has none.
func keysJSON(keys []string) json.RawMessage {
	if len(keys) == 0 {
		return json.RawMessage("[]")
	}
	b, _ := json.Marshal(keys)
	return b
}

func scanEventType(row scanner) (*consign.EventType, error) {
	var t consign.EventType
	var schema, versions *string
	var af, keys []byte
	if err := row.Scan(&t.Name, &t.Description, &schema, &af, &t.Builtin, &t.CreatedAt, &t.UpdatedAt, &keys, &versions); err != nil {
		return nil, err
	}
	if len(keys) > 0 && string(keys) != "[]" {
		if err := json.Unmarshal(keys, &t.Keys); err != nil {
			return nil, err
		}
	}
	if versions != nil {
		var err error
		if t.Versions, err = store.DecodeVersions([]byte(*versions)); err != nil {
			return nil, fmt.Errorf("event type %s: %w", t.Name, err)
		}
	}
	if schema != nil {
		t.Schema = json.RawMessage(*schema)
	}
	if err := json.Unmarshal(af, &t.AvailableFor); err != nil {
		return nil, err
	}
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return &t, nil
}

// EventTypeGet returns one type.
func (db *DB) EventTypeGet(ctx context.Context, name string) (*consign.EventType, error) {
	t, err := scanEventType(db.pool.QueryRow(ctx, `SELECT `+eventTypeColumns+` FROM event_types WHERE name = $1`, name))
	if err != nil {
		return nil, notFound(err, "event type", name)
	}
	return t, nil
}

// EventTypeList returns the whole catalog by name.
func (db *DB) EventTypeList(ctx context.Context) ([]*consign.EventType, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+eventTypeColumns+` FROM event_types ORDER BY name`)
	return collect(rows, err, scanEventType)
}

// EventTypeUpdate saves a type's description, schema, audience and keys.
func (db *DB) EventTypeUpdate(ctx context.Context, t *consign.EventType) error {
	af, _ := json.Marshal(t.AvailableFor)
	tag, err := db.pool.Exec(ctx, `UPDATE event_types SET description = $1, schema = $2, available_for = $3, updated_at = $4,
		keys = $6 WHERE name = $5`, t.Description, nullRaw(t.Schema), json.RawMessage(af), ts(t.UpdatedAt), t.Name, keysJSON(t.Keys))
	return translate(mustAffect(tag, err, "event type", t.Name))
}

// EventTypeVersionsUpdate saves a type's versions, if the type is as of was (its
// updated_at): else ECONFLICT.
func (db *DB) EventTypeVersionsUpdate(ctx context.Context, name string, versions []consign.EventTypeVersion, was, now time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE event_types SET versions = $1, updated_at = $2 WHERE name = $3 AND updated_at = $4`,
		nullRaw(store.EncodeVersions(versions)), ts(now), name, ts(was))
	if err := mustAffect(tag, err, "event type", name); consign.ErrorCode(err) == consign.ENOTFOUND {
		if _, gerr := db.EventTypeGet(ctx, name); gerr != nil {
			return gerr
		}
		return consign.Errorf(consign.ECONFLICT, "event type %q changed meanwhile: try again", name)
	} else if err != nil {
		return translate(err)
	}
	return nil
}

func nullRaw(b json.RawMessage) *string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	return &s
}
