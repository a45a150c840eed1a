package signing

import (
	"fmt"
	"strings"
)

// CheckVerifyKey reports whether secret is a key that Standard Webhooks signatures can be
// verified with: a v1 secret ("whsec_…" or bare base64, 24 to 64 bytes), a v1a public
// key ("whpk_…"), or a v1a signing key ("whsk_…", through its public half). The error
// wraps ErrInvalidKey and says what is wrong. Verifying itself is done by the webhook
// package.
func CheckVerifyKey(secret string) error {
	s := strings.TrimSpace(secret)
	var err error
	switch {
	case s == "":
		err = fmt.Errorf("%w: empty", ErrInvalidKey)
	case strings.HasPrefix(s, PublicKeyPrefix):
		_, err = parsePublic(s)
	case strings.HasPrefix(s, SigningKeyPrefix):
		_, err = parsePrivate(s)
	default:
		_, err = parseSecret(s)
	}
	return err
}
