package storetest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

func testOrg(t *testing.T, open opener) {
	t.Run("InsertGet", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		o := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Acme Dropship", Role: consign.RoleSeller,
			CreatedAt: now, UpdatedAt: now.Add(time.Second)}
		require.NoError(t, s.OrgInsert(t.Context(), o))

		got, err := s.OrgGet(t.Context(), o.ID)
		require.NoError(t, err)
		require.Equal(t, o, got)
	})

	t.Run("InsertDuplicateID", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		o := insertOrg(t, s, now)

		requireCode(t, consign.ECONFLICT, s.OrgInsert(t.Context(), &consign.Org{ID: o.ID, Name: "Other", Role: consign.RoleBuyer, CreatedAt: now, UpdatedAt: now}))
		got, err := s.OrgGet(t.Context(), o.ID)
		require.NoError(t, err)
		require.Equal(t, "Acme Dropship", got.Name)
	})

	t.Run("GetMissing", func(t *testing.T) {
		t.Parallel()
		_, err := open(t).OrgGet(t.Context(), consign.NewID(consign.PrefixOrg, now))
		requireCode(t, consign.ENOTFOUND, err)
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		var newest []string // newest first
		for i := range 5 {
			newest = slices.Insert(newest, 0, insertOrg(t, s, now.Add(time.Duration(i)*time.Millisecond)).ID)
		}

		tests := []struct {
			name string
			page store.Page
			want []string
		}{
			{"AllNewestFirst", store.Page{}, newest},
			{"Limit", store.Page{Limit: 2}, newest[:2]},
			{"AfterCursor", store.Page{Limit: 2, Cursor: newest[1]}, newest[2:4]},
			{"LastPage", store.Page{Limit: 2, Cursor: newest[3]}, newest[4:]},
			{"PastTheEnd", store.Page{Limit: 2, Cursor: newest[4]}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				orgs, err := s.OrgList(t.Context(), tt.page)
				require.NoError(t, err)
				require.Equal(t, tt.want, orgIDs(orgs))
			})
		}

		t.Run("WalkAllPages", func(t *testing.T) {
			t.Parallel()
			var seen []string
			p := store.Page{Limit: 2}
			for range 10 {
				orgs, err := s.OrgList(t.Context(), p)
				require.NoError(t, err)
				if len(orgs) == 0 {
					break
				}
				seen = append(seen, orgIDs(orgs)...)
				p.Cursor = orgs[len(orgs)-1].ID
			}
			require.Equal(t, newest, seen)
		})
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		o := insertOrg(t, s, now)

		changed := *o
		changed.Name, changed.Role, changed.UpdatedAt = "Acme Retail", consign.RoleBuyer, now.Add(time.Hour)
		require.NoError(t, s.OrgUpdate(t.Context(), &changed))

		got, err := s.OrgGet(t.Context(), o.ID)
		require.NoError(t, err)
		require.Equal(t, &changed, got)
		requireTime(t, o.CreatedAt, got.CreatedAt, "created_at must not change")
	})

	t.Run("UpdateMissing", func(t *testing.T) {
		t.Parallel()
		o := &consign.Org{ID: consign.NewID(consign.PrefixOrg, now), Name: "Ghost", Role: consign.RoleBoth, CreatedAt: now, UpdatedAt: now}
		requireCode(t, consign.ENOTFOUND, open(t).OrgUpdate(t.Context(), o))
	})

	t.Run("DeleteCascades", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		doomed, kept := seedOrg(t, s, now), seedOrg(t, s, now)

		require.NoError(t, s.OrgDelete(ctx, doomed.org.ID))

		_, err := s.OrgGet(ctx, doomed.org.ID)
		requireCode(t, consign.ENOTFOUND, err)
		_, err = s.KeyByHash(ctx, doomed.keyHash)
		requireCode(t, consign.ENOTFOUND, err)
		_, err = s.EndpointGet(ctx, "", doomed.endpoint.ID)
		requireCode(t, consign.ENOTFOUND, err)
		secrets, err := s.SecretList(ctx, doomed.endpoint.ID)
		require.NoError(t, err)
		require.Empty(t, secrets)
		_, err = s.EventGet(ctx, doomed.org.ID, doomed.event.ID)
		requireCode(t, consign.ENOTFOUND, err)
		_, err = s.DeliveryGet(ctx, doomed.org.ID, doomed.deliveryID)
		requireCode(t, consign.ENOTFOUND, err)
		require.Equal(t, []string{kept.deliveryID}, claimIDs(claim(t, s, now.Add(time.Hour), doomed.endpoint.ID, kept.endpoint.ID)),
			"only the remaining org's work is due")

		// The other org keeps everything.
		_, err = s.OrgGet(ctx, kept.org.ID)
		require.NoError(t, err)
		_, err = s.KeyByHash(ctx, kept.keyHash)
		require.NoError(t, err)
		_, err = s.EndpointGet(ctx, kept.org.ID, kept.endpoint.ID)
		require.NoError(t, err)
		secrets, err = s.SecretList(ctx, kept.endpoint.ID)
		require.NoError(t, err)
		require.Len(t, secrets, 1)
		_, err = s.EventGet(ctx, kept.org.ID, kept.event.ID)
		require.NoError(t, err)
		require.Len(t, getDelivery(t, s, kept.org.ID, kept.deliveryID).Attempts, 1)

		requireCode(t, consign.ENOTFOUND, s.OrgDelete(ctx, doomed.org.ID))
	})

	t.Run("DeleteMissing", func(t *testing.T) {
		t.Parallel()
		requireCode(t, consign.ENOTFOUND, open(t).OrgDelete(t.Context(), consign.NewID(consign.PrefixOrg, now)))
	})
}

