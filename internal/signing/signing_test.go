package signing_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/webhook"
)

// The published golden vector, shared by several tests.
const (
	goldenSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	goldenID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	goldenTS     = 1614265330
	goldenBody   = `{"test": 2432232314}`
	goldenSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	goldenPriv   = "whsk_6Xb/dCcHpPea21PS1N9VY/NZW723CEc77N4rJCubMbfVKIDij2HKpMKkioLlX0dRqSKJp4AJ6p9lMicMFs6Kvg=="
	goldenPub    = "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4="
)

func mustKey(t testing.TB, s string) signing.Key {
	t.Helper()
	k, err := signing.ParseKey(s)
	require.NoError(t, err)
	return k
}

func newHMAC(t testing.TB) (signing.Key, string) {
	t.Helper()
	s, err := signing.NewSecret()
	require.NoError(t, err)
	return mustKey(t, s), s
}

func newEd25519(t testing.TB) (signing.Key, string) {
	t.Helper()
	priv, pub, err := signing.NewKeyPair()
	require.NoError(t, err)
	k := mustKey(t, priv)
	require.Equal(t, pub, k.Public())
	return k, pub
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, err := signing.NewSecret()
	require.NoError(t, err)
	b, err := signing.NewSecret()
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	require.True(t, strings.HasPrefix(a, "whsec_"))
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	require.NoError(t, err)
	require.Len(t, raw, 32)
	k := mustKey(t, a)
	require.Equal(t, "v1", k.Version())
	require.Empty(t, k.Public())
}

func TestNewKeyPair(t *testing.T) {
	t.Parallel()
	priv, pub, err := signing.NewKeyPair()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(priv, "whsk_"))
	require.True(t, strings.HasPrefix(pub, "whpk_"))
	rawPriv, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(priv, "whsk_"))
	require.NoError(t, err)
	rawPub, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(pub, "whpk_"))
	require.NoError(t, err)
	require.Len(t, rawPriv, ed25519.PrivateKeySize)
	require.Equal(t, rawPub, rawPriv[32:], "whsk_ is private32||public32")
	k := mustKey(t, priv)
	require.Equal(t, "v1a", k.Version())
	require.Equal(t, pub, k.Public())
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	b64 := base64.StdEncoding.EncodeToString
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	mismatched := append([]byte(nil), priv...)
	mismatched[63] ^= 1

	tests := []struct {
		name, in, version, errText string
	}{
		{name: "whsec", in: goldenSecret, version: "v1"},
		{name: "bare", in: strings.TrimPrefix(goldenSecret, "whsec_"), version: "v1"},
		{name: "trailing newline", in: goldenSecret + "\n", version: "v1"},
		{name: "64-byte secret", in: "whsec_" + b64(make([]byte, 64)), version: "v1"},
		{name: "whsk", in: goldenPriv, version: "v1a"},
		{name: "empty", in: "", errText: "empty"},
		{name: "blank", in: " \n", errText: "empty"},
		{name: "prefix only", in: "whsec_", errText: "empty"},
		{name: "bad base64", in: "whsec_not*base64", errText: "not standard base64"},
		{name: "unpadded", in: "whsec_" + strings.TrimRight(b64(make([]byte, 32)), "="), errText: "not standard base64"},
		{name: "short secret", in: "whsec_" + b64(make([]byte, 16)), errText: "16 bytes"},
		{name: "long secret", in: "whsec_" + b64(make([]byte, 65)), errText: "65 bytes"},
		{name: "whsk short", in: "whsk_" + b64(priv[:32]), errText: "32 bytes, want 64"},
		{name: "whsk bad base64", in: "whsk_***", errText: "not standard base64"},
		{name: "whsk mismatched public", in: "whsk_" + b64(mismatched), errText: "does not match"},
		{name: "public key", in: goldenPub, errText: "public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := signing.ParseKey(tt.in)
			if tt.errText != "" {
				require.ErrorIs(t, err, signing.ErrInvalidKey)
				require.ErrorContains(t, err, tt.errText)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.version, k.Version())
		})
	}
}

