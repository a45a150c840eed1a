package app_test

// End-to-end tests: the real app (HTTP API, ingest, dispatcher, SQLite store) on a
// loopback port, driven over HTTP like a client would, delivering to httptest receivers.
// Each test waits on signals (requests arriving at a receiver, or a state seen through
// the API); none sleeps.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/webhook"
)

// TestDeliverSignedEnvelope is the happy path: one event, one subscribed endpoint, one
// signed request with the documented headers and envelope, and the attempt on record.
func TestDeliverSignedEnvelope(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("acme")
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Receiver", "yes")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"received":true}`)
	})
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL + "/hooks", "topics": []string{"order.*"}})
	secret, _ := ep["secret"].(string)
	require.True(t, strings.HasPrefix(secret, signing.SecretPrefix), "create reply secret: %v", ep)
	require.Equal(t, true, ep["active"])
	require.Equal(t, "healthy", ep["health"])

	payload := map[string]any{"order_id": "ord_1", "lines": []any{map[string]any{"sku": "A-1", "qty": 2}}, "total": 12.5}
	before := time.Now().Unix()
	evID := e.publish(o, "order.fulfilled", payload)
	require.True(t, strings.HasPrefix(evID, "evt_"), evID)

	got := rc.next(t)
	require.Equal(t, "POST", got.Method)
	require.Equal(t, "/hooks", got.Path)
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	require.Equal(t, "Consign/"+consign.Version, got.Header.Get("User-Agent"))
	require.Equal(t, evID, got.Header.Get("webhook-id"))
	ts, err := strconv.ParseInt(got.Header.Get("webhook-timestamp"), 10, 64)
	require.NoError(t, err, "webhook-timestamp %q", got.Header.Get("webhook-timestamp"))
	require.GreaterOrEqual(t, ts, before-1)
	require.LessOrEqual(t, ts, time.Now().Unix()+1)
	sig := got.Header.Get("webhook-signature")
	require.True(t, strings.HasPrefix(sig, "v1,"), "webhook-signature %q", sig)
	require.Len(t, strings.Fields(sig), 1, "one active secret, one signature")
	require.NoError(t, webhook.Verify(secret, got.Header, got.Body))
	require.ErrorIs(t, webhook.Verify(secret, got.Header, append(slices.Clone(got.Body), ' ')), webhook.ErrNoMatch,
		"the signature must cover the body")

	var env map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(got.Body, &env), "body: %s", got.Body)
	require.ElementsMatch(t, []string{"id", "type", "timestamp", "data"}, keys(env), "envelope: %s", got.Body)
	require.JSONEq(t, strconv.Quote(evID), string(env["id"]))
	require.JSONEq(t, `"order.fulfilled"`, string(env["type"]))
	want, _ := json.Marshal(payload)
	require.JSONEq(t, string(want), string(env["data"]))
	var stamp string
	require.NoError(t, json.Unmarshal(env["timestamp"], &stamp))
	sent, err := time.Parse(time.RFC3339Nano, stamp)
	require.NoError(t, err, "envelope timestamp %q", stamp)
	var ev struct {
		CreatedAt time.Time `json:"created_at"`
	}
	e.c.get("/v1/orgs/"+o.id+"/events/"+evID, o.key, &ev)
	require.True(t, sent.Equal(ev.CreatedAt), "envelope timestamp %s, event created_at %s", sent, ev.CreatedAt)

	d := e.onlyDelivery(o, evID)
	require.Equal(t, ep["id"], d.EndpointID)
	d = e.waitStatus(o, d.ID, consign.StatusSucceeded)
	require.Equal(t, 1, d.AttemptsCount)
	require.Len(t, d.Attempts, 1)
	a := d.Attempts[0]
	require.Equal(t, 1, a.N)
	require.Equal(t, "POST", a.Request.Method)
	require.Equal(t, rc.URL+"/hooks", a.Request.URL)
	require.Equal(t, evID, a.Request.Headers["Webhook-Id"], "attempt request headers: %v", a.Request.Headers)
	require.Equal(t, sig, a.Request.Headers["Webhook-Signature"])
	require.Equal(t, "application/json", a.Request.Headers["Content-Type"])
	require.Equal(t, "Consign/"+consign.Version, a.Request.Headers["User-Agent"])
	require.NotNil(t, a.Response, "attempt response")
	require.Equal(t, http.StatusOK, a.Response.Status)
	require.Equal(t, `{"received":true}`, a.Response.Body)
	require.Equal(t, "yes", a.Response.Headers["X-Receiver"])
	require.Nil(t, a.Error)
	require.False(t, a.StartedAt.IsZero())
	require.Nil(t, d.NextAttemptAt, "a finished delivery has no next attempt")
	require.Len(t, rc.all(), 1, "exactly one request")
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestFanOutByTopic checks that each event reaches exactly the active endpoints whose
// topics match it.
func TestFanOutByTopic(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("fan")
	rc := newReceiver(t, nil)
	eps := map[string]string{} // path → endpoint id
	for _, x := range []struct {
		path   string
		topics []string
		active bool
	}{
		{"/orders", []string{"order.*"}, true},
		{"/all", []string{"*"}, true},
		{"/inventory", []string{"product.inventoryChanged"}, true},
		{"/inactive", []string{"*"}, false},
		{"/ops", []string{"consign.*"}, true},
	} {
		ep := e.createEndpoint(o, map[string]any{"url": rc.URL + x.path, "topics": x.topics, "active": x.active})
		require.Equal(t, x.active, ep["active"], "%s: %v", x.path, ep)
		eps[x.path] = ep["id"].(string)
	}

	// The inactive endpoint's deliveries wait for it, paused.
	wantPaths := map[string][]string{
		"order.fulfilled":          {"/orders", "/all", "/inactive"},
		"order.cancelled":          {"/orders", "/all", "/inactive"},
		"product.inventoryChanged": {"/all", "/inventory", "/inactive"},
		"shipment.created":         {"/all", "/inactive"},
	}
	want := map[string]bool{} // path + " " + event id
	var dlvs []string
	for typ, paths := range wantPaths {
		id := e.publish(o, typ, map[string]any{"type": typ})
		var ev struct {
			Deliveries []delivery `json:"deliveries"`
		}
		e.c.get("/v1/orgs/"+o.id+"/events/"+id, o.key, &ev)
		var gotEps, wantEps []string
		for _, d := range ev.Deliveries {
			gotEps = append(gotEps, d.EndpointID)
			if d.EndpointID == eps["/inactive"] {
				require.Equal(t, consign.StatusPaused, d.Status)
				continue
			}
			dlvs = append(dlvs, d.ID)
		}
		for _, p := range paths {
			wantEps = append(wantEps, eps[p])
			if p != "/inactive" {
				want[p+" "+id] = true
			}
		}
		require.ElementsMatch(t, wantEps, gotEps, "deliveries of %s", typ)
	}
	for _, id := range dlvs {
		e.waitStatus(o, id, consign.StatusSucceeded)
	}
	got := map[string]bool{}
	for _, r := range rc.all() {
		k := r.Path + " " + r.Header.Get("webhook-id")
		require.False(t, got[k], "sent twice: %s", k)
		got[k] = true
	}
	require.Equal(t, want, got)

	// An org's role limits its topics: a seller may not take buyer-only topics, and "*"
	// does not bring them to it.
	seller := e.c.must(http.StatusCreated, "POST", "/v1/orgs", map[string]any{"name": "seller", "role": "seller"}, adminKey)["id"].(string)
	sellerPath := "/v1/orgs/" + seller
	st, body := e.c.do("POST", sellerPath+"/endpoints", map[string]any{"url": rc.URL + "/seller-ff", "topics": []string{"order.fulfilled"}}, adminKey)
	require.Equal(t, http.StatusUnprocessableEntity, st, "%v", body)
	require.Equal(t, "topics", fieldOf(body))
	e.c.must(http.StatusCreated, "POST", sellerPath+"/endpoints", map[string]any{"url": rc.URL + "/seller", "topics": []string{"*"}}, adminKey)
	for typ, n := range map[string]int{"order.fulfilled": 0, "order.cancelled": 1} {
		ev := e.c.must(http.StatusAccepted, "POST", sellerPath+"/events", map[string]any{"type": typ, "payload": map[string]any{}}, adminKey)
		var dl struct{ Data []delivery }
		e.c.get(sellerPath+"/deliveries?event_id="+ev["id"].(string), adminKey, &dl)
		require.Len(t, dl.Data, n, "a seller's %s deliveries", typ)
	}

	// Clients cannot publish Consign's own events, so "*" cannot receive them that way.
	st, body = e.c.do("POST", "/v1/orgs/"+o.id+"/events", map[string]any{"type": consign.TypeEndpointDisabled, "payload": map[string]any{}}, o.key)
	require.Equal(t, http.StatusUnprocessableEntity, st, "%v", body)
	require.Equal(t, "type", fieldOf(body))
}

