package app_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
)

// clock is a settable clock for the app's components.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestPortalLinks: the API makes one-time portal links with an absolute URL; opening one
// signs a browser into its org's portal once; a used, expired or unknown link gets a
// page that says so. On both stores.
func TestPortalLinks(t *testing.T) {
	t.Parallel()
	onEachStore(t, func(t *testing.T, mods ...func(*app.Config)) {
		clk := &clock{t: time.Now().UTC()}
		e := start(t, append(mods, func(c *app.Config) {
			c.Now, c.PublicURL = clk.now, ""
		})...)
		acme, birch := e.newOrg("Acme"), e.newOrg("Birch")
		links := "/v1/orgs/" + acme.id + "/portal-links"

		t.Run("bounds", func(t *testing.T) {
			for _, tc := range []struct {
				body   any
				status int
				field  string
			}{
				{nil, http.StatusCreated, ""},
				{map[string]any{}, http.StatusCreated, ""},
				{map[string]any{"expires_in": "1m"}, http.StatusCreated, ""},
				{map[string]any{"expires_in": "7d", "read_only": true}, http.StatusCreated, ""},
				{map[string]any{"expires_in": "59s"}, http.StatusUnprocessableEntity, "expires_in"},
				{map[string]any{"expires_in": "169h"}, http.StatusUnprocessableEntity, "expires_in"},
				{map[string]any{"expires_in": "soon"}, http.StatusBadRequest, "expires_in"},
				{map[string]any{"expires_in": 3600}, http.StatusBadRequest, "expires_in"},
				{map[string]any{"read_only": "yes"}, http.StatusBadRequest, "read_only"},
				{map[string]any{"org": birch.id}, http.StatusBadRequest, "org"},
			} {
				r := e.c.raw("POST", links, tc.body, acme.key, nil)
				require.Equal(t, tc.status, r.status, "%v: %s", tc.body, r.body)
				if tc.field != "" {
					require.Equal(t, []string{tc.field}, requireProblem(t, r).fields(), "%v", tc.body)
				}
			}
		})

		t.Run("reply", func(t *testing.T) {
			l := e.c.must(http.StatusCreated, "POST", links, map[string]any{"expires_in": "30m", "read_only": true}, adminKey)
			u := l["url"].(string)
			require.Regexp(t, `^`+e.app.URL()+`/ui/portal/cpl_[A-Za-z0-9_-]{43}$`, u, "an absolute URL, as ingest_url")
			require.Equal(t, true, l["read_only"])
			exp, err := time.Parse(time.RFC3339, l["expires_at"].(string))
			require.NoError(t, err)
			require.WithinDuration(t, clk.now().Add(30*time.Minute), exp, time.Second)
		})

		t.Run("isolation", func(t *testing.T) {
			// Another org's key is told the org does not exist, as everywhere in the API.
			r := e.c.raw("POST", links, nil, birch.key, nil)
			require.Equal(t, http.StatusNotFound, r.status, "%s", r.body)
			requireProblem(t, r)
			r = e.c.raw("POST", "/v1/orgs/org_01JAAAAAAAAAAAAAAAAAAAAAAA/portal-links", nil, adminKey, nil)
			require.Equal(t, http.StatusNotFound, r.status, "%s", r.body)
			r = e.c.raw("POST", links, nil, "", nil)
			require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
		})

		open := func(t *testing.T, u string) (*http.Response, string) {
			t.Helper()
			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			res, err := hc.Get(u)
			require.NoError(t, err)
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			return res, string(b)
		}

		t.Run("once", func(t *testing.T) {
			u := e.c.must(http.StatusCreated, "POST", links, nil, acme.key)["url"].(string)
			res, body := open(t, u)
			require.Equal(t, http.StatusSeeOther, res.StatusCode, body)
			require.Equal(t, "/ui/orgs/"+acme.id+"/", res.Header.Get("Location"))
			var session *http.Cookie
			for _, c := range res.Cookies() {
				if c.Name == "consign_session" {
					session = c
				}
			}
			require.NotNil(t, session, "a session cookie")
			require.True(t, session.HttpOnly)
			require.Equal(t, http.SameSiteLaxMode, session.SameSite)
			require.NotContains(t, session.Value, "csk_", "no API key reaches the browser")

			res, body = open(t, u)
			require.Equal(t, http.StatusGone, res.StatusCode)
			require.Contains(t, body, "already used")
			require.Contains(t, body, "Ask the platform that sent you here for a new link")
			require.Empty(t, res.Cookies())
		})

		t.Run("expired", func(t *testing.T) {
			u := e.c.must(http.StatusCreated, "POST", links, map[string]any{"expires_in": "5m"}, acme.key)["url"].(string)
			clk.advance(5 * time.Minute)
			res, body := open(t, u)
			require.Equal(t, http.StatusGone, res.StatusCode)
			require.Contains(t, body, "expired at")
			require.Contains(t, body, "Ask the platform that sent you here for a new link")
		})

		t.Run("unknown", func(t *testing.T) {
			for _, tok := range []string{
				"cpl_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)), // well formed, never made
				"cpl_short", "csk_" + strings.Repeat("A", 43), "%00", strings.Repeat("x", 5000),
			} {
				res, body := open(t, e.app.URL()+"/ui/portal/"+tok)
				require.Equal(t, http.StatusNotFound, res.StatusCode, tok)
				require.Contains(t, body, "Ask the platform that sent you here for a new link", tok)
			}
		})

		t.Run("org deleted", func(t *testing.T) {
			gone := e.newOrg("Gone")
			u := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+gone.id+"/portal-links", nil, adminKey)["url"].(string)
			e.c.must(http.StatusNoContent, "DELETE", "/v1/orgs/"+gone.id, nil, adminKey)
			res, _ := open(t, u)
			require.Equal(t, http.StatusNotFound, res.StatusCode)
		})
	})
}

