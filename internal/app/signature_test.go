package app_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/webhook"
)

// partnerCheck is a partner's receiver-side check of a signature format, written here
// from the partner's documentation rather than from Consign's code: it says why r is
// refused, or "".
type partnerCheck func(secret string, h http.Header, body []byte) string

// shopifyCheck: base64 of the body's HMAC-SHA256 in X-Shopify-Hmac-Sha256.
func shopifyCheck(secret string, h http.Header, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	got, err := base64.StdEncoding.DecodeString(h.Get("X-Shopify-Hmac-Sha256"))
	if err != nil || !hmac.Equal(got, m.Sum(nil)) {
		return "X-Shopify-Hmac-Sha256 does not match"
	}
	return ""
}

// githubCheck: "sha256=" and the hex of the body's HMAC-SHA256 in X-Hub-Signature-256.
func githubCheck(secret string, h http.Header, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(h.Get("X-Hub-Signature-256")), []byte(want)) {
		return "X-Hub-Signature-256 does not match"
	}
	return ""
}

// timestampCheck: hex of the HMAC-SHA256 of "{X-Timestamp}.{body}" in X-Signature, the
// timestamp no more than 5 minutes old.
func timestampCheck(secret string, h http.Header, body []byte) string {
	ts := h.Get("X-Timestamp")
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(n, 0)).Abs() > 5*time.Minute {
		return fmt.Sprintf("X-Timestamp %q is not a recent Unix time", ts)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(body)))
	got, err := hex.DecodeString(h.Get("X-Signature"))
	if err != nil || !hmac.Equal(got, m.Sum(nil)) {
		return "X-Signature does not match"
	}
	return ""
}

// TestSignatureSchemes: each scheme reaches a receiver that checks it the way the
// partner does, and the delivery succeeds only when the check passes.
func TestSignatureSchemes(t *testing.T) {
	t.Parallel()
	e := start(t)
	for _, tc := range []struct {
		name      string
		signature map[string]any // nil: the default
		want      map[string]any // the signature the endpoint shows
		check     partnerCheck
		absent    []string // headers the request must not carry
	}{{
		name: "standard webhooks by default",
		want: map[string]any{"scheme": "standard-webhooks"},
		check: func(secret string, h http.Header, body []byte) string {
			return errText(webhook.Verify(secret, h, body))
		},
	}, {
		name:      "none",
		signature: map[string]any{"scheme": "none"},
		want:      map[string]any{"scheme": "none"},
		check:     func(string, http.Header, []byte) string { return "" },
		absent:    []string{"Webhook-Signature"},
	}, {
		name:      "shopify",
		signature: map[string]any{"scheme": "hmac-sha256", "header": "x-shopify-hmac-sha256", "encoding": "base64"},
		want: map[string]any{"scheme": "hmac-sha256", "header": "X-Shopify-Hmac-Sha256", "encoding": "base64",
			"signed": "body"},
		check:  shopifyCheck,
		absent: []string{"Webhook-Signature"},
	}, {
		name:      "github",
		signature: map[string]any{"scheme": "hmac-sha256", "header": "X-Hub-Signature-256", "prefix": "sha256="},
		want: map[string]any{"scheme": "hmac-sha256", "header": "X-Hub-Signature-256", "encoding": "hex",
			"prefix": "sha256=", "signed": "body"},
		check:  githubCheck,
		absent: []string{"Webhook-Signature"},
	}, {
		name: "timestamp and body",
		signature: map[string]any{"scheme": "hmac-sha256", "header": "X-Signature", "encoding": "hex",
			"signed": "timestamp.body", "timestamp_header": "X-Timestamp"},
		want: map[string]any{"scheme": "hmac-sha256", "header": "X-Signature", "encoding": "hex",
			"signed": "timestamp.body", "timestamp_header": "X-Timestamp"},
		check:  timestampCheck,
		absent: []string{"Webhook-Signature"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := e.newOrg(tc.name)
			rc := newPartnerRcv(t, tc.check)
			body := map[string]any{"url": rc.URL, "topics": []string{"order.*"}}
			if tc.signature != nil {
				body["signature"] = tc.signature
			}
			ep := e.createEndpoint(o, body)
			rc.setSecret(ep["secret"].(string))
			require.Equal(t, tc.want, ep["signature"], "create reply")
			var shown map[string]any
			e.c.get("/v1/orgs/"+o.id+"/endpoints/"+ep["id"].(string), o.key, &shown)
			require.Equal(t, tc.want, shown["signature"], "GET reply")

			id := e.publish(o, "order.created", map[string]any{"order": "A-1", "note": "café"})
			got := rc.next(t)
			for _, h := range tc.absent {
				require.Empty(t, got.Header.Values(h), "%s must not be sent", h)
			}
			d := e.waitStatus(o, e.onlyDelivery(o, id).ID, consign.StatusSucceeded)
			require.Len(t, d.Attempts, 1, "the partner's check passed on the first attempt")
		})
	}
}

