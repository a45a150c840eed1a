package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/testlog"
)

// adminKey is the admin key every test app accepts (CONSIGN_ADMIN_KEY); 40 characters.
const adminKey = "test-admin-key-q7Vx2mP9rT4wZ8bN3cF6hJ1sD"

// Waits: how long a test waits for something the app should do quickly, and how often
// it looks.
const (
	waitFor = 10 * time.Second
	tick    = 10 * time.Millisecond
)

// fastRetry is an endpoint retry policy that keeps failure tests short.
func fastRetry(maxAge string) map[string]any {
	return map[string]any{"schedule": []string{"50ms"}, "max_age": maxAge}
}

// env is one running Consign with a client that speaks to it.
type env struct {
	tb   testing.TB
	app  *app.App
	dir  string
	c    *client
	once sync.Once
}

// start runs the real app on a free loopback port over a fresh data directory, with
// InsecureTargets on unless a mod turns it off. It is closed when the test ends.
func start(tb testing.TB, mods ...func(*app.Config)) *env {
	tb.Helper()
	cfg := app.Config{
		Addr:            "127.0.0.1:0",
		DataDir:         tb.TempDir(),
		InsecureTargets: true,
		AdminKey:        adminKey,
		Logger:          testlog.New(tb, "app"),
	}
	for _, m := range mods {
		m(&cfg)
	}
	return startWith(tb, cfg)
}

func startWith(tb testing.TB, cfg app.Config) *env {
	tb.Helper()
	a, err := app.Start(context.Background(), cfg)
	require.NoError(tb, err)
	e := &env{tb: tb, app: a, dir: cfg.DataDir, c: newClient(tb, a.URL())}
	tb.Cleanup(e.close)
	return e
}

// close stops the app (once); later calls do nothing.
func (e *env) close() {
	e.once.Do(func() { require.NoError(e.tb, e.app.Close()) })
}

// client calls the API with plain net/http.
type client struct {
	tb   testing.TB
	base string
	hc   *http.Client
}

func newClient(tb testing.TB, base string) *client {
	return &client{tb: tb, base: base, hc: &http.Client{Timeout: 30 * time.Second}}
}

// reply is an API reply as received.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the reply's body as a JSON object.
func (r *reply) json(tb testing.TB) map[string]any {
	tb.Helper()
	if len(r.body) == 0 {
		return nil
	}
	var m map[string]any
	require.NoError(tb, json.Unmarshal(r.body, &m), "reply is not a JSON object: %s", r.body)
	return m
}

// bodyReader encodes body: nil sends nothing, []byte and string are sent as they are,
// anything else as JSON.
func bodyReader(tb testing.TB, body any) io.Reader {
	switch b := body.(type) {
	case nil:
		return nil
	case []byte:
		return bytes.NewReader(b)
	case string:
		return strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(tb, err)
		return bytes.NewReader(data)
	}
}

// send makes a request and returns the reply, or an error when there is none. It does
// not fail the test, so conditions polled by require.Eventually can use it.
func (c *client) send(method, path string, body any, key string, hdr http.Header) (*reply, error) {
	req, err := http.NewRequest(method, c.base+path, bodyReader(c.tb, body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// raw is send that fails the test when no reply comes.
func (c *client) raw(method, path string, body any, key string, hdr http.Header) *reply {
	c.tb.Helper()
	r, err := c.send(method, path, body, key, hdr)
	require.NoError(c.tb, err, "%s %s", method, path)
	return r
}

// do makes a request and returns the status and the decoded JSON object (nil for an
// empty body). Every error reply must be problem+json.
func (c *client) do(method, path string, body any, key string) (int, map[string]any) {
	c.tb.Helper()
	r := c.raw(method, path, body, key, nil)
	if r.status >= 400 {
		requireProblem(c.tb, r)
	}
	return r.status, r.json(c.tb)
}

// must makes a request that must answer want, and returns the decoded reply.
func (c *client) must(want int, method, path string, body any, key string) map[string]any {
	c.tb.Helper()
	r := c.raw(method, path, body, key, nil)
	require.Equal(c.tb, want, r.status, "%s %s: %s", method, path, r.body)
	return r.json(c.tb)
}

// get decodes a 200 reply into v.
func (c *client) get(path, key string, v any) {
	c.tb.Helper()
	r := c.raw("GET", path, nil, key, nil)
	require.Equal(c.tb, http.StatusOK, r.status, "GET %s: %s", path, r.body)
	require.NoError(c.tb, json.Unmarshal(r.body, v), "GET %s: %s", path, r.body)
}

// problem is an RFC 9457 reply as the spec describes it.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// fields lists the fields the problem names.
func (p problem) fields() []string {
	var fs []string
	for _, e := range p.Errors {
		fs = append(fs, e.Field)
	}
	return fs
}

// requireProblem checks that an error reply is a complete problem+json document whose
// status matches the HTTP status, and returns it.
func requireProblem(tb testing.TB, r *reply) problem {
	tb.Helper()
	require.Equal(tb, "application/problem+json", mediaType(r.header), "status %d: %s", r.status, r.body)
	var p problem
	dec := json.NewDecoder(bytes.NewReader(r.body))
	require.NoError(tb, dec.Decode(&p), "problem body: %s", r.body)
	require.Equal(tb, r.status, p.Status, "problem status: %s", r.body)
	require.NotEmpty(tb, p.Type, "problem type: %s", r.body)
	require.NotEmpty(tb, p.Title, "problem title: %s", r.body)
	require.NotEmpty(tb, p.Detail, "problem detail: %s", r.body)
	for _, e := range p.Errors {
		// A JSON key may be "" ({"": 1}); an unknown field of that name is named as is.
		if e.Message != "unknown field" {
			require.NotEmpty(tb, e.Field, "problem errors[].field: %s", r.body)
		}
		require.NotEmpty(tb, e.Message, "problem errors[].message: %s", r.body)
	}
	return p
}

func mediaType(h http.Header) string {
	ct, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	return strings.TrimSpace(ct)
}

// org is a tenant created for a test, with a key of its own.
type org struct {
	id, key string
}

// newOrg creates an org (admin key) and an org key for it.
func (e *env) newOrg(name string) org {
	e.tb.Helper()
	o := e.c.must(http.StatusCreated, "POST", "/v1/orgs", map[string]any{"name": name}, adminKey)
	id := o["id"].(string)
	k := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+id+"/keys", map[string]any{"name": "test"}, adminKey)
	return org{id: id, key: k["key"].(string)}
}

// createEndpoint creates an endpoint and returns the reply (which carries the secret).
func (e *env) createEndpoint(o org, body map[string]any) map[string]any {
	e.tb.Helper()
	return e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+o.id+"/endpoints", body, o.key)
}

// publish creates one event and returns its id.
func (e *env) publish(o org, typ string, payload any) string {
	e.tb.Helper()
	ev := e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/events", map[string]any{"type": typ, "payload": payload}, o.key)
	return ev["id"].(string)
}

// delivery and attempt are the API's JSON shapes (spec, "Replies").
type delivery struct {
	ID            string     `json:"id"`
	EventID       string     `json:"event_id"`
	EndpointID    string     `json:"endpoint_id"`
	Status        string     `json:"status"`
	AttemptsCount int        `json:"attempts_count"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	Attempts      []attempt  `json:"attempts"`
}

type attempt struct {
	N          int       `json:"n"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	Request    struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	} `json:"request"`
	Response *struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
		Ack     map[string]string `json:"ack"`
	} `json:"response"`
	Error *string `json:"error"`
}