// fieldOf returns the first errors[].field of a problem reply.
func fieldOf(p map[string]any) string {
	errs, _ := p["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	f, _ := errs[0].(map[string]any)["field"].(string)
	return f
}

// TestDeliveryFormats checks raw payloads, PUT, custom headers and token auth.
func TestDeliveryFormats(t *testing.T) {
	t.Parallel()
	e := start(t)
	// The payload exactly as the client writes it: spacing, key order and escapes must
	// reach the receiver unchanged in raw mode.
	const raw = `{"po":"PO-1",  "lines":[ {"sku":"A","qty":1} ], "note":"caf\u00e9", "b":2, "a":1}`
	for _, tc := range []struct {
		name     string
		endpoint map[string]any
		check    func(t *testing.T, got *received, secret string, logged map[string]string)
	}{{
		name: "raw PUT with token auth and custom headers",
		endpoint: map[string]any{
			"method": "PUT", "payload_format": "raw",
			"headers": map[string]string{"X-Vendor": "v-42", "X-Api-Key": "vendor-key"},
			"auth":    map[string]string{"type": "token", "token": "rc-token-123"},
		},
		check: func(t *testing.T, got *received, _ string, logged map[string]string) {
			require.Equal(t, "PUT", got.Method)
			require.Equal(t, "rc-token-123", got.Header.Get("Auth"))
			require.Empty(t, got.Header.Values("webhook-signature"), "token auth sends no signature")
			require.Equal(t, "v-42", got.Header.Get("X-Vendor"))
			require.Equal(t, "vendor-key", got.Header.Get("X-Api-Key"))
			// Credentials sent to the receiver are not written to the attempt log: the token,
			// and every configured header's value, whatever it is called, masked.
			require.Equal(t, "[redacted]", logged["Auth"], "attempt headers: %v", logged)
			require.Equal(t, consign.Mask("vendor-key"), logged["X-Api-Key"], "attempt headers: %v", logged)
			require.Equal(t, consign.Mask("v-42"), logged["X-Vendor"])
		},
	}, {
		name:     "raw POST signed",
		endpoint: map[string]any{"payload_format": "raw"},
		check: func(t *testing.T, got *received, secret string, logged map[string]string) {
			require.Equal(t, "POST", got.Method)
			require.Empty(t, got.Header.Get("Auth"))
			require.NoError(t, webhook.Verify(secret, got.Header, got.Body))
			require.Equal(t, got.Header.Get("webhook-signature"), logged["Webhook-Signature"])
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := e.newOrg(tc.name)
			rc := newReceiver(t, nil)
			body := map[string]any{"url": rc.URL + "/po", "topics": []string{"purchase_order.created"}}
			for k, v := range tc.endpoint {
				body[k] = v
			}
			ep := e.createEndpoint(o, body)
			r := e.c.raw("POST", "/v1/orgs/"+o.id+"/events", `{"type":"purchase_order.created","payload":`+raw+`}`, o.key, nil)
			require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
			evID := r.json(t)["id"].(string)

			got := rc.next(t)
			require.Equal(t, raw, string(got.Body), "raw payload must arrive byte for byte")
			require.Equal(t, "application/json", got.Header.Get("Content-Type"))
			require.Equal(t, "Consign/"+consign.Version, got.Header.Get("User-Agent"))
			require.Equal(t, evID, got.Header.Get("webhook-id"))
			d := e.waitStatus(o, e.onlyDelivery(o, evID).ID, consign.StatusSucceeded)
			require.Len(t, d.Attempts, 1)
			require.Equal(t, got.Method, d.Attempts[0].Request.Method)
			secret, _ := ep["secret"].(string)
			tc.check(t, got, secret, d.Attempts[0].Request.Headers)
		})
	}
}

// TestSecrets covers several active secrets, rotation with and without grace, values
// shown only once, and ed25519 (v1a) keys.
func TestSecrets(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("secrets")
	rc := newReceiver(t, nil)
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL + "/hmac", "topics": []string{"order.*"}})
	epPath := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string)
	s1 := ep["secret"].(string)

	// send publishes an event and returns the signature entries of its request.
	send := func() (*received, []string) {
		t.Helper()
		id := e.publish(o, "order.created", map[string]any{"n": 1})
		got := rc.next(t)
		require.Equal(t, id, got.Header.Get("webhook-id"))
		return got, strings.Fields(got.Header.Get("webhook-signature"))
	}
	verifies := func(secret string, got *received) error {
		return webhook.Verify(secret, got.Header, got.Body)
	}

	got, sigs := send()
	require.Len(t, sigs, 1)
	require.NoError(t, verifies(s1, got))

	added := e.c.must(http.StatusCreated, "POST", epPath+"/secrets", map[string]any{}, o.key)
	s2, _ := added["value"].(string)
	require.True(t, strings.HasPrefix(s2, signing.SecretPrefix), "add reply: %v", added)
	got, sigs = send()
	require.Len(t, sigs, 2, "both active secrets sign")
	require.NoError(t, verifies(s1, got))
	require.NoError(t, verifies(s2, got))

	rot := e.c.must(http.StatusCreated, "POST", epPath+"/secrets/rotate", map[string]any{"grace": "1h"}, o.key)
	s3, _ := rot["value"].(string)
	require.True(t, strings.HasPrefix(s3, signing.SecretPrefix), "rotate reply: %v", rot)
	got, sigs = send()
	require.Len(t, sigs, 3, "during the grace period old and new secrets sign")
	for _, s := range []string{s1, s2, s3} {
		require.NoError(t, verifies(s, got))
	}
	var list struct{ Data []map[string]any }
	e.c.get(epPath+"/secrets", o.key, &list)
	require.Len(t, list.Data, 3)
	for _, s := range list.Data {
		require.NotContains(t, s, "value", "a listed secret shows no value: %v", s)
		if s["id"] == rot["id"] {
			require.Nil(t, s["expires_at"])
		} else {
			exp, err := time.Parse(time.RFC3339, s["expires_at"].(string))
			require.NoError(t, err)
			require.WithinDuration(t, time.Now().Add(time.Hour), exp, time.Minute)
		}
	}

	rot = e.c.must(http.StatusCreated, "POST", epPath+"/secrets/rotate", map[string]any{"grace": "0s"}, o.key)
	s4 := rot["value"].(string)
	got, sigs = send()
	require.Len(t, sigs, 1, "without grace only the new secret signs")
	require.NoError(t, verifies(s4, got))
	for _, s := range []string{s1, s2, s3} {
		require.ErrorIs(t, verifies(s, got), webhook.ErrNoMatch)
	}
	// The last secret that signs cannot be deleted; an expired one can.
	e.c.must(http.StatusConflict, "DELETE", epPath+"/secrets/"+rot["id"].(string), nil, o.key)
	e.c.must(http.StatusNoContent, "DELETE", epPath+"/secrets/"+added["id"].(string), nil, o.key)

	// ed25519: the endpoint is given a whsk_ key and the reply carries its whpk_ half.
	priv, pub, err := signing.NewKeyPair()
	require.NoError(t, err)
	ed := e.createEndpoint(o, map[string]any{"url": rc.URL + "/ed25519", "topics": []string{"product.*"}, "secret": priv})
	require.Equal(t, pub, ed["public_key"], "create reply: %v", ed)
	e.publish(o, "product.selected", map[string]any{"product_id": "p1"})
	got = rc.next(t)
	require.Equal(t, "/ed25519", got.Path)
	sigs = strings.Fields(got.Header.Get("webhook-signature"))
	require.Len(t, sigs, 1)
	require.True(t, strings.HasPrefix(sigs[0], "v1a,"), "signature %q", sigs[0])
	require.NoError(t, verifies(pub, got))
	e.c.get("/v1/orgs/"+o.id+"/endpoints/"+ed["id"].(string)+"/secrets", o.key, &list)
	require.Len(t, list.Data, 1)
	require.Equal(t, pub, list.Data[0]["public_key"])

	// No read route shows a secret value again.
	for _, path := range []string{epPath, epPath + "/secrets", "/v1/orgs/" + o.id + "/endpoints",
		"/v1/orgs/" + o.id + "/endpoints/" + ed["id"].(string), "/v1/orgs/" + o.id + "/endpoints/" + ed["id"].(string) + "/secrets",
		"/v1/orgs/" + o.id + "/deliveries", "/v1/orgs/" + o.id + "/events"} {
		r := e.c.raw("GET", path, nil, o.key, nil)
		require.Equal(t, http.StatusOK, r.status, "GET %s: %s", path, r.body)
		for _, s := range []string{s1, s2, s3, s4, priv} {
			require.NotContains(t, string(r.body), strings.TrimPrefix(strings.TrimPrefix(s, signing.SecretPrefix), signing.SigningKeyPrefix),
				"GET %s shows a secret value", path)
		}
	}
}

