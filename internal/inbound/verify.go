package inbound

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/webhook"
)

// Tolerance is how far a Standard Webhooks timestamp may be from the clock.
const Tolerance = 5 * time.Minute

// maxSignatureHeader bounds the header values a scheme reads, checked before any
// cryptography, so a hostile header costs a bounded amount of work.
const maxSignatureHeader = 4 << 10

// Verify checks a request against a source's verification settings, whose secrets must
// be open. It returns nil, or an error whose text says what was wrong (it is stored as
// the receipt's reason and sent back to the caller, so it never holds a secret or the
// signature that was expected).
func Verify(v *consign.SourceVerify, h http.Header, body []byte, now time.Time) error {
	switch v.Type {
	case consign.VerifyNone, "":
		return nil
	case consign.VerifyHMACSHA256:
		return VerifyHMAC(v.Secret, v.Encoding, v.Prefix, v.Header, h.Get(v.Header), body)
	case consign.VerifyStandardWebhooks:
		err := webhook.Verify(v.Secret, h, body, webhook.WithTolerance(Tolerance), webhook.WithNow(func() time.Time { return now }))
		if err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "webhook: "))
		}
		return nil
	case consign.VerifyBasic:
		return VerifyBasic(v.Username, v.Password, h.Get("Authorization"))
	case consign.VerifyHeaderToken:
		return VerifyHeaderToken(v.Header, v.Secret, h.Get(v.Header))
	}
	return fmt.Errorf("unknown verification type %q", v.Type)
}

// VerifyHMAC checks that value, the content of header name, is the HMAC-SHA256 of body
// keyed with secret, in encoding ("hex" or "base64"), after prefix (such as "sha256=",
// matched without regard to case). Hex is read in either case; base64 in the standard or
// URL alphabet, padded or not.
func VerifyHMAC(secret, encoding, prefix, name, value string, body []byte) error {
	value = strings.TrimSpace(value)
	switch {
	case value == "":
		return fmt.Errorf("missing %s header", name)
	case len(value) > maxSignatureHeader:
		return fmt.Errorf("%s is %d bytes, more than any signature", name, len(value))
	}
	if prefix != "" {
		if len(value) < len(prefix) || !strings.EqualFold(value[:len(prefix)], prefix) {
			return fmt.Errorf("%s does not start with %q", name, prefix)
		}
		value = value[len(prefix):]
	}
	var got []byte
	var err error
	if encoding == consign.EncodingBase64 {
		got, err = decodeBase64(value)
	} else {
		got, err = hex.DecodeString(value)
	}
	if err != nil {
		return fmt.Errorf("%s is not a %s signature", name, encodingName(encoding))
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return fmt.Errorf("%s does not match the body: wrong secret, or the body was changed", name)
	}
	return nil
}

func encodingName(encoding string) string {
	if encoding == consign.EncodingBase64 {
		return "base64"
	}
	return "hex"
}

// decodeBase64 accepts both alphabets, with or without padding.
func decodeBase64(s string) ([]byte, error) {
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	return enc.DecodeString(strings.TrimRight(s, "="))
}

// ParseBasicAuth reads "Basic base64(username:password)" (the scheme name in any case).
func ParseBasicAuth(header string) (username, password string, ok bool) {
	const scheme = "basic "
	if len(header) > maxSignatureHeader || len(header) < len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(header[len(scheme):]))
	if err != nil {
		return "", "", false
	}
	username, password, ok = strings.Cut(string(raw), ":")
	return username, password, ok
}

// VerifyBasic checks HTTP Basic credentials. Both parts are compared in constant time,
// and both always, so timing tells neither which part was wrong nor how much of it.
func VerifyBasic(username, password, authorization string) error {
	if strings.TrimSpace(authorization) == "" {
		return errors.New("missing Authorization header (this source expects Basic credentials)")
	}
	u, p, ok := ParseBasicAuth(authorization)
	if !ok {
		return errors.New("the Authorization header is not Basic credentials")
	}
	uOK := constantTimeEqual(u, username)
	pOK := constantTimeEqual(p, password)
	if uOK&pOK != 1 {
		return errors.New("wrong username or password")
	}
	return nil
}

// VerifyHeaderToken checks that header name carries token. When the header is
// Authorization, a "Bearer " in front of the token is accepted too.
func VerifyHeaderToken(name, token, value string) error {
	value = strings.TrimSpace(value)
	switch {
	case value == "":
		return fmt.Errorf("missing %s header", name)
	case len(value) > maxSignatureHeader:
		return fmt.Errorf("%s is %d bytes, more than any token", name, len(value))
	}
	if strings.EqualFold(name, "Authorization") && len(value) > 7 && strings.EqualFold(value[:7], "bearer ") &&
		!strings.EqualFold(token[:min(len(token), 7)], "bearer ") {
		value = strings.TrimSpace(value[7:])
	}
	if constantTimeEqual(value, token) != 1 {
		return fmt.Errorf("%s does not hold this source's token", name)
	}
	return nil
}

// constantTimeEqual compares the SHA-256 digests of a and b, so that not even the
// length of the expected value shows in the time taken.
func constantTimeEqual(a, b string) int {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:])
}
