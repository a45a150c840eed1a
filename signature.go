package consign

import "net/http"

// Signature schemes.
const (
	// SignatureStandardWebhooks is the webhook-signature header of Standard Webhooks,
	// one entry per active secret (the default).
	SignatureStandardWebhooks = "standard-webhooks"
	// SignatureNone sends no signature: the partner relies on its auth alone.
	SignatureNone = "none"
	// SignatureHMACSHA256 is an HMAC-SHA256 in a header the partner names, in the
	// format its receiver already checks (Shopify, GitHub, timestamp+body).
	SignatureHMACSHA256 = "hmac-sha256"
)

// What an hmac-sha256 signature signs (its encoding is EncodingHex or EncodingBase64).
const (
	SignedBody          = "body"           // the request body alone
	SignedTimestampBody = "timestamp.body" // "{unix seconds}.{body}"
)

// maxPrefix bounds a signature's prefix ("sha256=", "v1="), in bytes.
const maxPrefix = 64

// Signature says how requests to an endpoint are signed. The hmac-sha256 scheme
// reproduces formats partners' receivers already check: the HMAC-SHA256 of the body
// (or of "{timestamp}.{body}") keyed with the endpoint's newest active secret, as
// its text ("whsec_…" whole, the way such receivers hold a shared secret), hex or
// base64, after Prefix, in Header. Shopify: header X-Shopify-Hmac-Sha256, base64,
// body. GitHub: X-Hub-Signature-256, hex, prefix "sha256=", body.
type Signature struct {
	Scheme   string `json:"scheme"`
	Header   string `json:"header,omitempty"`
	Encoding string `json:"encoding,omitempty"`
	Prefix   string `json:"prefix,omitempty"`
	Signed   string `json:"signed,omitempty"`
	// TimestampHeader, when set, also carries the signed timestamp (which
	// webhook-timestamp always carries).
	TimestampHeader string `json:"timestamp_header,omitempty"`
}

// normalize fills the signature's defaults and checks it against the endpoint's auth
// type and headers.
func (s *Signature) normalize(v *Validation, authType string, headers map[string]string) {
	if authType == AuthToken {
		// A token endpoint is not signed (ReadyCloud checks the token alone).
		if s.Scheme != "" && s.Scheme != SignatureNone {
			v.Add("signature.scheme", `an endpoint with auth type "token" is not signed: leave signature out or use "none"`)
		}
		*s = Signature{Scheme: SignatureNone}
		return
	}
	switch s.Scheme {
	case "":
		s.Scheme = SignatureStandardWebhooks
	case SignatureStandardWebhooks, SignatureNone, SignatureHMACSHA256:
	default:
		v.Add("signature.scheme", `must be "standard-webhooks", "none" or "hmac-sha256"`)
		return
	}
	if s.Scheme != SignatureHMACSHA256 {
		for field, val := range map[string]string{"header": s.Header, "encoding": s.Encoding, "prefix": s.Prefix,
			"signed": s.Signed, "timestamp_header": s.TimestampHeader} {
			if val != "" {
				v.Add("signature."+field, `is only used with "scheme": "hmac-sha256"`)
			}
		}
		return
	}
	s.Header = checkSignatureHeader(v, "signature.header", s.Header, headers, true)
	s.TimestampHeader = checkSignatureHeader(v, "signature.timestamp_header", s.TimestampHeader, headers, false)
	if s.TimestampHeader != "" && s.TimestampHeader == s.Header {
		v.Add("signature.timestamp_header", "must differ from signature.header")
	}
	switch s.Encoding {
	case "":
		s.Encoding = EncodingHex
	case EncodingHex, EncodingBase64:
	default:
		v.Add("signature.encoding", `must be "hex" or "base64"`)
	}
	switch s.Signed {
	case "":
		s.Signed = SignedBody
	case SignedBody, SignedTimestampBody:
	default:
		v.Add("signature.signed", `must be "body" or "timestamp.body"`)
	}
	if len(s.Prefix) > maxPrefix {
		v.Add("signature.prefix", "must be at most %d bytes", maxPrefix)
	} else if msg := validHeaderValue(s.Prefix); msg != "" {
		v.Add("signature.prefix", "%s", msg)
	}
}

// checkSignatureHeader checks a header name the signature sets and returns it in
// canonical form.
func checkSignatureHeader(v *Validation, field, name string, headers map[string]string, required bool) string {
	if name == "" {
		if required {
			v.Add(field, `is required with "scheme": "hmac-sha256": the header the partner's receiver reads, such as "X-Signature"`)
		}
		return ""
	}
	canon := http.CanonicalHeaderKey(name)
	switch {
	case !validHeaderName(name):
		v.Add(field, "%q is not a valid header name", name)
	case reservedHeaders[canon] || canon == "Authorization":
		v.Add(field, "%q is set by Consign and cannot carry the signature", name)
	case headers[canon] != "":
		v.Add(field, "%q is also one of the endpoint's headers: remove it from headers", name)
	}
	return canon
}