// TestRetries covers the retry schedule, giving up, 410 Gone, Retry-After and redirects.
func TestRetries(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("fails twice then succeeds", func(t *testing.T) {
		t.Parallel()
		o := e.newOrg("retry")
		rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n <= 2 {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, "boom "+strconv.Itoa(n))
				return
			}
			_, _ = io.WriteString(w, "fine")
		})
		ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}, "retry": fastRetry("30s")})
		id := e.publish(o, "order.created", map[string]any{"n": 1})
		d := e.waitStatus(o, e.onlyDelivery(o, id).ID, consign.StatusSucceeded)
		require.Equal(t, 3, d.AttemptsCount)
		require.Len(t, d.Attempts, 3)
		for i, a := range d.Attempts {
			require.Equal(t, i+1, a.N)
			require.NotNil(t, a.Response, "attempt %d", a.N)
			if i < 2 {
				require.Equal(t, http.StatusInternalServerError, a.Response.Status)
				require.Equal(t, "boom "+strconv.Itoa(i+1), a.Response.Body)
				require.NotNil(t, a.Error, "a failed attempt says why")
				require.Contains(t, *a.Error, "500")
			} else {
				require.Equal(t, http.StatusOK, a.Response.Status)
				require.Nil(t, a.Error)
			}
		}
		reqs := rc.all()
		require.Len(t, reqs, 3)
		for _, r := range reqs {
			require.Equal(t, id, r.Header.Get("webhook-id"), "webhook-id is stable across retries")
			require.Equal(t, string(reqs[0].Body), string(r.Body), "the body is the same on every attempt")
			require.NoError(t, webhook.Verify(ep["secret"].(string), r.Header, r.Body))
		}
	})

	t.Run("gives up when the delivery is too old", func(t *testing.T) {
		t.Parallel()
		o := e.newOrg("fail")
		rc := newReceiver(t, status(http.StatusInternalServerError))
		// Old after 2 s, retried every 50 ms: a loaded machine may take longer than a few
		// hundred milliseconds to make the first attempt, and the delivery is then too old
		// for a second.
		e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}, "retry": fastRetry("2s")})
		id := e.publish(o, "order.created", map[string]any{"n": 1})
		d := e.waitStatus(o, e.onlyDelivery(o, id).ID, consign.StatusFailed)
		require.GreaterOrEqual(t, d.AttemptsCount, 2, "retried before giving up")
		require.Len(t, d.Attempts, d.AttemptsCount)
		require.Nil(t, d.NextAttemptAt)
		require.Len(t, rc.all(), d.AttemptsCount, "one request per recorded attempt")
	})

	t.Run("410 deactivates and reactivation sends", func(t *testing.T) {
		t.Parallel()
		o := e.newOrg("gone")
		var back atomic.Bool
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			if !back.Load() {
				w.WriteHeader(http.StatusGone)
			}
		})
		ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}, "retry": fastRetry("30s")})
		epPath := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string)
		id := e.publish(o, "order.created", map[string]any{"n": 1})
		dlv := e.onlyDelivery(o, id).ID
		d := e.waitStatus(o, dlv, consign.StatusPaused)
		require.Equal(t, 1, d.AttemptsCount, "410 is not retried")
		require.Equal(t, http.StatusGone, d.Attempts[0].Response.Status)

		got := e.c.must(http.StatusOK, "GET", epPath, nil, o.key)
		require.Equal(t, false, got["active"])
		require.Equal(t, "failed", got["health"])
		require.NotNil(t, got["disabled_at"])
		require.Contains(t, got["disabled_reason"], "410")

		// What is published for an inactive endpoint waits, paused, and is not sent.
		later := e.publish(o, "order.created", map[string]any{"n": 2})
		laterDlv := e.waitStatus(o, e.onlyDelivery(o, later).ID, consign.StatusPaused).ID
		require.Len(t, rc.all(), 1)

		back.Store(true)
		got = e.c.must(http.StatusOK, "PATCH", epPath, map[string]any{"active": true}, o.key)
		require.Equal(t, true, got["active"])
		require.Equal(t, "healthy", got["health"])
		require.Nil(t, got["disabled_at"])
		require.Empty(t, got["disabled_reason"])
		d = e.waitStatus(o, dlv, consign.StatusSucceeded)
		require.Equal(t, 2, d.AttemptsCount)
		e.waitStatus(o, laterDlv, consign.StatusSucceeded)
		reqs := rc.all()
		require.Len(t, reqs, 3)
		require.ElementsMatch(t, []string{id, later}, []string{reqs[1].Header.Get("webhook-id"), reqs[2].Header.Get("webhook-id")})
	})

	t.Run("Retry-After holds the endpoint", func(t *testing.T) {
		t.Parallel()
		o := e.newOrg("throttle")
		rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
			}
		})
		e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}, "retry": fastRetry("30s")})
		id := e.publish(o, "order.created", map[string]any{"n": 1})
		dlv := e.onlyDelivery(o, id).ID
		first := rc.next(t)
		// Once the 429 is on record, a new event for the same endpoint waits too.
		require.Eventually(t, func() bool { return e.delivery(o, dlv).AttemptsCount == 1 }, waitFor, tick)
		other := e.publish(o, "order.created", map[string]any{"n": 2})
		for range 2 {
			r := rc.next(t)
			gap := r.At.Sub(first.At)
			require.GreaterOrEqual(t, gap, 990*time.Millisecond,
				"%s was sent %s after a 429 with Retry-After: 1", r.Header.Get("webhook-id"), gap)
		}
		d := e.waitStatus(o, dlv, consign.StatusSucceeded)
		require.Equal(t, 2, d.AttemptsCount)
		require.Equal(t, http.StatusTooManyRequests, d.Attempts[0].Response.Status)
		require.NotNil(t, d.Attempts[0].Error)
		d = e.waitStatus(o, e.onlyDelivery(o, other).ID, consign.StatusSucceeded)
		require.Equal(t, 1, d.AttemptsCount)
	})

	t.Run("redirects are not followed", func(t *testing.T) {
		t.Parallel()
		o := e.newOrg("redirect")
		target := newReceiver(t, nil)
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
		})
		e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}, "retry": fastRetry("300ms")})
		id := e.publish(o, "order.created", map[string]any{"n": 1})
		d := e.waitStatus(o, e.onlyDelivery(o, id).ID, consign.StatusFailed)
		for _, a := range d.Attempts {
			require.Equal(t, http.StatusFound, a.Response.Status)
			require.NotNil(t, a.Error)
			require.Contains(t, *a.Error, "redirect")
		}
		require.Len(t, rc.all(), d.AttemptsCount)
		require.Empty(t, target.all(), "the redirect target must never be called")
	})
}

