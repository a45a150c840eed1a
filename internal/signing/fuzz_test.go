package signing_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/webhook"
)

// verify checks a signature header the way a receiver does, through the webhook package.
func verify(secret, id string, ts int64, header string, body []byte, now time.Time) error {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", header)
	return webhook.Verify(secret, h, body, webhook.WithNow(func() time.Time { return now }))
}

// FuzzHeader: whatever Header produces verifies under each of the keys it was produced
// with, for any id, timestamp and body a receiver can be sent.
func FuzzHeader(f *testing.F) {
	f.Add(goldenID, int64(goldenTS), []byte(goldenBody))
	f.Add("a.b c", int64(0), []byte("\x00\xff"))
	f.Add("msg", int64(1<<62), []byte("x"))

	keys := []signing.Key{mustKey(f, goldenSecret), mustKey(f, goldenPriv)}
	secrets := []string{goldenSecret, goldenPub, goldenPriv}
	f.Fuzz(func(t *testing.T, id string, ts int64, body []byte) {
		if id == "" || ts < 0 || strings.ContainsAny(id, "\r\n") || strings.TrimSpace(id) != id {
			return // not a message id a header can carry as is
		}
		header := signing.Header(keys, id, ts, body)
		for _, secret := range secrets {
			if err := verify(secret, id, ts, header, body, time.Unix(ts, 0)); err != nil {
				t.Fatalf("Header output %q does not verify with %s: %v", header, secret[:5], err)
			}
		}
	})
}

// FuzzParseKey checks that parsing never panics, that failures are always
// ErrInvalidKey, and that any key it accepts signs messages that verify and is a key
// CheckVerifyKey accepts.
func FuzzParseKey(f *testing.F) {
	f.Add(goldenSecret)
	f.Add(strings.TrimPrefix(goldenSecret, "whsec_"))
	f.Add(goldenPriv)
	f.Add(goldenPub)
	f.Add("")
	f.Add("whsec_")
	f.Add("whsk_AAAA")
	f.Add("whsec_====")

	f.Fuzz(func(t *testing.T, s string) {
		if err := signing.CheckVerifyKey(s); err != nil && !errors.Is(err, signing.ErrInvalidKey) {
			t.Fatalf("CheckVerifyKey(%q) = %v, not ErrInvalidKey", s, err)
		}
		k, err := signing.ParseKey(s)
		if err != nil {
			if !errors.Is(err, signing.ErrInvalidKey) {
				t.Fatalf("ParseKey(%q) = %v, not ErrInvalidKey", s, err)
			}
			return
		}
		if err := signing.CheckVerifyKey(s); err != nil {
			t.Fatalf("ParseKey accepts %q, CheckVerifyKey refuses it: %v", s, err)
		}
		verifyWith := s
		if pub := k.Public(); pub != "" {
			verifyWith = pub
			if err := signing.CheckVerifyKey(pub); err != nil {
				t.Fatalf("public key %q of %q refused: %v", pub, s, err)
			}
		}
		_ = k.String()
		const ts = 1_700_000_000
		body := []byte(s)
		if err := verify(verifyWith, "msg", ts, k.Sign("msg", ts, body), body, time.Unix(ts, 0)); err != nil {
			t.Fatalf("key %q: own signature does not verify: %v", s, err)
		}
	})
}