// TestPortalLinkURLUsesThePublicURL: behind a proxy the link is built on
// CONSIGN_PUBLIC_URL, like a source's ingest_url.
func TestPortalLinkURLUsesThePublicURL(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *app.Config) { c.PublicURL = "https://consign.example.com/" })
	o := e.newOrg("Acme")
	l := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/portal-links", nil, o.key)
	require.Regexp(t, `^https://consign\.example\.com/ui/portal/cpl_[A-Za-z0-9_-]{43}$`, l["url"])
	src := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/sources", map[string]any{"name": "s", "topic": "order.created"}, o.key)
	require.True(t, strings.HasPrefix(src["ingest_url"].(string), "https://consign.example.com/in/"))
}

// TestBranding: PATCH /v1/orgs/{org} sets, merges and removes an org's branding; every
// field is checked and named; GET shows it, to the org's own key too. On both stores.
func TestBranding(t *testing.T) {
	t.Parallel()
	onEachStore(t, func(t *testing.T, mods ...func(*app.Config)) {
		e := start(t, mods...)
		o := e.newOrg("Acme")
		path := "/v1/orgs/" + o.id
		png := "data:image/png;base64," + base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\n"))

		got := e.c.must(http.StatusOK, "PATCH", path, map[string]any{"branding": map[string]any{
			"name": "  Acme Partner Hub ", "logo_url": "https://cdn.acme.example/logo.svg", "color": "#0A7D4F"}}, adminKey)
		want := map[string]any{"name": "Acme Partner Hub", "logo_url": "https://cdn.acme.example/logo.svg", "color": "#0a7d4f"}
		require.Equal(t, want, got["branding"])
		require.Equal(t, "Acme", got["name"], "a field not given keeps its value")

		// A field given replaces that field; the others stay.
		got = e.c.must(http.StatusOK, "PATCH", path, map[string]any{"branding": map[string]any{"logo_url": png}}, adminKey)
		want["logo_url"] = png
		require.Equal(t, want, got["branding"])
		var fetched map[string]any
		e.c.get(path, o.key, &fetched)
		require.Equal(t, want, fetched["branding"], "the org's own key sees it")

		// Only the admin key changes an org.
		r := e.c.raw("PATCH", path, map[string]any{"branding": map[string]any{"name": "Mine"}}, o.key, nil)
		require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)

		for _, tc := range []struct {
			name     string
			branding any
			fields   []string
		}{
			{"long name", map[string]any{"name": strings.Repeat("é", 81)}, []string{"branding.name"}},
			{"name on two lines", map[string]any{"name": "Acme\nHub"}, []string{"branding.name"}},
			{"colour word", map[string]any{"color": "green"}, []string{"branding.color"}},
			{"short colour", map[string]any{"color": "#0a7"}, []string{"branding.color"}},
			{"http logo", map[string]any{"logo_url": "http://cdn.acme.example/logo.png"}, []string{"branding.logo_url"}},
			{"script logo", map[string]any{"logo_url": "javascript:alert(1)"}, []string{"branding.logo_url"}},
			{"html data logo", map[string]any{"logo_url": "data:text/html;base64,PHNjcmlwdD4="}, []string{"branding.logo_url"}},
			{"data logo not base64", map[string]any{"logo_url": "data:image/png,abc"}, []string{"branding.logo_url"}},
			{"data logo too large", map[string]any{"logo_url": "data:image/png;base64," + base64.StdEncoding.EncodeToString(make([]byte, 33<<10))}, []string{"branding.logo_url"}},
			{"logo with a quote", map[string]any{"logo_url": `https://cdn.acme.example/a".png`}, []string{"branding.logo_url"}},
			{"all at once", map[string]any{"name": strings.Repeat("a", 81), "color": "red", "logo_url": "ftp://x"},
				[]string{"branding.name", "branding.color", "branding.logo_url"}},
			{"unknown field", map[string]any{"font": "Comic Sans"}, []string{"font"}},
		} {
			r := e.c.raw("PATCH", path, map[string]any{"branding": tc.branding}, adminKey, nil)
			require.Contains(t, []int{http.StatusUnprocessableEntity, http.StatusBadRequest}, r.status, "%s: %s", tc.name, r.body)
			require.ElementsMatch(t, tc.fields, requireProblem(t, r).fields(), tc.name)
		}
		e.c.get(path, adminKey, &fetched)
		require.Equal(t, want, fetched["branding"], "refused changes change nothing")

		// null removes the branding.
		got = e.c.must(http.StatusOK, "PATCH", path, map[string]any{"branding": nil}, adminKey)
		require.NotContains(t, got, "branding")

		// An org may be created with its branding.
		created := e.c.must(http.StatusCreated, "POST", "/v1/orgs", map[string]any{"name": "Birch", "branding": map[string]any{"color": "#112233"}}, adminKey)
		require.Equal(t, map[string]any{"name": "", "logo_url": "", "color": "#112233"}, created["branding"])
	})
}