// deliveries lists deliveries of the org matching query (e.g. "event_id=…").
func (e *env) deliveries(o org, query string) []delivery {
	e.tb.Helper()
	var l struct{ Data []delivery }
	e.c.get("/v1/orgs/"+o.id+"/deliveries?limit=500&"+query, o.key, &l)
	return l.Data
}

// delivery fetches one delivery with its attempts.
func (e *env) delivery(o org, id string) delivery {
	e.tb.Helper()
	var d delivery
	e.c.get("/v1/orgs/"+o.id+"/deliveries/"+id, o.key, &d)
	return d
}

// onlyDelivery returns the one delivery of an event, failing if there are others.
func (e *env) onlyDelivery(o org, eventID string) delivery {
	e.tb.Helper()
	ds := e.deliveries(o, "event_id="+eventID)
	require.Len(e.tb, ds, 1, "deliveries of %s", eventID)
	return ds[0]
}

// waitStatus polls a delivery until it has the status, and returns it with attempts.
func (e *env) waitStatus(o org, id, status string) delivery {
	e.tb.Helper()
	var last delivery
	require.Eventually(e.tb, func() bool {
		r, err := e.c.send("GET", "/v1/orgs/"+o.id+"/deliveries/"+id, nil, o.key, nil)
		if err != nil || r.status != http.StatusOK {
			return false
		}
		last = delivery{}
		return json.Unmarshal(r.body, &last) == nil && last.Status == status
	}, waitFor, tick, "delivery %s never became %s; last seen %s", id, status, func() string { return fmt.Sprintf("%+v", last) }())
	return last
}

// count returns how many items a list route returns (up to 500).
func (e *env) count(path, key string) int {
	e.tb.Helper()
	var l struct{ Data []json.RawMessage }
	e.c.get(path+"?limit=500", key, &l)
	return len(l.Data)
}

// received is one request a receiver got.
type received struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time
}

// receiver is a webhook target: it records every request, hands it to the test through a
// channel, and answers with respond (200 "ok" when nil).
type receiver struct {
	*httptest.Server
	ch      chan *received
	mu      sync.Mutex
	got     []*received
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(tb testing.TB, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	tb.Helper()
	rc := &receiver{ch: make(chan *received, 1000), respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	tb.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	got := &received{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()}
	rc.mu.Lock()
	rc.got = append(rc.got, got)
	n := len(rc.got)
	rc.mu.Unlock()
	select {
	case rc.ch <- got:
	default:
	}
	if rc.respond == nil {
		_, _ = io.WriteString(w, "ok")
		return
	}
	rc.respond(n, w, r)
}

// next waits for the next request.
func (rc *receiver) next(tb testing.TB) *received {
	tb.Helper()
	select {
	case r := <-rc.ch:
		return r
	case <-time.After(waitFor):
		require.FailNow(tb, "the receiver got no request in time")
		return nil
	}
}

// all returns every request so far.
func (rc *receiver) all() []*received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*received(nil), rc.got...)
}

// status answers every request with one status.
func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}