func TestKeyDoesNotLeak(t *testing.T) {
	t.Parallel()
	for _, s := range []string{goldenSecret, goldenPriv} {
		k := mustKey(t, s)
		raw := strings.TrimPrefix(strings.TrimPrefix(s, "whsec_"), "whsk_")
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(verb, k)
			require.NotContains(t, out, raw[:16], verb)
		}
	}
	require.Contains(t, fmt.Sprint(mustKey(t, goldenPriv)), goldenPub, "the public half is safe to show")
}

func TestZeroKeyPanics(t *testing.T) {
	t.Parallel()
	var k signing.Key
	require.Panics(t, func() { k.Sign("id", 1, nil) })
	require.Panics(t, func() { signing.Header([]signing.Key{k}, "id", 1, nil) })
	require.Equal(t, "signing.Key(zero)", k.String())
}

func TestSignGolden(t *testing.T) {
	t.Parallel()
	require.Equal(t, goldenSig, mustKey(t, goldenSecret).Sign(goldenID, goldenTS, []byte(goldenBody)))
	// Same key without the prefix signs identically.
	require.Equal(t, goldenSig, mustKey(t, goldenSecret[6:]).Sign(goldenID, goldenTS, []byte(goldenBody)))
	sig := mustKey(t, goldenPriv).Sign(goldenID, goldenTS, []byte(goldenBody))
	require.Equal(t, "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==", sig)
}

// verifyAt is verify with the timestamp as sent and a tolerance (0: the default).
func verifyAt(secret, id, ts, header string, body []byte, now time.Time, tolerance time.Duration) error {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", header)
	return webhook.Verify(secret, h, body, webhook.WithNow(func() time.Time { return now }), webhook.WithTolerance(tolerance))
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	hk, hsecret := newHMAC(t)
	ek, epub := newEd25519(t)
	now := time.Unix(1_700_000_000, 0)
	ts := now.Unix()
	tsStr := strconv.FormatInt(ts, 10)
	body := []byte(`{"type":"order.created","data":{"id":42}}`)

	t.Run("hmac", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, verifyAt(hsecret, "msg_1", tsStr, hk.Sign("msg_1", ts, body), body, now, 0))
		// A bare secret verifies what its whsec_ form signed.
		require.NoError(t, verifyAt(strings.TrimPrefix(hsecret, "whsec_"), "msg_1", tsStr, hk.Sign("msg_1", ts, body), body, now, 0))
	})
	t.Run("ed25519", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, verifyAt(epub, "msg_1", tsStr, ek.Sign("msg_1", ts, body), body, now, 0))
	})
	t.Run("empty body", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, verifyAt(hsecret, "msg_1", tsStr, hk.Sign("msg_1", ts, nil), nil, now, 0))
		require.NoError(t, verifyAt(epub, "msg_1", tsStr, ek.Sign("msg_1", ts, nil), []byte{}, now, 0))
	})
	t.Run("several keys in one header", func(t *testing.T) {
		t.Parallel()
		old, oldSecret := newHMAC(t)
		header := signing.Header([]signing.Key{old, hk, ek}, "msg_2", ts, body)
		entries := strings.Split(header, " ")
		require.Len(t, entries, 3)
		require.Equal(t, old.Sign("msg_2", ts, body), entries[0])
		require.Equal(t, hk.Sign("msg_2", ts, body), entries[1])
		require.Equal(t, ek.Sign("msg_2", ts, body), entries[2])
		for _, secret := range []string{oldSecret, hsecret, epub} {
			require.NoError(t, verifyAt(secret, "msg_2", tsStr, header, body, now, 0))
		}
	})
	t.Run("no keys", func(t *testing.T) {
		t.Parallel()
		require.Empty(t, signing.Header(nil, "msg_3", ts, body))
	})
	t.Run("other key", func(t *testing.T) {
		t.Parallel()
		_, otherSecret := newHMAC(t)
		_, otherPub := newEd25519(t)
		header := signing.Header([]signing.Key{hk, ek}, "msg_4", ts, body)
		require.ErrorIs(t, verifyAt(otherSecret, "msg_4", tsStr, header, body, now, 0), webhook.ErrNoMatch)
		require.ErrorIs(t, verifyAt(otherPub, "msg_4", tsStr, header, body, now, 0), webhook.ErrNoMatch)
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		header := signing.Header([]signing.Key{hk, ek}, "msg_5", ts, body)
		late := now.Add(webhook.DefaultTolerance + time.Second)
		require.ErrorIs(t, verifyAt(hsecret, "msg_5", tsStr, header, body, late, 0), webhook.ErrTimestampTooOld)
		require.ErrorIs(t, verifyAt(epub, "msg_5", tsStr, header, body, late, 0), webhook.ErrTimestampTooOld)
		// A wider tolerance accepts it.
		require.NoError(t, verifyAt(hsecret, "msg_5", tsStr, header, body, late, time.Hour))
	})
	t.Run("version mismatch", func(t *testing.T) {
		t.Parallel()
		// An HMAC secret ignores v1a entries and a public key ignores v1 entries.
		require.ErrorIs(t, verifyAt(hsecret, "msg_6", tsStr, ek.Sign("msg_6", ts, body), body, now, 0), webhook.ErrNoMatch)
		require.ErrorIs(t, verifyAt(epub, "msg_6", tsStr, hk.Sign("msg_6", ts, body), body, now, 0), webhook.ErrNoMatch)
	})
}

