package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/store"
	"github.com/consign-dev/consign/internal/web"
)

// portalOrgs are two orgs, one with branding, and an endpoint in each.
type portalOrgs struct {
	acme, birch     *consign.Org
	acmeEP, birchEP *manage.CreatedEndpoint
}

func newPortalOrgs(t *testing.T, u *ui) portalOrgs {
	t.Helper()
	ctx := t.Context()
	var p portalOrgs
	p.acme = &consign.Org{Name: "Acme Outdoor", Branding: &consign.Branding{Name: `Acme <b>Partner</b> Hub`,
		LogoURL: "https://cdn.acme.example/logo.png", Color: "#0a7d4f"}}
	p.birch = &consign.Org{Name: "Birch Supply"}
	for _, o := range []*consign.Org{p.acme, p.birch} {
		require.NoError(t, u.manage.CreateOrg(ctx, o))
	}
	var err error
	p.acmeEP, err = u.manage.CreateEndpoint(ctx, p.acme.ID, &manage.EndpointInput{URL: "https://wms.acme.example/hooks", Topics: []string{"order.created"}})
	require.NoError(t, err)
	p.birchEP, err = u.manage.CreateEndpoint(ctx, p.birch.ID, &manage.EndpointInput{URL: "https://erp.birch.example/secret-hooks", Topics: []string{"order.created"}})
	require.NoError(t, err)
	return p
}

// openPortal makes a portal link for org and opens it in a new browser; it returns the
// browser and the CSRF token of its session.
func openPortal(t *testing.T, u *ui, org string, readOnly bool) (*browser, string) {
	t.Helper()
	_, token, err := u.manage.CreatePortalLink(t.Context(), org, manage.PortalLinkInput{ReadOnly: readOnly})
	require.NoError(t, err)
	b := u.browser(t)
	req, err := http.NewRequest(http.MethodHead, u.srv.URL+"/ui/portal/"+token, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, b.do(req).status, "a HEAD does not use the link up")
	res := b.get("/ui/portal/" + token)
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	require.Equal(t, "/ui/orgs/"+org+"/", res.header.Get("Location"))
	home := b.get("/ui/orgs/" + org + "/")
	require.Equal(t, http.StatusOK, home.status, home.body)
	return b, home.csrf(t)
}

// TestPortalSeesOnlyItsOrg: a portal session shows its org with the org's branding
// (escaped), and every other org, admin page, key page and source page is refused, by
// link or typed URL, without a word of the other org.
func TestPortalSeesOnlyItsOrg(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	p := newPortalOrgs(t, u)
	b, csrf := openPortal(t, u, p.acme.ID, false)

	home := b.get("/ui/orgs/" + p.acme.ID + "/")
	require.Contains(t, home.body, `Acme &lt;b&gt;Partner&lt;/b&gt; Hub`, "the brand name, escaped")
	require.NotContains(t, home.body, `<b>Partner</b>`)
	require.Contains(t, home.body, `<img class="logo" src="https://cdn.acme.example/logo.png"`)
	require.Contains(t, home.body, `href="/ui/theme.css?color=0a7d4f"`)
	require.Contains(t, home.header.Get("Content-Security-Policy"), "img-src 'self' data: https://cdn.acme.example;", "the logo's origin, and only it")
	require.Contains(t, home.header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	require.Equal(t, "DENY", home.header.Get("X-Frame-Options"))
	for _, hidden := range []string{"API keys", "Inbound sources", "Partner portal</a>", "org-switch"} {
		require.NotContains(t, home.body, hidden)
	}
	css := b.get("/ui/theme.css?color=0a7d4f")
	require.Equal(t, http.StatusOK, css.status)
	require.Contains(t, css.body, "#0a7d4f")
	require.Equal(t, http.StatusNotFound, b.get("/ui/theme.css?color=red;}body{").status)

	root := b.get("/ui/")
	require.Equal(t, http.StatusSeeOther, root.status)
	require.Equal(t, "/ui/orgs/"+p.acme.ID+"/", root.header.Get("Location"))

	acme, birch := "/ui/orgs/"+p.acme.ID+"/", "/ui/orgs/"+p.birch.ID+"/"
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", acme + "endpoints", http.StatusOK},
		{"GET", acme + "endpoints/" + p.acmeEP.ID, http.StatusOK},
		{"GET", acme + "deliveries", http.StatusOK},
		{"GET", acme + "events", http.StatusOK},
		{"GET", acme + "endpoints/new", http.StatusOK},
		{"GET", birch, http.StatusNotFound},
		{"GET", birch + "endpoints", http.StatusNotFound},
		{"GET", birch + "endpoints/" + p.birchEP.ID, http.StatusNotFound},
		{"GET", acme + "endpoints/" + p.birchEP.ID, http.StatusNotFound},
		{"GET", birch + "deliveries", http.StatusNotFound},
		{"GET", acme + "keys", http.StatusNotFound},
		{"GET", acme + "sources", http.StatusNotFound},
		{"GET", acme + "sources/new", http.StatusNotFound},
		{"GET", acme + "portal", http.StatusNotFound},
		{"GET", "/ui/switch?org=" + p.birch.ID, http.StatusNotFound},
		{"POST", "/ui/orgs", http.StatusNotFound},
		{"POST", acme + "keys", http.StatusNotFound},
		{"POST", acme + "branding", http.StatusNotFound},
		{"POST", acme + "portal-links", http.StatusNotFound},
		{"POST", birch + "endpoints", http.StatusNotFound},
		{"POST", birch + "endpoints/" + p.birchEP.ID + "/delete", http.StatusNotFound},
		{"POST", acme + "endpoints/" + p.birchEP.ID + "/delete", http.StatusNotFound},
	} {
		var res page
		if tc.method == "GET" {
			res = b.get(tc.path)
		} else {
			res = b.post(tc.path, url.Values{"csrf": {csrf}, "confirm": {"yes"}, "name": {"x"}, "url": {"https://x.example/"}, "topics": {"order.created"}})
		}
		require.Equal(t, tc.status, res.status, "%s %s: %s", tc.method, tc.path, res.body)
		require.NotContains(t, res.body, "Birch", "%s %s", tc.method, tc.path)
		require.NotContains(t, res.body, "erp.birch.example", "%s %s", tc.method, tc.path)
	}
	_, err := u.store.EndpointGet(t.Context(), p.birch.ID, p.birchEP.ID)
	require.NoError(t, err, "the other org's endpoint is still there")

	// The session cookie is no API credential.
	req, err := http.NewRequest(http.MethodGet, u.srv.URL+"/v1/orgs/"+p.acme.ID, nil)
	require.NoError(t, err)
	for _, c := range b.hc.Jar.Cookies(req.URL) {
		require.NotContains(t, c.Value, manage.KeyPrefix)
	}
}

