// Package signing implements Standard Webhooks signatures: v1 (HMAC-SHA256 over a
// shared "whsec_" secret) and v1a (ed25519 with a "whsk_" signing key whose
// "whpk_" public half receivers can hold without being able to forge).
//
// Both versions sign the same content, "{id}.{timestamp}.{body}". Signing sits on
// the hot path of every delivery, so a parsed Key keeps a pool of per-goroutine
// scratch state (the keyed HMAC and a message buffer) and Header writes the whole
// header value into one allocation. Verifying is the public webhook package's
// (one verifier for receivers and for inbound sources); CheckVerifyKey here only
// checks that a key a source is given can verify.
package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
)

// Prefixes that tell the kind of a key apart in its text form.
const (
	SecretPrefix     = "whsec_" // SecretPrefix marks a v1 HMAC secret.
	SigningKeyPrefix = "whsk_"  // SigningKeyPrefix marks a v1a ed25519 private key.
	PublicKeyPrefix  = "whpk_"  // PublicKeyPrefix marks a v1a ed25519 public key.
)

// Bounds on an HMAC secret's decoded length. They are the range the Standard
// Webhooks spec recommends; anything shorter is too weak to accept silently.
const (
	minSecretLen = 24
	maxSecretLen = 64
)

// newSecretLen is the length of secrets this package generates.
const newSecretLen = 32

// maxPooledBuf caps the message buffer a pooled scratch keeps, so one huge body
// signed with ed25519 does not pin its size in memory for the life of the key.
const maxPooledBuf = 64 << 10

// ErrInvalidKey reports a secret or key string that cannot be used: empty, not
// base64, the wrong length, or the wrong kind for the operation.
var ErrInvalidKey = errors.New("signing: invalid key")

// Key is a parsed signing key: either a v1 HMAC secret or a v1a ed25519 private
// key. A Key is cheap to copy and safe for concurrent use; copies share state.
// The zero Key is not usable: obtain one from ParseKey.
type Key struct {
	s *keyState
}

type keyState struct {
	mac     []byte             // v1 HMAC key; nil for ed25519
	text    []byte             // the v1 secret's text as given, for partner formats (HMACText)
	priv    ed25519.PrivateKey // v1a signing key; nil for HMAC
	scratch sync.Pool          // of *scratch
}

// scratch is the per-call working state of Sign. It lives on the heap so that
// handing its buffers to hash.Hash methods does not force a fresh allocation.
type scratch struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// NewSecret returns a new random v1 secret, "whsec_" followed by the standard
// base64 encoding of 32 random bytes.
func NewSecret() (string, error) {
	var b [newSecretLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("signing: generate secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// NewKeyPair returns a new random v1a key pair: the "whsk_" private key to sign
// with and the "whpk_" public key to hand to receivers.
func NewKeyPair() (private, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("signing: generate key pair: %w", err)
	}
	return SigningKeyPrefix + base64.StdEncoding.EncodeToString(priv),
		PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub), nil
}

// ParseKey parses a key to sign with: "whsec_…" or a bare base64 secret (v1 HMAC),
// or "whsk_…" (v1a ed25519). Surrounding whitespace is ignored because keys
// often arrive from files and environment variables with a trailing newline.
// A "whpk_" public key is refused: it can verify but not sign.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Key{}, fmt.Errorf("%w: empty", ErrInvalidKey)
	case strings.HasPrefix(s, PublicKeyPrefix):
		return Key{}, fmt.Errorf("%w: %s… is a public key, which can verify but not sign", ErrInvalidKey, PublicKeyPrefix)
	case strings.HasPrefix(s, SigningKeyPrefix):
		priv, err := parsePrivate(s)
		if err != nil {
			return Key{}, err
		}
		st := &keyState{priv: priv}
		st.scratch.New = func() any { return new(scratch) }
		return Key{st}, nil
	default:
		mac, err := parseSecret(s)
		if err != nil {
			return Key{}, err
		}
		st := &keyState{mac: mac, text: []byte(s)}
		st.scratch.New = func() any { return &scratch{mac: hmac.New(sha256.New, mac)} }
		return Key{st}, nil
	}
}

// parseSecret decodes a v1 secret with or without its "whsec_" prefix.
func parseSecret(s string) ([]byte, error) {
	b64 := strings.TrimPrefix(s, SecretPrefix)
	if b64 == "" {
		return nil, fmt.Errorf("%w: empty secret after %s", ErrInvalidKey, SecretPrefix)
	}
	mac, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: secret is not standard base64: %v", ErrInvalidKey, err)
	}
	if len(mac) < minSecretLen || len(mac) > maxSecretLen {
		return nil, fmt.Errorf("%w: secret decodes to %d bytes, want %d to %d", ErrInvalidKey, len(mac), minSecretLen, maxSecretLen)
	}
	return mac, nil
}