func TestPublicKeyDerivation(t *testing.T) {
	t.Parallel()
	k := mustKey(t, goldenPriv)
	require.Equal(t, goldenPub, k.Public())
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(goldenPriv, "whsk_"))
	require.NoError(t, err)
	derived := ed25519.NewKeyFromSeed(raw[:32]).Public().(ed25519.PublicKey)
	require.Equal(t, "whpk_"+base64.StdEncoding.EncodeToString(derived), k.Public())
}

func TestSignConcurrent(t *testing.T) {
	t.Parallel()
	hk, _ := newHMAC(t)
	ek, _ := newEd25519(t)
	keys := []signing.Key{hk, ek}
	body := []byte(strings.Repeat("x", 1024))
	want := signing.Header(keys, "msg", 1, body)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if got := signing.Header(keys, "msg", 1, body); got != want {
					t.Errorf("concurrent Header = %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSignLargeBody(t *testing.T) {
	t.Parallel()
	ek, epub := newEd25519(t)
	body := []byte(strings.Repeat("y", 200<<10))
	for range 2 { // The second call exercises the pool after an oversized buffer.
		header := ek.Sign("msg", 1_700_000_000, body)
		require.NoError(t, verifyAt(epub, "msg", "1700000000", header, body, time.Unix(1_700_000_000, 0), 0))
	}
}

// TestSignAllocs is not parallel: AllocsPerRun counts every allocation in the
// process, so it must not share the process with running tests.
func TestSignAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	hk, _ := newHMAC(t)
	keys := []signing.Key{hk, mustKey(t, goldenSecret)}
	body := make([]byte, 1024)
	allocs := testing.AllocsPerRun(100, func() { signing.Header(keys, "msg_abc", 1_700_000_000, body) })
	require.LessOrEqual(t, allocs, 1.0, "Header with HMAC keys should allocate only its result")
}

func BenchmarkHeader(b *testing.B) {
	body := make([]byte, 1024)
	hk1 := mustKey(b, goldenSecret)
	hk2, _ := newHMAC(b)
	ek, _ := newEd25519(b)
	for _, bc := range []struct {
		name string
		keys []signing.Key
	}{
		{"hmac/1key", []signing.Key{hk1}},
		{"hmac/2keys", []signing.Key{hk1, hk2}},
		{"ed25519/1key", []signing.Key{ek}},
		{"hmac+ed25519/2keys", []signing.Key{hk1, ek}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				signing.Header(bc.keys, "msg_2Xq9J1s0cK8nA3rT5vW7yZ", 1_700_000_000, body)
			}
		})
	}
}

func BenchmarkHeaderParallel(b *testing.B) {
	body := make([]byte, 1024)
	keys := []signing.Key{mustKey(b, goldenSecret)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			signing.Header(keys, "msg_2Xq9J1s0cK8nA3rT5vW7yZ", 1_700_000_000, body)
		}
	})
}