// TestPortalManagesItsEndpoints: a portal session creates an endpoint with the topics
// its org's role allows, and is refused the others with the same rule as the API.
func TestPortalManagesItsEndpoints(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := t.Context()
	buyer := &consign.Org{Name: "Acme Seller", Role: consign.RoleSeller}
	require.NoError(t, u.manage.CreateOrg(ctx, buyer))
	types, err := u.store.EventTypeList(ctx)
	require.NoError(t, err)
	var sellerOnly string
	for _, et := range types {
		if !buyer.Role.May(et.AvailableFor) {
			sellerOnly = et.Name
			break
		}
	}
	require.NotEmpty(t, sellerOnly, "the catalog has a topic a seller may not take")

	b, csrf := openPortal(t, u, buyer.ID, false)
	base := "/ui/orgs/" + buyer.ID + "/endpoints"
	res := b.post(base, url.Values{"csrf": {csrf}, "url": {"https://wms.acme.example/a"}, "topics": {sellerOnly}})
	require.Equal(t, http.StatusUnprocessableEntity, res.status)
	require.Contains(t, res.body, "is available for")
	res = b.post(base, url.Values{"csrf": {csrf}, "url": {"https://wms.acme.example/a"}, "topics": {"order.cancelled"}})
	require.Equal(t, http.StatusCreated, res.status, res.body)
	eps, err := u.store.EndpointList(ctx, buyer.ID, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, eps, 1)
	require.Equal(t, []string{"order.cancelled"}, eps[0].Topics)
}

