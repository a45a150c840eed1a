package manage

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzValidPortalToken: the shape check of a portal link path accepts exactly the
// tokens CreatePortalLink makes: the prefix and 32 bytes in unpadded base64url.
func FuzzValidPortalToken(f *testing.F) {
	f.Add(PortalTokenPrefix + base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
	f.Add(PortalTokenPrefix + strings.Repeat("_", 43))
	f.Add("cpl_")
	f.Add("csk_" + strings.Repeat("A", 43))
	f.Add(PortalTokenPrefix + strings.Repeat("A", 42) + "B") // non-canonical last character
	f.Add("%2e%2e/")
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidPortalToken(s) {
			return
		}
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, PortalTokenPrefix))
		if err != nil || len(b) != 32 || PortalTokenPrefix+base64.RawURLEncoding.EncodeToString(b) != s {
			t.Fatalf("accepted %q, which no link has", s)
		}
	})
}
