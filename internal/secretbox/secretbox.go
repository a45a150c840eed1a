// Package secretbox encrypts endpoint and source secrets at rest with AES-256-GCM.
//
// A sealed value is a version byte, a random 12-byte nonce, and the ciphertext
// with its 16-byte tag. The version byte lets a later release change the scheme
// and still open what this one sealed. Random nonces are safe here because the
// number of values sealed under one key (a few per endpoint) is far below the
// 2^32 at which GCM's random-nonce collision risk becomes a concern.
//
// The key comes from CONSIGN_ENCRYPTION_KEY (ParseKey) or from a key file that
// LoadOrCreateKeyFile generates on first start. Neither the key nor plaintext
// ever appears in an error message.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// version1 marks AES-256-GCM with a random 96-bit nonce prefixed to the ciphertext.
const version1 byte = 1

// Overhead is how many bytes Seal adds to a plaintext: the version byte, the
// nonce and the GCM tag.
const Overhead = 1 + 12 + 16

// keyFormat is shown in every key error, so whoever set the key learns what a
// valid one looks like without having to read the source.
const keyFormat = "CONSIGN_ENCRYPTION_KEY must be 32 bytes as base64 or 64 hex characters"

var (
	// ErrInvalidKey reports a key of the wrong length or encoding.
	ErrInvalidKey = errors.New("secretbox: invalid key")
	// ErrMalformed reports sealed data that is too short or of an unknown
	// version: it was not produced by Seal, or was truncated.
	ErrMalformed = errors.New("secretbox: malformed sealed data")
	// ErrDecrypt reports sealed data that fails authentication. GCM cannot tell
	// the causes apart: the key is wrong, the associated data differs, or the
	// data was corrupted or tampered with.
	ErrDecrypt = errors.New("secretbox: decryption failed (wrong key, wrong associated data, or corrupted data)")
)

// Box seals and opens values under one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: got %d bytes, want %d", ErrInvalidKey, len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	// This AEAD draws the nonce itself and prefixes it to the ciphertext, so no
	// caller can ever reuse a nonce.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext and returns version || nonce || ciphertext+tag.
func (b *Box) Seal(plaintext []byte) []byte {
	return b.SealWith(plaintext, nil)
}

// SealWith is Seal with associated data: ad is authenticated but not stored,
// and OpenWith must be given the same ad. Binding a secret to its owner (an
// endpoint id, say) stops a sealed value from being copied onto another row.
func (b *Box) SealWith(plaintext, ad []byte) []byte {
	out := make([]byte, 1, Overhead+len(plaintext))
	out[0] = version1
	return b.aead.Seal(out, nil, plaintext, ad)
}

// Open decrypts what Seal produced.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	return b.OpenWith(sealed, nil)
}

// OpenWith decrypts what SealWith produced with the same associated data.
func (b *Box) OpenWith(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte minimum", ErrMalformed, len(sealed), Overhead)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("%w: unknown version %d", ErrMalformed, sealed[0])
	}
	plain, err := b.aead.Open(nil, nil, sealed[1:], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}

// NewKey returns a new random 32-byte key.
func NewKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("secretbox: generate key: %w", err)
	}
	return key, nil
}

// ParseKey decodes a 32-byte key written as 64 hex characters or as base64 in
// any common form (standard or URL alphabet, with or without padding).
// Surrounding whitespace is ignored, as keys often end in a newline.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty: %s", ErrInvalidKey, keyFormat)
	}
	// Hex first: 64 hex characters are also valid base64, but of 48 bytes.
	if len(s) == hex.EncodedLen(KeySize) {
		if key, err := hex.DecodeString(s); err == nil {
			return key, nil
		}
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		if key, err := enc.DecodeString(s); err == nil && len(key) == KeySize {
			return key, nil
		}
	}
	// Only the length is reported: the input is a key, possibly a real one
	// with a typo, and must not end up in logs.
	return nil, fmt.Errorf("%w: got %d characters that do not decode to 32 bytes: %s", ErrInvalidKey, len(s), keyFormat)
}

// FormatKey encodes a key the way LoadOrCreateKeyFile writes it: standard
// base64, which ParseKey reads back.
func FormatKey(key []byte) string {
	return base64.StdEncoding.EncodeToString(key)
}

// LoadOrCreateKeyFile returns the key stored at path, creating the file with a
// new random key (mode 0600) if it does not exist. Creation is atomic: the key
// is written to a temporary file that is then hard-linked into place, which
// fails rather than overwrites if another process got there first, in which
// case its key is read and returned. No reader ever sees a half-written file.
// The parent directory must already exist.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	key, err := readKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key, err = NewKey()
	if err != nil {
		return nil, err
	}
	if err := createKeyFile(path, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Lost the race: the winner's key is the one everybody must use.
			return readKeyFile(path)
		}
		return nil, err
	}
	return key, nil
}

func readKeyFile(path string) ([]byte, error) {
	// A concurrent creator on a filesystem without hard links (see
	// createKeyFile) briefly leaves the file empty; wait for it to be filled
	// rather than failing a process that merely started at the same moment.
	for attempt := 0; ; attempt++ {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("secretbox: read key file: %w", err)
		}
		if len(data) == 0 && attempt < 20 {
			time.Sleep(25 * time.Millisecond)
			continue
		}
		key, err := ParseKey(string(data))
		if err != nil {
			return nil, fmt.Errorf("secretbox: key file %s: %w", path, err)
		}
		return key, nil
	}
}

// createKeyFile writes key to path only if path does not exist, returning an
// error wrapping fs.ErrExist if it does.
func createKeyFile(path string, key []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*") // CreateTemp uses mode 0600.
	if err != nil {
		return fmt.Errorf("secretbox: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeAndSync(tmp, key); err != nil {
		return fmt.Errorf("secretbox: write key file: %w", err)
	}
	err = os.Link(tmp.Name(), path)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		// Some filesystems have no hard links; exclusive creation still keeps
		// two processes from overwriting each other, at the cost of a moment
		// in which the file exists but is empty.
		err = createExclusive(path, key)
	}
	if err != nil {
		return fmt.Errorf("secretbox: create key file: %w", err)
	}
	syncDir(dir)
	return nil
}

func createExclusive(path string, key []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := writeAndSync(f, key); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// writeAndSync writes the key and syncs it before the file becomes visible
// under its real name: after a crash, a present-but-empty key file would make
// every secret sealed in the meantime unreadable.
func writeAndSync(f *os.File, key []byte) error {
	_, err := f.WriteString(FormatKey(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes the new directory entry durable. It is best effort: not every
// platform can sync a directory, and the file itself is already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
