package signing_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consign-dev/consign/internal/signing"
)

// FuzzVerify checks two properties: arbitrary input never panics Verify and only
// ever yields one of the documented errors, and whatever Header produces always
// verifies under each of the keys it was produced with.
func FuzzVerify(f *testing.F) {
	f.Add(goldenID, int64(goldenTS), []byte(goldenBody), strconv.Itoa(goldenTS), goldenSig)
	f.Add("", int64(0), []byte{}, "", "")
	f.Add("a.b c", int64(-1), []byte("\x00\xff"), "1614265330.0", "v1, v1a, ,,, v1,=")
	f.Add("msg", int64(1<<62), []byte("x"), "+1", strings.Repeat("v1a,AAAA ", 40))
	f.Add("msg", int64(1), []byte("x"), "00000000000000000001", "v1a,"+strings.Repeat("A", 86)+"==")

	hk := mustKey(f, goldenSecret)
	ek := mustKey(f, goldenPriv)
	keys := []signing.Key{hk, ek}
	secrets := []string{goldenSecret, goldenPub, goldenPriv}
	documented := []error{
		signing.ErrMissingHeader, signing.ErrBadTimestamp, signing.ErrTimestampTooOld,
		signing.ErrTimestampTooNew, signing.ErrHeaderTooLarge, signing.ErrNoMatch,
	}

	f.Fuzz(func(t *testing.T, id string, ts int64, body []byte, rawTS, rawHeader string) {
		now := time.Unix(goldenTS, 0)
		for _, secret := range secrets {
			for _, tsv := range []string{rawTS, strconv.Itoa(goldenTS)} {
				err := signing.Verify(secret, id, tsv, rawHeader, body, now, 0)
				if err != nil && !isAny(err, documented) {
					t.Fatalf("Verify(%q, %q, %q) = undocumented error %v", id, tsv, rawHeader, err)
				}
			}
		}

		header := signing.Header(keys, id, ts, body)
		tsv := strconv.FormatInt(ts, 10)
		for _, secret := range secrets {
			err := signing.Verify(secret, id, tsv, header, body, time.Unix(ts, 0), 0)
			switch {
			case id == "":
				if !errors.Is(err, signing.ErrMissingHeader) {
					t.Fatalf("empty id: got %v, want ErrMissingHeader", err)
				}
			case ts < 0:
				if !errors.Is(err, signing.ErrBadTimestamp) {
					t.Fatalf("negative timestamp: got %v, want ErrBadTimestamp", err)
				}
			case err != nil:
				t.Fatalf("Header output %q does not verify with %s: %v", header, secret[:5], err)
			}
		}
	})
}

func isAny(err error, targets []error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// FuzzParseKey checks that parsing never panics, that failures are always
// ErrInvalidKey, and that any key it accepts signs messages that verify.
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
		k, err := signing.ParseKey(s)
		if err != nil {
			if !errors.Is(err, signing.ErrInvalidKey) {
				t.Fatalf("ParseKey(%q) = %v, not ErrInvalidKey", s, err)
			}
			return
		}
		verifyWith := s
		if pub := k.Public(); pub != "" {
			verifyWith = pub
		}
		_ = k.String()
		const ts = 1_700_000_000
		body := []byte(s)
		sig := k.Sign("msg", ts, body)
		if err := signing.Verify(verifyWith, "msg", strconv.Itoa(ts), sig, body, time.Unix(ts, 0), 0); err != nil {
			t.Fatalf("key %q: own signature does not verify: %v", s, err)
		}
	})
}