// TestIdempotencyAndBatch covers idempotency keys and the batch route, all or nothing.
func TestIdempotencyAndBatch(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("idem")
	rc := newReceiver(t, nil)
	e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}})
	events := "/v1/orgs/" + o.id + "/events"

	post := func(body any, idemHeader string) (int, map[string]any) {
		t.Helper()
		var h http.Header
		if idemHeader != "" {
			h = http.Header{"Idempotency-Key": {idemHeader}}
		}
		r := e.c.raw("POST", events, body, o.key, h)
		if r.status >= 400 {
			requireProblem(t, r)
		}
		return r.status, r.json(t)
	}
	first := map[string]any{"type": "order.created", "payload": map[string]any{"n": 1}}
	st, a := post(first, "k-1")
	require.Equal(t, http.StatusAccepted, st, "%v", a)
	st, b := post(map[string]any{"type": "order.created", "payload": map[string]any{"n": 2}}, "k-1")
	require.Equal(t, http.StatusOK, st, "a repeated Idempotency-Key answers 200: %v", b)
	require.Equal(t, a["id"], b["id"])
	require.Equal(t, a["payload"], b["payload"], "the first event is returned")
	require.Equal(t, "k-1", b["idempotency_key"])

	withField := map[string]any{"type": "order.created", "payload": map[string]any{"n": 3}, "idempotency_key": "k-2"}
	st, c := post(withField, "")
	require.Equal(t, http.StatusAccepted, st, "%v", c)
	require.NotEqual(t, a["id"], c["id"])
	st, d := post(withField, "")
	require.Equal(t, http.StatusOK, st, "%v", d)
	require.Equal(t, c["id"], d["id"])
	st, d = post(withField, "k-2")
	require.Equal(t, http.StatusOK, st, "header and field with the same key: %v", d)
	require.Equal(t, c["id"], d["id"])
	st, d = post(withField, "k-other")
	require.Equal(t, http.StatusUnprocessableEntity, st, "header and field disagree: %v", d)
	require.Equal(t, "idempotency_key", fieldOf(d))

	// Concurrent requests with one key: one event, one 202.
	var wg sync.WaitGroup
	statuses := make([]int, 16)
	evIDs := make([]string, 16)
	for i := range statuses {
		wg.Go(func() {
			r, err := e.c.send("POST", events, map[string]any{"type": "order.created", "payload": map[string]any{"i": i}}, o.key,
				http.Header{"Idempotency-Key": {"k-race"}})
			if err == nil {
				statuses[i] = r.status
				var ev struct{ ID string }
				_ = json.Unmarshal(r.body, &ev)
				evIDs[i] = ev.ID
			}
		})
	}
	wg.Wait()
	accepted := 0
	for i, st := range statuses {
		require.Contains(t, []int{http.StatusAccepted, http.StatusOK}, st)
		require.Equal(t, evIDs[0], evIDs[i], "every reply names the same event")
		if st == http.StatusAccepted {
			accepted++
		}
	}
	require.Equal(t, 1, accepted, "one request created the event: %v", statuses)
	race := e.onlyDelivery(o, evIDs[0])

	// Keys are per org.
	other := e.newOrg("other")
	r := e.c.raw("POST", "/v1/orgs/"+other.id+"/events", first, other.key, http.Header{"Idempotency-Key": {"k-1"}})
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)

	require.Equal(t, 3, e.count(events, o.key))
	for _, ev := range []map[string]any{a, c} {
		dl := e.onlyDelivery(o, ev["id"].(string))
		e.waitStatus(o, dl.ID, consign.StatusSucceeded)
	}
	e.waitStatus(o, race.ID, consign.StatusSucceeded)
	require.Len(t, rc.all(), 3, "a duplicate creates no delivery")

	// Batch: 202, the events in the order given.
	types := []string{"order.created", "shipment.created", "order.cancelled", "inventory.updated"}
	var batch []map[string]any
	for i, typ := range types {
		batch = append(batch, map[string]any{"type": typ, "payload": map[string]any{"i": i}})
	}
	rep := e.c.must(http.StatusAccepted, "POST", events+"/batch", map[string]any{"events": batch}, o.key)
	data := rep["data"].([]any)
	require.Len(t, data, len(types))
	seen := map[string]bool{}
	for i, x := range data {
		ev := x.(map[string]any)
		require.Equal(t, types[i], ev["type"])
		require.Equal(t, map[string]any{"i": float64(i)}, ev["payload"])
		id := ev["id"].(string)
		require.False(t, seen[id])
		seen[id] = true
		e.c.must(http.StatusOK, "GET", events+"/"+id, nil, o.key)
	}
	n := e.count(events, o.key)
	require.Equal(t, 3+len(types), n)

	// Too many, or one bad event: nothing is written.
	var big []map[string]any
	for i := range 1001 {
		big = append(big, map[string]any{"type": "order.created", "payload": map[string]any{"i": i}})
	}
	st, p := e.c.do("POST", events+"/batch", map[string]any{"events": big}, o.key)
	require.Equal(t, http.StatusRequestEntityTooLarge, st, "%v", p)
	for _, tc := range []struct {
		name  string
		bad   map[string]any
		field string
	}{
		{"unknown type", map[string]any{"type": "no.such.type", "payload": map[string]any{}}, "events[2].type"},
		{"no payload", map[string]any{"type": "order.created"}, "events[2].payload"},
		{"operational type", map[string]any{"type": "consign.test", "payload": map[string]any{}}, "events[2].type"},
	} {
		evs := []map[string]any{batch[0], batch[1], tc.bad, batch[3]}
		st, p := e.c.do("POST", events+"/batch", map[string]any{"events": evs}, o.key)
		require.Equal(t, http.StatusUnprocessableEntity, st, "%s: %v", tc.name, p)
		require.Equal(t, tc.field, fieldOf(p), "%s: %v", tc.name, p)
	}
	st, p = e.c.do("POST", events+"/batch", map[string]any{"events": []any{}}, o.key)
	require.Equal(t, http.StatusUnprocessableEntity, st, "empty batch: %v", p)
	require.Equal(t, n, e.count(events, o.key), "a refused batch writes nothing")
}

