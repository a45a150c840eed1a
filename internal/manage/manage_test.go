package manage_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/secretbox"
	"github.com/consign-dev/consign/internal/sender"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/sqlite"
)

// The configuration rules on their own, over a real embedded store in a temporary
// directory.

type emitted struct {
	mu    sync.Mutex
	types []string
}

func (e *emitted) emit(_ context.Context, _, typ string, _ any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.types = append(e.types, typ)
	return nil
}

func (e *emitted) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.types...)
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newService(tb testing.TB) (*manage.Service, *emitted, *clock) {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), tb.TempDir())
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })
	return newServiceOn(tb, st)
}

// newServiceOn is newService over a given store, so that two services can stand for two
// nodes sharing one database.
func newServiceOn(tb testing.TB, st store.Store) (*manage.Service, *emitted, *clock) {
	tb.Helper()
	ctx := context.Background()
	key, err := secretbox.NewKey()
	require.NoError(tb, err)
	box, err := secretbox.New(key)
	require.NoError(tb, err)
	em := &emitted{}
	clk := &clock{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	m := manage.New(st, box, manage.Config{InsecureTargets: true, ValidateURL: sender.ValidateTargetURL, Emit: em.emit, Now: clk.Now})
	require.NoError(tb, m.EnsureCatalog(ctx))
	return m, em, clk
}

func newOrg(tb testing.TB, m *manage.Service, name string, role consign.Role) *consign.Org {
	tb.Helper()
	o := &consign.Org{Name: name, Role: role}
	require.NoError(tb, m.CreateOrg(context.Background(), o))
	require.NotEmpty(tb, o.ID)
	return o
}

// requireField checks that err is an EINVALID error naming field.
func requireField(tb testing.TB, err error, field string) {
	tb.Helper()
	require.Equal(tb, consign.EINVALID, consign.ErrorCode(err), "%v", err)
	e, ok := err.(*consign.Error)
	require.True(tb, ok, "%T", err)
	var names []string
	for _, f := range e.Fields {
		names = append(names, f.Field)
	}
	require.Contains(tb, names, field, "%v", err)
}

func TestOrgs(t *testing.T) {
	t.Parallel()
	m, _, _ := newService(t)
	ctx := t.Context()
	requireField(t, m.CreateOrg(ctx, &consign.Org{Name: "  "}), "name")
	requireField(t, m.CreateOrg(ctx, &consign.Org{Name: "Acme", Role: "vendor?"}), "role")
	o := newOrg(t, m, " Acme Outdoor ", "")
	require.Equal(t, "Acme Outdoor", o.Name, "names are trimmed")
	require.Equal(t, consign.RoleBoth, o.Role, "the default role")
	o.Name = ""
	requireField(t, m.UpdateOrg(ctx, o), "name")
}

func TestKeys(t *testing.T) {
	t.Parallel()
	m, _, _ := newService(t)
	ctx := t.Context()
	o := newOrg(t, m, "Acme", consign.RoleBuyer)

	_, err := m.CreateKey(ctx, consign.NewID(consign.PrefixOrg, time.Now()), "ci")
	require.Equal(t, consign.ENOTFOUND, consign.ErrorCode(err))
	_, err = m.CreateKey(ctx, o.ID, strings.Repeat("x", 201))
	requireField(t, err, "name")

	k, err := m.CreateKey(ctx, o.ID, "ci")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(k.Key, manage.KeyPrefix), k.Key)
	got, err := m.Authenticate(ctx, k.Key)
	require.NoError(t, err)
	require.Equal(t, o.ID, got.OrgID)
	require.Empty(t, got.Key, "a key's value is shown once, at creation")

	for _, bad := range []string{"", k.Key + "x", "csk_unknown"} {
		_, err := m.Authenticate(ctx, bad)
		require.Equal(t, consign.EUNAUTHORIZED, consign.ErrorCode(err), "%q", bad)
	}
	require.NoError(t, m.DeleteKey(ctx, o.ID, k.ID))
	_, err = m.Authenticate(ctx, k.Key)
	require.Equal(t, consign.EUNAUTHORIZED, consign.ErrorCode(err), "a deleted key stops working at once")

	// Admin keys: a generated one once, shown once; one from the environment, idempotently.
	first, err := m.EnsureAdminKey(ctx, "")
	require.NoError(t, err)
	require.NotEmpty(t, first)
	again, err := m.EnsureAdminKey(ctx, "")
	require.NoError(t, err)
	require.Empty(t, again, "an admin key exists: no new one")
	_, err = m.EnsureAdminKey(ctx, "too-short")
	require.Equal(t, consign.EINVALID, consign.ErrorCode(err))
	const env = "admin-key-from-the-environment-0123456789"
	for range 2 {
		_, err = m.EnsureAdminKey(ctx, env)
		require.NoError(t, err)
	}
	admin, err := m.Authenticate(ctx, env)
	require.NoError(t, err)
	require.True(t, admin.Admin())
}

