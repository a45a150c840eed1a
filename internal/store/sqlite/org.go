package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// OrgInsert stores a new org.
func (db *DB) OrgInsert(ctx context.Context, o *consign.Org) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := db.txExec(ctx, tx, `INSERT INTO orgs (id, name, role, branding, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
			o.ID, o.Name, o.Role, brandingJSON(o.Branding), ms(o.CreatedAt), ms(o.UpdatedAt))
		return err
	})
}

const orgColumns = `id, name, role, branding, created_at, updated_at`

func scanOrg(row interface{ Scan(...any) error }) (*consign.Org, error) {
	var o consign.Org
	var branding sql.NullString
	var created, updated int64
	if err := row.Scan(&o.ID, &o.Name, &o.Role, &branding, &created, &updated); err != nil {
		return nil, err
	}
	if branding.Valid {
		o.Branding = new(consign.Branding)
		if err := json.Unmarshal([]byte(branding.String), o.Branding); err != nil {
			return nil, fmt.Errorf("org %s: branding: %w", o.ID, err)
		}
	}
	o.CreatedAt, o.UpdatedAt = fromMS(created), fromMS(updated)
	return &o, nil
}

// brandingJSON is an org's branding as stored: JSON, or NULL for none.
func brandingJSON(b *consign.Branding) sql.NullString {
	if b == nil {
		return sql.NullString{}
	}
	j, _ := json.Marshal(b) // three strings: cannot fail
	return sql.NullString{String: string(j), Valid: true}
}

// OrgGet returns one org.
func (db *DB) OrgGet(ctx context.Context, id string) (*consign.Org, error) {
	o, err := scanOrg(db.queryRow(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "org", id)
	}
	return o, nil
}

// OrgList returns orgs newest first.
func (db *DB) OrgList(ctx context.Context, p store.Page) ([]*consign.Org, error) {
	rows, err := db.query(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id < ? ORDER BY id DESC LIMIT ?`, p.Below(), p.Size())
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanOrg)
}

// OrgUpdate saves an org's name, role and branding.
func (db *DB) OrgUpdate(ctx context.Context, o *consign.Org) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.txExec(ctx, tx, `UPDATE orgs SET name = ?, role = ?, branding = ?, updated_at = ? WHERE id = ?`,
			o.Name, o.Role, brandingJSON(o.Branding), ms(o.UpdatedAt), o.ID)
		return mustAffect(res, err, "org", o.ID)
	})
}

// OrgDelete removes an org; foreign keys cascade to everything it owns.
func (db *DB) OrgDelete(ctx context.Context, id string) error {
	if _, err := db.OrgGet(ctx, id); err != nil {
		return err
	}
	// The bulk in steps (bulk.go): deliveries (with their attempts), the events
	// left without deliveries, the receipts of the org's sources.
	if err := db.deleteOrgInSteps(ctx, id); err != nil {
		return err
	}
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.txExec(ctx, tx, `DELETE FROM orgs WHERE id = ?`, id)
		return mustAffect(res, err, "org", id)
	})
}

