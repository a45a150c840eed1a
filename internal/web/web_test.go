package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/dispatch"
	"github.com/consign-dev/consign/internal/job"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/secretbox"
	"github.com/consign-dev/consign/internal/sender"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/store/sqlite"
	"github.com/consign-dev/consign/internal/web"
)

// adminKey is the admin key of every test dashboard; 40 characters.
const adminKey = "test-admin-key-q7Vx2mP9rT4wZ8bN3cF6hJ1sD"

// ui is a dashboard over a real embedded store, served by httptest, with a dispatcher
// stub (these tests send nothing).
type ui struct {
	srv    *httptest.Server
	store  store.Store
	manage *manage.Service
	disp   *stubDispatcher
}

func newUI(tb testing.TB, mods ...func(*web.Config)) *ui {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, tb.TempDir())
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })
	key, err := secretbox.NewKey()
	require.NoError(tb, err)
	box, err := secretbox.New(key)
	require.NoError(tb, err)
	m := manage.New(st, box, manage.Config{InsecureTargets: true, ValidateURL: sender.ValidateTargetURL})
	require.NoError(tb, m.EnsureCatalog(ctx))
	_, err = m.EnsureAdminKey(ctx, adminKey)
	require.NoError(tb, err)
	d := &stubDispatcher{}
	cfg := web.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, mod := range mods {
		mod(&cfg)
	}
	h := web.New(st, m, d, nil, job.NewService(st, job.Config{}, nil), cfg)
	srv := httptest.NewServer(web.Mount(http.NotFoundHandler(), h))
	tb.Cleanup(srv.Close)
	return &ui{srv: srv, store: st, manage: m, disp: d}
}

type stubDispatcher struct {
	mu    sync.Mutex
	woken []string
}

func (d *stubDispatcher) SendTest(ctx context.Context, orgID, endpointID, typ string, payload json.RawMessage) (*consign.Delivery, error) {
	return nil, consign.Errorf(consign.EUNAVAILABLE, "no dispatcher in this test")
}

func (d *stubDispatcher) Retry(ctx context.Context, orgID, id string) (*consign.Delivery, error) {
	return nil, consign.Errorf(consign.EUNAVAILABLE, "no dispatcher in this test")
}

func (d *stubDispatcher) Recover(ctx context.Context, orgID, endpointID string, in dispatch.RecoverInput) (int, error) {
	return 0, consign.Errorf(consign.EUNAVAILABLE, "no dispatcher in this test")
}

func (d *stubDispatcher) EndpointState(string) *consign.EndpointDispatch { return nil }

func (d *stubDispatcher) Wake(ids ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.woken = append(d.woken, ids...)
}

// browser is an HTTP client with cookies that does not follow redirects, so tests see
// each answer.
type browser struct {
	tb   testing.TB
	base string
	hc   *http.Client
}

func (u *ui) browser(tb testing.TB) *browser { return newBrowser(tb, u.srv.URL) }