// TestPortalReadOnly: a read-only session shows no control that changes anything, and
// the server refuses every change it is sent anyway (a forged form with a valid CSRF
// token), changing nothing.
func TestPortalReadOnly(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	p := newPortalOrgs(t, u)
	b, csrf := openPortal(t, u, p.acme.ID, true)
	acme := "/ui/orgs/" + p.acme.ID + "/"
	ep := acme + "endpoints/" + p.acmeEP.ID

	for _, path := range []string{"", "endpoints", "endpoints/" + p.acmeEP.ID, "deliveries", "deliveries?endpoint=" + p.acmeEP.ID, "events"} {
		res := b.get(acme + path)
		require.Equal(t, http.StatusOK, res.status, path)
		require.Contains(t, res.body, "Read-only", path)
		// The only form that posts is sign-out.
		require.Equal(t, 1, strings.Count(res.body, `method="post"`), "%s shows a form that changes something:\n%s", path, res.body)
		for _, control := range []string{"New endpoint", "Send test", "Rotate secrets", "Deactivate", "Recover", "Edit</a>"} {
			require.NotContains(t, res.body, control, path)
		}
	}

	form := url.Values{"csrf": {csrf}, "url": {"https://x.example/"}, "topics": {"order.created"}, "active": {"false"},
		"type": {"order.created"}, "grace": {"1h"}, "since": {"2026-01-01T00:00"}}
	for _, path := range []string{"endpoints", "endpoints/" + p.acmeEP.ID + "/edit", "endpoints/" + p.acmeEP.ID + "/active",
		"endpoints/" + p.acmeEP.ID + "/delete", "endpoints/" + p.acmeEP.ID + "/test", "endpoints/" + p.acmeEP.ID + "/secrets",
		"endpoints/" + p.acmeEP.ID + "/secrets/rotate", "endpoints/" + p.acmeEP.ID + "/recover", "deliveries/dlv_x/retry"} {
		res := b.post(acme+path, form)
		require.Equal(t, http.StatusForbidden, res.status, "POST %s: %s", path, res.body)
		require.Contains(t, res.body, "read-only", path)
	}
	for _, path := range []string{"endpoints/new", "endpoints/" + p.acmeEP.ID + "/edit"} {
		require.Equal(t, http.StatusForbidden, b.get(acme+path).status, path)
	}
	got, err := u.store.EndpointGet(t.Context(), p.acme.ID, p.acmeEP.ID)
	require.NoError(t, err)
	require.True(t, got.Active)
	require.Equal(t, p.acmeEP.UpdatedAt, got.UpdatedAt, "nothing changed")
	secrets, err := u.store.SecretList(t.Context(), p.acmeEP.ID)
	require.NoError(t, err)
	require.Len(t, secrets, 1)
	require.Equal(t, http.StatusOK, b.get(ep).status)

	// Signing out still works, and the page after says the session ended.
	require.Equal(t, http.StatusSeeOther, b.post("/ui/signout", url.Values{"csrf": {csrf}}).status)
	res := b.get(acme)
	require.Equal(t, http.StatusUnauthorized, res.status)
	require.Contains(t, res.body, "Your session has ended")
	require.Contains(t, res.body, "Ask the platform that sent you here for a new link")
}

// fakeClock is a settable clock for the dashboard's sessions.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestPortalSessionLifetime: a portal session ends after 30 minutes without a request,
// and 12 hours after the link was opened however busy it is; then the portal says so.
func TestPortalSessionLifetime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		steps []time.Duration // wait before each request
		last  int             // status of the last request
	}{
		{"active", []time.Duration{29 * time.Minute, 29 * time.Minute, 29 * time.Minute}, http.StatusOK},
		{"idle", []time.Duration{10 * time.Minute, 31 * time.Minute}, http.StatusUnauthorized},
		{"at most 12 hours", func() []time.Duration {
			var s []time.Duration
			for range 36 { // 36 × 20 min = 12 h
				s = append(s, 20*time.Minute)
			}
			return s
		}(), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := &fakeClock{t: time.Now()}
			u := newUI(t, func(c *web.Config) { c.Now = clk.now })
			p := newPortalOrgs(t, u)
			b, _ := openPortal(t, u, p.acme.ID, false)
			var res page
			for i, d := range tt.steps {
				clk.advance(d)
				res = b.get("/ui/orgs/" + p.acme.ID + "/endpoints")
				if i < len(tt.steps)-1 {
					require.Equal(t, http.StatusOK, res.status, "request %d", i)
				}
			}
			require.Equal(t, tt.last, res.status)
			if tt.last == http.StatusUnauthorized {
				require.Contains(t, res.body, "Your session has ended")
			}
		})
	}
}