// TestRevocation: a deleted key, and every key of a deleted org, is refused at once by the
// service that deleted it, and by another service on the same store (another node) once
// KeyCacheTTL has passed since it last asked the store.
func TestRevocation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		revoke func(m *manage.Service, o *consign.Org, k *consign.APIKey) error
	}{
		{"key deleted", func(m *manage.Service, o *consign.Org, k *consign.APIKey) error {
			return m.DeleteKey(t.Context(), o.ID, k.ID)
		}},
		{"org deleted", func(m *manage.Service, o *consign.Org, _ *consign.APIKey) error {
			return m.DeleteOrg(t.Context(), o.ID)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st, err := sqlite.Open(ctx, t.TempDir())
			require.NoError(t, err)
			t.Cleanup(func() { st.Close() })
			here, _, clkHere := newServiceOn(t, st)
			there, _, clkThere := newServiceOn(t, st)
			o := newOrg(t, here, "Acme", "")
			k, err := here.CreateKey(ctx, o.ID, "ci")
			require.NoError(t, err)
			for _, m := range []*manage.Service{here, there} {
				_, err := m.Authenticate(ctx, k.Key)
				require.NoError(t, err, "the key works on both nodes (and each caches it)")
			}

			clkHere.add(time.Millisecond)
			clkThere.add(time.Millisecond)
			require.NoError(t, tc.revoke(here, o, k))
			_, err = here.Authenticate(ctx, k.Key)
			require.Equal(t, consign.EUNAUTHORIZED, consign.ErrorCode(err), "still accepted by the node that revoked it: %v", err)

			clkThere.add(manage.KeyCacheTTL)
			_, err = there.Authenticate(ctx, k.Key)
			require.Equal(t, consign.EUNAUTHORIZED, consign.ErrorCode(err), "still accepted by another node %s after it was last checked: %v",
				manage.KeyCacheTTL, err)
			require.LessOrEqual(t, manage.KeyCacheTTL, time.Second, "the bound README and docs/multinode.md state")
		})
	}
}