// seeded is an org with one of everything it can own.
type seeded struct {
	org        *consign.Org
	keyHash    []byte
	endpoint   *store.EndpointRow
	event      *consign.Event
	deliveryID string
}

// seedOrg stores an org with a key, an endpoint with a secret, and an event whose one
// delivery has a failed attempt and is due again at at+1m.
func seedOrg(tb testing.TB, s store.Store, at time.Time) seeded {
	tb.Helper()
	var w seeded
	w.org = insertOrg(tb, s, at)
	_, w.keyHash = insertKey(tb, s, w.org.ID, at)
	w.endpoint = insertEndpoint(tb, s, w.org.ID, at)
	w.event = newEvent(w.org.ID, "order.created", at)
	w.deliveryID = insertEvent(tb, s, w.event, w.endpoint.ID)[0]
	record(tb, s, &store.Outcome{
		DeliveryID: w.deliveryID, EndpointID: w.endpoint.ID, Status: consign.StatusPending, NextAttemptAt: at.Add(time.Minute), At: at,
		Attempt: &consign.Attempt{N: 1, StartedAt: at, DurationMS: 12, Request: consign.AttemptRequest{Method: "POST", URL: w.endpoint.URL},
			Response: &consign.AttemptResponse{Status: 503, Body: "busy"}},
	})
	return w
}

func orgIDs(os []*consign.Org) []string {
	var ids []string
	for _, o := range os {
		ids = append(ids, o.ID)
	}
	return ids
}

