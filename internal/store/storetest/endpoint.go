package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// fullEndpoint returns an endpoint with every field set away from its default.
func fullEndpoint(orgID string, at time.Time) *store.EndpointRow {
	disabled := at.Add(time.Minute)
	return &store.EndpointRow{
		Endpoint: consign.Endpoint{
			ID:                       consign.NewID(consign.PrefixEndpoint, at),
			OrgID:                    orgID,
			URL:                      "https://erp.example.com/hooks/orders?tenant=acme",
			Description:              "Orders into the ERP",
			Topics:                   []string{"order.created", "product.*", consign.TypeEndpointDisabled},
			Method:                   "PUT",
			Headers:                  map[string]string{"X-Tenant": "acme", "X-Api-Version": "2024-01"},
			PayloadFormat:            consign.FormatRaw,
			Auth:                     consign.Auth{Type: consign.AuthToken},
			RateLimit:                12.5,
			BurstLimit:               7,
			Ordering:                 consign.OrderingKey,
			Coalesce:                 true,
			Retry:                    consign.RetryPolicy{Schedule: []consign.Duration{consign.Duration(1500 * time.Millisecond), consign.Duration(time.Minute), consign.Duration(2 * time.Hour)}, MaxAge: consign.Duration(48 * time.Hour)},
			FailurePolicy:            consign.FailurePolicy{DisableAfter: consign.Duration(24 * time.Hour), MaxFailures: 10, Window: consign.Duration(30 * time.Minute)},
			ResponseReferencePointer: "/vendorReference",
			ResponseFields:           map[string]string{"reference": "/vendorReference", "id": "/data/0/id"},
			Transformation:           "function handler(w) { w.payload = {order: w.payload}; return w }",
			Active:                   false,
			Health:                   consign.HealthFailed,
			DisabledAt:               &disabled,
			DisabledReason:           "410 Gone",
			FailingSince:             ptr(at.Add(-time.Hour)),
			ReactivatedAt:            ptr(at.Add(-2 * time.Hour)),
			CreatedAt:                at,
			UpdatedAt:                at.Add(time.Minute),
		},
		TokenSealed: []byte{0x00, 0x01, 0xfe, 0xff, 't', 'o', 'k'},
	}
}