// TestHeadersSealed: an endpoint's headers are stored sealed, never in clear, and
// headers stored in clear by an older version are sealed by SealStoredHeaders, once.
func TestHeadersSealed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	m, _, _ := newServiceOn(t, st)
	o := newOrg(t, m, "Acme", "")
	headers := map[string]string{"X-Partner-Key": "pk_live_0123456789"}
	created, err := m.CreateEndpoint(ctx, o.ID, &manage.EndpointInput{URL: "https://example.com/a", Topics: []string{"*"}, Headers: headers})
	require.NoError(t, err)
	row, err := st.EndpointGet(ctx, o.ID, created.ID)
	require.NoError(t, err)
	require.Empty(t, row.Headers, "read back from the store: no clear value")
	require.NotEmpty(t, row.HeadersSealed)
	got, err := m.Endpoint(ctx, o.ID, created.ID)
	require.NoError(t, err)
	require.Equal(t, headers, got.Headers, "opened for the dispatcher")

	// An endpoint as an older version wrote it: headers in clear.
	legacy := &store.EndpointRow{Endpoint: consign.Endpoint{ID: consign.NewID(consign.PrefixEndpoint, time.Now()), OrgID: o.ID,
		URL: "https://example.com/b", Topics: []string{"*"}, Method: "POST", Headers: headers, Active: true, Health: consign.HealthHealthy,
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}}
	require.NoError(t, st.EndpointInsert(ctx, legacy, nil))
	n, err := m.SealStoredHeaders(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	row, err = st.EndpointGet(ctx, o.ID, legacy.ID)
	require.NoError(t, err)
	require.Empty(t, row.Headers)
	require.NotEmpty(t, row.HeadersSealed)
	got, err = m.Endpoint(ctx, o.ID, legacy.ID)
	require.NoError(t, err)
	require.Equal(t, headers, got.Headers)
	n, err = m.SealStoredHeaders(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to seal")
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	m, em, clk := newService(t)
	ctx := t.Context()
	buyer := newOrg(t, m, "Acme", consign.RoleBuyer)
	other := newOrg(t, m, "Birch", consign.RoleBuyer)

	for _, tc := range []struct {
		name  string
		in    manage.EndpointInput
		field string
	}{
		{"no URL", manage.EndpointInput{Topics: []string{"order.*"}}, "url"},
		{"not a URL", manage.EndpointInput{URL: "hooks", Topics: []string{"order.*"}}, "url"},
		{"no topics", manage.EndpointInput{URL: "http://127.0.0.1:9000/hooks"}, "topics"},
		{"unknown topic", manage.EndpointInput{URL: "http://127.0.0.1:9000/hooks", Topics: []string{"order.teleported"}}, "topics"},
		{"bad secret", manage.EndpointInput{URL: "http://127.0.0.1:9000/hooks", Topics: []string{"order.*"}, Secret: "whsec_short"}, "secret"},
	} {
		_, err := m.CreateEndpoint(ctx, buyer.ID, &tc.in)
		requireField(t, err, tc.field)
	}

	created, err := m.CreateEndpoint(ctx, buyer.ID, &manage.EndpointInput{URL: "http://127.0.0.1:9000/hooks", Topics: []string{"order.*"}})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(created.Secret, "whsec_"), "the first secret is generated and shown: %q", created.Secret)
	id := created.ID

	got, err := m.Endpoint(ctx, buyer.ID, id)
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:9000/hooks", got.URL)
	_, err = m.Endpoint(ctx, other.ID, id)
	require.Equal(t, consign.ENOTFOUND, consign.ErrorCode(err), "another org's endpoint does not exist for it")

	secrets, err := m.Secrets(ctx, buyer.ID, id)
	require.NoError(t, err)
	require.Len(t, secrets, 1)
	require.Empty(t, secrets[0].Value, "secrets are listed without their values")

	// Rotation: both secrets sign during the grace period, the new one alone after it.
	rotated, err := m.RotateSecret(ctx, buyer.ID, id, time.Hour, "")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(rotated.Value, "whsec_"))
	keys, _, err := m.SigningKeys(ctx, id, clk.Now())
	require.NoError(t, err)
	require.Len(t, keys, 2)
	clk.add(2 * time.Hour)
	keys, _, err = m.SigningKeys(ctx, id, clk.Now())
	require.NoError(t, err)
	require.Len(t, keys, 1)
	_, err = m.RotateSecret(ctx, buyer.ID, id, -time.Second, "")
	requireField(t, err, "grace")

	// Deactivation and activation are announced to the org.
	require.NoError(t, m.Deactivate(ctx, buyer.ID, id, "410 Gone"))
	got, err = m.Endpoint(ctx, buyer.ID, id)
	require.NoError(t, err)
	require.False(t, got.Active)
	require.Equal(t, consign.HealthFailed, got.Health)
	require.NoError(t, m.Deactivate(ctx, buyer.ID, id, "again"), "deactivating an inactive endpoint changes nothing")
	_, err = m.UpdateEndpoint(ctx, buyer.ID, id, func(in *manage.EndpointPatch) error {
		active := true
		in.Active = &active
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{consign.TypeEndpointDisabled, consign.TypeEndpointEnabled}, em.all())

	require.NoError(t, m.DeleteEndpoint(ctx, buyer.ID, id))
	_, err = m.Endpoint(ctx, buyer.ID, id)
	require.Equal(t, consign.ENOTFOUND, consign.ErrorCode(err))
}

func TestEventTypes(t *testing.T) {
	t.Parallel()
	m, _, _ := newService(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		in    manage.EventTypeInput
		field string
	}{
		{"bad name", manage.EventTypeInput{Name: "Not A Type"}, "name"},
		{"schema that is not a schema", manage.EventTypeInput{Name: "return.created", Schema: []byte(`{"type": 5}`)}, "schema"},
		{"unknown role", manage.EventTypeInput{Name: "return.created", AvailableFor: []consign.Role{"vendor?"}}, "available_for"},
		{"key that is not a pointer", manage.EventTypeInput{Name: "return.created", Keys: []string{"/rma", "order_id"}}, "keys[1]"},
		{"too many keys", manage.EventTypeInput{Name: "return.created", Keys: []string{"/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h", "/i"}}, "keys"},
	} {
		_, err := m.CreateEventType(ctx, &tc.in)
		requireField(t, err, tc.field)
	}
	et, err := m.CreateEventType(ctx, &manage.EventTypeInput{Name: "return.created", Description: "a return was opened",
		Schema: []byte(`{"type": "object", "required": ["rma"]}`)})
	require.NoError(t, err)
	require.Equal(t, "return.created", et.Name)
	_, err = m.CreateEventType(ctx, &manage.EventTypeInput{Name: "return.created"})
	require.Equal(t, consign.ECONFLICT, consign.ErrorCode(err))
	updated, err := m.UpdateEventType(ctx, "return.created", func(in *manage.EventTypeInput) error {
		in.Description = "a return was opened by the buyer"
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, "a return was opened by the buyer", updated.Description)
	updated, err = m.UpdateEventType(ctx, "return.created", func(in *manage.EventTypeInput) error {
		in.Keys = []string{"/rma", "/lines/*/sku"}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"/rma", "/lines/*/sku"}, updated.Keys)
	_, err = m.UpdateEventType(ctx, "return.created", func(in *manage.EventTypeInput) error {
		in.Keys = []string{"/rma", "/rma"}
		return nil
	})
	requireField(t, err, "keys[1]")
}
