package signing

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a message's timestamp may be from the verifier's
// clock, in either direction, when Verify is given a tolerance of zero or less.
const DefaultTolerance = 5 * time.Minute

// Limits on a webhook-signature header, checked before any cryptography so that
// a hostile header cannot cost more than a bounded amount of CPU.
const (
	MaxHeaderLen  = 16 << 10 // MaxHeaderLen is the longest header accepted, in bytes.
	MaxSignatures = 32       // MaxSignatures is the most space-separated entries accepted.
)

// Sentinel errors returned (wrapped, with details) by Verify and VerifyRequest.
var (
	// ErrMissingHeader reports an empty webhook-id, webhook-timestamp or
	// webhook-signature; the message names which.
	ErrMissingHeader = errors.New("signing: missing header")
	// ErrBadTimestamp reports a timestamp that is not a non-negative integer
	// count of Unix seconds.
	ErrBadTimestamp = errors.New("signing: malformed timestamp")
	// ErrTimestampTooOld reports a timestamp further in the past than the tolerance.
	ErrTimestampTooOld = errors.New("signing: timestamp too old")
	// ErrTimestampTooNew reports a timestamp further in the future than the tolerance.
	ErrTimestampTooNew = errors.New("signing: timestamp too far in the future")
	// ErrHeaderTooLarge reports a signature header over MaxHeaderLen bytes or
	// with more than MaxSignatures entries.
	ErrHeaderTooLarge = errors.New("signing: signature header too large")
	// ErrNoMatch reports that no entry of the key's version verifies, including
	// the case where the header holds no entry of that version at all.
	ErrNoMatch = errors.New("signing: no matching signature")
)

// HTTP headers of a Standard Webhooks message.
const (
	HeaderID        = "webhook-id"        // HeaderID carries the message id.
	HeaderTimestamp = "webhook-timestamp" // HeaderTimestamp carries Unix seconds.
	HeaderSignature = "webhook-signature" // HeaderSignature carries the signatures.
)

// headerNames are the names errors use for the three inputs, so a Svix-style
// request is told about the headers it actually sent.
type headerNames struct{ id, timestamp, signature string }

// Functions rather than variables: the package keeps no mutable globals.
func standardNames() headerNames { return headerNames{HeaderID, HeaderTimestamp, HeaderSignature} }
func svixNames() headerNames     { return headerNames{"svix-id", "svix-timestamp", "svix-signature"} }

// Verify checks a Standard Webhooks signature. secret is what the receiver
// holds: a v1 secret ("whsec_…" or bare base64), a v1a public key ("whpk_…"),
// or a v1a signing key ("whsk_…", whose public half is used). The timestamp is
// the header value as received and must lie within tolerance of now in either
// direction; tolerance <= 0 means DefaultTolerance. Verification passes if any
// entry of the key's version verifies, which is what lets senders rotate keys.
//
// The error wraps ErrInvalidKey, ErrMissingHeader, ErrBadTimestamp,
// ErrTimestampTooOld, ErrTimestampTooNew, ErrHeaderTooLarge or ErrNoMatch.
func Verify(secret, id, timestamp, signatureHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	return verify(secret, standardNames(), id, timestamp, signatureHeader, body, now, tolerance)
}

// VerifyRequest is Verify with the inputs read from the webhook-id,
// webhook-timestamp and webhook-signature headers. When webhook-signature is
// absent all three are read from their svix- equivalents instead, since Svix
// senders use the same scheme under those names.
func VerifyRequest(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	names := standardNames()
	if svix := svixNames(); h.Get(names.signature) == "" && h.Get(svix.signature) != "" {
		names = svix
	}
	return verify(secret, names, h.Get(names.id), h.Get(names.timestamp), h.Get(names.signature), body, now, tolerance)
}

// verifier is the receiving side of a key: exactly one field is set.
type verifier struct {
	mac []byte
	pub ed25519.PublicKey
}

func parseVerifier(secret string) (verifier, error) {
	s := strings.TrimSpace(secret)
	switch {
	case s == "":
		return verifier{}, fmt.Errorf("%w: empty", ErrInvalidKey)
	case strings.HasPrefix(s, PublicKeyPrefix):
		pub, err := parsePublic(s)
		return verifier{pub: pub}, err
	case strings.HasPrefix(s, SigningKeyPrefix):
		priv, err := parsePrivate(s)
		if err != nil {
			return verifier{}, err
		}
		return verifier{pub: priv.Public().(ed25519.PublicKey)}, nil
	default:
		mac, err := parseSecret(s)
		return verifier{mac: mac}, err
	}
}

