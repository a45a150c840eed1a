package secretbox_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/secretbox"
)

func newBox(t testing.TB) *secretbox.Box {
	t.Helper()
	key, err := secretbox.NewKey()
	require.NoError(t, err)
	b, err := secretbox.New(key)
	require.NoError(t, err)
	return b
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		_, err := secretbox.New(make([]byte, n))
		require.ErrorIs(t, err, secretbox.ErrInvalidKey, "%d-byte key", n)
	}
	_, err := secretbox.New(make([]byte, 32))
	require.NoError(t, err)
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b := newBox(t)
	for _, plain := range [][]byte{nil, {}, []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), bytes.Repeat([]byte{0xAB}, 1<<16)} {
		sealed := b.Seal(plain)
		require.Len(t, sealed, len(plain)+secretbox.Overhead)
		require.Equal(t, byte(1), sealed[0], "version byte")
		if len(plain) > 0 {
			require.False(t, bytes.Contains(sealed, plain), "plaintext must not appear in the output")
		}
		got, err := b.Open(sealed)
		require.NoError(t, err)
		require.Equal(t, len(plain), len(got))
		require.True(t, bytes.Equal(plain, got))
	}
}

func TestNonceIsFresh(t *testing.T) {
	t.Parallel()
	b := newBox(t)
	a, c := b.Seal([]byte("same")), b.Seal([]byte("same"))
	require.NotEqual(t, a, c, "sealing twice must not produce the same output")
	require.NotEqual(t, a[1:13], c[1:13])
}

func TestAssociatedData(t *testing.T) {
	t.Parallel()
	b := newBox(t)
	sealed := b.SealWith([]byte("secret"), []byte("endpoint:ep_1"))
	got, err := b.OpenWith(sealed, []byte("endpoint:ep_1"))
	require.NoError(t, err)
	require.Equal(t, []byte("secret"), got)

	_, err = b.OpenWith(sealed, []byte("endpoint:ep_2"))
	require.ErrorIs(t, err, secretbox.ErrDecrypt)
	_, err = b.Open(sealed)
	require.ErrorIs(t, err, secretbox.ErrDecrypt)
	// Seal is SealWith with no associated data.
	got, err = b.OpenWith(b.Seal([]byte("x")), nil)
	require.NoError(t, err)
	require.Equal(t, []byte("x"), got)
}

func TestTamper(t *testing.T) {
	t.Parallel()
	b := newBox(t)
	sealed := b.Seal([]byte("a secret worth protecting"))
	// Flip every bit in turn: the version byte gives ErrMalformed, any other
	// bit (nonce, ciphertext, tag) ErrDecrypt.
	for i := range sealed {
		for bit := range 8 {
			bad := bytes.Clone(sealed)
			bad[i] ^= 1 << bit
			_, err := b.Open(bad)
			if i == 0 {
				require.ErrorIs(t, err, secretbox.ErrMalformed)
			} else {
				require.ErrorIs(t, err, secretbox.ErrDecrypt, "byte %d bit %d", i, bit)
			}
		}
	}
	_, err := b.Open(append(bytes.Clone(sealed), 0))
	require.ErrorIs(t, err, secretbox.ErrDecrypt, "appended byte")
	_, err = b.Open(sealed[:len(sealed)-1])
	require.ErrorIs(t, err, secretbox.ErrDecrypt, "truncated tag")
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	b := newBox(t)
	for _, n := range []int{0, 1, 12, secretbox.Overhead - 1} {
		_, err := b.Open(make([]byte, n))
		require.ErrorIs(t, err, secretbox.ErrMalformed, "%d bytes", n)
		require.ErrorContains(t, err, "shorter than")
	}
	sealed := b.Seal(nil)
	sealed[0] = 2
	_, err := b.Open(sealed)
	require.ErrorIs(t, err, secretbox.ErrMalformed)
	require.ErrorContains(t, err, "unknown version 2")
}

