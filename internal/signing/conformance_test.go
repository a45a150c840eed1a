package signing_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/signing"
)

// conformanceCase mirrors one case of testdata/standard-webhooks.json. Pointers
// mark the fields the file sets to null to stand for an absent header.
type conformanceCase struct {
	Name      string  `json:"name"`
	Secret    string  `json:"secret"`
	PublicKey string  `json:"public_key"`
	ID        *string `json:"id"`
	Timestamp string  `json:"timestamp"`
	Body      string  `json:"body"`
	Signature *string `json:"signature"`
	Now       int64   `json:"now"`
	Valid     bool    `json:"valid"`
}

// wantErr pins the precise failure for the invalid cases whose cause is plain
// from their name; cases added to the file later only need to fail somehow.
var wantErr = map[string]error{
	"tampered body":                 signing.ErrNoMatch,
	"wrong id":                      signing.ErrNoMatch,
	"only a v2 entry":               signing.ErrNoMatch,
	"empty signature value":         signing.ErrNoMatch,
	"partial signature":             signing.ErrNoMatch,
	"timestamp 301 s old":           signing.ErrTimestampTooOld,
	"timestamp 301 s in the future": signing.ErrTimestampTooNew,
	"non-integer timestamp":         signing.ErrBadTimestamp,
	"missing signature header":      signing.ErrMissingHeader,
	"missing id header":             signing.ErrMissingHeader,
}

func loadConformance(t *testing.T) []conformanceCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/standard-webhooks.json")
	require.NoError(t, err)
	var file struct {
		About string            `json:"about"`
		Cases []conformanceCase `json:"cases"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	// A new field in the file must not be silently ignored by this test.
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&file))
	require.NotEmpty(t, file.Cases)
	// The file's expectations assume the spec's default tolerance.
	require.Contains(t, file.About, "tolerance 300 s")
	require.Equal(t, 300*time.Second, signing.DefaultTolerance)
	return file.Cases
}

func TestConformance(t *testing.T) {
	t.Parallel()
	cases := loadConformance(t)
	names := map[string]bool{}
	for _, c := range cases {
		require.False(t, names[c.Name], "duplicate case name %q", c.Name)
		names[c.Name] = true
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			id, header := deref(c.ID), deref(c.Signature)
			body := []byte(c.Body)
			now := time.Unix(c.Now, 0)

			verifyWith := c.Secret
			if c.PublicKey != "" {
				verifyWith = c.PublicKey
			}
			err := signing.Verify(verifyWith, id, c.Timestamp, header, body, now, signing.DefaultTolerance)
			if c.Valid {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				require.NotErrorIs(t, err, signing.ErrInvalidKey, "an invalid case must fail on the message, not the key")
				if want, ok := wantErr[c.Name]; ok {
					require.ErrorIs(t, err, want)
				}
			}

			// The same verdict through HTTP headers.
			h := httpHeader(c.ID, c.Timestamp, c.Signature)
			require.Equal(t, err == nil, signing.VerifyRequest(verifyWith, h, body, now, 0) == nil)

			key, kerr := signing.ParseKey(c.Secret)
			require.NoError(t, kerr)
			if c.PublicKey != "" {
				require.Equal(t, c.PublicKey, key.Public())
				// A signing key also verifies, through its public half.
				require.Equal(t, err == nil, signing.Verify(c.Secret, id, c.Timestamp, header, body, now, 0) == nil)
			}
			// Signing is deterministic for both versions, so a valid case's
			// signature must be one our signer produces.
			if c.Valid {
				ts, perr := strconv.ParseInt(c.Timestamp, 10, 64)
				require.NoError(t, perr)
				require.Contains(t, strings.Fields(header), key.Sign(id, ts, body))
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
