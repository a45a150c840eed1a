package app_test

// End-to-end tests of inbound sources: the real app on a loopback port, providers'
// webhooks posted over HTTP to ingest URLs, a provider list API (httptest) for the
// fallback poll, and httptest receivers for the events the receipts become.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/internal/testlog"
)

// source is a source's reply as the API shows it.
type source struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Topic     string `json:"topic"`
	IngestURL string `json:"ingest_url"`
	Verify    struct {
		Type     string `json:"type"`
		Secret   string `json:"secret"`
		Password string `json:"password"`
	} `json:"verify"`
	PollStatus *struct {
		NextRunAt *time.Time `json:"next_run_at"`
		LastRunAt *time.Time `json:"last_run_at"`
		LastError string     `json:"last_error"`
	} `json:"poll_status"`
}

// receipt is a receipt as the API shows it.
type receipt struct {
	ID         string            `json:"id"`
	SourceID   string            `json:"source_id"`
	Via        string            `json:"via"`
	Status     string            `json:"status"`
	Verified   bool              `json:"verified"`
	Reason     string            `json:"reason"`
	DedupeKey  *string           `json:"dedupe_key"`
	Duplicate  bool              `json:"duplicate"`
	EventID    *string           `json:"event_id"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	ReceivedAt time.Time         `json:"received_at"`
}

func (e *env) createSource(o org, body any) source {
	e.tb.Helper()
	r := e.c.raw("POST", "/v1/orgs/"+o.id+"/sources", body, o.key, nil)
	require.Equal(e.tb, http.StatusCreated, r.status, "create source: %s", r.body)
	var s source
	require.NoError(e.tb, json.Unmarshal(r.body, &s))
	require.True(e.tb, strings.HasPrefix(s.IngestURL, e.c.base+"/in/"), "ingest_url %q is built from the request", s.IngestURL)
	return s
}

// post sends a provider's request to an ingest URL.
func (e *env) post(url string, body []byte, hdr http.Header) *reply {
	e.tb.Helper()
	return e.c.raw("POST", strings.TrimPrefix(url, e.c.base), body, "", hdr)
}

// receipts lists a source's receipts matching query.
func (e *env) receipts(o org, srcID, query string) []receipt {
	e.tb.Helper()
	var l struct{ Data []receipt }
	e.c.get("/v1/orgs/"+o.id+"/sources/"+srcID+"/receipts?limit=500&"+query, o.key, &l)
	return l.Data
}

// eventsOf lists the org's events of a type.
func (e *env) eventsOf(o org, typ string) []map[string]any {
	e.tb.Helper()
	var l struct{ Data []map[string]any }
	e.c.get("/v1/orgs/"+o.id+"/events?limit=500&type="+typ, o.key, &l)
	return l.Data
}

func hexMAC(secret string, b []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

func b64MAC(secret string, b []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(b)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func standardHeaders(tb testing.TB, secret string, b []byte) http.Header {
	tb.Helper()
	k, err := signing.ParseKey(secret)
	require.NoError(tb, err)
	ts := time.Now().Unix()
	return http.Header{
		"Webhook-Id":        {"msg_" + strconv.FormatInt(time.Now().UnixNano(), 36)},
		"Webhook-Timestamp": {strconv.FormatInt(ts, 10)},
		"Webhook-Signature": {signing.Header([]signing.Key{k}, "msg_x", ts, b)},
	}
}

// TestInboundVerification posts, for each scheme, a correctly signed request, a wrongly
// signed one and an unsigned one. The first becomes an event delivered to the org's
// endpoint; the others are answered 401, stored unverified with their reason, forwarded
// nowhere, and announced once per source as consign.source.verification_failed.
func TestInboundVerification(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	shipments := newReceiver(t, nil)
	ops := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": shipments.URL + "/shipments", "topics": []string{"shipment.*"}})
	e.createEndpoint(o, map[string]any{"url": ops.URL + "/ops", "topics": []string{"consign.source.verification_failed"}})

	swSecret, err := signing.NewSecret()
	require.NoError(t, err)
	tests := []struct {
		name                 string
		verify               map[string]any
		good, wrong, missing func(s source, b []byte) http.Header
		reason               string // of the missing one
	}{
		{
			name:   "hmac-hex",
			verify: map[string]any{"type": "hmac-sha256", "header": "X-Hub-Signature-256", "prefix": "sha256="},
			good: func(s source, b []byte) http.Header {
				return http.Header{"X-Hub-Signature-256": {"sha256=" + hexMAC(s.Verify.Secret, b)}}
			},
			wrong: func(s source, b []byte) http.Header {
				return http.Header{"X-Hub-Signature-256": {"sha256=" + hexMAC("not the secret", b)}}
			},
			missing: func(source, []byte) http.Header { return nil },
			reason:  "missing X-Hub-Signature-256 header",
		},
		{
			name:   "hmac-base64",
			verify: map[string]any{"type": "hmac-sha256", "header": "X-Shopify-Hmac-Sha256", "encoding": "base64", "secret": "shpss_given_secret"},
			good: func(s source, b []byte) http.Header {
				return http.Header{"X-Shopify-Hmac-Sha256": {b64MAC("shpss_given_secret", b)}}
			},
			wrong: func(s source, b []byte) http.Header {
				return http.Header{"X-Shopify-Hmac-Sha256": {b64MAC("shpss_given_secret", append(b, ' '))}}
			},
			missing: func(source, []byte) http.Header { return nil },
			reason:  "missing X-Shopify-Hmac-Sha256 header",
		},
		{
			name:   "standard-webhooks",
			verify: map[string]any{"type": "standard-webhooks", "secret": swSecret},
			good: func(s source, b []byte) http.Header {
				h := standardHeaders(t, swSecret, b)
				h.Set("Webhook-Id", "msg_x")
				return h
			},
			wrong: func(s source, b []byte) http.Header {
				other, _ := signing.NewSecret()
				return standardHeaders(t, other, b)
			},
			missing: func(source, []byte) http.Header { return nil },
			reason:  "missing header",
		},
		{
			name:   "basic",
			verify: map[string]any{"type": "basic", "username": "deposco"},
			good: func(s source, b []byte) http.Header {
				return http.Header{"Authorization": {basicAuth("deposco", s.Verify.Password)}}
			},
			wrong: func(s source, b []byte) http.Header {
				return http.Header{"Authorization": {basicAuth("deposco", "guessed-password")}}
			},
			missing: func(source, []byte) http.Header { return nil },
			reason:  "missing Authorization header",
		},
		{
			name:    "header-token",
			verify:  map[string]any{"type": "header-token", "header": "X-Webhook-Token", "token": "tok_given_0123456789"},
			good:    func(s source, b []byte) http.Header { return http.Header{"X-Webhook-Token": {"tok_given_0123456789"}} },
			wrong:   func(s source, b []byte) http.Header { return http.Header{"X-Webhook-Token": {"tok_given_0123456788"}} },
			missing: func(source, []byte) http.Header { return nil },
			reason:  "missing X-Webhook-Token header",
		},
	}
	sources := map[string]source{}
	for i, tt := range tests {
		s := e.createSource(o, map[string]any{"name": tt.name, "topic": "shipment.created", "verify": tt.verify})
		switch tt.name {
		case "hmac-hex":
			require.Len(t, s.Verify.Secret, 64, "generated and shown once")
		case "basic":
			require.NotEmpty(t, s.Verify.Password, "generated and shown once")
		}
		sources[tt.name] = s
		b := []byte(`{"shipment_id":"shp_` + strconv.Itoa(i) + `","scheme":"` + tt.name + `"}`)

		r := e.post(s.IngestURL, b, tt.good(s, b))
		require.Equal(t, http.StatusOK, r.status, "%s, correct: %s", tt.name, r.body)
		require.Equal(t, "pending", r.json(t)["status"])
		for kind, hdr := range map[string]http.Header{"wrong": tt.wrong(s, b), "missing": tt.missing(s, b)} {
			r := e.post(s.IngestURL, b, hdr)
			require.Equal(t, http.StatusUnauthorized, r.status, "%s, %s: %s", tt.name, kind, r.body)
			p := requireProblem(t, r)
			require.Contains(t, p.Detail, "failed verification", "%s, %s", tt.name, kind)
		}

		got := e.receipts(o, s.ID, "verified=false")
		require.Len(t, got, 2, tt.name)
		for _, rc := range got {
			require.Equal(t, "rejected", rc.Status)
			require.Nil(t, rc.EventID, "%s: never forwarded", tt.name)
			require.True(t, strings.HasPrefix(rc.Reason, "verification failed: "), rc.Reason)
		}
		require.True(t, slices.ContainsFunc(got, func(rc receipt) bool { return strings.Contains(rc.Reason, tt.reason) }),
			"%s: the unsigned request's reason says so: %+v", tt.name, got)
		for _, rc := range got {
			for name, v := range rc.Headers {
				if consign.SensitiveHeader(name) || name == "X-Webhook-Token" {
					require.Equal(t, consign.Redacted, v, "%s: header %s", tt.name, name)
				}
			}
		}
	}
	none := e.createSource(o, map[string]any{"name": "none", "topic": "shipment.created"})
	require.Equal(t, "none", none.Verify.Type, "no verification by default (DropStream's blank shared secret)")
	r := e.post(none.IngestURL, []byte(`{"shipment_id":"shp_none"}`), nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)

	// Each accepted request becomes an event of the source's topic, delivered with the
	// body as its data.
	want := map[string]bool{}
	for name := range sources {
		want[name] = true
	}
	got := map[string]bool{}
	for range len(sources) + 1 {
		req := shipments.next(t)
		var env struct {
			ID   string          `json:"id"`
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal(req.Body, &env))
		require.Equal(t, "shipment.created", env.Type)
		var data map[string]string
		require.NoError(t, json.Unmarshal(env.Data, &data))
		if data["scheme"] != "" {
			got[data["scheme"]] = true
			rcs := e.receipts(o, sources[data["scheme"]].ID, "verified=true")
			require.Len(t, rcs, 1)
			require.Eventually(t, func() bool {
				rcs = e.receipts(o, sources[data["scheme"]].ID, "verified=true")
				return rcs[0].EventID != nil
			}, waitFor, tick)
			require.Equal(t, env.ID, *rcs[0].EventID, "the receipt names its event")
			require.Equal(t, "processed", rcs[0].Status)
		}
	}
	require.Equal(t, want, got)

	// One announcement per source despite two failures each; they go to the endpoint
	// subscribed to them, and only there.
	require.Eventually(t, func() bool { return len(e.eventsOf(o, consign.TypeSourceVerificationFailed)) == len(tests) }, waitFor, tick)
	announced := map[string]bool{}
	for range len(tests) {
		req := ops.next(t)
		var env struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		require.NoError(t, json.Unmarshal(req.Body, &env))
		require.Equal(t, consign.TypeSourceVerificationFailed, env.Type)
		announced[env.Data["source_id"].(string)] = true
		require.Contains(t, env.Data["reason"], "verification failed")
	}
	require.Len(t, announced, len(tests))
	require.Len(t, e.eventsOf(o, "shipment.created"), len(tests)+1)
	for _, rq := range shipments.all() {
		require.NotContains(t, string(rq.Body), "verification", "failures never reach shipment endpoints")
	}
}

// TestInboundDedupe: a provider's retry, found by a header or by a JSON pointer into the
// body, is answered 200 and becomes no second event.
func TestInboundDedupe(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	rc := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"shipment.created"}})
	byHeader := e.createSource(o, map[string]any{"name": "h", "topic": "shipment.created", "dedupe": map[string]any{"header": "X-Event-Id"}})
	byPointer := e.createSource(o, map[string]any{"name": "p", "topic": "shipment.created", "dedupe": map[string]any{"json_pointer": "/shipment/id"}})

	hdr := http.Header{"X-Event-Id": {"evt-1001"}}
	r := e.post(byHeader.IngestURL, []byte(`{"n": 1}`), hdr)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, false, r.json(t)["duplicate"])
	r = e.post(byHeader.IngestURL, []byte(`{"n": 2}`), hdr)
	require.Equal(t, http.StatusOK, r.status, "a duplicate is answered 2xx: %s", r.body)
	require.Equal(t, true, r.json(t)["duplicate"])
	require.Equal(t, http.StatusOK, e.post(byHeader.IngestURL, []byte(`{"n": 3}`), http.Header{"X-Event-Id": {"evt-1002"}}).status)

	for _, b := range []string{`{"shipment": {"id": 77}, "v": 1}`, `{"v": 2, "shipment": {"id": "77"}}`, `{"shipment": {"id": 78}}`} {
		require.Equal(t, http.StatusOK, e.post(byPointer.IngestURL, []byte(b), nil).status)
	}

	for _, s := range []source{byHeader, byPointer} {
		dups := e.receipts(o, s.ID, "duplicate=true")
		require.Len(t, dups, 1, s.Name)
		require.Equal(t, "duplicate", dups[0].Status)
		require.Nil(t, dups[0].EventID)
		require.Len(t, e.receipts(o, s.ID, "duplicate=false"), 2, s.Name)
	}
	require.Equal(t, "77", *e.receipts(o, byPointer.ID, "duplicate=true")[0].DedupeKey)

	// Four events, four deliveries, the first version of each.
	bodies := []string{}
	for range 4 {
		var env struct{ Data json.RawMessage }
		require.NoError(t, json.Unmarshal(rc.next(t).Body, &env))
		bodies = append(bodies, string(env.Data))
	}
	slices.Sort(bodies)
	require.Equal(t, []string{`{"n": 1}`, `{"n": 3}`, `{"shipment": {"id": 77}, "v": 1}`, `{"shipment": {"id": 78}}`}, bodies)
	require.Len(t, e.eventsOf(o, "shipment.created"), 4)
}

// listAPI is a provider's list API for the fallback poll.
type listAPI struct {
	*httptest.Server
	mu    sync.Mutex
	items []map[string]any
	hits  atomic.Int32
}

func newListAPI(tb testing.TB, ids ...int) *listAPI {
	l := &listAPI{}
	for _, id := range ids {
		l.items = append(l.items, map[string]any{"id": id, "order": 1000 + id, "carrier": "UPS"})
	}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.hits.Add(1)
		if r.Header.Get("Authorization") != "Bearer deposco-api-key" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"shipments": l.items, "page": 1})
	}))
	tb.Cleanup(l.Close)
	return l
}

// TestInboundPollFillsGaps is the DropStream/Deposco profile: webhooks arrive for
// shipments 1, 2 and 4; the fallback sync lists 1 to 5 and makes events of 3 and 5 only;
// later syncs make none, and neither does a restart in the middle.
func TestInboundPollFillsGaps(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	rc := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"shipment.created"}})
	api := newListAPI(t, 1, 2, 3, 4, 5)
	src := e.createSource(o, map[string]any{"name": "Deposco", "topic": "shipment.created",
		"dedupe": map[string]any{"json_pointer": "/id"}})
	for _, id := range []int{1, 2, 4} {
		b, _ := json.Marshal(map[string]any{"id": id, "order": 1000 + id, "carrier": "UPS"})
		require.Equal(t, http.StatusOK, e.post(src.IngestURL, b, nil).status)
	}
	pollPath := "/v1/orgs/" + o.id + "/sources/" + src.ID
	e.c.must(http.StatusOK, "PATCH", pollPath, map[string]any{"poll": map[string]any{
		"url": api.URL + "/shipments", "headers": map[string]string{"Authorization": "Bearer deposco-api-key"},
		"items_pointer": "/shipments", "id_pointer": "/id", "interval": "1s",
	}}, o.key)
	var got source
	e.c.get(pollPath, o.key, &got)
	require.NotNil(t, got.PollStatus.NextRunAt)

	require.Eventually(t, func() bool { return len(e.receipts(o, src.ID, "via=poll")) == 2 }, waitFor, tick)
	keys := []string{}
	for _, r := range e.receipts(o, src.ID, "via=poll") {
		keys = append(keys, *r.DedupeKey)
		require.True(t, r.Verified)
	}
	slices.Sort(keys)
	require.Equal(t, []string{"3", "5"}, keys, "only the shipments no webhook brought")

	// A second poll (and a third) finds nothing new.
	seen := api.hits.Load()
	require.Eventually(t, func() bool { return api.hits.Load() >= seen+2 }, waitFor, tick)
	require.Len(t, e.receipts(o, src.ID, "via=poll"), 2)
	require.Eventually(t, func() bool { return len(e.eventsOf(o, "shipment.created")) == 5 }, waitFor, tick)
	e.c.get(pollPath, o.key, &got)
	require.Empty(t, got.PollStatus.LastError)
	require.NotNil(t, got.PollStatus.LastRunAt)

	// Restart on the same data directory: receipts intact, nothing emitted again.
	before := e.receipts(o, src.ID, "")
	e.close()
	e2 := startWith(t, app.Config{Addr: "127.0.0.1:0", DataDir: e.dir, InsecureTargets: true, AdminKey: adminKey, Logger: testlog.New(t, "app")})
	require.Equal(t, before, e2.receipts(o, src.ID, ""), "receipts survive a restart as they were")
	seen = api.hits.Load()
	require.Eventually(t, func() bool { return api.hits.Load() >= seen+2 }, waitFor, tick)
	require.Len(t, e2.receipts(o, src.ID, "via=poll"), 2)
	require.Len(t, e2.eventsOf(o, "shipment.created"), 5)

	// Every shipment reached the endpoint once.
	ids := map[string]bool{}
	require.Eventually(t, func() bool {
		for _, r := range rc.all() {
			var env struct{ Data struct{ ID int } }
			if json.Unmarshal(r.Body, &env) == nil {
				ids[strconv.Itoa(env.Data.ID)] = true
			}
		}
		return len(ids) == 5
	}, waitFor, tick)
	require.Len(t, rc.all(), 5)
}

// TestInboundLimitsAndAPI covers the edges: body and header limits, non-JSON bodies,
// unknown URLs, token rotation, receipt filters, tenant isolation and the public URL.
func TestInboundLimitsAndAPI(t *testing.T) {
	t.Parallel()
	e := start(t)
	o, other := e.newOrg("acme"), e.newOrg("rival")
	src := e.createSource(o, map[string]any{"name": "Deposco", "topic": "shipment.created"})

	big := []byte(`{"pad":"` + strings.Repeat("x", 1<<20) + `"}`)
	r := e.post(src.IngestURL, big, nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, "over 1 MiB")
	requireProblem(t, r)

	mid := []byte(`{"pad":"` + strings.Repeat("x", 300<<10) + `"}`)
	r = e.post(src.IngestURL, mid, nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, "over the event payload limit")
	require.Contains(t, requireProblem(t, r).Detail, "payload may be at most")

	hdr := http.Header{}
	for i := range 150 {
		hdr.Set("X-Filler-"+strconv.Itoa(i), "v")
	}
	r = e.post(src.IngestURL, []byte(`{}`), hdr)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
	require.Contains(t, requireProblem(t, r).Detail, "request headers are too large")

	r = e.post(src.IngestURL, []byte(`order_id=1001&status=shipped`), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Contains(t, requireProblem(t, r).Detail, "the body is not JSON")
	rejected := e.receipts(o, src.ID, "status=rejected")
	require.Len(t, rejected, 2, "the non-JSON body and the one over the payload limit are kept for inspection")
	i := slices.IndexFunc(rejected, func(rc receipt) bool { return rc.Body == "order_id=1001&status=shipped" })
	require.GreaterOrEqual(t, i, 0, "the raw body is kept")
	require.True(t, rejected[i].Verified)
	require.Contains(t, rejected[i].Reason, "not JSON")

	r = e.post(e.c.base+"/in/not-a-token", []byte(`{}`), nil)
	require.Equal(t, http.StatusNotFound, r.status)
	requireProblem(t, r)
	r = e.c.raw("GET", strings.TrimPrefix(src.IngestURL, e.c.base), nil, "", nil)
	require.GreaterOrEqual(t, r.status, 400, "only POST")

	// Rotation: the old URL stops working at once.
	rot := e.c.must(http.StatusOK, "POST", "/v1/orgs/"+o.id+"/sources/"+src.ID+"/rotate-token", nil, o.key)
	newURL := rot["ingest_url"].(string)
	require.NotEqual(t, src.IngestURL, newURL)
	require.Equal(t, http.StatusNotFound, e.post(src.IngestURL, []byte(`{"id":1}`), nil).status)
	require.Equal(t, http.StatusOK, e.post(newURL, []byte(`{"id":1}`), nil).status)
	var got source
	e.c.get("/v1/orgs/"+o.id+"/sources/"+src.ID, o.key, &got)
	require.Equal(t, newURL, got.IngestURL)

	// Lists and filters.
	require.Len(t, e.receipts(o, src.ID, "via=webhook"), 3)
	require.Empty(t, e.receipts(o, src.ID, "via=poll"))
	require.Len(t, e.receipts(o, src.ID, "verified=true&duplicate=false"), 3)
	for _, q := range []string{"verified=maybe", "via=email", "status=lost", "limit=0"} {
		r := e.c.raw("GET", "/v1/orgs/"+o.id+"/sources/"+src.ID+"/receipts?"+q, nil, o.key, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, q)
		requireProblem(t, r)
	}
	var l struct {
		Data       []receipt `json:"data"`
		NextCursor *string   `json:"next_cursor"`
	}
	e.c.get("/v1/orgs/"+o.id+"/sources/"+src.ID+"/receipts?limit=2", o.key, &l)
	require.Len(t, l.Data, 2)
	require.NotNil(t, l.NextCursor)
	e.c.get("/v1/orgs/"+o.id+"/sources/"+src.ID+"/receipts?limit=2&cursor="+*l.NextCursor, o.key, &l)
	require.Len(t, l.Data, 1)
	require.Nil(t, l.NextCursor)
	one := e.c.must(http.StatusOK, "GET", "/v1/orgs/"+o.id+"/sources/"+src.ID+"/receipts/"+l.Data[0].ID, nil, o.key)
	require.Equal(t, l.Data[0].ID, one["id"])

	// Bad input names the field.
	for _, body := range []string{
		`{"name": "x", "topic": "shipment.created", "verify": {"type": "hmac-sha256"}}`,
		`{"name": "x", "topic": "shipment.created", "colour": "red"}`,
		`{"name": "x", "topic": "shipment.created", "poll": {"url": "http://x", "id_pointer": "/id", "interval": 5}}`,
		`{"name": "x", "topic": "no.such.type"}`,
	} {
		r := e.c.raw("POST", "/v1/orgs/"+o.id+"/sources", body, o.key, nil)
		require.Contains(t, []int{http.StatusBadRequest, http.StatusUnprocessableEntity}, r.status, body)
		require.NotEmpty(t, requireProblem(t, r).fields(), body)
	}

	// Another org's key sees nothing of it.
	for _, path := range []string{"/v1/orgs/" + o.id + "/sources", "/v1/orgs/" + o.id + "/sources/" + src.ID, "/v1/orgs/" + o.id + "/sources/" + src.ID + "/receipts"} {
		r := e.c.raw("GET", path, nil, other.key, nil)
		require.Equal(t, http.StatusNotFound, r.status, path)
	}
	r = e.c.raw("GET", "/v1/orgs/"+other.id+"/sources/"+src.ID, nil, other.key, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, 1, e.count("/v1/orgs/"+o.id+"/sources", o.key))

	e.c.must(http.StatusNoContent, "DELETE", "/v1/orgs/"+o.id+"/sources/"+src.ID, nil, o.key)
	require.Equal(t, http.StatusNotFound, e.post(newURL, []byte(`{"id":2}`), nil).status)

	// With a public URL configured, ingest URLs use it.
	pub := start(t, func(c *app.Config) { c.PublicURL = "https://hooks.example.com/" })
	po := pub.newOrg("acme")
	r = pub.c.raw("POST", "/v1/orgs/"+po.id+"/sources", map[string]any{"name": "x", "topic": "shipment.created"}, po.key, nil)
	require.Equal(t, http.StatusCreated, r.status)
	require.True(t, strings.HasPrefix(r.json(t)["ingest_url"].(string), "https://hooks.example.com/in/"), "%s", r.body)
}
