package signing_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

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
	return file.Cases
}

// TestConformance: the signer produces the signatures of the file's valid cases (signing
// is deterministic for both versions) and derives their public keys. The webhook
// package's test of the same name checks the verifying side on every case.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, c := range loadConformance(t) {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			key, err := signing.ParseKey(c.Secret)
			require.NoError(t, err)
			if c.PublicKey != "" {
				require.Equal(t, c.PublicKey, key.Public())
			}
			if !c.Valid {
				return
			}
			ts, err := strconv.ParseInt(c.Timestamp, 10, 64)
			require.NoError(t, err)
			require.Contains(t, strings.Fields(deref(c.Signature)), key.Sign(deref(c.ID), ts, []byte(c.Body)))
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