// TestRestartKeepsEverything stops the app with deliveries waiting and starts it again
// on the same data directory.
func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	var up atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	e1 := start(t)
	require.Empty(t, e1.app.NewAdminKey, "with an admin key configured no new one is made")
	o := e1.newOrg("durable")
	ep := e1.createEndpoint(o, map[string]any{"url": rc.URL + "/r", "topics": []string{"*"},
		"retry": map[string]any{"schedule": []string{"100ms"}, "max_age": "10m"}})
	secret := ep["secret"].(string)
	var ids []string
	for i := range 3 {
		ids = append(ids, e1.publish(o, "order.created", map[string]any{"i": i}))
	}
	before := map[string]delivery{}
	for _, id := range ids {
		dl := e1.onlyDelivery(o, id)
		require.Eventually(t, func() bool {
			dl = e1.delivery(o, dl.ID)
			return dl.Status == consign.StatusPending && dl.AttemptsCount >= 1
		}, waitFor, tick)
		before[id] = dl
	}
	var orgBefore, epBefore map[string]any
	e1.c.get("/v1/orgs/"+o.id, o.key, &orgBefore)
	e1.c.get("/v1/orgs/"+o.id+"/endpoints/"+ep["id"].(string), o.key, &epBefore)
	e1.close()

	// At rest, keys are hashed and secrets sealed.
	files, err := os.ReadDir(e1.dir)
	require.NoError(t, err)
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(e1.dir, f.Name()))
		require.NoError(t, err)
		for _, s := range []string{strings.TrimPrefix(secret, signing.SecretPrefix), o.key, adminKey} {
			require.NotContains(t, string(data), s, "%s holds a secret in plain text", f.Name())
		}
	}

	e2 := start(t, func(c *app.Config) { c.DataDir = e1.dir })
	require.Empty(t, e2.app.NewAdminKey, "a restart makes no new admin key")
	var orgs struct{ Data []map[string]any }
	e2.c.get("/v1/orgs", adminKey, &orgs)
	require.Len(t, orgs.Data, 1)
	require.Equal(t, o.id, orgs.Data[0]["id"])
	var orgAfter, epAfter map[string]any
	e2.c.get("/v1/orgs/"+o.id, o.key, &orgAfter)
	require.Equal(t, orgBefore, orgAfter)
	e2.c.get("/v1/orgs/"+o.id+"/endpoints/"+ep["id"].(string), o.key, &epAfter)
	require.Equal(t, epBefore, epAfter)

	var evs struct {
		Data []struct {
			ID      string         `json:"id"`
			Payload map[string]any `json:"payload"`
		}
	}
	e2.c.get("/v1/orgs/"+o.id+"/events", o.key, &evs)
	require.Len(t, evs.Data, 3)
	for i, ev := range evs.Data { // newest first
		require.Equal(t, ids[2-i], ev.ID)
		require.Equal(t, map[string]any{"i": float64(2 - i)}, ev.Payload)
	}
	for _, id := range ids {
		b := before[id]
		a := e2.delivery(o, b.ID)
		require.Equal(t, b.EventID, a.EventID)
		require.Equal(t, b.EndpointID, a.EndpointID)
		require.GreaterOrEqual(t, a.AttemptsCount, b.AttemptsCount)
		require.Contains(t, []string{consign.StatusPending, consign.StatusDelivering}, a.Status)
		require.Equal(t, b.Attempts[0].N, a.Attempts[0].N)
		require.True(t, b.Attempts[0].StartedAt.Equal(a.Attempts[0].StartedAt))
		require.Equal(t, http.StatusServiceUnavailable, a.Attempts[0].Response.Status)
	}

	up.Store(true)
	for _, id := range ids {
		e2.waitStatus(o, before[id].ID, consign.StatusSucceeded)
	}
	delivered := map[string]bool{}
	for _, r := range rc.all() {
		if !strings.HasPrefix(r.Header.Get("webhook-signature"), "v1,") {
			continue
		}
		// The secret was unsealed after the restart: new requests still verify.
		require.NoError(t, webhook.Verify(secret, r.Header, r.Body))
		delivered[r.Header.Get("webhook-id")] = true
	}
	for _, id := range ids {
		require.True(t, delivered[id], "event %s delivered", id)
	}
}

