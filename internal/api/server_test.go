package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/api"
	"github.com/consign-dev/consign/internal/dispatch"
	"github.com/consign-dev/consign/internal/inbound"
	"github.com/consign-dev/consign/internal/ingest"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/secretbox"
	"github.com/consign-dev/consign/internal/sender"
	"github.com/consign-dev/consign/internal/store/sqlite"
)

// The API on its own: the real services over a real embedded store in a temporary
// directory, served by httptest, without the app around them (no dispatcher loop runs:
// these tests send nothing).

const adminKey = "api-test-admin-key-Lw4pXe8Ks2Nq6Rz0Jt5Y"

type apiServer struct {
	url string
	hc  *http.Client
}

func newAPI(tb testing.TB, cfg api.Config) *apiServer {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, tb.TempDir())
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })
	key, err := secretbox.NewKey()
	require.NoError(tb, err)
	box, err := secretbox.New(key)
	require.NoError(tb, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := manage.New(st, box, manage.Config{InsecureTargets: true, ValidateURL: sender.ValidateTargetURL, Logger: log})
	require.NoError(tb, m.EnsureCatalog(ctx))
	_, err = m.EnsureAdminKey(ctx, adminKey)
	require.NoError(tb, err)
	in := ingest.New(st, ingest.Config{Logger: log})
	tb.Cleanup(in.Close)
	snd := sender.New(sender.Config{InsecureTargets: true})
	tb.Cleanup(snd.Close)
	d := dispatch.New(st, m, dispatch.EmitterFunc(in.Emit), snd, dispatch.Config{Logger: log})
	ib := inbound.New(st, box, in, snd, inbound.Config{InsecureTargets: true, Logger: log})
	cfg.Logger = log
	srv := httptest.NewServer(api.New(st, m, in, d, ib, nil, cfg))
	tb.Cleanup(srv.Close)
	return &apiServer{url: srv.URL, hc: srv.Client()}
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a *apiServer) do(tb testing.TB, method, path, key, body string) reply {
	tb.Helper()
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	require.NoError(tb, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := a.hc.Do(req)
	require.NoError(tb, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(tb, err)
	r := reply{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(bytes.TrimSpace(raw)) > 0 && raw[0] == '{' {
		require.NoError(tb, json.Unmarshal(raw, &r.body), "%s", raw)
	}
	return r
}

// must does a request that must answer status and returns the reply.
func (a *apiServer) must(tb testing.TB, status int, method, path, key, body string) reply {
	tb.Helper()
	r := a.do(tb, method, path, key, body)
	require.Equal(tb, status, r.status, "%s %s: %s", method, path, r.raw)
	return r
}

// org creates an org and a key of its own, and returns their ID and value.
func (a *apiServer) org(tb testing.TB, name string) (id, key string) {
	tb.Helper()
	o := a.must(tb, http.StatusCreated, "POST", "/v1/orgs", adminKey, `{"name": "`+name+`", "role": "buyer"}`)
	id = o.body["id"].(string)
	k := a.must(tb, http.StatusCreated, "POST", "/v1/orgs/"+id+"/keys", adminKey, `{"name": "ci"}`)
	return id, k.body["key"].(string)
}

// problem checks a problem+json reply: its status, its type and what its detail says.
func problem(tb testing.TB, r reply, status int, code, detail string) {
	tb.Helper()
	require.Equal(tb, status, r.status, r.raw)
	require.Equal(tb, "application/problem+json", r.header.Get("Content-Type"))
	require.Equal(tb, "urn:consign:error:"+code, r.body["type"], r.raw)
	require.EqualValues(tb, status, r.body["status"])
	require.Contains(tb, r.body["detail"], detail)
}

// TestAccess: who may call what, and what everyone else is told.
func TestAccess(t *testing.T) {
	t.Parallel()
	a := newAPI(t, api.Config{})
	orgA, keyA := a.org(t, "Acme")
	orgB, _ := a.org(t, "Birch")
	for _, tc := range []struct {
		name, method, path, key string
		status                  int
		code                    string
	}{
		{"public route without a key", "GET", "/healthz", "", http.StatusOK, ""},
		{"no key", "GET", "/v1/orgs/" + orgA, "", http.StatusUnauthorized, "unauthorized"},
		{"unknown key", "GET", "/v1/orgs/" + orgA, "csk_not_a_key_at_all", http.StatusUnauthorized, "unauthorized"},
		{"own org", "GET", "/v1/orgs/" + orgA, keyA, http.StatusOK, ""},
		// Another org's objects are not acknowledged to exist.
		{"another org", "GET", "/v1/orgs/" + orgB, keyA, http.StatusNotFound, "not_found"},
		{"another org's events", "GET", "/v1/orgs/" + orgB + "/events", keyA, http.StatusNotFound, "not_found"},
		{"admin route with an org key", "GET", "/v1/orgs", keyA, http.StatusForbidden, "forbidden"},
		{"any key route with an org key", "GET", "/v1/event-types", keyA, http.StatusOK, ""},
		{"admin", "GET", "/v1/orgs/" + orgB, adminKey, http.StatusOK, ""},
	} {
		r := a.do(t, tc.method, tc.path, tc.key, "")
		if tc.code == "" {
			require.Equal(t, tc.status, r.status, "%s: %s", tc.name, r.raw)
			continue
		}
		problem(t, r, tc.status, tc.code, "")
		if tc.status == http.StatusUnauthorized {
			require.Equal(t, `Bearer realm="consign"`, r.header.Get("WWW-Authenticate"), tc.name)
		}
	}
}

// TestRequestProblems: what is wrong with a request is a problem+json reply that names
// it, never a 500.
func TestRequestProblems(t *testing.T) {
	t.Parallel()
	a := newAPI(t, api.Config{MaxBody: 256})
	org, key := a.org(t, "Acme")
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, detail             string
		field                    string // named in errors[], when set
	}{
		{"no route", "GET", "/v1/nothing-here", "", http.StatusNotFound, "not_found", "no route for GET /v1/nothing-here", ""},
		{"wrong method", "PUT", "/v1/orgs/" + org, "", http.StatusMethodNotAllowed, "method", "PUT is not allowed", ""},
		{"not JSON", "POST", "/v1/orgs/" + org + "/keys", "{", http.StatusBadRequest, "bad_request", "ends in the middle of its JSON", ""},
		{"unknown field", "POST", "/v1/orgs/" + org + "/keys", `{"name": "x", "nmae": "y"}`, http.StatusBadRequest, "bad_request", "nmae", ""},
		{"wrong type", "POST", "/v1/orgs/" + org + "/events", `{"type": 5, "payload": {}}`, http.StatusBadRequest, "bad_request", "type", "type"},
		{"too large", "POST", "/v1/orgs/" + org + "/events", `{"type": "order.created", "payload": {"note": "` + strings.Repeat("x", 300) + `"}}`,
			http.StatusRequestEntityTooLarge, "too_large", "larger than 256 bytes", ""},
		{"unknown event type", "POST", "/v1/orgs/" + org + "/events", `{"type": "order.teleported", "payload": {}}`, http.StatusUnprocessableEntity, "invalid", "order.teleported", "type"},
		// Payloads of a schema-checked type, read by its check where they stand in the body:
		// invalid JSON is the body's fault, a refused payload the event's.
		{"payload not JSON", "POST", "/v1/orgs/" + org + "/events", `{"type":"order.fulfilled","payload":{"id":tru}}`,
			http.StatusBadRequest, "bad_request", "invalid character", ""},
		{"batch payload not JSON", "POST", "/v1/orgs/" + org + "/events/batch",
			`{"events":[{"type":"order.fulfilled","payload":{"id":"o-1"}},{"type":"order.fulfilled","payload":{"id":01}}]}`,
			http.StatusBadRequest, "bad_request", "invalid character", ""},
		{"batch payload refused", "POST", "/v1/orgs/" + org + "/events/batch",
			`{"events":[{"type":"order.fulfilled","payload":{"id":"o-1"}},{"type":"order.fulfilled","payload":{"id":"o-2"}},{"type":"order.fulfilled","payload":{"id":true}}]}`,
			http.StatusUnprocessableEntity, "invalid", "does not match the schema of order.fulfilled", "events[2].payload"},
		{"bad limit", "GET", "/v1/orgs/" + org + "/events?limit=0", "", http.StatusUnprocessableEntity, "invalid", "from 1 to 500", "limit"},
		{"missing endpoint", "GET", "/v1/orgs/" + org + "/endpoints/ep_01J0000000000000000000000", "", http.StatusNotFound, "not_found", "", ""},
	} {
		r := a.do(t, tc.method, tc.path, key, tc.body)
		problem(t, r, tc.status, tc.code, tc.detail)
		if tc.field != "" {
			errs, ok := r.body["errors"].([]any)
			require.True(t, ok, "%s: %s", tc.name, r.raw)
			require.Equal(t, tc.field, errs[0].(map[string]any)["field"], tc.name)
		}
		if tc.status == http.StatusMethodNotAllowed {
			require.NotEmpty(t, r.header.Get("Allow"), tc.name)
		}
	}
}

// TestPublish: an event is accepted once per idempotency key, and the batch route takes
// several in one write.
func TestPublish(t *testing.T) {
	t.Parallel()
	a := newAPI(t, api.Config{})
	org, key := a.org(t, "Acme")
	body := `{"type": "order.created", "payload": {"order_id": 1001}, "idempotency_key": "order-1001"}`
	first := a.must(t, http.StatusAccepted, "POST", "/v1/orgs/"+org+"/events", key, body)
	require.Equal(t, "order.created", first.body["type"])
	require.Equal(t, map[string]any{"order_id": float64(1001)}, first.body["payload"])
	again := a.must(t, http.StatusOK, "POST", "/v1/orgs/"+org+"/events", key, body)
	require.Equal(t, first.body["id"], again.body["id"], "the same key gives the first event back")

	batch := a.must(t, http.StatusAccepted, "POST", "/v1/orgs/"+org+"/events/batch", key,
		`{"events": [{"type": "order.created", "payload": {"n": 1}}, {"type": "order.updated", "payload": {"n": 2}}]}`)
	require.Len(t, batch.body["data"], 2)

	list := a.must(t, http.StatusOK, "GET", "/v1/orgs/"+org+"/events?limit=2", key, "")
	require.Len(t, list.body["data"], 2)
	cursor, ok := list.body["next_cursor"].(string)
	require.True(t, ok, "a full page has a next cursor: %s", list.raw)
	rest := a.must(t, http.StatusOK, "GET", "/v1/orgs/"+org+"/events?limit=2&cursor="+cursor, key, "")
	require.Len(t, rest.body["data"], 1)
	require.Nil(t, rest.body["next_cursor"])
	require.Equal(t, first.body["id"], rest.body["data"].([]any)[0].(map[string]any)["id"], "newest first")
}

// TestOrgDelete: a deleted org is gone for its own key and for the admin.
func TestOrgDelete(t *testing.T) {
	t.Parallel()
	a := newAPI(t, api.Config{})
	org, key := a.org(t, "Acme")
	a.must(t, http.StatusNoContent, "DELETE", "/v1/orgs/"+org, adminKey, "")
	problem(t, a.do(t, "GET", "/v1/orgs/"+org, adminKey, ""), http.StatusNotFound, "not_found", "")
	problem(t, a.do(t, "GET", "/v1/orgs/"+org, key, ""), http.StatusUnauthorized, "unauthorized", "")
}
