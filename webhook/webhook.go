// Package webhook checks the webhooks Consign sends, for the services that receive them.
//
// Consign signs every request the Standard Webhooks way (https://www.standardwebhooks.com):
// the headers webhook-id, webhook-timestamp (Unix seconds) and webhook-signature, which
// holds one space-separated entry per active secret of the endpoint — "v1,<base64
// HMAC-SHA256>" for a "whsec_…" secret, "v1a,<base64 ed25519 signature>" for an endpoint
// given an ed25519 key, whose "whpk_…" public key the receiver holds. Both sign
// "{webhook-id}.{webhook-timestamp}.{body}".
//
// Verify checks one request; a Verifier holds several secrets (during a rotation, accept
// either the old secret or the new one) and options; Middleware wraps an http.Handler so
// that only verified requests reach it, with the body intact and the webhook id in the
// request's context (IDFromContext), which is the key to drop duplicates by: it is the
// same on every retry.
//
//	http.Handle("POST /hooks", webhook.Middleware(os.Getenv("CONSIGN_SECRET"), handler))
//
// The package depends on the standard library only. Svix senders use the same scheme
// under svix-id, svix-timestamp and svix-signature; those are read when webhook-signature
// is absent.
package webhook

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of a Verifier.
const (
	// DefaultTolerance is how far webhook-timestamp may be from the receiver's clock, in
	// either direction, so that a captured request cannot be replayed later.
	DefaultTolerance = 5 * time.Minute
	// DefaultMaxBodySize is the largest body Middleware reads, in bytes (1 MiB).
	DefaultMaxBodySize = 1 << 20
)

// Limits on a webhook-signature header, checked before any cryptography so that a hostile
// header costs a bounded amount of work.
const (
	maxHeaderLen    = 16 << 10
	maxSignatures   = 32
	maxTimestampLen = 19 // digits of the largest int64
)

// Key prefixes.
const (
	secretPrefix     = "whsec_" // v1 HMAC secret
	publicKeyPrefix  = "whpk_"  // v1a ed25519 public key
	signingKeyPrefix = "whsk_"  // v1a ed25519 private key (seed followed by public key)
)

// Causes of a failed verification, wrapped in an *Error; test them with errors.Is.
var (
	// ErrInvalidSecret: a secret is empty, not base64, or the wrong length. It is the
	// receiver's configuration that is wrong, not the request.
	ErrInvalidSecret = errors.New("webhook: invalid secret")
	// ErrMissingHeader: webhook-id, webhook-timestamp or webhook-signature is absent.
	ErrMissingHeader = errors.New("webhook: missing header")
	// ErrInvalidTimestamp: webhook-timestamp is not a whole number of Unix seconds.
	ErrInvalidTimestamp = errors.New("webhook: invalid timestamp")
	// ErrTimestampTooOld: webhook-timestamp is further in the past than the tolerance.
	ErrTimestampTooOld = errors.New("webhook: timestamp too old")
	// ErrTimestampTooNew: webhook-timestamp is further in the future than the tolerance.
	ErrTimestampTooNew = errors.New("webhook: timestamp too far in the future")
	// ErrHeaderTooLarge: webhook-signature is over 16 KiB or has more than 32 entries.
	ErrHeaderTooLarge = errors.New("webhook: signature header too large")
	// ErrNoMatch: no signature in the header verifies with any of the secrets.
	ErrNoMatch = errors.New("webhook: no matching signature")
	// ErrBodyTooLarge: Middleware read more than the maximum body size.
	ErrBodyTooLarge = errors.New("webhook: body too large")
)

// Error is a failed verification: Err is one of the Err… causes and Detail says exactly
// what was wrong, in words fit for a log line or the reply to the sender.
type Error struct {
	Err    error
	Detail string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Detail
}

// Unwrap lets errors.Is match the cause.
func (e *Error) Unwrap() error { return e.Err }

