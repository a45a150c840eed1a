package manage_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/manage"
)

// TestCheckAdminKey: keys a person picks to be easy are refused with the reason; random
// keys of 32 characters or more pass.
func TestCheckAdminKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key  string
		want string // in the error; "": accepted
	}{
		{"too-short-but-24-chars!!", "has 24 characters"},
		{strings.Repeat("a", 40), "repeats a piece of 1 characters"},
		{strings.Repeat("password", 5), "repeats a piece of 8 characters"},
		{strings.Repeat("Tr0ub4dor&3", 4), "repeats a piece of 11 characters"},
		{"abcdefghijklmnopqrstuvwxyz0123456789", "mostly runs"},
		{"test-admin-key-0123456789abcdefghijklmno", "mostly runs"},
		{"consign-admin-0123456789abcdefghij", "mostly runs"},
		{"00000000000000000000000000000001abcd", "mostly runs"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-and-then-x", "mostly runs"},
		{"azqzaqzqazzqaqzazqzaqqzazqazqzqaqzaqzaz", "bits of entropy"},
		{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", ""},
		// Random keys whose neighbours often differ by one, though not in runs.
		{"b6694787854e5101edd3a44015889876", ""},
		{"eebb76c9fdd3227feff77542feedc156", ""},
		{"correct horse battery staple, twice over", ""},
	} {
		err := manage.CheckAdminKey(tc.key)
		if tc.want == "" {
			require.NoError(t, err, tc.key)
			continue
		}
		require.ErrorContains(t, err, tc.want, tc.key)
		require.ErrorContains(t, err, "openssl rand -hex 32", tc.key)
	}
	// What operators are told to use passes, every time.
	for range 2000 {
		b := make([]byte, 16)
		rand.Read(b)
		require.NoError(t, manage.CheckAdminKey(hex.EncodeToString(b)), "32 random hex characters")
		b = make([]byte, 24)
		rand.Read(b)
		require.NoError(t, manage.CheckAdminKey(base64.RawURLEncoding.EncodeToString(b)), "32 random base64 characters")
	}
}
