package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/store"
)

// TestPages runs the real app, makes some traffic, and opens every page without a
// browser: each renders, and the delivery filters select what they say.
func TestPages(t *testing.T) {
	t.Parallel()
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.Contains(r.URL.Path, "fail") {
			http.Error(w, `{"error":"down for maintenance"}`, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"ok":true,"ref":"VND-<7>","id":42}`)
	}))
	t.Cleanup(sink.Close)
	a, err := app.Start(context.Background(), app.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), InsecureTargets: true, AdminKey: adminKey,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	ctx := context.Background()

	org := &consign.Org{Name: "Acme <Outdoor>"}
	require.NoError(t, a.Manage.CreateOrg(ctx, org))
	good, err := a.Manage.CreateEndpoint(ctx, org.ID, &manage.EndpointInput{URL: sink.URL + "/ok", Topics: []string{"order.*"},
		ResponseReferencePointer: "/ref", ResponseFields: manage.Pointers{"vendor_id": "/id", "acknowledged": "/ok"}})
	require.NoError(t, err)
	bad, err := a.Manage.CreateEndpoint(ctx, org.ID, &manage.EndpointInput{URL: sink.URL + "/fail", Topics: []string{"product.*"},
		Retry: consign.RetryPolicy{Schedule: []consign.Duration{consign.Duration(time.Hour)}}, Filter: json.RawMessage(`{"payload": {"n": {"$gte": 3}}}`)})
	require.NoError(t, err)

	b := newBrowser(t, a.URL())
	token := b.signIn(adminKey)
	o := "/ui/orgs/" + org.ID + "/"

	for _, ev := range []string{`{"type":"order.created","payload":{"n":1}}`, `{"type":"order.fulfilled","payload":{"n":2}}`,
		`{"type":"product.selected","payload":{"n":3,"html":"<script>alert(1)</script>"}}`, `{"type":"product.selected","payload":{"n":0}}`} {
		req, err := http.NewRequest(http.MethodPost, a.URL()+"/v1/orgs/"+org.ID+"/events", strings.NewReader(ev))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusAccepted, res.StatusCode)
	}
	// Wait until the two order deliveries succeeded and the product one failed once.
	require.Eventually(t, func() bool {
		ds, err := a.Store.DeliveryList(ctx, org.ID, store.DeliveryFilter{Page: store.Page{Limit: 10}})
		require.NoError(t, err)
		done := 0
		for _, d := range ds {
			if d.Status == consign.StatusSucceeded || d.AttemptsCount > 0 {
				done++
			}
		}
		return done == 3
	}, 10*time.Second, 10*time.Millisecond)

	dlvRE := regexp.MustCompile(`deliveries/(dlv_[0-9A-Z]{26})"`)
	rows := func(path string) []string {
		t.Helper()
		res := b.get(path)
		require.Equal(t, http.StatusOK, res.status, "%s: %s", path, res.body)
		var ids []string
		for _, m := range dlvRE.FindAllStringSubmatch(res.body, -1) {
			ids = append(ids, m[1])
		}
		return ids
	}
	require.Len(t, rows(o+"deliveries"), 3)
	require.Len(t, rows(o+"deliveries?topic=order.*"), 2)
	require.Len(t, rows(o+"deliveries?topic=product.selected"), 1)
	require.Len(t, rows(o+"deliveries?endpoint="+bad.ID), 1)
	require.Len(t, rows(o+"deliveries?status=succeeded"), 2)
	// What the endpoint's reply named is on the delivery's page, escaped.
	page := b.get(o + "deliveries/" + rows(o + "deliveries?status=succeeded")[0])
	require.Contains(t, page.body, `<dt>Reference from the reply</dt><dd><code>VND-&lt;7&gt;</code></dd>`)
	require.Contains(t, page.body, `<dt>vendor_id</dt><dd><code>42</code></dd>`)
	past := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")
	future := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")
	require.Empty(t, rows(o+"deliveries?until="+past))
	require.Empty(t, rows(o+"deliveries?since="+future))
	require.Len(t, rows(o+"deliveries?since="+past+"&until="+future), 3)
	res := b.get(o + "deliveries?since=yesterday")
	require.Equal(t, http.StatusUnprocessableEntity, res.status)
	require.Contains(t, res.body, "must be a date and time")

	failed := rows(o + "deliveries?endpoint=" + bad.ID)[0]
	page = b.get(o + "deliveries/" + failed)
	require.Equal(t, http.StatusOK, page.status)
	require.Contains(t, page.body, "503 Service Unavailable")
	require.Contains(t, page.body, "down for maintenance")
	require.Contains(t, page.body, `hx-trigger="every 2s"`, "a pending delivery refreshes its attempts")
	require.NotContains(t, page.body, "<script>alert(1)</script>", "a payload reached the page unescaped")
	require.Contains(t, page.body, "&lt;script&gt;")
	require.NotContains(t, page.body, "Retry now", "a pending delivery offers a retry")

	// Every page renders, and the org's name is escaped everywhere.
	for _, path := range []string{"/ui/", o, o + "?range=6h", o + "?range=24h", o + "endpoints", o + "endpoints/new",
		o + "endpoints/" + good.ID, o + "endpoints/" + good.ID + "/edit", o + "events", o + "events?topic=order.*",
		o + "sources", o + "sources/new", o + "keys"} {
		res := b.get(path)
		require.Equal(t, http.StatusOK, res.status, "%s: %s", path, res.body)
		require.NotContains(t, res.body, "Acme <Outdoor>", path)
		require.Contains(t, res.body, `<main id="main"`, path)
	}
	require.Equal(t, http.StatusNotFound, b.get(o+"nothing-here").status)
	require.Equal(t, http.StatusNotFound, b.get(o+"deliveries/dlv_01M8000000000000000000000").status)

	// The failing endpoint's page shows how this node sends to it now.
	sending := b.get(o + "endpoints/" + bad.ID)
	require.Contains(t, sending.body, `id="sending-h">Sending now`)
	require.Contains(t, sending.body, `<span class="big">1</span> failures in a row`)
	require.Regexp(t, `<span class="big">\d+\.\d ms</span> quickest round trip lately`, sending.body)
	// Its filter, and the event it turned away (n 0: no delivery, counted).
	require.Contains(t, sending.body, `<dt>Filter</dt><dd><code>{&#34;payload&#34;:{&#34;n&#34;:{&#34;$gte&#34;:3}}}</code>`)
	require.Contains(t, sending.body, `<span class="big">1</span> events turned away by the filter`)

	// The overview lists the failing endpoint; the endpoints page shows its health.
	require.Eventually(t, func() bool {
		return strings.Contains(b.get(o).body, sink.URL+"/fail")
	}, 10*time.Second, 20*time.Millisecond)

	// Test send without JavaScript: the whole page comes back with the answer.
	res = b.post(o+"endpoints/"+good.ID+"/test", url.Values{"csrf": {token}, "type": {"order.created"}, "payload": {`{"n":9}`}})
	require.Equal(t, http.StatusOK, res.status)
	require.Contains(t, res.body, "Test result")
	require.Contains(t, res.body, "200 OK")
	// With htmx, only the result.
	res = b.post(o+"endpoints/"+good.ID+"/test", url.Values{"csrf": {token}, "payload": {`{not json`}}, "HX-Request", "true")
	require.Equal(t, http.StatusOK, res.status)
	require.True(t, strings.HasPrefix(strings.TrimSpace(res.body), `<div id="test-result"`), res.body)
	require.Contains(t, res.body, "is not valid JSON")

	// Secrets: add one (shown once), set its expiry, delete it.
	res = b.post(o+"endpoints/"+good.ID+"/secrets", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusCreated, res.status, res.body)
	require.Regexp(t, `value="whsec_[^"]+"`, res.body)
	sid := regexp.MustCompile(`the value of <code>(sec_[0-9A-Z]{26})</code>`).FindStringSubmatch(res.body)
	require.NotNil(t, sid, res.body)
	res = b.post(o+"endpoints/"+good.ID+"/secrets/"+sid[1]+"/expiry", url.Values{"csrf": {token}, "expires_at": {future}})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	secs, err := a.Manage.Secrets(ctx, org.ID, good.ID)
	require.NoError(t, err)
	require.Len(t, secs, 2)
	res = b.post(o+"endpoints/"+good.ID+"/secrets/"+sid[1]+"/delete", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	secs, err = a.Manage.Secrets(ctx, org.ID, good.ID)
	require.NoError(t, err)
	require.Len(t, secs, 1)

	// Recover: the failed endpoint's pending delivery is re-queued from the list page.
	res = b.post(o+"endpoints/"+bad.ID+"/recover", url.Values{"csrf": {token}, "since": {past}, "status": {"pending"},
		"back": {o + "deliveries?endpoint=" + bad.ID}})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	require.Equal(t, o+"deliveries?endpoint="+bad.ID, res.header.Get("Location"))
	require.Contains(t, b.get(res.header.Get("Location")).body, "Re-queued 1 deliveries")
	require.Contains(t, b.get(o+"endpoints/"+bad.ID).body, "recover", "the recover run is listed among the endpoint's jobs")

	// Replay history: a partner endpoint created after the two order events gets them
	// from a replay started on its page, which shows the job.
	late, err := a.Manage.CreateEndpoint(ctx, org.ID, &manage.EndpointInput{URL: sink.URL + "/late", Topics: []string{"order.*"}})
	require.NoError(t, err)
	res = b.post(o+"endpoints/"+late.ID+"/replay", url.Values{"csrf": {token}, "types": {"order.teleported"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.status)
	require.Contains(t, res.body, "since")
	require.Contains(t, res.body, "order.teleported")
	res = b.post(o+"endpoints/"+late.ID+"/replay", url.Values{"csrf": {token}, "since": {past}})
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	jobURL := res.header.Get("Location")
	require.Contains(t, jobURL, o+"jobs/job_")
	require.Contains(t, b.get(jobURL).body, "Replay started")
	evs, err := a.Store.EventList(ctx, org.ID, store.EventFilter{Page: store.Page{Limit: 100}})
	require.NoError(t, err)
	orders := 0
	for _, ev := range evs {
		if strings.HasPrefix(ev.Type, "order.") {
			orders++
		}
	}
	require.Eventually(t, func() bool {
		body := b.get(jobURL).body
		return strings.Contains(body, `<strong id="job-status">completed</strong>`) &&
			strings.Contains(body, `<dd id="job-created">`+strconv.Itoa(orders)+`</dd>`)
	}, 10*time.Second, 20*time.Millisecond, "the job page shows the replay completed with a delivery of each order event")
	require.Contains(t, b.get(o+"endpoints/"+late.ID).body, jobURL, "the endpoint lists its replay")
	res = b.post(jobURL+"/cancel", url.Values{"csrf": {token}})
	require.Equal(t, http.StatusSeeOther, res.status)
	require.Contains(t, b.get(jobURL).body, "completed already")

	// Keys: made through the dashboard, shown once, and they work.
	res = b.post(o+"keys", url.Values{"csrf": {token}, "name": {"ci"}})
	require.Equal(t, http.StatusCreated, res.status)
	key := regexp.MustCompile(`value="(csk_[^"]+)"`).FindStringSubmatch(res.body)
	require.NotNil(t, key)
	newBrowser(t, a.URL()).signIn(key[1])
}

func TestSourcesMissing(t *testing.T) {
	t.Parallel()
	u := newUI(t) // built without inbound sources
	ctx := context.Background()
	org := &consign.Org{Name: "Acme"}
	require.NoError(t, u.manage.CreateOrg(ctx, org))
	b := u.browser(t)
	b.signIn(adminKey)
	res := b.get("/ui/orgs/" + org.ID + "/sources")
	require.Equal(t, http.StatusOK, res.status)
	require.Contains(t, res.body, "not available in this build")
	require.Equal(t, http.StatusNotFound, b.get("/ui/orgs/"+org.ID+"/sources/new").status)
}