func testEndpoint(t *testing.T, open opener) {
	t.Run("InsertGetRoundTrip", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name     string
			endpoint func(tb testing.TB, orgID string) *store.EndpointRow
		}{
			{"Defaults", func(tb testing.TB, orgID string) *store.EndpointRow { return newEndpointRow(tb, orgID, now) }},
			{"EveryField", func(_ testing.TB, orgID string) *store.EndpointRow { return fullEndpoint(orgID, now) }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				org := insertOrg(t, s, now)
				e := tt.endpoint(t, org.ID)
				want := *e
				want.Version = 1
				secrets := []*store.SecretRow{newSecretRow(e.ID, now), newSecretRow(e.ID, now.Add(time.Millisecond))}
				require.NoError(t, s.EndpointInsert(t.Context(), e, secrets))
				require.EqualValues(t, 1, e.Version, "the inserted row's version")

				for _, orgID := range []string{org.ID, ""} {
					got, err := s.EndpointGet(t.Context(), orgID, e.ID)
					require.NoError(t, err)
					require.Equal(t, &want, got, "get in org %q", orgID)
				}
				stored, err := s.SecretList(t.Context(), e.ID)
				require.NoError(t, err)
				require.Equal(t, secrets, stored)
			})
		}
	})

	t.Run("InsertSameURL", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		first := insertEndpoint(t, s, org.ID, now)

		dup := newEndpointRow(t, org.ID, now)
		dup.URL = first.URL
		requireCode(t, consign.ECONFLICT, s.EndpointInsert(ctx, dup, []*store.SecretRow{newSecretRow(dup.ID, now)}))
		_, err := s.EndpointGet(ctx, "", dup.ID)
		requireCode(t, consign.ENOTFOUND, err)
		secrets, err := s.SecretList(ctx, dup.ID)
		require.NoError(t, err)
		require.Empty(t, secrets, "a failed insert stores none of its secrets")

		elsewhere := newEndpointRow(t, other.ID, now)
		elsewhere.URL = first.URL
		require.NoError(t, s.EndpointInsert(ctx, elsewhere, []*store.SecretRow{newSecretRow(elsewhere.ID, now)}),
			"the same URL is fine in another org")

		// Token endpoints (ReadyCloud webhooks) are told apart by their token: those of
		// different topics may share a URL, those of the same topics may not.
		token := func(topic string) *store.EndpointRow {
			e := newEndpointRow(t, org.ID, now)
			e.URL, e.Topics, e.Auth = "https://hooks.example.com/rc/", []string{topic}, consign.Auth{Type: consign.AuthToken, Token: "t"}
			return e
		}
		contacts, orders := token("contact.*"), token("order.*")
		require.NoError(t, s.EndpointInsert(ctx, contacts, nil))
		require.NoError(t, s.EndpointInsert(ctx, orders, nil), "another entity on the same URL")
		requireCode(t, consign.ECONFLICT, s.EndpointInsert(ctx, token("order.*"), nil))
		got, err := s.EndpointGet(ctx, org.ID, orders.ID)
		require.NoError(t, err)
		require.Equal(t, "https://hooks.example.com/rc/", got.URL, "the URL as given, not the key")
		orders.Topics = []string{"contact.*"}
		requireCode(t, consign.ECONFLICT, s.EndpointUpdate(ctx, orders)) // onto the other one's topics
	})

	t.Run("InsertMissingOrg", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		e := newEndpointRow(t, consign.NewID(consign.PrefixOrg, now), now)
		requireCode(t, consign.ENOTFOUND, s.EndpointInsert(t.Context(), e, nil))
	})

	t.Run("GetScopedByOrg", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		e := insertEndpoint(t, s, org.ID, now)

		tests := []struct {
			name  string
			orgID string
			id    string
			code  string
		}{
			{"OwnOrg", org.ID, e.ID, ""},
			{"AnyOrg", "", e.ID, ""},
			{"OtherOrg", other.ID, e.ID, consign.ENOTFOUND},
			{"Missing", org.ID, consign.NewID(consign.PrefixEndpoint, now), consign.ENOTFOUND},
			{"MissingAnyOrg", "", consign.NewID(consign.PrefixEndpoint, now), consign.ENOTFOUND},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				got, err := s.EndpointGet(t.Context(), tt.orgID, tt.id)
				if tt.code != "" {
					requireCode(t, tt.code, err)
					return
				}
				require.NoError(t, err)
				require.Equal(t, e.ID, got.ID)
			})
		}
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		var newest []string
		for i := range 4 {
			e := insertEndpoint(t, s, org.ID, now.Add(time.Duration(i)*time.Millisecond), func(e *store.EndpointRow) { e.Active = i%2 == 0 })
			newest = slices.Insert(newest, 0, e.ID)
		}
		insertEndpoint(t, s, other.ID, now)

		tests := []struct {
			name string
			page store.Page
			want []string
		}{
			{"AllNewestFirst", store.Page{}, newest},
			{"Limit", store.Page{Limit: 3}, newest[:3]},
			{"AfterCursor", store.Page{Limit: 2, Cursor: newest[1]}, newest[2:]},
			{"PastTheEnd", store.Page{Cursor: newest[3]}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				es, err := s.EndpointList(t.Context(), org.ID, tt.page)
				require.NoError(t, err)
				require.Equal(t, tt.want, endpointIDs(es))
			})
		}
	})

	t.Run("ListAll", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		on1 := insertEndpoint(t, s, org.ID, now)
		created := insertEndpoint(t, s, org.ID, now, func(e *store.EndpointRow) { e.Active = false })
		on2 := insertEndpoint(t, s, org.ID, now)
		off := insertEndpoint(t, s, org.ID, now)
		insertEndpoint(t, s, other.ID, now)
		off.Active, off.UpdatedAt = false, now.Add(time.Second)
		require.NoError(t, s.EndpointUpdate(t.Context(), off))

		es, err := s.EndpointListAll(t.Context(), org.ID)
		require.NoError(t, err)
		want := []string{on1.ID, created.ID, on2.ID, off.ID}
		slices.Sort(want)
		require.Equal(t, want, endpointIDs(es), "the org's endpoints, active or not, in ID order")
		for _, e := range es {
			require.Equal(t, getEndpoint(t, s, e.ID), e, "a fan-out row is the whole endpoint")
		}
	})

	t.Run("OrgEndpointsVersion", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		last := int64(-1)
		moved := func(want bool, what string) {
			t.Helper()
			v, err := s.OrgEndpointsVersion(ctx, org.ID)
			require.NoError(t, err)
			if want {
				require.NotEqual(t, last, v, "the version changes when %s", what)
			} else {
				require.Equal(t, last, v, "the version stays when %s", what)
			}
			last = v
		}
		moved(true, "first read")
		e := insertEndpoint(t, s, org.ID, now)
		moved(true, "an endpoint is created")
		insertEndpoint(t, s, other.ID, now)
		moved(false, "another org's endpoint is created")
		e.Topics, e.UpdatedAt = []string{"inventory.*"}, now.Add(time.Second)
		require.NoError(t, s.EndpointUpdate(ctx, e))
		moved(true, "an endpoint is updated")
		require.NoError(t, s.SecretInsert(ctx, newSecretRow(e.ID, now.Add(time.Minute))))
		moved(true, "a secret is added")
		require.NoError(t, s.DeliveriesRecord(ctx, store.RecordParams{Health: []store.HealthChange{{EndpointID: e.ID, FailingSince: now}}}))
		require.Equal(t, consign.HealthFailing, getEndpoint(t, s, e.ID).Health)
		moved(false, "only the endpoint's health changes")
		require.NoError(t, s.EndpointDelete(ctx, org.ID, e.ID))
		moved(true, "an endpoint is deleted")
		_, err := s.OrgEndpointsVersion(ctx, "org_none")
		requireCode(t, consign.ENOTFOUND, err)
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		e := insertEndpoint(t, s, org.ID, now)

		changed := fullEndpoint(org.ID, now)
		changed.ID, changed.URL, changed.UpdatedAt = e.ID, e.URL+"/v2", now.Add(time.Hour)
		require.NoError(t, s.EndpointUpdate(t.Context(), changed))
		require.EqualValues(t, 2, changed.Version, "the saved row gets its new version")
		require.Equal(t, changed, getEndpoint(t, s, e.ID))

		changed.Active, changed.DisabledAt, changed.DisabledReason, changed.TokenSealed = true, nil, "", nil
		changed.FailingSince, changed.Health, changed.ReactivatedAt = nil, consign.HealthHealthy, ptr(now.Add(2*time.Hour))
		changed.Auth.Type, changed.Headers = consign.AuthSignature, map[string]string{}
		changed.UpdatedAt = now.Add(2 * time.Hour)
		require.NoError(t, s.EndpointUpdate(t.Context(), changed))
		require.EqualValues(t, 3, changed.Version)
		require.Equal(t, changed, getEndpoint(t, s, e.ID))
	})

	t.Run("UpdateNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		e := insertEndpoint(t, s, org.ID, now)

		foreign := *e
		foreign.OrgID, foreign.Description = other.ID, "hijacked"
		requireCode(t, consign.ENOTFOUND, s.EndpointUpdate(t.Context(), &foreign))
		got := getEndpoint(t, s, e.ID)
		require.Empty(t, got.Description)
		require.EqualValues(t, 1, got.Version)

		requireCode(t, consign.ENOTFOUND, s.EndpointUpdate(t.Context(), newEndpointRow(t, org.ID, now)))
	})

	t.Run("UpdateSameURL", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		a, b := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)

		b.URL = a.URL
		requireCode(t, consign.ECONFLICT, s.EndpointUpdate(t.Context(), b))
	})

	t.Run("DeactivatePausesAndReactivateResumes", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		e := insertEndpoint(t, s, org.ID, now)
		pending := insertEvent(t, s, newEvent(org.ID, "order.created", now), e.ID)[0]
		done := insertEvent(t, s, newEvent(org.ID, "order.created", now), e.ID)[0]
		setStatus(t, s, e.ID, done, consign.StatusSucceeded, now)

		// An update that keeps the endpoint active leaves its deliveries alone.
		e.Description, e.UpdatedAt = "renamed", now.Add(time.Second)
		require.NoError(t, s.EndpointUpdate(ctx, e))
		d := getDelivery(t, s, org.ID, pending)
		require.Equal(t, consign.StatusPending, d.Status)
		requireTime(t, now, *d.NextAttemptAt)

		e.Active, e.DisabledAt, e.DisabledReason, e.UpdatedAt = false, ptr(now.Add(time.Minute)), "by hand", now.Add(time.Minute)
		require.NoError(t, s.EndpointUpdate(ctx, e))
		d = getDelivery(t, s, org.ID, pending)
		require.Equal(t, consign.StatusPaused, d.Status)
		require.Nil(t, d.NextAttemptAt)
		require.Equal(t, consign.StatusSucceeded, getDelivery(t, s, org.ID, done).Status)
		require.Empty(t, claim(t, s, now.Add(time.Hour), e.ID), "paused deliveries are not sent")
		requireDue(t, s, nil) // paused deliveries are not waiting

		reactivated := now.Add(2 * time.Hour)
		e.Active, e.DisabledAt, e.DisabledReason, e.UpdatedAt = true, nil, "", reactivated
		require.NoError(t, s.EndpointUpdate(ctx, e))
		d = getDelivery(t, s, org.ID, pending)
		require.Equal(t, consign.StatusPending, d.Status)
		requireTime(t, reactivated, *d.NextAttemptAt, "due when the endpoint was activated")
		require.Equal(t, consign.StatusSucceeded, getDelivery(t, s, org.ID, done).Status)
		requireDue(t, s, map[string]time.Time{e.ID: reactivated})
		require.Empty(t, claim(t, s, reactivated.Add(-time.Millisecond), e.ID))
		require.Equal(t, []string{pending}, claimIDs(claim(t, s, reactivated, e.ID)))
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		e, kept := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		ev := newEvent(org.ID, "order.created", now)
		ds := insertEvent(t, s, ev, e.ID, kept.ID)

		requireCode(t, consign.ENOTFOUND, s.EndpointDelete(ctx, other.ID, e.ID))
		getEndpoint(t, s, e.ID)

		require.NoError(t, s.EndpointDelete(ctx, org.ID, e.ID))
		_, err := s.EndpointGet(ctx, "", e.ID)
		requireCode(t, consign.ENOTFOUND, err)
		secrets, err := s.SecretList(ctx, e.ID)
		require.NoError(t, err)
		require.Empty(t, secrets)
		_, err = s.DeliveryGet(ctx, org.ID, ds[0])
		requireCode(t, consign.ENOTFOUND, err)

		_, err = s.EventGet(ctx, org.ID, ev.ID)
		require.NoError(t, err, "the event stays")
		getDelivery(t, s, org.ID, ds[1])
		require.Equal(t, []string{ds[1]}, claimIDs(claim(t, s, now, e.ID, kept.ID)))

		requireCode(t, consign.ENOTFOUND, s.EndpointDelete(ctx, org.ID, e.ID))
	})
}