// TestFrameAncestors: the dashboard refuses every frame by default; with frame
// ancestors it names them instead, and its cookies are SameSite=None; Secure where the
// browser keeps such cookies (HTTPS, loopback), so they are sent inside the iframe.
func TestFrameAncestors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		ancestors []string
		host      string // the Host the browser asked for
		proto     string // X-Forwarded-Proto
		csp       string
		xfo       string
		site      http.SameSite
		secure    bool
	}{
		{"default", nil, "", "", "frame-ancestors 'none'", "DENY", http.SameSiteLaxMode, false},
		{"default behind https", nil, "", "https", "frame-ancestors 'none'", "DENY", http.SameSiteLaxMode, true},
		{"set, https", []string{"https://app.example.com", "https://*.shop.example"}, "consign.example.com", "https",
			"frame-ancestors https://app.example.com https://*.shop.example;", "", http.SameSiteNoneMode, true},
		{"set, loopback", []string{"https://app.example.com"}, "", "", "frame-ancestors https://app.example.com;", "", http.SameSiteNoneMode, true},
		{"set, plain http", []string{"https://app.example.com"}, "consign.internal:8700", "", "frame-ancestors https://app.example.com;", "",
			http.SameSiteLaxMode, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := newUI(t, func(c *web.Config) { c.FrameAncestors = tc.ancestors })
			o := &consign.Org{Name: "Acme"}
			require.NoError(t, u.manage.CreateOrg(t.Context(), o))
			_, token, err := u.manage.CreatePortalLink(t.Context(), o.ID, manage.PortalLinkInput{})
			require.NoError(t, err)
			req, err := http.NewRequest(http.MethodGet, u.srv.URL+"/ui/portal/"+token, nil)
			require.NoError(t, err)
			if tc.host != "" {
				req.Host = tc.host
			}
			if tc.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tc.proto)
			}
			res := u.browser(t).do(req)
			require.Equal(t, http.StatusSeeOther, res.status, res.body)
			require.Contains(t, res.header.Get("Content-Security-Policy"), tc.csp)
			require.Equal(t, tc.xfo, res.header.Get("X-Frame-Options"))
			cookies := (&http.Response{Header: res.header}).Cookies()
			require.NotEmpty(t, cookies)
			for _, c := range cookies {
				require.Equal(t, tc.site, c.SameSite, c.Name)
				require.Equal(t, tc.secure, c.Secure, c.Name)
				require.Equal(t, tc.site == http.SameSiteNoneMode, c.Partitioned, c.Name)
				require.True(t, c.HttpOnly, c.Name)
			}
		})
	}
}

// TestDashboardBrandingAndPortalLinks: the admin sets an org's branding on its portal
// page (each field's error shown under it) and makes a link there; an org key sees the
// branding and cannot change it.
func TestDashboardBrandingAndPortalLinks(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := t.Context()
	o := &consign.Org{Name: "Acme"}
	require.NoError(t, u.manage.CreateOrg(ctx, o))
	b := u.browser(t)
	csrf := b.signIn(adminKey)
	page := "/ui/orgs/" + o.ID + "/portal"
	require.Equal(t, http.StatusOK, b.get(page).status)

	res := b.post("/ui/orgs/"+o.ID+"/branding", url.Values{"csrf": {csrf}, "name": {"Acme Hub"}, "color": {"green"}, "logo_url": {"http://x.example/l.png"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.status)
	require.Contains(t, res.body, "branding.color")
	require.Contains(t, res.body, "branding.logo_url")
	require.Contains(t, res.body, `value="Acme Hub"`, "what was typed is kept")

	res = b.post("/ui/orgs/"+o.ID+"/branding", url.Values{"csrf": {csrf}, "name": {"Acme Hub"}, "color": {"#0A7D4F"}})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	got, err := u.store.OrgGet(ctx, o.ID)
	require.NoError(t, err)
	require.Equal(t, &consign.Branding{Name: "Acme Hub", Color: "#0a7d4f"}, got.Branding)

	res = b.post("/ui/orgs/"+o.ID+"/portal-links", url.Values{"csrf": {csrf}, "expires_in": {"8h"}, "read_only": {"true"}})
	require.Equal(t, http.StatusCreated, res.status, res.body)
	require.Regexp(t, `value="`+u.srv.URL+`/ui/portal/cpl_[A-Za-z0-9_-]{43}"`, res.body)
	require.Contains(t, res.body, "read-only")

	// An org key sees the branding, not the form.
	k, err := u.manage.CreateKey(ctx, o.ID, "ops")
	require.NoError(t, err)
	ob := u.browser(t)
	ocsrf := ob.signIn(k.Key)
	res = ob.get(page)
	require.Equal(t, http.StatusOK, res.status)
	require.Contains(t, res.body, "Acme Hub")
	require.NotContains(t, res.body, `action="/ui/orgs/`+o.ID+`/branding"`)
	res = ob.post("/ui/orgs/"+o.ID+"/branding", url.Values{"csrf": {ocsrf}, "name": {"Mine"}})
	require.Equal(t, http.StatusForbidden, res.status)
}

// FuzzCheckFrameAncestors: an accepted origin cannot add to or end the CSP directive it
// is written into.
func FuzzCheckFrameAncestors(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "https://*.example.com:8443", "'self'", "http://[::1]:8080",
		"https://a.example; script-src *", "https://a.example/x", "https://a.example b", "'unsafe-inline'", "data:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if web.CheckFrameAncestors([]string{s}) != nil || s == "'self'" {
			return
		}
		if strings.ContainsAny(s, " \t\r\n;,'\"") || !(strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")) {
			t.Fatalf("accepted %q", s)
		}
	})
}