func testKey(t *testing.T, open opener) {
	t.Run("InsertByHash", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		k := &consign.APIKey{ID: consign.NewID(consign.PrefixKey, now), OrgID: org.ID, Name: "warehouse sync", Key: "csk_plaintext", CreatedAt: now}
		require.NoError(t, s.KeyInsert(t.Context(), k, []byte{0x00, 0x9f, 0xff, 0x10}))

		got, err := s.KeyByHash(t.Context(), []byte{0x00, 0x9f, 0xff, 0x10})
		require.NoError(t, err)
		want := *k
		want.Key = "" // only the hash is stored
		require.Equal(t, &want, got)
		require.False(t, got.Admin())
	})

	t.Run("ByHashMissing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertKey(t, s, insertOrg(t, s, now).ID, now)
		_, err := s.KeyByHash(t.Context(), []byte("no such hash"))
		requireCode(t, consign.ENOTFOUND, err)
	})

	t.Run("DuplicateHash", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		a, b := insertOrg(t, s, now), insertOrg(t, s, now)
		_, hash := insertKey(t, s, a.ID, now)

		k := &consign.APIKey{ID: consign.NewID(consign.PrefixKey, now), OrgID: b.ID, Name: "copy", CreatedAt: now}
		requireCode(t, consign.ECONFLICT, s.KeyInsert(t.Context(), k, hash))
		got, err := s.KeyByHash(t.Context(), hash)
		require.NoError(t, err)
		require.Equal(t, a.ID, got.OrgID, "the first key keeps its hash")
	})

	t.Run("AdminKeyExists", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		requireAdmin := func(want bool) {
			t.Helper()
			ok, err := s.AdminKeyExists(ctx)
			require.NoError(t, err)
			require.Equal(t, want, ok)
		}

		requireAdmin(false)
		insertKey(t, s, insertOrg(t, s, now).ID, now)
		requireAdmin(false)
		admin, hash := insertKey(t, s, "", now)
		requireAdmin(true)

		got, err := s.KeyByHash(ctx, hash)
		require.NoError(t, err)
		require.Equal(t, admin, got)
		require.True(t, got.Admin())
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		var newest []string
		for i := range 3 {
			k, _ := insertKey(t, s, org.ID, now.Add(time.Duration(i)*time.Millisecond))
			newest = slices.Insert(newest, 0, k.ID)
		}
		insertKey(t, s, other.ID, now)
		insertKey(t, s, "", now)

		tests := []struct {
			name string
			page store.Page
			want []string
		}{
			{"AllNewestFirst", store.Page{}, newest},
			{"Limit", store.Page{Limit: 2}, newest[:2]},
			{"AfterCursor", store.Page{Limit: 2, Cursor: newest[1]}, newest[2:]},
			{"PastTheEnd", store.Page{Cursor: newest[2]}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				keys, err := s.KeyList(t.Context(), org.ID, tt.page)
				require.NoError(t, err)
				var ids []string
				for _, k := range keys {
					require.Equal(t, org.ID, k.OrgID)
					ids = append(ids, k.ID)
				}
				require.Equal(t, tt.want, ids)
			})
		}
	})

	t.Run("DeleteScopedByOrg", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		k, hash := insertKey(t, s, org.ID, now)

		requireCode(t, consign.ENOTFOUND, s.KeyDelete(ctx, other.ID, k.ID))
		_, err := s.KeyByHash(ctx, hash)
		require.NoError(t, err, "another org cannot delete the key")

		require.NoError(t, s.KeyDelete(ctx, org.ID, k.ID))
		_, err = s.KeyByHash(ctx, hash)
		requireCode(t, consign.ENOTFOUND, err)
		requireCode(t, consign.ENOTFOUND, s.KeyDelete(ctx, org.ID, k.ID))
	})
}

