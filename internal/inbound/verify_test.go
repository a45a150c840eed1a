package inbound_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/inbound"
	"github.com/consign-dev/consign/internal/signing"
)

const (
	hmacSecret = "shpss_0123456789abcdef"
	swSecret   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

var body = []byte(`{"id":"shp_1001","order":"1001","carrier":"UPS","tracking":"1Z999"}`)

func macOf(secret string, b []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(b)
	return m.Sum(nil)
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestVerifyHMAC(t *testing.T) {
	t.Parallel()
	mac := macOf(hmacSecret, body)
	tests := []struct {
		name, encoding, prefix, value string
		body                          []byte
		err                           string // substring; "" = valid
	}{
		{"HexWithPrefix", "hex", "sha256=", "sha256=" + hex.EncodeToString(mac), body, ""},
		{"PrefixInOtherCase", "hex", "sha256=", "SHA256=" + hex.EncodeToString(mac), body, ""},
		{"UpperCaseHex", "hex", "", strings.ToUpper(hex.EncodeToString(mac)), body, ""},
		{"SpacesAround", "hex", "", "  " + hex.EncodeToString(mac) + " ", body, ""},
		{"Base64", "base64", "", base64.StdEncoding.EncodeToString(mac), body, ""},
		{"Base64URLUnpadded", "base64", "", base64.RawURLEncoding.EncodeToString(mac), body, ""},
		{"Missing", "hex", "", "", body, "missing X-Signature header"},
		{"PrefixMissing", "hex", "sha256=", hex.EncodeToString(mac), body, `does not start with "sha256="`},
		{"NotHex", "hex", "", "zz" + hex.EncodeToString(mac)[2:], body, "is not a hex signature"},
		{"NotBase64", "base64", "", "***", body, "is not a base64 signature"},
		{"HexWhereBase64Expected", "base64", "", hex.EncodeToString(mac), body, "does not match"},
		{"WrongSecret", "hex", "", hex.EncodeToString(macOf("another secret", body)), body, "does not match the body"},
		{"BodyChanged", "hex", "", hex.EncodeToString(mac), append([]byte(" "), body...), "does not match the body"},
		{"Truncated", "hex", "", hex.EncodeToString(mac[:16]), body, "does not match"},
		{"Huge", "hex", "", strings.Repeat("a", 5000), body, "more than any signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := inbound.VerifyHMAC(hmacSecret, tt.encoding, tt.prefix, "X-Signature", tt.value, tt.body)
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.err)
			require.NotContains(t, err.Error(), hex.EncodeToString(mac), "the expected signature is never told")
		})
	}
}

func TestVerifyBasic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, header, err string
	}{
		{"Valid", basic("deposco", "s3cret:with:colons"), ""},
		{"SchemeInOtherCase", "bAsIc " + base64.StdEncoding.EncodeToString([]byte("deposco:s3cret:with:colons")), ""},
		{"WrongPassword", basic("deposco", "s3cret"), "wrong username or password"},
		{"WrongUser", basic("Deposco", "s3cret:with:colons"), "wrong username or password"},
		{"Missing", "", "missing Authorization header"},
		{"Bearer", "Bearer abc", "not Basic credentials"},
		{"NotBase64", "Basic !!!", "not Basic credentials"},
		{"NoColon", "Basic " + base64.StdEncoding.EncodeToString([]byte("deposco")), "not Basic credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := inbound.VerifyBasic("deposco", "s3cret:with:colons", tt.header)
			if tt.err == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.err)
			}
		})
	}
}

func TestVerifyHeaderToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, header, token, value, err string
	}{
		{"Valid", "X-Webhook-Token", "tok_0123456789", "tok_0123456789", ""},
		{"Wrong", "X-Webhook-Token", "tok_0123456789", "tok_0123456788", "does not hold this source's token"},
		{"Prefix", "X-Webhook-Token", "tok_0123456789", "tok_012345678", "does not hold"},
		{"Missing", "X-Webhook-Token", "tok_0123456789", "", "missing X-Webhook-Token header"},
		{"AuthorizationBearer", "Authorization", "tok_0123456789", "Bearer tok_0123456789", ""},
		{"AuthorizationBare", "Authorization", "tok_0123456789", "tok_0123456789", ""},
		{"AuthorizationTokenWithScheme", "Authorization", "Bearer tok_0123456789", "Bearer tok_0123456789", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := inbound.VerifyHeaderToken(tt.header, tt.token, tt.value)
			if tt.err == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.err)
			}
		})
	}
}