func fail(cause error, format string, args ...any) error {
	return &Error{Err: cause, Detail: fmt.Sprintf(format, args...)}
}

// key is the receiving side of one secret: exactly one field is set.
type key struct {
	mac []byte            // v1
	pub ed25519.PublicKey // v1a
}

// parseKey reads "whsec_…" or a bare base64 secret (v1), "whpk_…" (v1a), or "whsk_…"
// (v1a, through its public half). Surrounding white space is ignored: secrets often come
// from files and environment variables with a trailing newline.
func parseKey(s string) (key, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return key{}, fail(ErrInvalidSecret, "empty")
	case strings.HasPrefix(s, publicKeyPrefix):
		raw, err := base64.StdEncoding.DecodeString(s[len(publicKeyPrefix):])
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return key{}, fail(ErrInvalidSecret, "%s… must be the base64 of a %d-byte ed25519 public key", publicKeyPrefix, ed25519.PublicKeySize)
		}
		return key{pub: raw}, nil
	case strings.HasPrefix(s, signingKeyPrefix):
		raw, err := base64.StdEncoding.DecodeString(s[len(signingKeyPrefix):])
		if err != nil || len(raw) != ed25519.PrivateKeySize {
			return key{}, fail(ErrInvalidSecret, "%s… must be the base64 of a %d-byte ed25519 private key", signingKeyPrefix, ed25519.PrivateKeySize)
		}
		priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !bytes.Equal(priv[ed25519.SeedSize:], raw[ed25519.SeedSize:]) {
			return key{}, fail(ErrInvalidSecret, "%s… key's public half does not match its seed", signingKeyPrefix)
		}
		return key{pub: priv.Public().(ed25519.PublicKey)}, nil
	default:
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, secretPrefix))
		if err != nil || len(raw) == 0 {
			return key{}, fail(ErrInvalidSecret, "a secret is %s followed by standard base64", secretPrefix)
		}
		return key{mac: raw}, nil
	}
}

// Verifier checks requests against one or more secrets. It is safe for concurrent use.
type Verifier struct {
	keys      []key
	tolerance time.Duration
	now       func() time.Time
	maxBody   int64
	onError   func(w http.ResponseWriter, r *http.Request, err error)
}

// Option changes a Verifier.
type Option func(*Verifier)

// WithTolerance sets how far webhook-timestamp may be from now in either direction;
// default DefaultTolerance (5 minutes). Zero or less keeps the default.
func WithTolerance(d time.Duration) Option {
	return func(v *Verifier) {
		if d > 0 {
			v.tolerance = d
		}
	}
}

// WithNow sets the clock timestamps are compared with; default time.Now. For tests.
func WithNow(now func() time.Time) Option {
	return func(v *Verifier) {
		if now != nil {
			v.now = now
		}
	}
}

// WithMaxBodySize sets the largest body Middleware reads, in bytes; default
// DefaultMaxBodySize (1 MiB). A larger body is refused with 413.
func WithMaxBodySize(n int64) Option {
	return func(v *Verifier) {
		if n > 0 {
			v.maxBody = n
		}
	}
}

// WithErrorHandler replaces Middleware's reply to a request that fails: by default a
// plain-text 401 (413 for a body over the limit) that says why. err is an *Error.
func WithErrorHandler(h func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return func(v *Verifier) {
		if h != nil {
			v.onError = h
		}
	}
}