func newBrowser(tb testing.TB, base string) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(tb, err)
	return &browser{tb: tb, base: base, hc: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is an answer as received.
type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.tb.Helper()
	res, err := b.hc.Do(req)
	require.NoError(b.tb, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(b.tb, err)
	return page{status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *browser) get(path string) page {
	b.tb.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	require.NoError(b.tb, err)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values, header ...string) page {
	b.tb.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	require.NoError(b.tb, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the forms on a page.
func (p page) csrf(tb testing.TB) string {
	tb.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	require.NotNil(tb, m, "no CSRF token on the page:\n%s", p.body)
	return m[1]
}

// signIn signs the browser in with key and returns the CSRF token of its session.
func (b *browser) signIn(key string) string {
	b.tb.Helper()
	form := b.get("/ui/signin")
	require.Equal(b.tb, http.StatusOK, form.status)
	res := b.post("/ui/signin", url.Values{"csrf": {form.csrf(b.tb)}, "key": {key}})
	require.Equal(b.tb, http.StatusSeeOther, res.status, res.body)
	home := b.get("/ui/")
	if home.status == http.StatusSeeOther {
		home = b.get(home.header.Get("Location"))
	}
	require.Equal(b.tb, http.StatusOK, home.status, home.body)
	return home.csrf(b.tb)
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	b := u.browser(t)

	// Not signed in: pages send the browser to the sign-in form, keeping where it went.
	res := b.get("/ui/orgs/org_x/endpoints")
	require.Equal(t, http.StatusSeeOther, res.status)
	require.Equal(t, "/ui/signin?next=%2Fui%2Forgs%2Forg_x%2Fendpoints", res.header.Get("Location"))
	require.Equal(t, http.StatusMovedPermanently, b.get("/ui").status)

	// An htmx request of an expired page is sent to the sign-in page as a whole.
	req, err := http.NewRequest(http.MethodGet, u.srv.URL+"/ui/orgs/org_x/deliveries/dlv_x?fragment=attempts", nil)
	require.NoError(t, err)
	req.Header.Set("HX-Request", "true")
	req.Header.Set("HX-Current-URL", u.srv.URL+"/ui/orgs/org_x/deliveries/dlv_x")
	res = b.do(req)
	require.Equal(t, http.StatusUnauthorized, res.status)
	require.Equal(t, "/ui/signin?next=%2Fui%2Forgs%2Forg_x%2Fdeliveries%2Fdlv_x", res.header.Get("HX-Redirect"))

	// Assets are served without a session; directories are not listed.
	js := b.get("/ui/static/htmx.min.js")
	require.Equal(t, http.StatusOK, js.status)
	require.Contains(t, js.body, "htmx")
	require.Equal(t, http.StatusNotFound, b.get("/ui/static/").status)

	form := b.get("/ui/signin")
	require.Equal(t, http.StatusOK, form.status)
	require.Contains(t, form.body, `<label for="key">API key</label>`)
	require.Contains(t, form.header.Get("Content-Security-Policy"), "script-src 'self'")
	token := form.csrf(t)

	// The sign-in form is protected too: no token, no sign-in.
	res = b.post("/ui/signin", url.Values{"key": {adminKey}})
	require.Equal(t, http.StatusForbidden, res.status)

	res = b.post("/ui/signin", url.Values{"csrf": {token}, "key": {"csk_not-a-key"}})
	require.Equal(t, http.StatusUnauthorized, res.status)
	require.Contains(t, res.body, "That API key is not valid.")
	token = res.csrf(t) // a failed attempt gets a fresh form

	res = b.post("/ui/signin", url.Values{"csrf": {token}, "key": {adminKey}})
	require.Equal(t, http.StatusSeeOther, res.status)
	require.Equal(t, "/ui/", res.header.Get("Location"))
	var session *http.Cookie
	for _, c := range (&http.Response{Header: res.header}).Cookies() {
		if c.Name == "consign_session" {
			session = c
		}
	}
	require.NotNil(t, session, "no session cookie in %v", res.header)
	require.True(t, session.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, session.SameSite)
	require.Equal(t, "/ui/", session.Path)
	require.NotContains(t, session.Value, adminKey)
	require.NotContains(t, res.header.Values("Set-Cookie"), adminKey)

	home := b.get("/ui/")
	require.Equal(t, http.StatusOK, home.status)
	require.Contains(t, home.body, "<h1>Organizations</h1>")
	require.Equal(t, "no-store", home.header.Get("Cache-Control"))

	// Signed in, the sign-in page sends the browser home.
	require.Equal(t, http.StatusSeeOther, b.get("/ui/signin").status)

	// Sign out ends the session on the server, not only in the browser.
	res = b.post("/ui/signout", url.Values{"csrf": {home.csrf(t)}})
	require.Equal(t, http.StatusSeeOther, res.status)
	stolen := &http.Client{CheckRedirect: b.hc.CheckRedirect}
	req, err = http.NewRequest(http.MethodGet, u.srv.URL+"/ui/", nil)
	require.NoError(t, err)
	req.AddCookie(session)
	after, err := stolen.Do(req)
	require.NoError(t, err)
	after.Body.Close()
	require.Equal(t, http.StatusSeeOther, after.StatusCode, "a signed-out session still works")
}

func TestSignInRedirectsBackAndNowhereElse(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	for next, want := range map[string]string{
		"/ui/orgs/org_x/deliveries": "/ui/orgs/org_x/deliveries",
		"https://evil.example/":     "/ui/",
		"//evil.example/ui/":        "/ui/",
		"/v1/orgs":                  "/ui/",
	} {
		b := u.browser(t)
		form := b.get("/ui/signin?next=" + url.QueryEscape(next))
		res := b.post("/ui/signin", url.Values{"csrf": {form.csrf(t)}, "key": {adminKey}, "next": {next}})
		require.Equal(t, http.StatusSeeOther, res.status)
		require.Equal(t, want, res.header.Get("Location"), "next=%s", next)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	b := u.browser(t)
	token := b.signIn(adminKey)
	orgs := func() int {
		os, err := u.store.OrgList(context.Background(), store.Page{Limit: 100})
		require.NoError(t, err)
		return len(os)
	}

	for name, form := range map[string]url.Values{
		"no token":    {"name": {"Acme"}},
		"wrong token": {"name": {"Acme"}, "csrf": {strings.Repeat("A", len(token))}},
		"short token": {"name": {"Acme"}, "csrf": {token[:10]}},
	} {
		res := b.post("/ui/orgs", form)
		require.Equal(t, http.StatusForbidden, res.status, name)
		require.Contains(t, res.body, "CSRF", name)
	}
	// A token in the query string does not count: only the form body is read.
	res := b.post("/ui/orgs?csrf="+url.QueryEscape(token), url.Values{"name": {"Acme"}})
	require.Equal(t, http.StatusForbidden, res.status)
	// A browser's cross-site POST is refused even with the right token.
	res = b.post("/ui/orgs", url.Values{"name": {"Acme"}, "csrf": {token}}, "Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusForbidden, res.status)
	res = b.post("/ui/orgs", url.Values{"name": {"Acme"}, "csrf": {token}}, "Origin", "https://evil.example")
	require.Equal(t, http.StatusForbidden, res.status)
	require.Zero(t, orgs(), "a refused POST changed something")

	// Another session's token is no good either.
	other := u.browser(t)
	otherToken := other.signIn(adminKey)
	require.NotEqual(t, token, otherToken)
	res = b.post("/ui/orgs", url.Values{"name": {"Acme"}, "csrf": {otherToken}})
	require.Equal(t, http.StatusForbidden, res.status)

	// A POST without any session is refused the same way.
	anon := u.browser(t)
	res = anon.post("/ui/orgs", url.Values{"name": {"Acme"}, "csrf": {token}})
	require.Equal(t, http.StatusForbidden, res.status)
	require.Zero(t, orgs())

	res = b.post("/ui/orgs", url.Values{"name": {"Acme"}, "role": {"both"}, "csrf": {token}})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	require.Equal(t, 1, orgs())
}

func TestOrgIsolation(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := context.Background()
	a, bOrg := &consign.Org{Name: "Acme"}, &consign.Org{Name: "Bolt"}
	require.NoError(t, u.manage.CreateOrg(ctx, a))
	require.NoError(t, u.manage.CreateOrg(ctx, bOrg))
	epA, err := u.manage.CreateEndpoint(ctx, a.ID, &manage.EndpointInput{URL: "http://127.0.0.1:9/a", Topics: []string{"order.*"}})
	require.NoError(t, err)
	epB, err := u.manage.CreateEndpoint(ctx, bOrg.ID, &manage.EndpointInput{URL: "http://127.0.0.1:9/b", Topics: []string{"order.*"}})
	require.NoError(t, err)
	keyA, err := u.manage.CreateKey(ctx, a.ID, "acme")
	require.NoError(t, err)

	br := u.browser(t)
	token := br.signIn(keyA.Key)

	// An org key's home is its org.
	res := br.get("/ui/")
	require.Equal(t, http.StatusSeeOther, res.status)
	require.Equal(t, "/ui/orgs/"+a.ID+"/", res.header.Get("Location"))
	own := br.get("/ui/orgs/" + a.ID + "/endpoints/" + epA.ID)
	require.Equal(t, http.StatusOK, own.status)
	require.Contains(t, own.body, "http://127.0.0.1:9/a")

	// Another org's pages, and its objects under the key's own org, do not exist.
	for _, path := range []string{
		"/ui/orgs/" + bOrg.ID + "/",
		"/ui/orgs/" + bOrg.ID + "/endpoints",
		"/ui/orgs/" + bOrg.ID + "/endpoints/" + epB.ID,
		"/ui/orgs/" + a.ID + "/endpoints/" + epB.ID,
		"/ui/orgs/" + a.ID + "/endpoints/" + epB.ID + "/edit",
		"/ui/orgs/" + bOrg.ID + "/deliveries",
		"/ui/orgs/" + bOrg.ID + "/keys",
		"/ui/switch?org=" + bOrg.ID, // the org switcher is the admin's
	} {
		res := br.get(path)
		require.Equal(t, http.StatusNotFound, res.status, path)
		require.NotContains(t, res.body, "127.0.0.1:9/b", path)
	}
	// Nor can it change them, even with a valid token.
	for _, path := range []string{
		"/ui/orgs/" + bOrg.ID + "/endpoints/" + epB.ID + "/active",
		"/ui/orgs/" + a.ID + "/endpoints/" + epB.ID + "/active",
	} {
		res := br.post(path, url.Values{"csrf": {token}, "active": {"false"}})
		require.Equal(t, http.StatusNotFound, res.status, path)
	}
	res = br.post("/ui/orgs", url.Values{"csrf": {token}, "name": {"Mine"}})
	require.Equal(t, http.StatusNotFound, res.status, "an org key created an org")
	e, err := u.manage.Endpoint(ctx, bOrg.ID, epB.ID)
	require.NoError(t, err)
	require.True(t, e.Active)

	// Its own endpoint it can deactivate; the dispatcher is told.
	res = br.post("/ui/orgs/"+a.ID+"/endpoints/"+epA.ID+"/active", url.Values{"csrf": {token}, "active": {"false"}})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	e, err = u.manage.Endpoint(ctx, a.ID, epA.ID)
	require.NoError(t, err)
	require.False(t, e.Active)
	u.disp.mu.Lock()
	require.Contains(t, u.disp.woken, epA.ID)
	u.disp.mu.Unlock()

	// Deleting the key ends its sessions at once.
	require.NoError(t, u.manage.DeleteKey(ctx, a.ID, keyA.ID))
	res = br.get("/ui/orgs/" + a.ID + "/")
	require.Equal(t, http.StatusSeeOther, res.status)
	require.True(t, strings.HasPrefix(res.header.Get("Location"), "/ui/signin"))
}

func TestEndpointFormShowsErrors(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := context.Background()
	org := &consign.Org{Name: "Acme", Role: consign.RoleSeller}
	require.NoError(t, u.manage.CreateOrg(ctx, org))
	b := u.browser(t)
	token := b.signIn(adminKey)

	form := b.get("/ui/orgs/" + org.ID + "/endpoints/new")
	require.Equal(t, http.StatusOK, form.status)
	require.Contains(t, form.body, `value="order.fulfilled"`)
	require.Contains(t, form.body, "buyers only")

	res := b.post("/ui/orgs/"+org.ID+"/endpoints", url.Values{
		"csrf": {token}, "url": {"ftp://example.com"}, "rate_limit": {"fast"}, "retry_schedule": {"5s, soon"},
		"headers": {"no colon here"}, "method": {"POST"}, "payload_format": {"envelope"}, "auth_type": {"signature"},
	})
	require.Equal(t, http.StatusUnprocessableEntity, res.status)
	for _, want := range []string{"rate_limit", "must be a number", "retry.schedule", `&#34;soon&#34; is not a duration`, "Name: value"} {
		require.Contains(t, res.body, want)
	}
	require.Contains(t, res.body, `value="ftp://example.com"`, "the form lost what was typed")

	res = b.post("/ui/orgs/"+org.ID+"/endpoints", url.Values{
		"csrf": {token}, "url": {"ftp://example.com"}, "topics": {"order.fulfilled"}, "active": {"on"},
	})
	require.Equal(t, http.StatusUnprocessableEntity, res.status)
	require.Contains(t, res.body, "is available for buyers only")
	require.Contains(t, res.body, `aria-invalid="true"`)

	res = b.post("/ui/orgs/"+org.ID+"/endpoints", url.Values{
		"csrf": {token}, "url": {"http://127.0.0.1:9/hooks"}, "topics": {"order.cancelled", "product.*"}, "active": {"on"},
		"rate_limit": {"5"}, "burst_limit": {"2"}, "headers": {"X-Partner: acme"}, "ordering": {"key"}, "coalesce": {"on"},
		"retry_schedule": {"1s, 10s"}, "retry_max_age": {"1h"}, "max_failures": {"3"}, "failure_window": {"6h"},
	})
	require.Equal(t, http.StatusCreated, res.status, res.body)
	secret := regexp.MustCompile(`value="(whsec_[^"]+)"`).FindStringSubmatch(res.body)
	require.NotNil(t, secret, "the first secret is not shown")
	eps, err := u.manage.Endpoints(ctx, org.ID, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, eps, 1)
	e := eps[0]
	require.Equal(t, []string{"order.cancelled", "product.*"}, e.Topics)
	require.Equal(t, 5.0, e.RateLimit)
	require.Equal(t, 2, e.BurstLimit)
	require.Equal(t, map[string]string{"X-Partner": "acme"}, e.Headers)
	require.Equal(t, consign.OrderingKey, e.Ordering)
	require.True(t, e.Coalesce)
	require.Equal(t, 3, e.FailurePolicy.MaxFailures)

	// The secret is not shown again.
	again := b.get("/ui/orgs/" + org.ID + "/endpoints/" + e.ID)
	require.Equal(t, http.StatusOK, again.status)
	require.NotContains(t, again.body, secret[1])
}

// TestActivateAsksAboutWhatWaited: activating an inactive endpoint from the dashboard
// (its page, the endpoint list, the overview's "needing attention") offers both choices
// for the deliveries that waited, and each does what it says.
func TestActivateAsksAboutWhatWaited(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := context.Background()
	org := &consign.Org{Name: "Acme"}
	require.NoError(t, u.manage.CreateOrg(ctx, org))
	key, err := u.manage.CreateKey(ctx, org.ID, "acme")
	require.NoError(t, err)
	br := u.browser(t)
	token := br.signIn(key.Key)

	// waiting makes an inactive endpoint with one delivery paused for it.
	waiting := func(path string) (string, string) {
		ep, err := u.manage.CreateEndpoint(ctx, org.ID, &manage.EndpointInput{URL: "http://127.0.0.1:9/" + path, Topics: []string{"order.*"}})
		require.NoError(t, err)
		require.NoError(t, u.manage.Deactivate(ctx, org.ID, ep.ID, "failure policy: test"))
		now := time.Now().UTC().Truncate(time.Millisecond)
		w := &store.EventWrite{Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, now), OrgID: org.ID, Type: "order.updated",
			Payload: []byte(`{}`), CreatedAt: now}, Deliveries: []store.NewDelivery{{ID: consign.NewID(consign.PrefixDelivery, now),
			EndpointID: ep.ID, Deadline: now.Add(time.Hour)}}}
		require.NoError(t, u.store.EventsInsert(ctx, []*store.EventWrite{w}))
		require.True(t, w.Deliveries[0].Paused)
		return ep.ID, w.Deliveries[0].ID
	}
	sendEp, sendDlv := waiting("send")
	discardEp, discardDlv := waiting("discard")

	base := "/ui/orgs/" + org.ID + "/"
	for _, page := range []string{"", "endpoints", "endpoints/" + sendEp} {
		res := br.get(base + page)
		require.Equal(t, http.StatusOK, res.status, page)
		require.Contains(t, res.body, "Send what waited", page)
		require.Contains(t, res.body, "Discard what waited", page)
		require.Contains(t, res.body, `name="discard_paused" value="true"`, page)
	}

	for _, c := range []struct {
		ep, dlv, discard, want string
	}{{sendEp, sendDlv, "false", consign.StatusPending}, {discardEp, discardDlv, "true", consign.StatusCancelled}} {
		res := br.post(base+"endpoints/"+c.ep+"/active", url.Values{"csrf": {token}, "active": {"true"}, "discard_paused": {c.discard}})
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		e, err := u.manage.Endpoint(ctx, org.ID, c.ep)
		require.NoError(t, err)
		require.True(t, e.Active)
		d, err := u.store.DeliveryGet(ctx, org.ID, c.dlv)
		require.NoError(t, err)
		require.Equal(t, c.want, d.Status, "discard_paused=%s", c.discard)
	}
}

// TestKeyDeletedHereStopsAtOnce: a key deleted from the dashboard is refused by the API
// (manage.Authenticate, which caches keys it has seen) on the very next request.
func TestKeyDeletedHereStopsAtOnce(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := context.Background()
	org := &consign.Org{Name: "Acme"}
	require.NoError(t, u.manage.CreateOrg(ctx, org))
	k, err := u.manage.CreateKey(ctx, org.ID, "ci")
	require.NoError(t, err)
	_, err = u.manage.Authenticate(ctx, k.Key)
	require.NoError(t, err, "the key works (and is now cached)")

	b := u.browser(t)
	token := b.signIn(adminKey)
	res := b.post("/ui/orgs/"+org.ID+"/keys/"+k.ID+"/delete", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	_, err = u.manage.Authenticate(ctx, k.Key)
	require.Equal(t, consign.EUNAUTHORIZED, consign.ErrorCode(err), "a key deleted from the dashboard still works: %v", err)
}

// TestEndpointHeadersMasked: the endpoint's page and its form show header values masked,
// and saving the form with the masked values as shown keeps the stored ones.
func TestEndpointHeadersMasked(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := context.Background()
	org := &consign.Org{Name: "Acme"}
	require.NoError(t, u.manage.CreateOrg(ctx, org))
	headers := map[string]string{"X-Partner-Key": "pk_live_0123456789", "X-Tenant": "acme"}
	ep, err := u.manage.CreateEndpoint(ctx, org.ID, &manage.EndpointInput{URL: "https://example.com/a", Topics: []string{"order.*"}, Headers: headers})
	require.NoError(t, err)
	b := u.browser(t)
	token := b.signIn(adminKey)
	base := "/ui/orgs/" + org.ID + "/endpoints/" + ep.ID
	for _, p := range []string{base, base + "/edit"} {
		res := b.get(p)
		require.Equal(t, http.StatusOK, res.status)
		require.NotContains(t, res.body, "pk_live_0123456789", p)
		require.Contains(t, res.body, "X-Partner-Key: ••••6789", p)
	}
	res := b.post(base+"/edit", url.Values{"csrf": {token}, "url": {"https://example.com/a"}, "topics": {"order.*"},
		"method": {"POST"}, "payload_format": {"envelope"}, "auth_type": {"signature"}, "ordering": {"none"},
		"description": {"saved as shown"}, "headers": {"X-Partner-Key: ••••6789\nX-Tenant: ••••"}})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	got, err := u.manage.Endpoint(ctx, org.ID, ep.ID)
	require.NoError(t, err)
	require.Equal(t, "saved as shown", got.Description)
	require.Equal(t, headers, got.Headers, "the masked values as shown keep the stored ones")
}