// swHeaders signs body as a Standard Webhooks sender would at ts.
func swHeaders(tb testing.TB, secret, id string, ts time.Time, b []byte) http.Header {
	tb.Helper()
	k, err := signing.ParseKey(secret)
	require.NoError(tb, err)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", signing.Header([]signing.Key{k}, id, ts.Unix(), b))
	return h
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)
	hmacV := &consign.SourceVerify{Type: consign.VerifyHMACSHA256, Header: "X-Hub-Signature-256", Encoding: "hex", Prefix: "sha256=", Secret: hmacSecret}
	swV := &consign.SourceVerify{Type: consign.VerifyStandardWebhooks, Secret: swSecret}
	svix := swHeaders(t, swSecret, "msg_1", now, body)
	for _, n := range []string{"id", "timestamp", "signature"} {
		svix.Set("svix-"+n, svix.Get("webhook-"+n))
		svix.Del("webhook-" + n)
	}
	tests := []struct {
		name string
		v    *consign.SourceVerify
		h    http.Header
		err  string
	}{
		{"None", &consign.SourceVerify{Type: consign.VerifyNone}, http.Header{}, ""},
		{"HMAC", hmacV, http.Header{"X-Hub-Signature-256": {"sha256=" + hex.EncodeToString(macOf(hmacSecret, body))}}, ""},
		{"HMACMissing", hmacV, http.Header{}, "missing X-Hub-Signature-256 header"},
		{"StandardWebhooks", swV, swHeaders(t, swSecret, "msg_1", now, body), ""},
		{"StandardWebhooksSvixHeaders", swV, svix, ""},
		{"StandardWebhooksNearEdge", swV, swHeaders(t, swSecret, "msg_1", now.Add(-inbound.Tolerance), body), ""},
		{"StandardWebhooksTooOld", swV, swHeaders(t, swSecret, "msg_1", now.Add(-inbound.Tolerance-time.Second), body), "timestamp too old"},
		{"StandardWebhooksFuture", swV, swHeaders(t, swSecret, "msg_1", now.Add(inbound.Tolerance+time.Second), body), "too far in the future"},
		{"StandardWebhooksWrongSecret", swV, swHeaders(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")), "msg_1", now, body), "no matching signature"},
		{"StandardWebhooksMissing", swV, http.Header{}, "missing header"},
		{"Basic", &consign.SourceVerify{Type: consign.VerifyBasic, Username: "u", Password: "password1"}, http.Header{"Authorization": {basic("u", "password1")}}, ""},
		{"HeaderToken", &consign.SourceVerify{Type: consign.VerifyHeaderToken, Header: "X-Token", Secret: "tok_0123456789"}, http.Header{"X-Token": {"tok_0123456789"}}, ""},
		{"HeaderTokenWrong", &consign.SourceVerify{Type: consign.VerifyHeaderToken, Header: "X-Token", Secret: "tok_0123456789"}, http.Header{"X-Token": {"nope"}}, "does not hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := inbound.Verify(tt.v, tt.h, body, now)
			if tt.err == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.err)
				require.NotContains(t, err.Error(), "signing:", "reasons read without package prefixes")
			}
		})
	}
}