func TestWrongKey(t *testing.T) {
	t.Parallel()
	sealed := newBox(t).Seal([]byte("secret"))
	_, err := newBox(t).Open(sealed)
	require.ErrorIs(t, err, secretbox.ErrDecrypt)
	require.ErrorContains(t, err, "wrong key")
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(250 - i) // High bytes so std and URL alphabets differ.
	}
	std := base64.StdEncoding.EncodeToString(key)
	url := base64.URLEncoding.EncodeToString(key)
	require.NotEqual(t, std, url, "the fixture must exercise both alphabets")

	valid := map[string]string{
		"std padded":      std,
		"std unpadded":    strings.TrimRight(std, "="),
		"url padded":      url,
		"url unpadded":    strings.TrimRight(url, "="),
		"hex lower":       hex.EncodeToString(key),
		"hex upper":       strings.ToUpper(hex.EncodeToString(key)),
		"trailing space":  std + "\n",
		"FormatKey":       secretbox.FormatKey(key),
		"leading newline": "\n" + hex.EncodeToString(key),
	}
	for name, in := range valid {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := secretbox.ParseKey(in)
			require.NoError(t, err)
			require.Equal(t, key, got)
		})
	}

	invalid := map[string]string{
		"empty":         "",
		"blank":         "  \n",
		"16 bytes b64":  base64.StdEncoding.EncodeToString(key[:16]),
		"33 bytes b64":  base64.StdEncoding.EncodeToString(append(bytes.Clone(key), 1)),
		"62 hex chars":  hex.EncodeToString(key[:31]),
		"66 hex chars":  hex.EncodeToString(append(bytes.Clone(key), 1)),
		"64 non-hex":    strings.Repeat("g", 64),
		"garbage":       "not a key at all!",
		"raw 32 bytes":  string(key),
		"mixed padding": std[:20] + "=" + std[21:],
	}
	for name, in := range invalid {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := secretbox.ParseKey(in)
			require.ErrorIs(t, err, secretbox.ErrInvalidKey)
			require.ErrorContains(t, err, "CONSIGN_ENCRYPTION_KEY must be 32 bytes as base64 or 64 hex characters")
			if len(in) > 8 {
				require.NotContains(t, err.Error(), strings.TrimSpace(in)[:8], "the error must not echo the key")
			}
		})
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "encryption.key")

	key, err := secretbox.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.Len(t, key, 32)

	info, err := os.Stat(path)
	require.NoError(t, err)
	if runtime.GOOS != "windows" {
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, secretbox.FormatKey(key)+"\n", string(data))

	again, err := secretbox.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.Equal(t, key, again)

	// No temporary files are left behind.
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestLoadOrCreateKeyFileExisting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, 32)

	hexPath := filepath.Join(dir, "hex.key")
	require.NoError(t, os.WriteFile(hexPath, []byte(hex.EncodeToString(key)+"\n"), 0o600))
	got, err := secretbox.LoadOrCreateKeyFile(hexPath)
	require.NoError(t, err)
	require.Equal(t, key, got)

	badPath := filepath.Join(dir, "bad.key")
	require.NoError(t, os.WriteFile(badPath, []byte("tooshort"), 0o600))
	_, err = secretbox.LoadOrCreateKeyFile(badPath)
	require.ErrorIs(t, err, secretbox.ErrInvalidKey)
	require.ErrorContains(t, err, badPath)
	content, err := os.ReadFile(badPath)
	require.NoError(t, err)
	require.Equal(t, "tooshort", string(content), "an invalid key file must never be replaced")
}

func TestLoadOrCreateKeyFileMissingDir(t *testing.T) {
	t.Parallel()
	_, err := secretbox.LoadOrCreateKeyFile(filepath.Join(t.TempDir(), "nope", "encryption.key"))
	require.Error(t, err)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "encryption.key")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			keys[i], errs[i] = secretbox.LoadOrCreateKeyFile(path)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, keys[0], keys[i], "goroutine %d got a different key", i)
	}
	onDisk, err := secretbox.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.Equal(t, keys[0], onDisk)
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files are left behind")
}

func TestBoxConcurrent(t *testing.T) {
	t.Parallel()
	b := newBox(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			plain := []byte{byte(i)}
			for range 100 {
				got, err := b.Open(b.Seal(plain))
				if err != nil || !bytes.Equal(got, plain) {
					t.Errorf("concurrent round trip: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzOpen checks that no input panics Open, that every failure is one of the
// documented errors, and that whatever Seal produces opens to its plaintext.
func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{0x42}, 32)
	b, err := secretbox.New(key)
	require.NoError(f, err)
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1}, []byte("ad"))
	f.Add(b.Seal([]byte("hello")), []byte{})
	f.Add(b.SealWith([]byte("hello"), []byte("ad")), []byte("ad"))
	f.Add(bytes.Repeat([]byte{1}, secretbox.Overhead), []byte{})

	f.Fuzz(func(t *testing.T, data, ad []byte) {
		// Random input cannot authenticate; only the seeds built by Seal open.
		if _, err := b.OpenWith(data, ad); err != nil &&
			!errors.Is(err, secretbox.ErrMalformed) && !errors.Is(err, secretbox.ErrDecrypt) {
			t.Fatalf("Open(%x) = undocumented error %v", data, err)
		}
		got, err := b.OpenWith(b.SealWith(data, ad), ad)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip of %x failed: %v", data, err)
		}
	})
}
