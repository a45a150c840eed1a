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
	"time"

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

// TestRunOnASample: "Run on a sample" runs the code typed in the form on the org's last
// event of the chosen type, or on the payload typed, in the endpoint's pinned version;
// without JavaScript the form comes back with the result, with htmx the result alone.
func TestRunOnASample(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := context.Background()
	org := &consign.Org{Name: "Acme"}
	require.NoError(t, u.manage.CreateOrg(ctx, org))
	_, err := u.manage.AddEventTypeVersion(ctx, "purchase_order.created", &manage.EventTypeVersionInput{Version: "2026-12-01",
		Downgrade: `function downgrade(p) { p.total = p.amount / 100; delete p.amount; return p }`})
	require.NoError(t, err)
	b := u.browser(t)
	token := b.signIn(adminKey)
	o := "/ui/orgs/" + org.ID + "/"
	code := `function handler(w) { w.payload.seen = w.type; w.headers["X-Kind"] = "po"; return w }`
	try := func(extra url.Values, hdr ...string) page {
		v := url.Values{"csrf": {token}, "url": {"http://127.0.0.1:9/po"}, "method": {"POST"}, "headers": {"X-Partner: acme"},
			"transformation": {code}, "sample_type": {"purchase_order.created"}}
		for k, x := range extra {
			v[k] = x
		}
		return b.post(o+"transformation/test", v, hdr...)
	}

	res := try(nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	require.Contains(t, res.body, "a test payload: no purchase_order.created event was published in this org yet")
	require.Contains(t, res.body, `&#34;seen&#34;: &#34;purchase_order.created&#34;`)
	require.Contains(t, res.body, "<code>X-Kind: po</code>")
	require.Contains(t, res.body, "<h1>New endpoint</h1>", "without htmx the whole form comes back")
	require.Contains(t, res.body, ">"+template.HTMLEscapeString(code)+"</textarea>", "with the code as typed")

	require.NoError(t, u.store.EventsInsert(ctx, []*store.EventWrite{{Event: &consign.Event{ID: consign.NewID(consign.PrefixEvent, time.Now()),
		OrgID: org.ID, Type: "purchase_order.created", Payload: json.RawMessage(`{"po":"PO-7","amount":1250}`), CreatedAt: time.Now().UTC()}}}))
	tests := []struct {
		name  string
		extra url.Values
		want  []string
	}{
		{"the last event", nil, []string{"the last purchase_order.created event, evt_", `&#34;amount&#34;: 1250`}},
		{"pinned: the downgraded payload", url.Values{"version": {"2026-06-01"}}, []string{`&#34;total&#34;: 12.5`}},
		{"a payload typed", url.Values{"sample_payload": {`{"po":"PO-8"}`}}, []string{"the payload typed above", `&#34;po&#34;: &#34;PO-8&#34;`}},
		{"a payload not JSON", url.Values{"sample_payload": {`{"po":`}}, []string{"The sample payload is not valid JSON"}},
		{"code that throws", url.Values{"transformation": {`function handler(w) { throw new Error("no po") }`}}, []string{"the transformation threw: Error: no po"}},
		{"code that does not compile", url.Values{"transformation": {`function handler(w) {`}}, []string{"does not compile"}},
		{"no code", url.Values{"transformation": {""}}, []string{"Write a transformation first"}},
		{"a cancel", url.Values{"transformation": {`function handler(w) { w.cancel = true; return w }`}}, []string{"nothing would be sent"}},
		{"a private URL", url.Values{"transformation": {`function handler(w) { w.url = "ftp://x"; return w }`}}, []string{"webhook.url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := try(tt.extra, "HX-Request", "true")
			require.Equal(t, http.StatusOK, res.status, res.body)
			require.True(t, strings.HasPrefix(strings.TrimSpace(res.body), `<div id="transformation-result"`), res.body)
			for _, w := range tt.want {
				require.Contains(t, res.body, w)
			}
		})
	}
}
