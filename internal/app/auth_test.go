package app_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
)

// tokenServer is a partner's OAuth 2.0 token endpoint (client credentials, RFC 6749
// §4.4): it counts token requests, issues tokens that expire after expiresIn, and
// answers 401 invalid_client to wrong credentials. The partner's receiver (api) takes
// only tokens it issued that have not expired and were not revoked.
type tokenServer struct {
	*httptest.Server
	id, secret string

	mu        sync.Mutex
	requests  int
	expiresIn int
	forms     []map[string]string // each request's form, and "basic" for its Basic credentials
	expiry    map[string]time.Time
	revoked   map[string]bool
	used      []string // the token of each request the api got
}

func newTokenServer(tb testing.TB, id, secret string) *tokenServer {
	ts := &tokenServer{id: id, secret: secret, expiresIn: 3600, expiry: map[string]time.Time{}, revoked: map[string]bool{}}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serveToken))
	tb.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	form := map[string]string{}
	for k := range r.PostForm {
		form[k] = r.PostForm.Get(k)
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		form["basic"] = id + ":" + secret
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.requests++
	ts.forms = append(ts.forms, form)
	w.Header().Set("Content-Type", "application/json")
	if id != ts.id || secret != ts.secret {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"client authentication failed"}`)
		return
	}
	tok := fmt.Sprintf("at-%d-%d", ts.requests, time.Now().UnixNano())
	ts.expiry[tok] = time.Now().Add(time.Duration(ts.expiresIn) * time.Second)
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": ts.expiresIn})
}

// api is the partner's webhook receiver: 200 for a live token it issued, 401 otherwise.
func (ts *tokenServer) api(tb testing.TB) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		ts.mu.Lock()
		exp, ok := ts.expiry[tok]
		live := ok && !ts.revoked[tok] && time.Now().Before(exp)
		ts.used = append(ts.used, tok)
		ts.mu.Unlock()
		if !live {
			http.Error(w, "token expired or unknown", http.StatusUnauthorized)
		}
	}))
	tb.Cleanup(s.Close)
	return s
}

func (ts *tokenServer) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.requests
}

// revokeAll makes the api refuse every token issued so far.
func (ts *tokenServer) revokeAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for tok := range ts.expiry {
		ts.revoked[tok] = true
	}
}

func (ts *tokenServer) setExpiresIn(s int) {
	ts.mu.Lock()
	ts.expiresIn = s
	ts.mu.Unlock()
}

// TestOAuth2ClientCredentials: one token serves many deliveries; a new one is fetched
// when it expires and after the partner answers 401; a token endpoint that refuses the
// client fails the attempt with its reason.
func TestOAuth2ClientCredentials(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("oauth2")
	ts := newTokenServer(t, "consign-client", "s3cret-client-secret-0001")
	api := ts.api(t)
	ep := e.createEndpoint(o, map[string]any{"url": api.URL + "/orders", "topics": []string{"order.*"},
		"retry": fastRetry("1m"),
		"auth": map[string]any{"type": "oauth2", "token_url": ts.URL + "/oauth/token", "client_id": "consign-client",
			"client_secret": "s3cret-client-secret-0001", "scopes": []string{"orders:write", "orders:read"}, "audience": "https://api.partner.example"}})
	auth := ep["auth"].(map[string]any)
	require.Equal(t, "••••0001", auth["client_secret"], "the client secret is shown masked")
	require.Equal(t, "header", auth["auth_style"])

	// Many deliveries, one token.
	var ids []string
	for i := range 20 {
		ids = append(ids, e.publish(o, "order.created", map[string]any{"n": i}))
	}
	for _, id := range ids {
		d := e.waitStatus(o, e.onlyDelivery(o, id).ID, consign.StatusSucceeded)
		require.Len(t, d.Attempts, 1)
		require.Equal(t, "[redacted]", d.Attempts[0].Request.Headers["Authorization"])
	}
	require.Equal(t, 1, ts.count(), "one token request for 20 deliveries")
	ts.mu.Lock()
	form := ts.forms[0]
	ts.mu.Unlock()
	require.Equal(t, "consign-client:s3cret-client-secret-0001", form["basic"], "auth_style header: HTTP Basic")
	require.Equal(t, "orders:write orders:read", form["scope"])
	require.Equal(t, "https://api.partner.example", form["audience"])

	// The partner stops taking the token: the attempt gets 401, the next fetches a new one.
	ts.revokeAll()
	id := e.publish(o, "order.created", map[string]any{"n": "after revoke"})
	d := e.waitStatus(o, e.onlyDelivery(o, id).ID, consign.StatusSucceeded)
	require.Len(t, d.Attempts, 2, "the first attempt met 401, the second carried a new token")
	require.Equal(t, http.StatusUnauthorized, d.Attempts[0].Response.Status)
	require.Equal(t, 2, ts.count())

	// A token that expires is not used past its expiry: the next attempt fetches another
	// before sending, and is taken at once.
	ts.setExpiresIn(1)
	ts.revokeAll()
	id = e.publish(o, "order.created", map[string]any{"n": "short-lived"})
	e.waitStatus(o, e.onlyDelivery(o, id).ID, consign.StatusSucceeded)
	require.Equal(t, 3, ts.count())
	time.Sleep(1200 * time.Millisecond)
	id = e.publish(o, "order.created", map[string]any{"n": "after expiry"})
	d = e.waitStatus(o, e.onlyDelivery(o, id).ID, consign.StatusSucceeded)
	require.Len(t, d.Attempts, 1, "no attempt carried the expired token")
	require.Equal(t, 4, ts.count())

	// Wrong client credentials: the token endpoint's refusal is the attempt's reason and
	// nothing reaches the partner.
	bad := e.createEndpoint(o, map[string]any{"url": api.URL + "/bad", "topics": []string{"product.*"},
		"retry": fastRetry("1m"),
		"auth": map[string]any{"type": "oauth2", "token_url": ts.URL + "/oauth/token", "client_id": "consign-client",
			"client_secret": "wrong-secret", "auth_style": "params"}})
	id = e.publish(o, "product.selected", map[string]any{"product_id": "p1"})
	var last delivery
	require.Eventually(t, func() bool {
		last = e.delivery(o, e.onlyDelivery(o, id).ID)
		return len(last.Attempts) > 0
	}, waitFor, tick)
	a := last.Attempts[0]
	require.Nil(t, a.Response)
	require.NotNil(t, a.Error)
	require.Contains(t, *a.Error, "answered 401: invalid_client (client authentication failed)")
	require.Contains(t, *a.Error, ts.URL+"/oauth/token")
	ts.mu.Lock()
	form = ts.forms[len(ts.forms)-1]
	ts.mu.Unlock()
	require.Equal(t, "wrong-secret", form["client_secret"], "auth_style params: credentials in the form")
	require.Empty(t, form["basic"])
	require.NotContains(t, *a.Error, "wrong-secret")
	_ = bad
}

// TestAuthBasicBearer: the partner's credentials go in Authorization, are shown only
// masked, and a PATCH that sends the mask back keeps them.
func TestAuthBasicBearer(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("basic-bearer")
	var mu sync.Mutex
	var got []string
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		switch r.Header.Get("Authorization") {
		case "Basic " + base64.StdEncoding.EncodeToString([]byte("vendor-7:pa55-word-9876")), "Bearer partner-token-abcd-4321":
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(rc.Close)
	for _, tc := range []struct {
		name   string
		auth   map[string]any
		masked map[string]any
	}{
		{"basic", map[string]any{"type": "basic", "username": "vendor-7", "password": "pa55-word-9876"},
			map[string]any{"type": "basic", "username": "vendor-7", "password": "••••9876"}},
		{"bearer", map[string]any{"type": "bearer", "token": "partner-token-abcd-4321"},
			map[string]any{"type": "bearer", "token": "••••4321"}},
	} {
		ep := e.createEndpoint(o, map[string]any{"url": rc.URL + "/" + tc.name, "topics": []string{"order.*"}, "auth": tc.auth})
		require.Equal(t, tc.masked, ep["auth"])
		path := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string)
		// Sending back what was shown keeps the credential.
		ep = e.c.must(http.StatusOK, "PATCH", path, map[string]any{"auth": tc.masked, "description": "kept"}, o.key)
		require.Equal(t, tc.masked, ep["auth"])
	}
	id := e.publish(o, "order.created", map[string]any{"n": 1})
	for _, d := range e.deliveries(o, "event_id="+id) {
		d = e.waitStatus(o, d.ID, consign.StatusSucceeded)
		require.Len(t, d.Attempts, 1, "the partner took the credential: %v", got)
		require.Equal(t, "[redacted]", d.Attempts[0].Request.Headers["Authorization"])
	}
}

// TestAuthValidation: each auth setting that could not work is refused naming its field.
func TestAuthValidation(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *app.Config) { c.InsecureTargets = false })
	o := e.newOrg("auth-validation")
	for _, tc := range []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"unknown type", map[string]any{"auth": map[string]any{"type": "digest"}}, []string{"auth.type"}},
		{"basic without password", map[string]any{"auth": map[string]any{"type": "basic", "username": "u"}}, []string{"auth.password"}},
		{"basic with a colon", map[string]any{"auth": map[string]any{"type": "basic", "username": "a:b", "password": "p"}}, []string{"auth.username"}},
		{"bearer without token", map[string]any{"auth": map[string]any{"type": "bearer"}}, []string{"auth.token"}},
		{"bearer with a password", map[string]any{"auth": map[string]any{"type": "bearer", "token": "t", "password": "p"}}, []string{"auth.password"}},
		{"oauth2 missing all", map[string]any{"auth": map[string]any{"type": "oauth2"}},
			[]string{"auth.token_url", "auth.client_id", "auth.client_secret"}},
		{"oauth2 token url on loopback", map[string]any{"auth": map[string]any{"type": "oauth2", "token_url": "https://127.0.0.1/token",
			"client_id": "c", "client_secret": "s"}}, []string{"auth.token_url"}},
		{"oauth2 token url not http", map[string]any{"auth": map[string]any{"type": "oauth2", "token_url": "ftp://auth.partner.example/token",
			"client_id": "c", "client_secret": "s"}}, []string{"auth.token_url"}},
		{"oauth2 bad style and scope", map[string]any{"auth": map[string]any{"type": "oauth2", "token_url": "https://auth.partner.example/token",
			"client_id": "c", "client_secret": "s", "auth_style": "cookie", "scopes": []string{"a b"}}}, []string{"auth.auth_style", "auth.scopes"}},
		{"authorization header twice", map[string]any{"headers": map[string]string{"Authorization": "x"},
			"auth": map[string]any{"type": "bearer", "token": "t"}}, []string{"headers"}},
	} {
		body := map[string]any{"url": "https://partner.example.com/hook", "topics": []string{"order.*"}}
		for k, v := range tc.body {
			body[k] = v
		}
		r := e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints", body, o.key, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", tc.name, r.body)
		require.ElementsMatch(t, tc.fields, requireProblem(t, r).fields(), "%s: %s", tc.name, r.body)
	}
}

// syncBuffer is a log destination tests can read while the app writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCredentialsNeverInClear: no credential of any auth type, nor an access token,
// is in a reply, the log or the data files.
func TestCredentialsNeverInClear(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	e := start(t, func(c *app.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	o := e.newOrg("clear")
	ts := newTokenServer(t, "client-id-1", "client-secret-VALUE-77aa")
	api := ts.api(t)
	secrets := []string{"basic-password-VALUE-11aa", "bearer-token-VALUE-22aa", "client-secret-VALUE-77aa"}
	for i, auth := range []map[string]any{
		{"type": "basic", "username": "u", "password": secrets[0]},
		{"type": "bearer", "token": secrets[1]},
		{"type": "oauth2", "token_url": ts.URL + "/token", "client_id": "client-id-1", "client_secret": secrets[2]},
	} {
		ep := e.createEndpoint(o, map[string]any{"url": fmt.Sprintf("%s/%d", api.URL, i), "topics": []string{"order.*"}, "auth": auth})
		r := e.c.raw("GET", "/v1/orgs/"+o.id+"/endpoints/"+ep["id"].(string), nil, o.key, nil)
		for _, s := range secrets {
			require.NotContains(t, string(r.body), s)
		}
	}
	id := e.publish(o, "order.created", map[string]any{"n": 1})
	require.Eventually(t, func() bool {
		for _, d := range e.deliveries(o, "event_id="+id) {
			if d.AttemptsCount == 0 {
				return false
			}
		}
		return true
	}, waitFor, tick)
	ts.mu.Lock()
	for tok := range ts.expiry {
		secrets = append(secrets, tok)
	}
	ts.mu.Unlock()
	require.Len(t, secrets, 4, "one access token was issued")
	for _, path := range []string{"/v1/orgs/" + o.id + "/endpoints", "/v1/orgs/" + o.id + "/deliveries?event_id=" + id} {
		r := e.c.raw("GET", path, nil, o.key, nil)
		for _, s := range secrets {
			require.NotContains(t, string(r.body), s, "GET %s", path)
		}
	}
	for _, d := range e.deliveries(o, "event_id="+id) {
		r := e.c.raw("GET", "/v1/orgs/"+o.id+"/deliveries/"+d.ID, nil, o.key, nil)
		for _, s := range secrets {
			require.NotContains(t, string(r.body), s, "delivery %s", d.ID)
		}
	}
	e.close()
	for _, s := range secrets {
		require.NotContains(t, logs.String(), s, "the log holds a credential")
	}
	files := 0
	require.NoError(t, filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, s := range secrets {
			require.False(t, bytes.Contains(b, []byte(s)), "%s holds %q in clear", p, s)
		}
		return nil
	}))
	require.NotZero(t, files)
}
