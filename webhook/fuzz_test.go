package webhook_test

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

// FuzzVerify checks, for arbitrary headers and bodies, that Verify never panics, only
// fails with the documented causes, and accepts whatever Consign's signer produces.
func FuzzVerify(f *testing.F) {
	f.Add(goldenID, strconv.Itoa(goldenTS), goldenSig, []byte(goldenBody), int64(goldenTS))
	f.Add("", "", "", []byte{}, int64(0))
	f.Add("a.b c", "1614265330.0", "v1, v1a, ,,, v1,=", []byte("\x00\xff"), int64(-1))
	f.Add("msg", "+1", strings.Repeat("v1a,AAAA ", 40), []byte("x"), int64(1<<62))
	f.Add("msg", "00000000000000000001", "v1a,"+strings.Repeat("A", 86)+"==", []byte("x"), int64(1))

	secrets := []string{goldenSecret, goldenPub}
	keys := make([]signing.Key, 0, 2)
	for _, s := range []string{goldenSecret, goldenPriv} {
		k, err := signing.ParseKey(s)
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, k)
	}
	causes := []error{webhook.ErrMissingHeader, webhook.ErrInvalidTimestamp, webhook.ErrTimestampTooOld,
		webhook.ErrTimestampTooNew, webhook.ErrHeaderTooLarge, webhook.ErrNoMatch}

	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte, signedAt int64) {
		now := time.Unix(goldenTS, 0)
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		for _, secret := range secrets {
			err := webhook.Verify(secret, h, body, webhook.WithNow(func() time.Time { return now }))
			if err != nil && !isAny(err, causes) {
				t.Fatalf("undocumented error %v", err)
			}
		}

		// What Consign sends always verifies, with either secret.
		if id == "" || signedAt < 0 {
			return
		}
		h.Set("webhook-timestamp", strconv.FormatInt(signedAt, 10))
		h.Set("webhook-signature", signing.Header(keys, id, signedAt, body))
		for _, secret := range secrets {
			err := webhook.Verify(secret, h, body, webhook.WithNow(func() time.Time { return time.Unix(signedAt, 0) }))
			if err != nil {
				t.Fatalf("Consign's signature does not verify with %s…: %v", secret[:5], err)
			}
		}
	})
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
