package webhook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/webhook"
)

// The published Standard Webhooks vector, and an ed25519 pair from the conformance file.
const (
	goldenSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	goldenID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	goldenTS     = 1614265330
	goldenBody   = `{"test": 2432232314}`
	goldenSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	goldenPriv   = "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJp4AJ6p9lMicMFs6Kvg=="
	goldenPub    = "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4="
)

func at(unix int64) webhook.Option {
	return webhook.WithNow(func() time.Time { return time.Unix(unix, 0) })
}

func headers(id, ts, sig string) http.Header {
	h := http.Header{}
	for name, v := range map[string]string{"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig} {
		if v != "" {
			h.Set(name, v)
		}
	}
	return h
}

// conformanceCase is one case of internal/signing's Standard Webhooks vectors.
type conformanceCase struct {
	Name      string  `json:"name"`
	Secret    string  `json:"secret"`
	PublicKey string  `json:"public_key"`
	ID        *string `json:"id"`
	Timestamp string  `json:"timestamp"`
	Body      string  `json:"body"`
	Signature *string `json:"signature"`
	Now       int64   `json:"now"`
	Valid     bool    `json:"valid"`
}

// wantErr pins the precise failure of the invalid cases whose cause is plain from their
// name; cases added to the file later only need to fail somehow.
var wantErr = map[string]error{
	"tampered body":                 webhook.ErrNoMatch,
	"wrong id":                      webhook.ErrNoMatch,
	"only a v2 entry":               webhook.ErrNoMatch,
	"empty signature value":         webhook.ErrNoMatch,
	"partial signature":             webhook.ErrNoMatch,
	"timestamp 301 s old":           webhook.ErrTimestampTooOld,
	"timestamp 301 s in the future": webhook.ErrTimestampTooNew,
	"non-integer timestamp":         webhook.ErrInvalidTimestamp,
	"missing signature header":      webhook.ErrMissingHeader,
	"missing id header":             webhook.ErrMissingHeader,
}