// KeyInsert stores an API key's hash.
func (db *DB) KeyInsert(ctx context.Context, k *consign.APIKey, hash []byte) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := db.txExec(ctx, tx, `INSERT INTO api_keys (id, org_id, name, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			k.ID, nullString(k.OrgID), k.Name, hash, ms(k.CreatedAt))
		return err
	})
}

func scanKey(row interface{ Scan(...any) error }) (*consign.APIKey, error) {
	var k consign.APIKey
	var org sql.NullString
	var created int64
	if err := row.Scan(&k.ID, &org, &k.Name, &created); err != nil {
		return nil, err
	}
	k.OrgID, k.CreatedAt = org.String, fromMS(created)
	return &k, nil
}

// KeyByHash finds the key with the given hash.
func (db *DB) KeyByHash(ctx context.Context, hash []byte) (*consign.APIKey, error) {
	k, err := scanKey(db.queryRow(ctx, `SELECT id, org_id, name, created_at FROM api_keys WHERE hash = ?`, hash))
	if err != nil {
		return nil, notFound(err, "key", "")
	}
	return k, nil
}

// KeyList lists an org's keys newest first.
func (db *DB) KeyList(ctx context.Context, orgID string, p store.Page) ([]*consign.APIKey, error) {
	rows, err := db.query(ctx, `SELECT id, org_id, name, created_at FROM api_keys WHERE org_id = ? AND id < ? ORDER BY id DESC LIMIT ?`,
		orgID, p.Below(), p.Size())
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanKey)
}

// KeyDelete removes an org's key.
func (db *DB) KeyDelete(ctx context.Context, orgID, id string) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.txExec(ctx, tx, `DELETE FROM api_keys WHERE org_id = ? AND id = ?`, orgID, id)
		return mustAffect(res, err, "key", id)
	})
}

// AdminKeyExists reports whether an admin key is stored.
func (db *DB) AdminKeyExists(ctx context.Context) (bool, error) {
	var n int
	err := db.queryRow(ctx, `SELECT count(*) FROM api_keys WHERE org_id IS NULL`).Scan(&n)
	return n > 0, translate(err)
}

// EventTypeEnsure inserts missing types.
func (db *DB) EventTypeEnsure(ctx context.Context, ts []consign.EventType) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for i := range ts {
			if err := db.insertEventType(ctx, tx, &ts[i], true); err != nil {
				return err
			}
		}
		return nil
	})
}

// EventTypeInsert stores a custom type.
func (db *DB) EventTypeInsert(ctx context.Context, t *consign.EventType) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error { return db.insertEventType(ctx, tx, t, false) })
}

func (db *DB) insertEventType(ctx context.Context, tx *sql.Tx, t *consign.EventType, ignoreExisting bool) error {
	q := `INSERT INTO event_types (name, description, schema, available_for, builtin, created_at, updated_at, keys, versions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	if ignoreExisting {
		q += ` ON CONFLICT (name) DO UPDATE SET keys = excluded.keys WHERE event_types.keys IS NULL`
	}
	af, _ := json.Marshal(t.AvailableFor)
	_, err := db.txExec(ctx, tx, q, t.Name, t.Description, nullRaw(t.Schema), string(af), t.Builtin, ms(t.CreatedAt), ms(t.UpdatedAt),
		keysJSON(t.Keys), nullRaw(store.EncodeVersions(t.Versions)))
	return err
}

func scanEventType(row interface{ Scan(...any) error }) (*consign.EventType, error) {
	var t consign.EventType
	var schema, versions sql.NullString
	var af string
	var keys sql.NullString
	var created, updated int64
	if err := row.Scan(&t.Name, &t.Description, &schema, &af, &t.Builtin, &created, &updated, &keys, &versions); err != nil {
		return nil, err
	}
	if keys.Valid && keys.String != "[]" {
		if err := json.Unmarshal([]byte(keys.String), &t.Keys); err != nil {
			return nil, err
		}
	}
	if versions.Valid {
		var err error
		if t.Versions, err = store.DecodeVersions([]byte(versions.String)); err != nil {
			return nil, fmt.Errorf("event type %s: %w", t.Name, err)
		}
	}
	if schema.Valid {
		t.Schema = json.RawMessage(schema.String)
	}
	if err := json.Unmarshal([]byte(af), &t.AvailableFor); err != nil {
		return nil, err
	}
	t.CreatedAt, t.UpdatedAt = fromMS(created), fromMS(updated)
	return &t, nil
}

const eventTypeColumns = `name, description, schema, available_for, builtin, created_at, updated_at, keys, versions`

// keysJSON is an event type's keys as stored: a JSON array, empty when it has none.
func keysJSON(keys []string) string {
	if len(keys) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(keys)
	return string(b)
}

// EventTypeGet returns one type.
func (db *DB) EventTypeGet(ctx context.Context, name string) (*consign.EventType, error) {
	t, err := scanEventType(db.queryRow(ctx, `SELECT `+eventTypeColumns+` FROM event_types WHERE name = ?`, name))
	if err != nil {
		return nil, notFound(err, "event type", name)
	}
	return t, nil
}

// EventTypeList returns the whole catalog by name.
func (db *DB) EventTypeList(ctx context.Context) ([]*consign.EventType, error) {
	rows, err := db.query(ctx, `SELECT `+eventTypeColumns+` FROM event_types ORDER BY name`)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanEventType)
}

// EventTypeUpdate saves a type's description, schema, audience and keys.
func (db *DB) EventTypeUpdate(ctx context.Context, t *consign.EventType) error {
	af, _ := json.Marshal(t.AvailableFor)
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.txExec(ctx, tx, `UPDATE event_types SET description = ?, schema = ?, available_for = ?, updated_at = ?, keys = ? WHERE name = ?`,
			t.Description, nullRaw(t.Schema), string(af), ms(t.UpdatedAt), keysJSON(t.Keys), t.Name)
		return mustAffect(res, err, "event type", t.Name)
	})
}

// EventTypeVersionsUpdate saves a type's versions, if the type is as of was (its
// updated_at): else ECONFLICT.
func (db *DB) EventTypeVersionsUpdate(ctx context.Context, name string, versions []consign.EventTypeVersion, was, now time.Time) error {
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.txExec(ctx, tx, `UPDATE event_types SET versions = ?, updated_at = ? WHERE name = ? AND updated_at = ?`,
			nullRaw(store.EncodeVersions(versions)), ms(now), name, ms(was))
		if err := mustAffect(res, err, "event type", name); consign.ErrorCode(err) == consign.ENOTFOUND {
			if _, gerr := db.EventTypeGet(ctx, name); gerr != nil {
				return gerr
			}
			return consign.Errorf(consign.ECONFLICT, "event type %q changed meanwhile: try again", name)
		} else if err != nil {
			return err
		}
		return nil
	})
}

// scanString scans a row of one text column, for collect.
func scanString(r interface{ Scan(...any) error }) (string, error) {
	var s string
	return s, r.Scan(&s)
}

func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, v)
	}
	return out, translate(rows.Err())
}

func mustAffect(res sql.Result, err error, what, id string) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return consign.Errorf(consign.ENOTFOUND, "%s %q not found", what, id)
	}
	return nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullRaw(b json.RawMessage) sql.NullString {
	return sql.NullString{String: string(b), Valid: len(b) > 0}
}