// TestTenantIsolation checks that an org key sees and changes nothing of another org.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := start(t)
	a, b := e.newOrg("org-a"), e.newOrg("org-b")
	rc := newReceiver(t, nil)
	epB := e.createEndpoint(b, map[string]any{"url": rc.URL + "/b", "topics": []string{"*"}})["id"].(string)
	evB := e.publish(b, "order.created", map[string]any{"n": 1})
	dlvB := e.onlyDelivery(b, evB).ID
	e.waitStatus(b, dlvB, consign.StatusSucceeded)
	keyB := e.c.must(http.StatusCreated, "POST", "/v1/orgs/"+b.id+"/keys", map[string]any{"name": "second"}, b.key)
	var secs struct{ Data []map[string]any }
	e.c.get("/v1/orgs/"+b.id+"/endpoints/"+epB+"/secrets", b.key, &secs)
	secB := secs.Data[0]["id"].(string)
	e.createEndpoint(a, map[string]any{"url": rc.URL + "/a", "topics": []string{"*"}})

	event := map[string]any{"type": "order.created", "payload": map[string]any{"n": 2}}
	endpoint := map[string]any{"url": rc.URL + "/x", "topics": []string{"*"}}
	since := map[string]any{"since": time.Now().Add(-time.Hour).Format(time.RFC3339)}
	type req struct {
		method, path string
		body         any
	}
	var reqs []req
	// B's objects under B's path, and B's ids under A's own path.
	for _, org := range []string{b.id, a.id} {
		p := "/v1/orgs/" + org
		reqs = append(reqs,
			req{"GET", p + "/endpoints/" + epB, nil},
			req{"PATCH", p + "/endpoints/" + epB, map[string]any{"active": false}},
			req{"DELETE", p + "/endpoints/" + epB, nil},
			req{"GET", p + "/endpoints/" + epB + "/secrets", nil},
			req{"POST", p + "/endpoints/" + epB + "/secrets", map[string]any{}},
			req{"POST", p + "/endpoints/" + epB + "/secrets/rotate", map[string]any{"grace": "0s"}},
			req{"PATCH", p + "/endpoints/" + epB + "/secrets/" + secB, map[string]any{"expires_at": time.Now().Add(time.Hour)}},
			req{"DELETE", p + "/endpoints/" + epB + "/secrets/" + secB, nil},
			req{"POST", p + "/endpoints/" + epB + "/test", map[string]any{}},
			req{"POST", p + "/endpoints/" + epB + "/recover", since},
			req{"GET", p + "/events/" + evB, nil},
			req{"GET", p + "/deliveries/" + dlvB, nil},
			req{"POST", p + "/deliveries/" + dlvB + "/retry", nil},
			req{"DELETE", p + "/keys/" + keyB["id"].(string), nil},
		)
	}
	p := "/v1/orgs/" + b.id
	reqs = append(reqs,
		req{"GET", p, nil},
		req{"GET", p + "/endpoints", nil},
		req{"POST", p + "/endpoints", endpoint},
		req{"GET", p + "/events", nil},
		req{"POST", p + "/events", event},
		req{"POST", p + "/events/batch", map[string]any{"events": []any{event}}},
		req{"GET", p + "/deliveries", nil},
		req{"GET", p + "/keys", nil},
		req{"POST", p + "/keys", map[string]any{"name": "stolen"}},
	)
	for _, r := range reqs {
		rep := e.c.raw(r.method, r.path, r.body, a.key, nil)
		require.Equal(t, http.StatusNotFound, rep.status, "org A: %s %s: %s", r.method, r.path, rep.body)
		requireProblem(t, rep)
		require.NotContains(t, string(rep.body), rc.URL, "nothing of B's leaks")
	}
	for _, r := range []req{
		{"POST", "/v1/orgs", map[string]any{"name": "mine"}},
		{"GET", "/v1/orgs", nil},
		{"PATCH", "/v1/orgs/" + a.id, map[string]any{"name": "renamed"}},
		{"DELETE", "/v1/orgs/" + a.id, nil},
		{"POST", "/v1/event-types", map[string]any{"name": "my.type"}},
	} {
		rep := e.c.raw(r.method, r.path, r.body, a.key, nil)
		require.Equal(t, http.StatusForbidden, rep.status, "org A: %s %s: %s", r.method, r.path, rep.body)
		requireProblem(t, rep)
	}

	// B is untouched, and A's own routes work.
	got := e.c.must(http.StatusOK, "GET", "/v1/orgs/"+b.id+"/endpoints/"+epB, nil, b.key)
	require.Equal(t, true, got["active"])
	e.c.get("/v1/orgs/"+b.id+"/endpoints/"+epB+"/secrets", b.key, &secs)
	require.Len(t, secs.Data, 1)
	require.Nil(t, secs.Data[0]["expires_at"])
	require.Equal(t, 1, e.count("/v1/orgs/"+b.id+"/events", b.key))
	require.Equal(t, 1, e.count("/v1/orgs/"+b.id+"/endpoints", b.key))
	require.Equal(t, 2, e.count("/v1/orgs/"+b.id+"/keys", b.key))
	e.c.must(http.StatusOK, "GET", "/v1/orgs/"+b.id+"/events", nil, keyB["key"].(string))
	d := e.delivery(b, dlvB)
	require.Equal(t, consign.StatusSucceeded, d.Status)
	require.Equal(t, 1, d.AttemptsCount, "A's retry and test sends did nothing")
	for _, r := range rc.all() {
		require.Equal(t, "/b", r.Path, "nothing was sent for A's requests")
	}
	require.Len(t, rc.all(), 1)
	e.c.must(http.StatusOK, "GET", "/v1/orgs/"+a.id, nil, a.key)
	require.Equal(t, 0, e.count("/v1/orgs/"+a.id+"/events", a.key))

	// A deleted key stops working at once.
	e.c.must(http.StatusNoContent, "DELETE", "/v1/orgs/"+b.id+"/keys/"+keyB["id"].(string), nil, b.key)
	e.c.must(http.StatusUnauthorized, "GET", "/v1/orgs/"+b.id+"/events", nil, keyB["key"].(string))

	// The admin key may act on every org.
	e.c.must(http.StatusOK, "GET", "/v1/orgs/"+b.id+"/endpoints/"+epB, nil, adminKey)
	e.c.must(http.StatusOK, "GET", "/v1/orgs/"+b.id+"/deliveries/"+dlvB, nil, adminKey)
	e.c.must(http.StatusOK, "GET", "/v1/orgs/"+a.id+"/events", nil, adminKey)
	e.c.must(http.StatusCreated, "POST", "/v1/orgs", map[string]any{"name": "by admin"}, adminKey)
	var orgs struct{ Data []map[string]any }
	e.c.get("/v1/orgs", adminKey, &orgs)
	require.Len(t, orgs.Data, 3)
}

// TestTestRetryRecover covers the endpoint test send, delivery retry and recover routes.
func TestTestRetryRecover(t *testing.T) {
	t.Parallel()
	e := start(t)

	t.Run("test send replies with the attempt", func(t *testing.T) {
		t.Parallel()
		o := e.newOrg("test-send")
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Bin", "1")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"ok":true}`)
		})
		ep := e.createEndpoint(o, map[string]any{"url": rc.URL + "/bin", "topics": []string{"purchase_order.created"}})
		path := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string) + "/test"

		rep := e.c.must(http.StatusOK, "POST", path, nil, o.key)
		require.Equal(t, consign.StatusSucceeded, rep["status"], "%v", rep)
		at := rep["attempt"].(map[string]any)
		res := at["response"].(map[string]any)
		require.Equal(t, float64(http.StatusCreated), res["status"])
		require.Equal(t, `{"ok":true}`, res["body"])
		require.Equal(t, "1", res["headers"].(map[string]any)["X-Bin"])
		require.Nil(t, at["error"])
		got := rc.next(t)
		require.Equal(t, rep["event_id"], got.Header.Get("webhook-id"))
		require.NoError(t, webhook.Verify(ep["secret"].(string), got.Header, got.Body))
		var env struct{ Type string }
		require.NoError(t, json.Unmarshal(got.Body, &env))
		require.Equal(t, consign.TypeTest, env.Type)
		d := e.delivery(o, rep["delivery_id"].(string))
		require.Equal(t, consign.StatusSucceeded, d.Status)
		require.Len(t, d.Attempts, 1)

		po := map[string]any{"purchase_order": map[string]any{"id": "PO-7"}}
		rep = e.c.must(http.StatusOK, "POST", path, map[string]any{"type": "purchase_order.created", "payload": po}, o.key)
		require.Equal(t, consign.StatusSucceeded, rep["status"], "%v", rep)
		got = rc.next(t)
		var env2 struct {
			Type string
			Data map[string]any
		}
		require.NoError(t, json.Unmarshal(got.Body, &env2))
		require.Equal(t, "purchase_order.created", env2.Type)
		require.Equal(t, po, env2.Data)
	})

	t.Run("test send to a failing receiver", func(t *testing.T) {
		t.Parallel()
		o := e.newOrg("test-fail")
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, "nope")
		})
		ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}})
		rep := e.c.must(http.StatusOK, "POST", "/v1/orgs/"+o.id+"/endpoints/"+ep["id"].(string)+"/test", map[string]any{}, o.key)
		require.Equal(t, consign.StatusFailed, rep["status"], "a failed test send is not retried: %v", rep)
		at := rep["attempt"].(map[string]any)
		require.Equal(t, float64(http.StatusBadRequest), at["response"].(map[string]any)["status"])
		require.Equal(t, "nope", at["response"].(map[string]any)["body"])
		require.Contains(t, at["error"], "400")
		require.Len(t, rc.all(), 1)
	})

	t.Run("response capture is capped at 64 KiB", func(t *testing.T) {
		t.Parallel()
		o := e.newOrg("big-reply")
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, strings.Repeat("r", 100<<10))
		})
		ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}})
		rep := e.c.must(http.StatusOK, "POST", "/v1/orgs/"+o.id+"/endpoints/"+ep["id"].(string)+"/test", nil, o.key)
		require.Equal(t, consign.StatusSucceeded, rep["status"])
		d := e.delivery(o, rep["delivery_id"].(string))
		require.Len(t, d.Attempts[0].Response.Body, 64<<10)
		var raw struct {
			Attempts []struct {
				Response struct {
					Truncated bool `json:"truncated"`
				} `json:"response"`
			} `json:"attempts"`
		}
		e.c.get("/v1/orgs/"+o.id+"/deliveries/"+d.ID, o.key, &raw)
		require.True(t, raw.Attempts[0].Response.Truncated, "a cut response body is marked truncated")
	})

	t.Run("retry resends a succeeded delivery", func(t *testing.T) {
		t.Parallel()
		o := e.newOrg("retry-route")
		rc := newReceiver(t, nil)
		e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}})
		id := e.publish(o, "order.created", map[string]any{"n": 1})
		first := rc.next(t)
		dlv := e.onlyDelivery(o, id).ID
		e.waitStatus(o, dlv, consign.StatusSucceeded)
		rep := e.c.must(http.StatusAccepted, "POST", "/v1/orgs/"+o.id+"/deliveries/"+dlv+"/retry", nil, o.key)
		require.Equal(t, dlv, rep["id"])
		second := rc.next(t)
		require.Equal(t, id, second.Header.Get("webhook-id"))
		require.Equal(t, string(first.Body), string(second.Body))
		require.Eventually(t, func() bool {
			d := e.delivery(o, dlv)
			return d.Status == consign.StatusSucceeded && d.AttemptsCount == 2
		}, waitFor, tick)
		require.Len(t, rc.all(), 2)
	})

	t.Run("recover requeues failed deliveries", func(t *testing.T) {
		t.Parallel()
		o := e.newOrg("recover")
		var fixed atomic.Bool
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			if !fixed.Load() {
				w.WriteHeader(http.StatusInternalServerError)
			}
		})
		ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}, "retry": fastRetry("300ms")})
		path := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string) + "/recover"
		since := time.Now().Add(-time.Second).UTC()
		var dlvs []string
		for i := range 2 {
			id := e.publish(o, "order.created", map[string]any{"i": i})
			dlvs = append(dlvs, e.onlyDelivery(o, id).ID)
		}
		for _, id := range dlvs {
			e.waitStatus(o, id, consign.StatusFailed)
		}

		st, p := e.c.do("POST", path, map[string]any{}, o.key)
		require.Equal(t, http.StatusUnprocessableEntity, st, "%v", p)
		require.Equal(t, "since", fieldOf(p))
		rep := e.c.must(http.StatusAccepted, "POST", path, map[string]any{"since": time.Now().Add(time.Hour).Format(time.RFC3339)}, o.key)
		require.Equal(t, float64(0), rep["requeued"])

		failedSends := len(rc.all())
		fixed.Store(true)
		rep = e.c.must(http.StatusAccepted, "POST", path, map[string]any{"since": since.Format(time.RFC3339Nano)}, o.key)
		require.Equal(t, float64(2), rep["requeued"], "%v", rep)
		for _, id := range dlvs {
			d := e.waitStatus(o, id, consign.StatusSucceeded)
			last := d.Attempts[len(d.Attempts)-1]
			require.Equal(t, http.StatusOK, last.Response.Status)
			require.Equal(t, d.AttemptsCount, last.N)
		}
		require.Len(t, rc.all(), failedSends+len(dlvs), "each recovered delivery is sent once more")
	})
}

