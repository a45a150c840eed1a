package signing_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/signing"
)

// httpHeader builds request headers, leaving out those given as nil.
func httpHeader(id *string, timestamp string, signature *string) http.Header {
	h := http.Header{}
	if id != nil {
		h.Set("webhook-id", *id)
	}
	if timestamp != "" {
		h.Set("webhook-timestamp", timestamp)
	}
	if signature != nil {
		h.Set("webhook-signature", *signature)
	}
	return h
}

func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	body := []byte(goldenBody)
	ts := strconv.Itoa(goldenTS)
	now := time.Unix(goldenTS, 0)
	tests := []struct {
		name, secret, id, ts, header string
		now                          time.Time
		tolerance                    time.Duration
		want                         error
		text                         string
	}{
		{name: "ok", want: nil},
		{name: "bad secret", secret: "whsec_!!", want: signing.ErrInvalidKey},
		{name: "empty secret", secret: " ", want: signing.ErrInvalidKey},
		{name: "bad public key", secret: "whpk_AAAA", want: signing.ErrInvalidKey, text: "3 bytes, want 32"},
		{name: "key checked before headers", secret: "whsec_", id: "-", want: signing.ErrInvalidKey},
		{name: "missing id", id: "-", want: signing.ErrMissingHeader, text: "webhook-id"},
		{name: "missing timestamp", ts: "-", want: signing.ErrMissingHeader, text: "webhook-timestamp"},
		{name: "missing signature", header: "-", want: signing.ErrMissingHeader, text: "webhook-signature"},
		{name: "negative timestamp", ts: "-1614265330", want: signing.ErrBadTimestamp},
		{name: "plus sign", ts: "+1614265330", want: signing.ErrBadTimestamp},
		{name: "spaces", ts: " 1614265330", want: signing.ErrBadTimestamp},
		{name: "overflow", ts: "9999999999999999999", want: signing.ErrBadTimestamp},
		{name: "very long timestamp", ts: strings.Repeat("1", 5000), want: signing.ErrBadTimestamp, text: "5000 characters"},
		{name: "max int64 far future", ts: "9223372036854775807", want: signing.ErrTimestampTooNew},
		{name: "zero clock far future", ts: "9223372036854775807", now: time.Time{}, want: signing.ErrTimestampTooNew},
		{name: "epoch too old", ts: "0", want: signing.ErrTimestampTooOld},
		{name: "exactly at tolerance, past", now: now.Add(300 * time.Second), want: nil},
		{name: "exactly at tolerance, future", now: now.Add(-300 * time.Second), want: nil},
		{name: "one over, past", now: now.Add(301 * time.Second), want: signing.ErrTimestampTooOld, text: "301s before now, tolerance 300s"},
		{name: "one over, future", now: now.Add(-301 * time.Second), want: signing.ErrTimestampTooNew, text: "301s after now"},
		{name: "custom tolerance", now: now.Add(301 * time.Second), tolerance: 10 * time.Minute, want: nil},
		{name: "narrow tolerance", now: now.Add(2 * time.Second), tolerance: time.Second, want: signing.ErrTimestampTooOld},
		{name: "leading zero changes content", ts: "0" + ts, want: signing.ErrNoMatch},
		{name: "no v1 entry", header: "v1a,abc v2,def", want: signing.ErrNoMatch, text: "no v1 entry"},
		{name: "entry without comma", header: "v1" + goldenSig[3:], want: signing.ErrNoMatch},
		{name: "extra spaces", header: "  v2,x   " + goldenSig + "  ", want: nil},
		{name: "non-canonical base64", header: goldenSig[:len(goldenSig)-2] + "F=", want: signing.ErrNoMatch},
		{name: "uppercase version", header: "V1," + goldenSig[3:], want: signing.ErrNoMatch},
		{name: "too long", header: goldenSig + " " + strings.Repeat("v1,A", signing.MaxHeaderLen/4), want: signing.ErrHeaderTooLarge, text: "limit 16384"},
		{name: "too many entries", header: strings.Repeat("v2,x ", signing.MaxSignatures) + goldenSig, want: signing.ErrHeaderTooLarge, text: "33 entries"},
		{name: "max entries", header: strings.Repeat("v2,x ", signing.MaxSignatures-1) + goldenSig, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret := or(tt.secret, goldenSecret)
			id, tsv, header := or(tt.id, goldenID), or(tt.ts, ts), or(tt.header, goldenSig)
			clock := tt.now
			if clock.IsZero() && tt.name != "zero clock far future" {
				clock = now
			}
			err := signing.Verify(secret, id, tsv, header, body, clock, tt.tolerance)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			if tt.text != "" {
				require.ErrorContains(t, err, tt.text)
			}
		})
	}
}

// or returns def for "", and "" for "-", so table rows can ask for an empty value.
func or(v, def string) string {
	switch v {
	case "":
		return def
	case "-":
		return ""
	}
	return v
}

func TestVerifyErrorDoesNotEchoHugeInput(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("v1,AAAA ", 4000)
	err := signing.Verify(goldenSecret, goldenID, strconv.Itoa(goldenTS), huge, nil, time.Unix(goldenTS, 0), 0)
	require.ErrorIs(t, err, signing.ErrHeaderTooLarge)
	require.Less(t, len(err.Error()), 200)
}

func TestVerifyRequest(t *testing.T) {
	t.Parallel()
	body := []byte(goldenBody)
	now := time.Unix(goldenTS, 0)
	ts := strconv.Itoa(goldenTS)

	t.Run("webhook headers", func(t *testing.T) {
		t.Parallel()
		h := http.Header{}
		h.Set("Webhook-Id", goldenID)
		h.Set("Webhook-Timestamp", ts)
		h.Set("Webhook-Signature", goldenSig)
		require.NoError(t, signing.VerifyRequest(goldenSecret, h, body, now, 0))
	})
	t.Run("svix headers", func(t *testing.T) {
		t.Parallel()
		h := http.Header{}
		h.Set("svix-id", goldenID)
		h.Set("svix-timestamp", ts)
		h.Set("svix-signature", goldenSig)
		require.NoError(t, signing.VerifyRequest(goldenSecret, h, body, now, 0))
		h.Del("svix-id")
		err := signing.VerifyRequest(goldenSecret, h, body, now, 0)
		require.ErrorIs(t, err, signing.ErrMissingHeader)
		require.ErrorContains(t, err, "svix-id", "the error names the header actually used")
	})
	t.Run("webhook headers win", func(t *testing.T) {
		t.Parallel()
		h := http.Header{}
		h.Set("webhook-id", goldenID)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", "v1,bad")
		h.Set("svix-id", goldenID)
		h.Set("svix-timestamp", ts)
		h.Set("svix-signature", goldenSig)
		require.ErrorIs(t, signing.VerifyRequest(goldenSecret, h, body, now, 0), signing.ErrNoMatch)
	})
	t.Run("nothing", func(t *testing.T) {
		t.Parallel()
		err := signing.VerifyRequest(goldenSecret, http.Header{}, body, now, 0)
		require.ErrorIs(t, err, signing.ErrMissingHeader)
		require.ErrorContains(t, err, "webhook-id")
	})
	t.Run("header constants", func(t *testing.T) {
		t.Parallel()
		h := http.Header{}
		h.Set(signing.HeaderID, goldenID)
		h.Set(signing.HeaderTimestamp, ts)
		h.Set(signing.HeaderSignature, goldenSig)
		require.NoError(t, signing.VerifyRequest(goldenSecret, h, body, now, 0))
	})
}