func TestConformance(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../internal/signing/testdata/standard-webhooks.json")
	require.NoError(t, err)
	var file struct {
		About string            `json:"about"`
		Cases []conformanceCase `json:"cases"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&file))
	require.NotEmpty(t, file.Cases)
	require.Contains(t, file.About, "tolerance 300 s")
	require.Equal(t, 300*time.Second, webhook.DefaultTolerance)
	names := map[string]bool{}
	for _, c := range file.Cases {
		require.False(t, names[c.Name], "duplicate case name %q", c.Name)
		names[c.Name] = true
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			h := headers(deref(c.ID), c.Timestamp, deref(c.Signature))
			secrets := []string{c.Secret}
			if c.PublicKey != "" {
				secrets = append(secrets, c.PublicKey)
			}
			for _, secret := range secrets {
				err := webhook.Verify(secret, h, []byte(c.Body), at(c.Now))
				if c.Valid {
					require.NoError(t, err, secret)
					continue
				}
				require.Error(t, err)
				require.NotErrorIs(t, err, webhook.ErrInvalidSecret, "an invalid case must fail on the message")
				var we *webhook.Error
				require.ErrorAs(t, err, &we)
				if want, ok := wantErr[c.Name]; ok {
					require.ErrorIs(t, err, want)
				}
			}
		})
	}
}

// TestAgainstSigning verifies what Consign's own signer sends, with every kind of key
// and several keys in one header.
func TestAgainstSigning(t *testing.T) {
	t.Parallel()
	sec1, err := signing.NewSecret()
	require.NoError(t, err)
	sec2, err := signing.NewSecret()
	require.NoError(t, err)
	priv, pub, err := signing.NewKeyPair()
	require.NoError(t, err)
	other, err := signing.NewSecret()
	require.NoError(t, err)
	_, otherPub, err := signing.NewKeyPair()
	require.NoError(t, err)

	id, ts := "evt_01JD0000000000000000000000", int64(1795430853)
	body := []byte(`{"id":"evt_01JD0000000000000000000000","type":"order.fulfilled","data":{"order_id":1001}}`)
	sign := func(secrets ...string) string {
		var keys []signing.Key
		for _, s := range secrets {
			k, err := signing.ParseKey(s)
			require.NoError(t, err)
			keys = append(keys, k)
		}
		return signing.Header(keys, id, ts, body)
	}
	tsv := strconv.FormatInt(ts, 10)

	tests := []struct {
		name    string
		signed  []string // keys the sender signs with
		verify  []string // secrets the receiver holds
		body    []byte
		ts      string
		now     int64
		want    error
		wantMsg string
	}{
		{name: "one secret", signed: []string{sec1}, verify: []string{sec1}},
		{name: "bare base64 secret", signed: []string{sec1}, verify: []string{strings.TrimPrefix(sec1, "whsec_")}},
		{name: "secret with newline", signed: []string{sec1}, verify: []string{sec1 + "\n"}},
		{name: "sender has two secrets, receiver the new", signed: []string{sec1, sec2}, verify: []string{sec2}},
		{name: "sender has two secrets, receiver the old", signed: []string{sec1, sec2}, verify: []string{sec1}},
		{name: "receiver rotates: old and new", signed: []string{sec2}, verify: []string{sec1, sec2}},
		{name: "ed25519 public key", signed: []string{priv}, verify: []string{pub}},
		{name: "ed25519 signing key", signed: []string{priv}, verify: []string{priv}},
		{name: "mixed header, hmac receiver", signed: []string{priv, sec1}, verify: []string{sec1}},
		{name: "mixed header, ed25519 receiver", signed: []string{sec1, priv}, verify: []string{pub}},
		{name: "wrong secret", signed: []string{sec1}, verify: []string{other}, want: webhook.ErrNoMatch, wantMsg: "no signature"},
		{name: "wrong public key", signed: []string{priv}, verify: []string{otherPub}, want: webhook.ErrNoMatch},
		{name: "public key, hmac header", signed: []string{sec1}, verify: []string{pub}, want: webhook.ErrNoMatch, wantMsg: "no entry of the secret's version"},
		{name: "tampered body", signed: []string{sec1}, verify: []string{sec1}, body: []byte(`{}`), want: webhook.ErrNoMatch},
		{name: "tampered body ed25519", signed: []string{priv}, verify: []string{pub}, body: []byte(`{}`), want: webhook.ErrNoMatch},
		{name: "leading zero in timestamp", signed: []string{sec1}, verify: []string{sec1}, ts: "0" + tsv, want: webhook.ErrNoMatch},
		{name: "old", signed: []string{sec1}, verify: []string{sec1}, now: ts + 301, want: webhook.ErrTimestampTooOld, wantMsg: "301s before now"},
		{name: "future", signed: []string{sec1}, verify: []string{sec1}, now: ts - 301, want: webhook.ErrTimestampTooNew},
		{name: "edge of tolerance", signed: []string{sec1}, verify: []string{sec1}, now: ts + 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, tv, now := body, tsv, ts
			if tt.body != nil {
				b = tt.body
			}
			if tt.ts != "" {
				tv = tt.ts
			}
			if tt.now != 0 {
				now = tt.now
			}
			v, err := webhook.NewVerifier(tt.verify, at(now))
			require.NoError(t, err)
			err = v.Verify(headers(id, tv, sign(tt.signed...)), b)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			require.ErrorContains(t, err, tt.wantMsg)
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	ts := strconv.Itoa(goldenTS)
	tests := []struct {
		name, secret string
		h            http.Header
		opts         []webhook.Option
		want         error
		msg          string
	}{
		{name: "ok", h: headers(goldenID, ts, goldenSig)},
		{name: "svix headers", h: http.Header{"Svix-Id": {goldenID}, "Svix-Timestamp": {ts}, "Svix-Signature": {goldenSig}}},
		{name: "svix names in errors", h: http.Header{"Svix-Timestamp": {ts}, "Svix-Signature": {goldenSig}}, want: webhook.ErrMissingHeader, msg: "svix-id"},
		{name: "missing id", h: headers("", ts, goldenSig), want: webhook.ErrMissingHeader, msg: "webhook-id"},
		{name: "missing timestamp", h: headers(goldenID, "", goldenSig), want: webhook.ErrMissingHeader, msg: "webhook-timestamp"},
		{name: "missing signature", h: headers(goldenID, ts, ""), want: webhook.ErrMissingHeader, msg: "webhook-signature"},
		{name: "signed timestamp", h: headers(goldenID, "+"+ts, goldenSig), want: webhook.ErrInvalidTimestamp},
		{name: "negative timestamp", h: headers(goldenID, "-1", goldenSig), want: webhook.ErrInvalidTimestamp},
		{name: "fraction", h: headers(goldenID, ts+".5", goldenSig), want: webhook.ErrInvalidTimestamp},
		{name: "overflow", h: headers(goldenID, "9999999999999999999", goldenSig), want: webhook.ErrInvalidTimestamp},
		{name: "long timestamp", h: headers(goldenID, strings.Repeat("1", 500), goldenSig), want: webhook.ErrInvalidTimestamp, msg: "500 characters"},
		{name: "max int64", h: headers(goldenID, "9223372036854775807", goldenSig), want: webhook.ErrTimestampTooNew},
		{name: "epoch", h: headers(goldenID, "0", goldenSig), want: webhook.ErrTimestampTooOld},
		{name: "wider tolerance", h: headers(goldenID, ts, goldenSig), opts: []webhook.Option{at(goldenTS + 3600), webhook.WithTolerance(2 * time.Hour)}},
		{name: "narrower tolerance", h: headers(goldenID, ts, goldenSig), opts: []webhook.Option{at(goldenTS + 2), webhook.WithTolerance(time.Second)}, want: webhook.ErrTimestampTooOld},
		{name: "extra spaces and other versions", h: headers(goldenID, ts, "  v2,x  v1a,abc "+goldenSig+"  "), msg: ""},
		{name: "uppercase version", h: headers(goldenID, ts, "V1,"+goldenSig[3:]), want: webhook.ErrNoMatch},
		{name: "non-canonical base64", h: headers(goldenID, ts, goldenSig[:len(goldenSig)-2]+"F="), want: webhook.ErrNoMatch},
		{name: "tab is not a separator", h: headers(goldenID, ts, "v2,x\t"+goldenSig), want: webhook.ErrNoMatch},
		{name: "header too long", h: headers(goldenID, ts, goldenSig+" "+strings.Repeat("v1,A", 4100)), want: webhook.ErrHeaderTooLarge},
		{name: "too many entries", h: headers(goldenID, ts, strings.Repeat("v2,x ", 32)+goldenSig), want: webhook.ErrHeaderTooLarge, msg: "33 entries"},
		{name: "most entries", h: headers(goldenID, ts, strings.Repeat("v2,x ", 31)+goldenSig)},
		{name: "empty secret", secret: " ", h: headers(goldenID, ts, goldenSig), want: webhook.ErrInvalidSecret},
		{name: "secret not base64", secret: "whsec_!!!", h: headers(goldenID, ts, goldenSig), want: webhook.ErrInvalidSecret},
		{name: "short public key", secret: "whpk_AAAA", h: headers(goldenID, ts, goldenSig), want: webhook.ErrInvalidSecret},
		{name: "mismatched signing key", secret: goldenPriv[:10] + "A" + goldenPriv[11:], h: headers(goldenID, ts, goldenSig), want: webhook.ErrInvalidSecret},
		{name: "secret checked first", secret: "whsec_", h: http.Header{}, want: webhook.ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret := tt.secret
			if secret == "" {
				secret = goldenSecret
			}
			opts := append([]webhook.Option{at(goldenTS)}, tt.opts...)
			err := webhook.Verify(secret, tt.h, []byte(goldenBody), opts...)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			require.ErrorContains(t, err, tt.msg)
			var we *webhook.Error
			require.ErrorAs(t, err, &we)
			require.Equal(t, tt.want, we.Err)
		})
	}
}

func TestNewVerifier(t *testing.T) {
	t.Parallel()
	_, err := webhook.NewVerifier(nil)
	require.ErrorIs(t, err, webhook.ErrInvalidSecret)
	_, err = webhook.NewVerifier([]string{goldenSecret, "whpk_x"})
	require.ErrorIs(t, err, webhook.ErrInvalidSecret)
	require.ErrorContains(t, err, "secret 2")
	v, err := webhook.NewVerifier([]string{goldenPub, goldenSecret}, at(goldenTS))
	require.NoError(t, err)
	require.NoError(t, v.Verify(headers(goldenID, strconv.Itoa(goldenTS), goldenSig), []byte(goldenBody)))
}

func TestSign(t *testing.T) {
	t.Parallel()
	now := time.Unix(goldenTS, 0)
	sig, err := webhook.Sign(goldenSecret, goldenID, now, []byte(goldenBody))
	require.NoError(t, err)
	require.Equal(t, goldenSig, sig)

	sig, err = webhook.Sign(goldenPriv, goldenID, now, []byte(goldenBody))
	require.NoError(t, err)
	k, err := signing.ParseKey(goldenPriv)
	require.NoError(t, err)
	require.Equal(t, k.Sign(goldenID, goldenTS, []byte(goldenBody)), sig, "ed25519 signatures are deterministic")
	require.NoError(t, webhook.Verify(goldenPub, headers(goldenID, strconv.Itoa(goldenTS), sig), []byte(goldenBody), at(goldenTS)))

	_, err = webhook.Sign(goldenPub, goldenID, now, nil)
	require.ErrorIs(t, err, webhook.ErrInvalidSecret)
	_, err = webhook.Sign("whsk_AAAA", goldenID, now, nil)
	require.ErrorIs(t, err, webhook.ErrInvalidSecret)
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	ts := strconv.Itoa(goldenTS)
	type seen struct {
		body      string
		id        string
		hasID     bool
		length    int64
		readAgain bool
	}
	tests := []struct {
		name       string
		h          http.Header
		body       string
		opts       []webhook.Option
		wantStatus int
		wantText   string
	}{
		{name: "verified", h: headers(goldenID, ts, goldenSig), body: goldenBody, wantStatus: http.StatusOK},
		{name: "svix", h: http.Header{"Svix-Id": {goldenID}, "Svix-Timestamp": {ts}, "Svix-Signature": {goldenSig}}, body: goldenBody, wantStatus: http.StatusOK},
		{name: "bad signature", h: headers(goldenID, ts, goldenSig), body: goldenBody + " ", wantStatus: http.StatusUnauthorized, wantText: "no matching signature"},
		{name: "no headers", h: http.Header{}, body: goldenBody, wantStatus: http.StatusUnauthorized, wantText: "webhook-id"},
		{name: "stale", h: headers(goldenID, ts, goldenSig), body: goldenBody, opts: []webhook.Option{at(goldenTS + 600)}, wantStatus: http.StatusUnauthorized, wantText: "too old"},
		{name: "body over limit", h: headers(goldenID, ts, goldenSig), body: goldenBody, opts: []webhook.Option{webhook.WithMaxBodySize(10)}, wantStatus: http.StatusRequestEntityTooLarge, wantText: "over 10 bytes"},
		{name: "body at limit", h: headers(goldenID, ts, goldenSig), body: goldenBody, opts: []webhook.Option{webhook.WithMaxBodySize(int64(len(goldenBody)))}, wantStatus: http.StatusOK},
		{name: "custom error reply", h: http.Header{}, body: goldenBody, wantStatus: http.StatusBadRequest, wantText: "nope",
			opts: []webhook.Option{webhook.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				var we *webhook.Error
				if errors.As(err, &we) && errors.Is(err, webhook.ErrMissingHeader) {
					http.Error(w, "nope", http.StatusBadRequest)
				}
			})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got *seen
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				require.NoError(t, err)
				id, ok := webhook.IDFromContext(r.Context())
				got = &seen{body: string(b), id: id, hasID: ok, length: r.ContentLength}
				w.WriteHeader(http.StatusOK)
			})
			opts := append([]webhook.Option{at(goldenTS)}, tt.opts...)
			h := webhook.Middleware(goldenSecret, next, opts...)
			req := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(tt.body))
			for k, v := range tt.h {
				req.Header[k] = v
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tt.wantText)
			if tt.wantStatus != http.StatusOK {
				require.Nil(t, got, "a request that fails must not reach the handler")
				return
			}
			require.NotNil(t, got)
			require.Equal(t, tt.body, got.body, "the handler reads the body the middleware verified")
			require.Equal(t, int64(len(tt.body)), got.length)
			require.True(t, got.hasID)
			require.Equal(t, goldenID, got.id)
		})
	}
}

func TestMiddlewareRealServer(t *testing.T) {
	t.Parallel()
	sec, err := signing.NewSecret()
	require.NoError(t, err)
	v, err := webhook.NewVerifier([]string{sec})
	require.NoError(t, err)
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	})))
	t.Cleanup(srv.Close)

	body := []byte(`{"type":"order.fulfilled"}`)
	now := time.Now()
	sig, err := webhook.Sign(sec, "evt_1", now, body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header = headers("evt_1", strconv.FormatInt(now.Unix(), 10), sig)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	echoed, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, body, echoed)
}

func TestMiddlewarePanicsOnBadSecret(t *testing.T) {
	t.Parallel()
	require.Panics(t, func() { webhook.Middleware("", http.NotFoundHandler()) })
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func BenchmarkVerify(b *testing.B) {
	body := make([]byte, 1024)
	sig, err := webhook.Sign(goldenSecret, "msg_1", time.Unix(1_700_000_000, 0), body)
	require.NoError(b, err)
	h := headers("msg_1", "1700000000", sig)
	b.ReportAllocs()
	for b.Loop() {
		if err := webhook.Verify(goldenSecret, h, body, at(1_700_000_000)); err != nil {
			b.Fatal(err)
		}
	}
}