func testEventType(t *testing.T, open opener) {
	schema := json.RawMessage(`{"type":"object","required":["order_id"],"properties":{"order_id":{"type":"string"}}}`)

	t.Run("InsertGet", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			typ  consign.EventType
		}{
			{"Plain", consign.EventType{Name: "order.created", Description: "An order was placed."}},
			{"SchemaAndAudience", consign.EventType{Name: "order.fulfilled", Description: "Shipped.", Schema: schema,
				AvailableFor: []consign.Role{consign.RoleBuyer, consign.RoleSeller}}},
			{"Keys", consign.EventType{Name: "purchase_order.created", Description: "A PO.", Keys: []string{"/po_number", "/lines/*/sku"}}},
			{"Builtin", consign.EventType{Name: consign.TypeTest, Description: "A test event.", Builtin: true}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				et := tt.typ
				et.CreatedAt, et.UpdatedAt = now, now.Add(time.Second)
				require.NoError(t, s.EventTypeInsert(t.Context(), &et))

				got, err := s.EventTypeGet(t.Context(), et.Name)
				require.NoError(t, err)
				requireEventType(t, &et, got)
			})
		}
	})

	t.Run("InsertDuplicate", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		et := &consign.EventType{Name: "order.created", Description: "First.", CreatedAt: now, UpdatedAt: now}
		require.NoError(t, s.EventTypeInsert(t.Context(), et))

		requireCode(t, consign.ECONFLICT, s.EventTypeInsert(t.Context(), &consign.EventType{Name: "order.created", Description: "Second.", CreatedAt: now, UpdatedAt: now}))
		got, err := s.EventTypeGet(t.Context(), "order.created")
		require.NoError(t, err)
		require.Equal(t, "First.", got.Description)
	})

	t.Run("GetMissing", func(t *testing.T) {
		t.Parallel()
		_, err := open(t).EventTypeGet(t.Context(), "order.created")
		requireCode(t, consign.ENOTFOUND, err)
	})

	t.Run("EnsureIsIdempotent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		builtin := builtinTypes()

		require.NoError(t, s.EventTypeEnsure(t.Context(), builtin))
		require.NoError(t, s.EventTypeEnsure(t.Context(), builtin))

		got, err := s.EventTypeList(t.Context())
		require.NoError(t, err)
		require.Len(t, got, len(builtin))
		for _, et := range got {
			require.True(t, et.Builtin, et.Name)
		}
	})

	t.Run("EnsureKeepsExisting", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ours := &consign.EventType{Name: "order.created", Description: "Our own words.", Schema: schema, CreatedAt: now, UpdatedAt: now}
		require.NoError(t, s.EventTypeInsert(t.Context(), ours))

		builtin := builtinTypes()
		require.NoError(t, s.EventTypeEnsure(t.Context(), builtin))

		got, err := s.EventTypeGet(t.Context(), "order.created")
		require.NoError(t, err)
		requireEventType(t, ours, got)
		all, err := s.EventTypeList(t.Context())
		require.NoError(t, err)
		require.Len(t, all, len(builtin), "the missing types are added")
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			before consign.EventType
			change func(*consign.EventType)
		}{
			{"SetSchemaAndAudience", consign.EventType{Name: "order.created", Description: "Placed."}, func(et *consign.EventType) {
				et.Description, et.Schema, et.AvailableFor = "An order was placed.", schema, []consign.Role{consign.RoleSeller}
			}},
			{"ClearSchemaAndAudience", consign.EventType{Name: "order.created", Description: "Placed.", Schema: schema, AvailableFor: []consign.Role{consign.RoleBuyer}},
				func(et *consign.EventType) { et.Schema, et.AvailableFor = nil, nil }},
			{"SetKeys", consign.EventType{Name: "order.created", Description: "Placed."}, func(et *consign.EventType) {
				et.Keys = []string{"/order_id", "/lineItems/*/sku"}
			}},
			{"ClearKeys", consign.EventType{Name: "order.created", Description: "Placed.", Keys: []string{"/order_id"}},
				func(et *consign.EventType) { et.Keys = nil }},
			{"Builtin", consign.EventType{Name: "order.updated", Description: "Changed.", Builtin: true}, func(et *consign.EventType) {
				et.Description = "An order changed, including its boxes and items."
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				et := tt.before
				et.CreatedAt, et.UpdatedAt = now, now
				require.NoError(t, s.EventTypeInsert(t.Context(), &et))

				changed := et
				tt.change(&changed)
				changed.UpdatedAt = now.Add(time.Hour)
				require.NoError(t, s.EventTypeUpdate(t.Context(), &changed))

				got, err := s.EventTypeGet(t.Context(), et.Name)
				require.NoError(t, err)
				requireEventType(t, &changed, got)
			})
		}
	})

	t.Run("Versions", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		et := &consign.EventType{Name: "order.created", Description: "Placed.", Schema: schema, CreatedAt: now, UpdatedAt: now}
		require.NoError(t, s.EventTypeInsert(t.Context(), et))
		v1 := consign.EventTypeVersion{Version: "2026-06-01", Downgrade: "function downgrade(p) { return p }", CreatedAt: now.Add(time.Minute)}
		v2 := consign.EventTypeVersion{Version: "2026-12-01", Schema: schema, Downgrade: "function downgrade(p) {\n  p.id = p.order_id; return p }",
			CreatedAt: now.Add(time.Hour)}

		require.NoError(t, s.EventTypeVersionsUpdate(t.Context(), et.Name, []consign.EventTypeVersion{v1}, now, v1.CreatedAt))
		require.NoError(t, s.EventTypeVersionsUpdate(t.Context(), et.Name, []consign.EventTypeVersion{v1, v2}, v1.CreatedAt, v2.CreatedAt))
		// A writer that read the type before the last change is refused.
		requireCode(t, consign.ECONFLICT, s.EventTypeVersionsUpdate(t.Context(), et.Name, []consign.EventTypeVersion{v1}, v1.CreatedAt, v2.CreatedAt.Add(time.Second)))
		requireCode(t, consign.ENOTFOUND, s.EventTypeVersionsUpdate(t.Context(), "order.missing", nil, now, now))

		// An update of the type's own fields keeps its versions.
		got, err := s.EventTypeGet(t.Context(), et.Name)
		require.NoError(t, err)
		got.Description, got.UpdatedAt = "An order was placed.", v2.CreatedAt.Add(time.Minute)
		require.NoError(t, s.EventTypeUpdate(t.Context(), got))

		all, err := s.EventTypeList(t.Context())
		require.NoError(t, err)
		require.Len(t, all, 1)
		for _, got := range []*consign.EventType{got, all[0]} {
			require.Len(t, got.Versions, 2)
			for i, want := range []consign.EventTypeVersion{v1, v2} {
				require.Equal(t, want.Version, got.Versions[i].Version)
				require.Equal(t, want.Downgrade, got.Versions[i].Downgrade, "the code comes back byte for byte")
				if want.Schema == nil {
					require.Empty(t, got.Versions[i].Schema)
				} else {
					require.JSONEq(t, string(want.Schema), string(got.Versions[i].Schema))
				}
				requireTime(t, want.CreatedAt, got.Versions[i].CreatedAt, "created_at")
			}
		}
		requireTime(t, got.UpdatedAt, all[0].UpdatedAt, "updated_at")
	})

	t.Run("UpdateMissing", func(t *testing.T) {
		t.Parallel()
		requireCode(t, consign.ENOTFOUND, open(t).EventTypeUpdate(t.Context(), &consign.EventType{Name: "order.created", UpdatedAt: now}))
	})

	t.Run("ListSortedByName", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		for _, name := range []string{"shipment.created", "inventory.updated", "order.created", "label.created"} {
			require.NoError(t, s.EventTypeInsert(t.Context(), &consign.EventType{Name: name, Description: name, CreatedAt: now, UpdatedAt: now}))
		}

		got, err := s.EventTypeList(t.Context())
		require.NoError(t, err)
		var names []string
		for _, et := range got {
			names = append(names, et.Name)
		}
		require.Equal(t, []string{"inventory.updated", "label.created", "order.created", "shipment.created"}, names)
	})
}