func verify(secret string, names headerNames, id, timestamp, header string, body []byte, now time.Time, tolerance time.Duration) error {
	// The key comes first: a misconfigured receiver should hear about that rather
	// than about whatever happens to be wrong with the first request it sees.
	v, err := parseVerifier(secret)
	if err != nil {
		return err
	}
	switch {
	case id == "":
		return fmt.Errorf("%w: %s", ErrMissingHeader, names.id)
	case timestamp == "":
		return fmt.Errorf("%w: %s", ErrMissingHeader, names.timestamp)
	case header == "":
		return fmt.Errorf("%w: %s", ErrMissingHeader, names.signature)
	}
	if err := checkTimestamp(names.timestamp, timestamp, now, tolerance); err != nil {
		return err
	}
	if len(header) > MaxHeaderLen {
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrHeaderTooLarge, names.signature, len(header), MaxHeaderLen)
	}
	if n := countEntries(header); n > MaxSignatures {
		return fmt.Errorf("%w: %s has %d entries, limit %d", ErrHeaderTooLarge, names.signature, n, MaxSignatures)
	}

	version := "v1"
	var match func(sig string) bool
	if v.pub != nil {
		version = "v1a"
		msg := appendReceived(nil, id, timestamp, body)
		match = func(sig string) bool {
			raw, err := base64.StdEncoding.DecodeString(sig)
			return err == nil && len(raw) == ed25519.SignatureSize && ed25519.Verify(v.pub, msg, raw)
		}
	} else {
		mac := hmac.New(sha256.New, v.mac)
		mac.Write(appendReceived(nil, id, timestamp, nil))
		mac.Write(body)
		var want [hmacB64Len]byte
		base64.StdEncoding.Encode(want[:], mac.Sum(nil))
		// Comparing the canonical encodings in constant time avoids decoding
		// every candidate and rejects non-canonical base64 for free.
		match = func(sig string) bool { return hmac.Equal(want[:], []byte(sig)) }
	}

	seen := 0
	for rest := header; rest != ""; {
		var entry string
		entry, rest, _ = strings.Cut(rest, " ")
		ver, sig, ok := strings.Cut(entry, ",")
		if !ok || ver != version {
			continue
		}
		seen++
		if match(sig) {
			return nil
		}
	}
	if seen == 0 {
		return fmt.Errorf("%w: %s has no %s entry", ErrNoMatch, names.signature, version)
	}
	return fmt.Errorf("%w: none of %d %s entries in %s verifies", ErrNoMatch, seen, version, names.signature)
}

// countEntries counts the non-empty space-separated entries of a header, so
// that runs of spaces neither count against the limit nor evade it.
func countEntries(header string) int {
	n := 0
	for rest := header; rest != ""; {
		var entry string
		entry, rest, _ = strings.Cut(rest, " ")
		if entry != "" {
			n++
		}
	}
	return n
}

// maxTimestampLen is the number of digits of the largest int64.
const maxTimestampLen = 19

func checkTimestamp(name, timestamp string, now time.Time, tolerance time.Duration) error {
	ts, ok := parseTimestamp(timestamp)
	if !ok {
		if len(timestamp) > maxTimestampLen {
			return fmt.Errorf("%w: %s is %d characters, not Unix seconds", ErrBadTimestamp, name, len(timestamp))
		}
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrBadTimestamp, name, timestamp)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	tol := uint64(tolerance / time.Second)
	n := now.Unix()
	// Differences are taken in uint64 because ts-n can overflow int64 when the
	// clock is far in the past; the true difference always fits in uint64.
	if ts < n {
		if age := uint64(n) - uint64(ts); age > tol {
			return fmt.Errorf("%w: %s is %ds before now, tolerance %ds", ErrTimestampTooOld, name, age, tol)
		}
	} else if ahead := uint64(ts) - uint64(n); ahead > tol {
		return fmt.Errorf("%w: %s is %ds after now, tolerance %ds", ErrTimestampTooNew, name, ahead, tol)
	}
	return nil
}

// parseTimestamp accepts only decimal digits: strconv alone would also take a
// sign, and a signed or negative timestamp is not one the spec allows.
func parseTimestamp(s string) (int64, bool) {
	if s == "" || len(s) > maxTimestampLen {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	return ts, err == nil
}
