package signing

import (
	"crypto/hmac"
	"crypto/sha256"
)

// HMACText returns the HMAC-SHA256 of the parts, concatenated, keyed with the v1
// secret's text as it was given ("whsec_…" whole, or the bare base64). Receivers of
// partner formats (Shopify, GitHub, a timestamp and the body) hold a shared secret as
// a string and key their HMAC with its bytes; Standard Webhooks instead decodes it.
// ok is false for an ed25519 key, which has no shared secret.
func (k Key) HMACText(parts ...[]byte) (sum []byte, ok bool) {
	st := k.state()
	if st.text == nil {
		return nil, false
	}
	m := hmac.New(sha256.New, st.text)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil), true
}