func endpointIDs(es []*store.EndpointRow) []string {
	var ids []string
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

func testSecret(t *testing.T, open opener) {
	t.Run("ListOldestFirst", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		e := newEndpointRow(t, org.ID, now)
		first := newSecretRow(e.ID, now)
		first.ExpiresAt = ptr(now.Add(24 * time.Hour))
		require.NoError(t, s.EndpointInsert(t.Context(), e, []*store.SecretRow{first}))
		second := newSecretRow(e.ID, now.Add(time.Second))
		second.PublicKey = "whpk_MCowBQYDK2VwAyEA"
		require.NoError(t, s.SecretInsert(t.Context(), second))
		third := newSecretRow(e.ID, now.Add(2*time.Second))
		require.NoError(t, s.SecretInsert(t.Context(), third))
		insertEndpoint(t, s, org.ID, now) // its secret is not listed

		got, err := s.SecretList(t.Context(), e.ID)
		require.NoError(t, err)
		require.Equal(t, []*store.SecretRow{first, second, third}, got)
	})

	t.Run("InsertMissingEndpoint", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		requireCode(t, consign.ENOTFOUND, s.SecretInsert(t.Context(), newSecretRow(consign.NewID(consign.PrefixEndpoint, now), now)))
	})

	t.Run("UpdateExpiry", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		e := insertEndpoint(t, s, insertOrg(t, s, now).ID, now)
		sec := newSecretRow(e.ID, now.Add(time.Second))
		require.NoError(t, s.SecretInsert(t.Context(), sec))

		for _, expiry := range []*time.Time{ptr(now.Add(time.Hour)), nil} {
			sec.ExpiresAt = expiry
			require.NoError(t, s.SecretUpdate(t.Context(), sec))
			got, err := s.SecretList(t.Context(), e.ID)
			require.NoError(t, err)
			require.Len(t, got, 2)
			require.Equal(t, sec, got[1])
		}
	})

	t.Run("UpdateScopedByEndpoint", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		e, other := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		secs, err := s.SecretList(t.Context(), e.ID)
		require.NoError(t, err)

		foreign := *secs[0]
		foreign.EndpointID, foreign.ExpiresAt = other.ID, ptr(now)
		requireCode(t, consign.ENOTFOUND, s.SecretUpdate(t.Context(), &foreign))
		got, err := s.SecretList(t.Context(), e.ID)
		require.NoError(t, err)
		require.Nil(t, got[0].ExpiresAt)
	})

	t.Run("DeleteScopedByEndpoint", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		e, other := insertEndpoint(t, s, org.ID, now), insertEndpoint(t, s, org.ID, now)
		sec := newSecretRow(e.ID, now.Add(time.Second))
		require.NoError(t, s.SecretInsert(ctx, sec))

		requireCode(t, consign.ENOTFOUND, s.SecretDelete(ctx, other.ID, sec.ID))
		got, err := s.SecretList(ctx, e.ID)
		require.NoError(t, err)
		require.Len(t, got, 2)

		require.NoError(t, s.SecretDelete(ctx, e.ID, sec.ID))
		got, err = s.SecretList(ctx, e.ID)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.NotEqual(t, sec.ID, got[0].ID)
		requireCode(t, consign.ENOTFOUND, s.SecretDelete(ctx, e.ID, sec.ID))
	})

	t.Run("Rotate", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		org := insertOrg(t, s, now)
		e := newEndpointRow(t, org.ID, now)
		expireAt := now.Add(24 * time.Hour)
		forever := newSecretRow(e.ID, now)
		later := newSecretRow(e.ID, now.Add(time.Millisecond))
		later.ExpiresAt = ptr(expireAt.Add(time.Hour))
		sooner := newSecretRow(e.ID, now.Add(2*time.Millisecond))
		sooner.ExpiresAt = ptr(expireAt.Add(-time.Hour))
		require.NoError(t, s.EndpointInsert(ctx, e, []*store.SecretRow{forever, later, sooner}))
		bystander := insertEndpoint(t, s, org.ID, now)

		fresh := newSecretRow(e.ID, now.Add(time.Hour))
		require.NoError(t, s.SecretRotate(ctx, fresh, expireAt))

		got, err := s.SecretList(ctx, e.ID)
		require.NoError(t, err)
		require.Len(t, got, 4)
		requireTime(t, expireAt, *got[0].ExpiresAt, "a secret without expiry expires at expireAt")
		requireTime(t, expireAt, *got[1].ExpiresAt, "a later expiry is brought forward")
		requireTime(t, *sooner.ExpiresAt, *got[2].ExpiresAt, "an earlier expiry is left alone")
		require.Equal(t, fresh, got[3])
		others, err := s.SecretList(ctx, bystander.ID)
		require.NoError(t, err)
		require.Nil(t, others[0].ExpiresAt, "another endpoint's secrets are untouched")
	})

	t.Run("ChangesBumpEndpointVersion", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			change func(tb testing.TB, s store.Store, e *store.EndpointRow, sec *store.SecretRow) error
		}{
			{"EndpointUpdate", func(tb testing.TB, s store.Store, e *store.EndpointRow, _ *store.SecretRow) error {
				e.Description = "changed"
				return s.EndpointUpdate(tb.Context(), e)
			}},
			{"SecretInsert", func(tb testing.TB, s store.Store, e *store.EndpointRow, _ *store.SecretRow) error {
				return s.SecretInsert(tb.Context(), newSecretRow(e.ID, now.Add(time.Second)))
			}},
			{"SecretUpdate", func(tb testing.TB, s store.Store, _ *store.EndpointRow, sec *store.SecretRow) error {
				sec.ExpiresAt = ptr(now.Add(time.Hour))
				return s.SecretUpdate(tb.Context(), sec)
			}},
			{"SecretDelete", func(tb testing.TB, s store.Store, e *store.EndpointRow, sec *store.SecretRow) error {
				return s.SecretDelete(tb.Context(), e.ID, sec.ID)
			}},
			{"SecretRotate", func(tb testing.TB, s store.Store, e *store.EndpointRow, _ *store.SecretRow) error {
				return s.SecretRotate(tb.Context(), newSecretRow(e.ID, now.Add(time.Second)), now.Add(time.Hour))
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				org := insertOrg(t, s, now)
				e := insertEndpoint(t, s, org.ID, now)
				before := getEndpoint(t, s, e.ID).Version
				require.EqualValues(t, 1, before)
				secs, err := s.SecretList(t.Context(), e.ID)
				require.NoError(t, err)

				require.NoError(t, tt.change(t, s, e, secs[0]))
				after := getEndpoint(t, s, e.ID).Version
				require.Greater(t, after, before)

				// The dispatcher learns the version from its claims.
				insertEvent(t, s, newEvent(org.ID, "order.created", now), e.ID)
				cs := claim(t, s, now, e.ID)
				require.Len(t, cs, 1)
				require.Equal(t, after, cs[0].EndpointVersion)
			})
		}
	})
}