// TestPagination walks a list with limit and cursor.
func TestPagination(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("pages")
	var ids []string
	for i := range 5 {
		ids = append(ids, e.publish(o, "order.created", map[string]any{"i": i}))
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5, "the cursor must end")
		var page struct {
			Data       []struct{ ID string }
			NextCursor *string `json:"next_cursor"`
		}
		e.c.get("/v1/orgs/"+o.id+"/events?limit=2&cursor="+cursor, o.key, &page)
		require.LessOrEqual(t, len(page.Data), 2)
		for _, ev := range page.Data {
			got = append(got, ev.ID)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	// Every event once, newest (highest id) first. Events made in the same millisecond
	// have no defined order among themselves, so the check is on the ids, not on the
	// order of publishing.
	require.ElementsMatch(t, ids, got)
	require.True(t, slices.IsSortedFunc(got, func(a, b string) int { return strings.Compare(b, a) }), "newest first: %v", got)
}

// TestOperationalEvents checks that when Consign deactivates an endpoint (410 Gone) it
// emits consign.endpoint.disabled into the org: an endpoint subscribed to "consign.*"
// receives it, one subscribed to "*" does not.
func TestOperationalEvents(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("ops")
	gone := newReceiver(t, status(http.StatusGone))
	ops := newReceiver(t, nil)
	all := newReceiver(t, nil)
	ep := e.createEndpoint(o, map[string]any{"url": gone.URL, "topics": []string{"order.*"}})
	e.createEndpoint(o, map[string]any{"url": ops.URL, "topics": []string{"consign.*"}})
	e.createEndpoint(o, map[string]any{"url": all.URL, "topics": []string{"*"}})

	id := e.publish(o, "order.created", map[string]any{"n": 1})
	var dlvs []delivery
	for _, d := range e.deliveries(o, "event_id="+id) {
		if d.EndpointID == ep["id"] {
			e.waitStatus(o, d.ID, consign.StatusPaused)
		}
		dlvs = append(dlvs, d)
	}
	require.Len(t, dlvs, 2, "the order event goes to the order.* and * endpoints")

	got := ops.next(t)
	var env struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(got.Body, &env), "%s", got.Body)
	require.Equal(t, consign.TypeEndpointDisabled, env.Type)
	require.Contains(t, string(got.Body), ep["id"].(string), "the event names the endpoint")

	// The operational event is an event of the org, delivered like any other; "*" is
	// not among its deliveries.
	opID := got.Header.Get("webhook-id")
	d := e.onlyDelivery(o, opID)
	e.waitStatus(o, d.ID, consign.StatusSucceeded)
	for _, x := range dlvs {
		if x.EndpointID != ep["id"] {
			e.waitStatus(o, x.ID, consign.StatusSucceeded)
		}
	}
	reqs := all.all()
	require.Len(t, reqs, 1, `"*" got the order event only`)
	require.Equal(t, id, reqs[0].Header.Get("webhook-id"))
}

// TestTimeout checks that a receiver slower than the sender's timeout is a failed
// attempt that says so.
func TestTimeout(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *app.Config) { c.Sender.Timeout = 300 * time.Millisecond })
	o := e.newOrg("slow")
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done(): // Consign hung up
		case <-time.After(waitFor):
		}
	})
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}})
	began := time.Now()
	rep := e.c.must(http.StatusOK, "POST", "/v1/orgs/"+o.id+"/endpoints/"+ep["id"].(string)+"/test", nil, o.key)
	require.Less(t, time.Since(began), 5*time.Second)
	require.Equal(t, consign.StatusFailed, rep["status"], "%v", rep)
	at := rep["attempt"].(map[string]any)
	require.Nil(t, at["response"])
	require.Contains(t, at["error"], "timeout")
	require.GreaterOrEqual(t, at["duration_ms"], float64(300))
}

// TestAdminKeyCreatedOnce: without CONSIGN_ADMIN_KEY, the first start on an empty store
// makes an admin key and shows it once; later starts make none and the key keeps working.
func TestAdminKeyCreatedOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noKey := func(c *app.Config) { c.DataDir, c.AdminKey = dir, "" }
	e1 := start(t, noKey)
	key := e1.app.NewAdminKey
	require.NotEmpty(t, key, "the first start makes an admin key")
	e1.c.must(http.StatusCreated, "POST", "/v1/orgs", map[string]any{"name": "first"}, key)
	e1.close()

	e2 := start(t, noKey)
	require.Empty(t, e2.app.NewAdminKey, "a restart makes no new admin key")
	var orgs struct{ Data []map[string]any }
	e2.c.get("/v1/orgs", key, &orgs)
	require.Len(t, orgs.Data, 1)
	e2.c.must(http.StatusUnauthorized, "GET", "/v1/orgs", nil, adminKey)
}