// FuzzVerifyHMAC: any header value and body are handled without panic, a correct
// signature in either encoding always verifies, and whatever verifies is the true MAC.
func FuzzVerifyHMAC(f *testing.F) {
	f.Add("secret-123", "sha256=", "sha256="+hex.EncodeToString(macOf("secret-123", body)), body, false)
	f.Add("secret-123", "", base64.StdEncoding.EncodeToString(macOf("secret-123", body)), body, true)
	f.Add("k", "v1=", "v1=", []byte{}, false)
	f.Add("k", "SHA256=", "sha256=zz", []byte("\x00"), true)
	f.Fuzz(func(t *testing.T, secret, prefix, value string, b []byte, b64 bool) {
		enc := consign.EncodingHex
		if b64 {
			enc = consign.EncodingBase64
		}
		mac := macOf(secret, b)
		if err := inbound.VerifyHMAC(secret, enc, prefix, "X-Sig", value, b); err == nil {
			v := strings.TrimSpace(value)[len(prefix):]
			var got []byte
			if b64 {
				got, _ = base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.NewReplacer("-", "+", "_", "/").Replace(v), "="))
			} else {
				got, _ = hex.DecodeString(v)
			}
			require.Equal(t, mac, got, "verified a value that is not the MAC: %q", value)
		}
		good := prefix + hex.EncodeToString(mac)
		if b64 {
			good = prefix + base64.StdEncoding.EncodeToString(mac)
		}
		if strings.TrimSpace(prefix) == prefix && len(good) <= 4096 {
			require.NoError(t, inbound.VerifyHMAC(secret, enc, prefix, "X-Sig", good, b))
		}
	})
}

// FuzzVerifyStandardWebhooks: arbitrary headers never panic and are refused unless
// signed; a correctly signed request always verifies.
func FuzzVerifyStandardWebhooks(f *testing.F) {
	now := time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)
	good := swHeaders(f, swSecret, "msg_1", now, body)
	f.Add("msg_1", good.Get("webhook-timestamp"), good.Get("webhook-signature"), body)
	f.Add("", "", "", []byte{})
	f.Add("a b", "-1", "v1, v1,,, v1a,AAAA", []byte("{"))
	f.Add("x", "99999999999999999999", strings.Repeat("v1,x ", 50), []byte("null"))
	v := &consign.SourceVerify{Type: consign.VerifyStandardWebhooks, Secret: swSecret}
	f.Fuzz(func(t *testing.T, id, ts, sig string, b []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		_ = inbound.Verify(v, h, b, now)
		if id == "" || strings.ContainsAny(id, "\r\n") {
			return
		}
		require.NoError(t, inbound.Verify(v, swHeaders(t, swSecret, id, now, b), b, now))
	})
}

// FuzzBasicAuth: ParseBasicAuth never panics on any header, and credentials written by
// a client always read back and verify.
func FuzzBasicAuth(f *testing.F) {
	f.Add("Basic ZGVwb3Njbzpz", "deposco", "s3cret")
	f.Add("basic", "", "")
	f.Add("Basic ::::", "a:b", "c")
	f.Fuzz(func(t *testing.T, header, user, pass string) {
		_, _, _ = inbound.ParseBasicAuth(header)
		_ = inbound.VerifyBasic(user, pass, header)
		if strings.Contains(user, ":") {
			return
		}
		h := basic(user, pass)
		if len(h) > 4096 {
			return
		}
		u, p, ok := inbound.ParseBasicAuth(h)
		require.True(t, ok)
		require.Equal(t, user, u)
		require.Equal(t, pass, p)
		require.NoError(t, inbound.VerifyBasic(user, pass, h))
		if pass != "" {
			require.Error(t, inbound.VerifyBasic(user, pass+"x", h))
		}
	})
}

// FuzzHeaderToken: only the token itself (or Bearer and the token, in Authorization)
// passes.
func FuzzHeaderToken(f *testing.F) {
	f.Add("Authorization", "tok_0123456789", "Bearer tok_0123456789")
	f.Add("X-Token", "tok", "tok ")
	f.Fuzz(func(t *testing.T, name, token, value string) {
		err := inbound.VerifyHeaderToken(name, token, value)
		if err != nil {
			return
		}
		v := strings.TrimSpace(value)
		if v != token {
			require.True(t, strings.EqualFold(name, "Authorization") && strings.EqualFold(v[:7], "bearer ") &&
				strings.TrimSpace(v[7:]) == token, "%q passed for token %q", value, token)
		}
	})
}