// NewVerifier returns a Verifier that accepts a request signed with any of the secrets:
// "whsec_…" secrets and "whpk_…" public keys, as the Consign API returned them. Hold
// both the old and the new secret while an endpoint's secrets are rotated. The error
// wraps ErrInvalidSecret.
func NewVerifier(secrets []string, opts ...Option) (*Verifier, error) {
	v := &Verifier{tolerance: DefaultTolerance, now: time.Now, maxBody: DefaultMaxBodySize, onError: defaultOnError}
	if len(secrets) == 0 {
		return nil, fail(ErrInvalidSecret, "no secret given")
	}
	for i, s := range secrets {
		k, err := parseKey(s)
		if err != nil {
			if len(secrets) > 1 {
				return nil, fmt.Errorf("secret %d: %w", i+1, err)
			}
			return nil, err
		}
		v.keys = append(v.keys, k)
	}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// Verify checks a request signed with secret: h holds its headers and body its body,
// exactly as received (parse the JSON after verifying, not before). The error is an
// *Error; errors.Is tells the causes apart.
func Verify(secret string, h http.Header, body []byte, opts ...Option) error {
	v, err := NewVerifier([]string{secret}, opts...)
	if err != nil {
		return err
	}
	return v.Verify(h, body)
}

// Verify checks a request's headers and body. It passes when the timestamp is within the
// tolerance and any signature in the header verifies with any of the secrets.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	idName, tsName, sigName := headerNames(h)
	id, ts, header := h.Get(idName), h.Get(tsName), h.Get(sigName)
	switch {
	case id == "":
		return fail(ErrMissingHeader, "%s", idName)
	case ts == "":
		return fail(ErrMissingHeader, "%s", tsName)
	case header == "":
		return fail(ErrMissingHeader, "%s", sigName)
	}
	if err := v.checkTimestamp(tsName, ts); err != nil {
		return err
	}
	if len(header) > maxHeaderLen {
		return fail(ErrHeaderTooLarge, "%s is %d bytes, limit %d", sigName, len(header), maxHeaderLen)
	}
	if n := countEntries(header); n > maxSignatures {
		return fail(ErrHeaderTooLarge, "%s has %d entries, limit %d", sigName, n, maxSignatures)
	}
	entries := strings.FieldsFunc(header, isSpace)

	// The signed content is "{id}.{timestamp}.{body}", with the timestamp exactly as sent.
	prefix := id + "." + ts + "."
	var content []byte // built once, for ed25519
	candidates := 0
	for _, k := range v.keys {
		version := "v1"
		var want []byte
		if k.pub != nil {
			version = "v1a"
			if content == nil {
				content = append([]byte(prefix), body...)
			}
		} else {
			mac := hmac.New(sha256.New, k.mac)
			mac.Write([]byte(prefix))
			mac.Write(body)
			want = []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		}
		for _, e := range entries {
			ver, sig, ok := strings.Cut(e, ",")
			if !ok || ver != version {
				continue
			}
			candidates++
			if k.pub == nil {
				// Comparing canonical encodings in constant time rejects
				// non-canonical base64 without decoding every candidate.
				if hmac.Equal(want, []byte(sig)) {
					return nil
				}
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(sig)
			if err == nil && len(raw) == ed25519.SignatureSize && ed25519.Verify(k.pub, content, raw) {
				return nil
			}
		}
	}
	if candidates == 0 {
		return fail(ErrNoMatch, "%s has no entry of the secret's version (v1 for whsec_, v1a for whpk_)", sigName)
	}
	return fail(ErrNoMatch, "no signature in %s verifies with the secret", sigName)
}

// headerNames returns the names of the id, timestamp and signature headers of a request:
// Standard Webhooks', or Svix's when only those are present.
func headerNames(h http.Header) (id, timestamp, signature string) {
	if h.Get("webhook-signature") == "" && h.Get("svix-signature") != "" {
		return "svix-id", "svix-timestamp", "svix-signature"
	}
	return "webhook-id", "webhook-timestamp", "webhook-signature"
}

// isSpace separates the entries of a signature header: spaces, as the spec says.
func isSpace(r rune) bool { return r == ' ' }

// countEntries counts the entries of a signature header without allocating.
func countEntries(header string) int {
	n, in := 0, false
	for _, r := range header {
		space := isSpace(r)
		if !space && !in {
			n++
		}
		in = !space
	}
	return n
}

func (v *Verifier) checkTimestamp(name, s string) error {
	if len(s) > maxTimestampLen {
		return fail(ErrInvalidTimestamp, "%s is %d characters, not Unix seconds", name, len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' { // no sign, no spaces: strconv alone would take "+1"
			return fail(ErrInvalidTimestamp, "%s %q is not Unix seconds", name, s)
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fail(ErrInvalidTimestamp, "%s %q is not Unix seconds", name, s)
	}
	tol := uint64(v.tolerance / time.Second)
	now := v.now().Unix()
	// In uint64 because ts-now overflows int64 for a clock before 1970 and a timestamp
	// near the largest int64; the true difference always fits.
	if ts < now {
		if age := uint64(now) - uint64(ts); age > tol {
			return fail(ErrTimestampTooOld, "%s is %ds before now, tolerance %ds", name, age, tol)
		}
	} else if ahead := uint64(ts) - uint64(now); ahead > tol {
		return fail(ErrTimestampTooNew, "%s is %ds after now, tolerance %ds", name, ahead, tol)
	}
	return nil
}

// Sign returns a webhook-signature entry for a message, as Consign would send it: secret
// "whsec_…" gives "v1,…", an ed25519 "whsk_…" key gives "v1a,…". It is for testing the
// handlers that receive webhooks; the error wraps ErrInvalidSecret.
func Sign(secret, id string, timestamp time.Time, body []byte) (string, error) {
	content := append([]byte(id+"."+strconv.FormatInt(timestamp.Unix(), 10)+"."), body...)
	s := strings.TrimSpace(secret)
	if strings.HasPrefix(s, signingKeyPrefix) {
		if _, err := parseKey(s); err != nil {
			return "", err
		}
		raw, _ := base64.StdEncoding.DecodeString(s[len(signingKeyPrefix):])
		return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(ed25519.PrivateKey(raw), content)), nil
	}
	k, err := parseKey(s)
	if err != nil {
		return "", err
	}
	if k.mac == nil {
		return "", fail(ErrInvalidSecret, "a %s… public key can verify but not sign", publicKeyPrefix)
	}
	mac := hmac.New(sha256.New, k.mac)
	mac.Write(content)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

type idKey struct{}

// IDFromContext returns the webhook id of a request that Middleware verified: the
// Consign event id, the same on every retry, so receivers drop duplicates by it.
func IDFromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(idKey{}).(string)
	return id, ok
}

// Middleware returns a handler that reads the request body (up to the maximum body
// size), verifies it with secret and calls next with the body restored and the webhook
// id in the context; a request that fails gets a 401 and never reaches next. It panics
// when secret is not a valid secret: that is a configuration mistake the program should
// stop at when it starts. Use NewVerifier to handle the error or to accept several
// secrets.
func Middleware(secret string, next http.Handler, opts ...Option) http.Handler {
	v, err := NewVerifier([]string{secret}, opts...)
	if err != nil {
		panic(err)
	}
	return v.Middleware(next)
}

// Middleware is the package's Middleware with this Verifier's secrets and options.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, v.maxBody))
		if err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				v.onError(w, r, fail(ErrBodyTooLarge, "body is over %d bytes", mbe.Limit))
				return
			}
			// The sender went away or the connection broke: there is no one to answer.
			http.Error(w, "cannot read the request body", http.StatusBadRequest)
			return
		}
		if err := v.Verify(r.Header, body); err != nil {
			v.onError(w, r, err)
			return
		}
		idName, _, _ := headerNames(r.Header)
		r = r.WithContext(context.WithValue(r.Context(), idKey{}, r.Header.Get(idName)))
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

func defaultOnError(w http.ResponseWriter, _ *http.Request, err error) {
	status := http.StatusUnauthorized
	if errors.Is(err, ErrBodyTooLarge) {
		status = http.StatusRequestEntityTooLarge
	}
	// The reason is safe to tell: it names what was wrong, never what was expected, and
	// Consign keeps the reply on the attempt, where the sender can read it.
	http.Error(w, err.Error(), status)
}