// TestNeverUnsigned: when an endpoint's last secret has expired, nothing is sent unsigned;
// the attempt fails saying why, and once a secret is added the delivery goes out signed.
func TestNeverUnsigned(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("unsigned")
	rc := newReceiver(t, nil)
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"*"}, "retry": fastRetry("1m")})
	path := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string)
	var secs struct{ Data []map[string]any }
	e.c.get(path+"/secrets", o.key, &secs)
	st, p := e.c.do("PATCH", path+"/secrets/"+secs.Data[0]["id"].(string), map[string]any{"expires_at": time.Now().Add(-time.Minute)}, o.key)
	require.Contains(t, []int{http.StatusOK, http.StatusConflict}, st, "expire the last secret: %v", p)
	if st == http.StatusConflict {
		return // refusing to expire the last secret keeps every request signed too
	}

	rep := e.c.must(http.StatusOK, "POST", path+"/test", nil, o.key)
	require.Equal(t, consign.StatusFailed, rep["status"], "%v", rep)
	at := rep["attempt"].(map[string]any)
	require.Nil(t, at["response"], "no request was made")
	require.Contains(t, at["error"], "secret")

	id := e.publish(o, "order.created", map[string]any{"n": 1})
	dlv := e.onlyDelivery(o, id).ID
	require.Eventually(t, func() bool { return e.delivery(o, dlv).AttemptsCount >= 1 }, waitFor, tick)
	require.Empty(t, rc.all(), "no request without a signature")

	added := e.c.must(http.StatusCreated, "POST", path+"/secrets", map[string]any{}, o.key)
	d := e.waitStatus(o, dlv, consign.StatusSucceeded)
	require.GreaterOrEqual(t, d.AttemptsCount, 2)
	reqs := rc.all()
	require.Len(t, reqs, 1)
	require.NoError(t, webhook.Verify(added["value"].(string), reqs[0].Header, reqs[0].Body))
}

// TestFanOutSharesOneEnvelope checks the deliveries of one event to several endpoints:
// the envelope endpoints get the same bytes (built once for the event), each signed with
// its own endpoint's secret, and a raw endpoint among them gets the payload alone.
func TestFanOutSharesOneEnvelope(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("fan-envelope")
	var rcs []*receiver
	var secrets []string
	for i := range 4 {
		rc := newReceiver(t, nil)
		body := map[string]any{"url": rc.URL, "topics": []string{"order.*"}}
		if i == 3 {
			body["payload_format"] = "raw"
		}
		ep := e.createEndpoint(o, body)
		rcs, secrets = append(rcs, rc), append(secrets, ep["secret"].(string))
	}
	payload := map[string]any{"order_id": "ord_9", "total": 3}
	evID := e.publish(o, "order.created", payload)
	var first []byte
	for i, rc := range rcs {
		got := rc.next(t)
		require.NoError(t, webhook.Verify(secrets[i], got.Header, got.Body), "endpoint %d", i)
		if i == 3 {
			want, _ := json.Marshal(payload)
			require.JSONEq(t, string(want), string(got.Body), "the raw endpoint gets the payload alone")
			continue
		}
		var env map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(got.Body, &env), "body: %s", got.Body)
		require.JSONEq(t, strconv.Quote(evID), string(env["id"]))
		if first == nil {
			first = got.Body
		}
		require.Equal(t, string(first), string(got.Body), "endpoint %d: every envelope endpoint gets the same bytes", i)
	}
}

// TestConcurrentBatchesKeepTheirPayloads publishes batches from several clients at once:
// every event keeps its own payload, in the reply and in the store (request bodies are
// read into recycled buffers, which nothing decoded from them may share).
func TestConcurrentBatchesKeepTheirPayloads(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("batches")
	const clients, batches, perBatch = 6, 5, 40
	var wg sync.WaitGroup
	ids := make([][]string, clients)
	for c := range clients {
		wg.Go(func() {
			for b := range batches {
				events := make([]map[string]any, perBatch)
				for i := range events {
					// Sizes differ from batch to batch, so a recycled buffer is reused shorter and longer.
					events[i] = map[string]any{"type": "order.created",
						"payload": map[string]any{"who": fmt.Sprintf("%d/%d/%d", c, b, i), "pad": strings.Repeat("x", (c*7+b*13+i)%300)}}
				}
				st, got := e.c.do("POST", "/v1/orgs/"+o.id+"/events/batch", map[string]any{"events": events}, o.key)
				if !assert.Equal(t, http.StatusAccepted, st, "%v", got) {
					return
				}
				data, _ := got["data"].([]any)
				if !assert.Len(t, data, perBatch) {
					return
				}
				for i, d := range data {
					ev := d.(map[string]any)
					assert.Equal(t, events[i]["payload"], ev["payload"], "client %d batch %d event %d", c, b, i)
					ids[c] = append(ids[c], ev["id"].(string))
				}
			}
		})
	}
	wg.Wait()
	for c := range clients {
		require.Len(t, ids[c], batches*perBatch)
		for _, k := range []int{0, perBatch + 3, len(ids[c]) - 1} {
			var ev struct {
				Payload map[string]any `json:"payload"`
			}
			e.c.get("/v1/orgs/"+o.id+"/events/"+ids[c][k], o.key, &ev)
			b, i := k/perBatch, k%perBatch
			require.Equal(t, fmt.Sprintf("%d/%d/%d", c, b, i), ev.Payload["who"], "stored event %s", ids[c][k])
		}
	}
}

// TestDeleteEndpointWithAttemptInFlight: an endpoint deleted while Consign waits for its
// answer. The answer's outcome belongs to a delivery that no longer exists; it must not
// stop the attempt log of the others: another endpoint's later deliveries are still
// recorded as succeeded, and nothing of the deleted endpoint comes back.
func TestDeleteEndpointWithAttemptInFlight(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("deletes-mid-flight")
	release := make(chan struct{})
	slow := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		<-release
		w.WriteHeader(http.StatusInternalServerError) // to be retried, were the endpoint still here
	})
	fine := newReceiver(t, nil)
	gone := e.createEndpoint(o, map[string]any{"url": slow.URL, "topics": []string{"order.*"}})["id"].(string)
	kept := e.createEndpoint(o, map[string]any{"url": fine.URL, "topics": []string{"order.*"}})["id"].(string)

	first := e.publish(o, "order.created", map[string]any{"n": 1})
	slow.next(t)
	e.c.must(http.StatusNoContent, "DELETE", "/v1/orgs/"+o.id+"/endpoints/"+gone, nil, o.key)
	close(release)

	second := e.publish(o, "order.created", map[string]any{"n": 2})
	for _, ev := range []string{first, second} {
		d := e.onlyDelivery(o, ev)
		require.Equal(t, kept, d.EndpointID)
		d = e.waitStatus(o, d.ID, consign.StatusSucceeded)
		require.Len(t, d.Attempts, 1)
	}
	require.Len(t, slow.all(), 1, "nothing more is sent to the deleted endpoint")
	r := e.c.raw("GET", "/v1/orgs/"+o.id+"/endpoints/"+gone, nil, o.key, nil)
	require.Equal(t, http.StatusNotFound, r.status)
}
