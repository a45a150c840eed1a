package cli

import (
	"encoding/json"
	"fmt"

	"github.com/consign-dev/consign"
)

// authFlags set an endpoint's auth; any of them replaces the auth a --from-file gave,
// field by field.
type authFlags struct {
	Auth         *string  `help:"How requests prove their origin besides the signature: signature (none), token (Auth header, not signed), basic, bearer or oauth2." group:"Auth"`
	AuthUsername *string  `help:"basic: the user name." group:"Auth"`
	AuthPassword *string  `help:"basic: the password (stored sealed, shown masked)." group:"Auth"`
	AuthToken    *string  `help:"token or bearer: the token (a bearer token is stored sealed, shown masked)." group:"Auth"`
	TokenURL     *string  `help:"oauth2: the partner's token endpoint." group:"Auth"`
	ClientID     *string  `help:"oauth2: the client id." group:"Auth"`
	ClientSecret *string  `help:"oauth2: the client secret (stored sealed, shown masked)." group:"Auth"`
	Scope        []string `help:"oauth2: a scope to ask for (repeat)." group:"Auth"`
	Audience     *string  `help:"oauth2: the audience parameter (Auth0, Okta)." group:"Auth"`
	AuthStyle    *string  `help:"oauth2: header (HTTP Basic, default) or params (in the form body)." group:"Auth"`
}

// signatureFlags set an endpoint's signature, field by field over --from-file's.
type signatureFlags struct {
	SignatureScheme          *string `help:"standard-webhooks (default), none, or hmac-sha256 (a partner's format)." group:"Signature"`
	SignatureHeader          *string `help:"hmac-sha256: the header that carries it, such as X-Signature." group:"Signature"`
	SignatureEncoding        *string `help:"hmac-sha256: hex (default) or base64." group:"Signature"`
	SignaturePrefix          *string `help:"hmac-sha256: text before the signature, such as sha256=." group:"Signature"`
	SignatureSigned          *string `help:"hmac-sha256: body (default) or timestamp.body." group:"Signature"`
	SignatureTimestampHeader *string `help:"hmac-sha256: a header that also carries the signed timestamp, such as X-Timestamp." group:"Signature"`
}

func (f *authFlags) merge(obj map[string]json.RawMessage) error {
	return mergeObject(obj, "auth", map[string]any{"type": f.Auth, "username": f.AuthUsername,
		"password": f.AuthPassword, "token": f.AuthToken, "token_url": f.TokenURL, "client_id": f.ClientID,
		"client_secret": f.ClientSecret, "scopes": f.Scope, "audience": f.Audience, "auth_style": f.AuthStyle})
}

func (f *signatureFlags) merge(obj map[string]json.RawMessage) error {
	return mergeObject(obj, "signature", map[string]any{"scheme": f.SignatureScheme, "header": f.SignatureHeader,
		"encoding": f.SignatureEncoding, "prefix": f.SignaturePrefix, "signed": f.SignatureSigned,
		"timestamp_header": f.SignatureTimestampHeader})
}

// mergeObject sets the given flags (nil or empty: not given) in the object obj[name],
// keeping what a file put there.
func mergeObject(obj map[string]json.RawMessage, name string, flags map[string]any) error {
	inner := map[string]json.RawMessage{}
	given := false
	for k, v := range flags {
		if l, ok := v.([]string); ok && len(l) == 0 || !ok && isNil(v) {
			continue
		}
		if !given {
			if raw, ok := obj[name]; ok {
				if err := json.Unmarshal(raw, &inner); err != nil {
					return codeError{2, fmt.Errorf("%s: %w", name, err)}
				}
			}
			given = true
		}
		b, _ := json.Marshal(v)
		inner[k] = b
	}
	if given {
		b, _ := json.Marshal(inner)
		obj[name] = b
	}
	return nil
}

// tlsFlags set an endpoint's mutual TLS and private CAs from PEM files, each field over
// --from-file's "tls". The API replaces an endpoint's TLS settings as a whole, so an
// update that changes one file gives the others again.
type tlsFlags struct {
	ClientCert *string `help:"A PEM file with the client certificate (and any intermediates) presented to the partner for mutual TLS." group:"TLS"`
	ClientKey  *string `help:"A PEM file with the client certificate's private key (stored sealed, never shown)." group:"TLS"`
	CaFile     *string `help:"A PEM file with the partner's CA certificates, trusted for this endpoint instead of the system roots." group:"TLS"`
}

func (f *tlsFlags) merge(env *runEnv, obj map[string]json.RawMessage) error {
	docs := map[string]any{}
	for name, file := range map[string]*string{"client_certificate": f.ClientCert, "client_key": f.ClientKey,
		"ca_certificates": f.CaFile} {
		if file == nil {
			continue
		}
		b, err := readInput(env, *file, consign.MaxPEM)
		if err != nil {
			return err
		}
		docs[name] = string(b)
	}
	return mergeObject(obj, "tls", docs)
}

// given reports whether any TLS file was named.
func (f *tlsFlags) given() bool { return f.ClientCert != nil || f.ClientKey != nil || f.CaFile != nil }
