package web_test

import (
	"context"
	"encoding/json"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/store"
)

// TestCatalogShowsVersions: the event types page names each type's newest version, and
// a type's page lists its versions, newest first, with their downgrades (escaped).
func TestCatalogShowsVersions(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := context.Background()
	org := &consign.Org{Name: "Acme"}
	require.NoError(t, u.manage.CreateOrg(ctx, org))
	for _, v := range []manage.EventTypeVersionInput{
		{Version: "2026-06-01", Downgrade: `function downgrade(p) { p.number = p.po_number; return p }`},
		{Version: "2026-12-01", Downgrade: `function downgrade(p) { if (p.total < 0) { throw new Error("<bad>") } return p }`,
			Schema: json.RawMessage(`{"type":"object","required":["amount"]}`)},
	} {
		_, err := u.manage.AddEventTypeVersion(ctx, "purchase_order.created", &v)
		require.NoError(t, err)
	}
	b := u.browser(t)
	b.signIn(adminKey)
	o := "/ui/orgs/" + org.ID + "/"

	res := b.get(o + "event-types")
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Contains(t, res.body, `<a href="/ui/orgs/`+org.ID+`/event-types/purchase_order.created"><code>purchase_order.created</code></a>`)
	require.Contains(t, res.body, `<code>2026-12-01</code> <span class="muted">(2)</span>`)
	require.Contains(t, res.body, `aria-current="page">Event types</a>`)

	res = b.get(o + "event-types/purchase_order.created")
	require.Equal(t, http.StatusOK, res.status, res.body)
	newest, oldest := strings.Index(res.body, "<code>2026-12-01</code>"), strings.Index(res.body, "<code>2026-06-01</code>")
	require.True(t, newest > 0 && oldest > newest, "versions newest first")
	require.Contains(t, res.body, `throw new Error(&#34;&lt;bad&gt;&#34;)`)
	require.Contains(t, res.body, `&#34;required&#34;: [`)
	require.Equal(t, http.StatusNotFound, b.get(o+"event-types/no.such").status)

	res = b.get(o + "event-types/order.created")
	require.Contains(t, res.body, "Not versioned")
}


// TestEndpointFormShapesPayloads: the endpoint form takes a pinned version, a filter and
// a transformation; each fault shows under its own field with what was typed kept, and
// an edit shows them again.
func TestEndpointFormShapesPayloads(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := context.Background()
	org := &consign.Org{Name: "Acme"}
	require.NoError(t, u.manage.CreateOrg(ctx, org))
	b := u.browser(t)
	token := b.signIn(adminKey)
	o := "/ui/orgs/" + org.ID + "/"
	form := func(version, filter, code string) url.Values {
		return url.Values{"csrf": {token}, "url": {"http://127.0.0.1:9/hooks"}, "topics": {"purchase_order.created"}, "active": {"on"},
			"method": {"POST"}, "payload_format": {"envelope"}, "auth_type": {"signature"},
			"version": {version}, "filter": {filter}, "transformation": {code}}
	}
	tests := []struct {
		name, version, filter, code string
		field, msg                  string
	}{
		{"version not a date", "last year", "", "", "version-err", "is not a date YYYY-MM-DD"},
		{"filter not JSON", "", `{"payload": `, "", "filter-err", "is not valid JSON"},
		{"unknown operator", "", `{"payload": {"total": {"$gtt": 5}}}`, "", "filter-err", "$gtt"},
		{"code that does not compile", "", "", "function handler(w) {", "transformation-err", "does not compile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := b.post(o+"endpoints", form(tt.version, tt.filter, tt.code))
			require.Equal(t, http.StatusUnprocessableEntity, res.status, res.body)
			require.Regexp(t, `id="`+tt.field+`" class="field-error">[^<]*`+regexp.QuoteMeta(html.EscapeString(tt.msg)), res.body)
			if tt.filter != "" {
				require.Contains(t, res.body, ">"+template.HTMLEscapeString(tt.filter)+"</textarea>", "the form kept what was typed")
			}
		})
	}

	code := "function handler(w) {\r\n  w.payload = {po: w.payload.reference};\r\n  return w;\r\n}"
	res := b.post(o+"endpoints", form("2026-06-01", `{"payload": {"total": {"$gte": 500}}}`, code))
	require.Equal(t, http.StatusCreated, res.status, res.body)
	eps, err := u.manage.Endpoints(ctx, org.ID, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, eps, 1)
	e := eps[0]
	require.Equal(t, "2026-06-01", e.Version)
	require.JSONEq(t, `{"payload": {"total": {"$gte": 500}}}`, string(e.Filter))
	require.Equal(t, "function handler(w) {\n  w.payload = {po: w.payload.reference};\n  return w;\n}", e.Transformation, "lines end in LF")
	require.Contains(t, res.body, "pinned to <code>2026-06-01</code>")

	edit := b.get(o + "endpoints/" + e.ID + "/edit")
	require.Contains(t, edit.body, `name="version" value="2026-06-01"`)
	require.Contains(t, edit.body, "return w;\n}</textarea>")
	// Emptied, each is removed.
	res = b.post(o+"endpoints/"+e.ID+"/edit", form("", "", ""))
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	got, err := u.manage.Endpoint(ctx, org.ID, e.ID)
	require.NoError(t, err)
	require.Empty(t, got.Version)
	require.Empty(t, got.Filter)
	require.Empty(t, got.Transformation)
}