// TestSignatureRotation: an hmac-sha256 endpoint signs with its newest secret, so a
// partner that checks one value switches when the secret is rotated; an ed25519 key,
// which makes no HMAC, is refused where it is given.
func TestSignatureRotation(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("rotation")
	rc := newReceiver(t, nil)
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"},
		"signature": map[string]any{"scheme": "hmac-sha256", "header": "X-Hub-Signature-256", "prefix": "sha256="}})
	epPath := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string)
	s1 := ep["secret"].(string)

	e.publish(o, "order.created", map[string]any{"n": 1})
	got := rc.next(t)
	require.Empty(t, githubCheck(s1, got.Header, got.Body))

	rot := e.c.must(http.StatusCreated, "POST", epPath+"/secrets/rotate", map[string]any{"grace": "1h"}, o.key)
	s2 := rot["value"].(string)
	e.publish(o, "order.created", map[string]any{"n": 2})
	got = rc.next(t)
	require.Empty(t, githubCheck(s2, got.Header, got.Body), "the newest secret signs")
	require.NotEmpty(t, githubCheck(s1, got.Header, got.Body), "one value only: the old secret no longer signs")

	// An ed25519 key cannot make an HMAC: refused where it is given.
	for _, path := range []string{epPath + "/secrets", epPath + "/secrets/rotate"} {
		r := e.c.raw("POST", path, map[string]any{"value": "whsk_" + base64.StdEncoding.EncodeToString(make([]byte, 64))}, o.key, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", path, r.body)
		require.Equal(t, []string{"value"}, requireProblem(t, r).fields())
	}
}

// TestSignatureValidation: a signature the partner's receiver could never check is
// refused with the field that is wrong.
func TestSignatureValidation(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("validation")
	for _, tc := range []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"unknown scheme", map[string]any{"signature": map[string]any{"scheme": "md5"}}, []string{"signature.scheme"}},
		{"hmac without header", map[string]any{"signature": map[string]any{"scheme": "hmac-sha256"}}, []string{"signature.header"}},
		{"bad encoding and signed", map[string]any{"signature": map[string]any{"scheme": "hmac-sha256", "header": "X-Sig",
			"encoding": "base32", "signed": "id.body"}}, []string{"signature.encoding", "signature.signed"}},
		{"reserved header", map[string]any{"signature": map[string]any{"scheme": "hmac-sha256", "header": "Content-Type"}},
			[]string{"signature.header"}},
		{"header also a custom header", map[string]any{"headers": map[string]string{"X-Sig": "v"},
			"signature": map[string]any{"scheme": "hmac-sha256", "header": "x-sig"}}, []string{"signature.header"}},
		{"timestamp header equals header", map[string]any{"signature": map[string]any{"scheme": "hmac-sha256",
			"header": "X-Sig", "timestamp_header": "x-sig"}}, []string{"signature.timestamp_header"}},
		{"prefix with a newline", map[string]any{"signature": map[string]any{"scheme": "hmac-sha256", "header": "X-Sig",
			"prefix": "a\nb"}}, []string{"signature.prefix"}},
		{"hmac fields on standard webhooks", map[string]any{"signature": map[string]any{"scheme": "standard-webhooks",
			"header": "X-Sig"}}, []string{"signature.header"}},
		{"token endpoints are not signed", map[string]any{"auth": map[string]any{"type": "token"},
			"signature": map[string]any{"scheme": "hmac-sha256", "header": "X-Sig"}}, []string{"signature.scheme"}},
		{"hmac with an ed25519 key", map[string]any{"secret": "whsk_" + base64.StdEncoding.EncodeToString(make([]byte, 64)),
			"signature": map[string]any{"scheme": "hmac-sha256", "header": "X-Sig"}}, []string{"secret"}},
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

// TestSignaturePatch: a PATCH that names a signature replaces it whole; one that does
// not keeps it; a token endpoint that stops using its token is signed again.
func TestSignaturePatch(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("patch")
	ep := e.createEndpoint(o, map[string]any{"url": "https://partner.example.com/hook", "topics": []string{"order.*"},
		"signature": map[string]any{"scheme": "hmac-sha256", "header": "X-Sig", "prefix": "v1="}})
	path := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string)
	got := e.c.must(http.StatusOK, "PATCH", path, map[string]any{"description": "renamed"}, o.key)
	require.Equal(t, ep["signature"], got["signature"])
	got = e.c.must(http.StatusOK, "PATCH", path, map[string]any{"signature": map[string]any{"scheme": "none"}}, o.key)
	require.Equal(t, map[string]any{"scheme": "none"}, got["signature"])

	tok := e.createEndpoint(o, map[string]any{"url": "https://partner.example.com/rc", "topics": []string{"order.*"},
		"auth": map[string]any{"type": "token"}})
	require.Equal(t, map[string]any{"scheme": "none"}, tok["signature"])
	path = "/v1/orgs/" + o.id + "/endpoints/" + tok["id"].(string)
	got = e.c.must(http.StatusOK, "PATCH", path, map[string]any{"auth": map[string]any{"type": "signature", "token": ""}}, o.key)
	require.Equal(t, map[string]any{"scheme": "standard-webhooks"}, got["signature"])
}

// partnerRcv is a receiver that checks every request with a partner's check and answers
// 401 with the reason when it fails, 200 otherwise.
type partnerRcv struct {
	*httptest.Server
	check  partnerCheck
	mu     sync.Mutex
	secret string
	ch     chan *received
}

func newPartnerRcv(tb testing.TB, check partnerCheck) *partnerRcv {
	p := &partnerRcv{check: check, ch: make(chan *received, 100)}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		why := p.check(p.secret, r.Header, body)
		p.mu.Unlock()
		if why != "" {
			http.Error(w, why, http.StatusUnauthorized)
		}
		select {
		case p.ch <- &received{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()}:
		default:
		}
	}))
	tb.Cleanup(p.Close)
	return p
}

func (p *partnerRcv) setSecret(s string) {
	p.mu.Lock()
	p.secret = s
	p.mu.Unlock()
}

// next waits for the next request.
func (p *partnerRcv) next(tb testing.TB) *received {
	tb.Helper()
	select {
	case r := <-p.ch:
		return r
	case <-time.After(waitFor):
		require.FailNow(tb, "the partner got no request in time")
		return nil
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