// builtinTypes returns the built-in catalog as the server seeds it at start-up.
func builtinTypes() []consign.EventType {
	ts := consign.BuiltinEventTypes()
	for i := range ts {
		ts[i].Builtin, ts[i].CreatedAt, ts[i].UpdatedAt = true, now, now
	}
	return ts
}

// requireEventType compares event types; a schema may come back reformatted (as by a
// JSON column type) but must mean the same.
func requireEventType(tb testing.TB, want, got *consign.EventType) {
	tb.Helper()
	require.Equal(tb, want.Name, got.Name)
	require.Equal(tb, want.Description, got.Description)
	if len(want.Schema) == 0 {
		require.Empty(tb, got.Schema, "schema")
	} else {
		require.JSONEq(tb, string(want.Schema), string(got.Schema), "schema")
	}
	if len(want.AvailableFor) == 0 {
		require.Empty(tb, got.AvailableFor, "available_for")
	} else {
		require.Equal(tb, want.AvailableFor, got.AvailableFor, "available_for")
	}
	require.Equal(tb, want.Keys, got.Keys, "keys")
	require.Equal(tb, want.Builtin, got.Builtin, "builtin")
	requireTime(tb, want.CreatedAt, got.CreatedAt, "created_at")
	requireTime(tb, want.UpdatedAt, got.UpdatedAt, "updated_at")
}