// parsePrivate decodes a "whsk_" key and checks that its public half is the one
// its seed derives; otherwise it would sign messages its own "whpk_" rejects.
func parsePrivate(s string) (ed25519.PrivateKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SigningKeyPrefix))
	if err != nil {
		return nil, fmt.Errorf("%w: %s key is not standard base64: %v", ErrInvalidKey, SigningKeyPrefix, err)
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: %s key decodes to %d bytes, want %d (32-byte seed followed by 32-byte public key)",
			ErrInvalidKey, SigningKeyPrefix, len(raw), ed25519.PrivateKeySize)
	}
	priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	if !bytes.Equal(priv[ed25519.SeedSize:], raw[ed25519.SeedSize:]) {
		return nil, fmt.Errorf("%w: %s key's public half does not match its seed", ErrInvalidKey, SigningKeyPrefix)
	}
	return priv, nil
}

// parsePublic decodes a "whpk_" key.
func parsePublic(s string) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, PublicKeyPrefix))
	if err != nil {
		return nil, fmt.Errorf("%w: %s key is not standard base64: %v", ErrInvalidKey, PublicKeyPrefix, err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %s key decodes to %d bytes, want %d", ErrInvalidKey, PublicKeyPrefix, len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// state returns the key's state, failing loudly on a zero Key: signing with no
// key must never quietly produce an unsigned delivery.
func (k Key) state() *keyState {
	if k.s == nil {
		panic("signing: use of zero Key; obtain keys from ParseKey")
	}
	return k.s
}

// Version returns the signature scheme of the key: "v1" or "v1a".
func (k Key) Version() string {
	if k.state().priv != nil {
		return "v1a"
	}
	return "v1"
}

// Public returns the "whpk_" public key of a v1a key, to publish to receivers,
// and "" for a v1 key, whose secret is symmetric and has no public half.
func (k Key) Public() string {
	st := k.state()
	if st.priv == nil {
		return ""
	}
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(st.priv[ed25519.SeedSize:])
}

// String describes the key without its secret material, so that a Key that
// reaches a log line or an error message does not leak.
func (k Key) String() string {
	if k.s == nil {
		return "signing.Key(zero)"
	}
	if k.s.priv != nil {
		return "signing.Key(v1a " + k.Public() + ")"
	}
	return "signing.Key(v1 redacted)"
}

// GoString redacts the key under %#v for the same reason as String.
func (k Key) GoString() string { return k.String() }

// Sign returns one header entry, "v1,<base64>" or "v1a,<base64>", for the
// message with the given id, Unix timestamp in seconds, and body.
func (k Key) Sign(id string, timestamp int64, body []byte) string {
	var b strings.Builder
	b.Grow(k.entryLen())
	k.writeEntry(&b, id, timestamp, body)
	return b.String()
}

// Header returns the whole webhook-signature header value: one entry per key,
// separated by spaces, so receivers can rotate keys by accepting any of them.
// It allocates the result once and otherwise reuses pooled per-key state.
func Header(keys []Key, id string, timestamp int64, body []byte) string {
	n := 0
	for _, k := range keys {
		n += k.entryLen() + 1
	}
	var b strings.Builder
	b.Grow(n)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		k.writeEntry(&b, id, timestamp, body)
	}
	return b.String()
}

// Entry lengths: "v1," + base64 of a 32-byte MAC, "v1a," + base64 of a 64-byte
// signature. Constants rather than computed values so they cost nothing per call.
const (
	hmacB64Len      = 44
	ed25519B64Len   = 88
	hmacEntryLen    = len("v1,") + hmacB64Len
	ed25519EntryLen = len("v1a,") + ed25519B64Len
)

func (k Key) entryLen() int {
	if k.state().priv != nil {
		return ed25519EntryLen
	}
	return hmacEntryLen
}

func (k Key) writeEntry(b *strings.Builder, id string, timestamp int64, body []byte) {
	st := k.state()
	sc := st.scratch.Get().(*scratch)
	var enc [ed25519B64Len]byte
	if st.priv != nil {
		sc.buf = appendContent(sc.buf[:0], id, timestamp, body)
		sig := ed25519.Sign(st.priv, sc.buf)
		base64.StdEncoding.Encode(enc[:], sig)
		b.WriteString("v1a,")
		b.Write(enc[:])
	} else {
		sc.buf = appendPrefix(sc.buf[:0], id, timestamp)
		sc.mac.Reset()
		sc.mac.Write(sc.buf)
		sc.mac.Write(body)
		sum := sc.mac.Sum(sc.sum[:0])
		base64.StdEncoding.Encode(enc[:], sum)
		b.WriteString("v1,")
		b.Write(enc[:hmacB64Len])
	}
	if cap(sc.buf) > maxPooledBuf {
		sc.buf = nil
	}
	st.scratch.Put(sc)
}

// appendPrefix appends "{id}.{timestamp}." — the signed content before the body.
func appendPrefix(dst []byte, id string, timestamp int64) []byte {
	dst = append(dst, id...)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, timestamp, 10)
	return append(dst, '.')
}

// appendContent appends the whole signed content, "{id}.{timestamp}.{body}".
func appendContent(dst []byte, id string, timestamp int64, body []byte) []byte {
	return append(appendPrefix(dst, id, timestamp), body...)
}
