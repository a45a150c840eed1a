package store

import (
	"encoding/json"
	"fmt"

	"github.com/consign-dev/consign"
)

// endpointConfig is the part of an endpoint that every driver keeps as one JSON document:
// settings no query filters on, so adding one needs no migration. Drivers store what
// EncodeEndpointConfig returns and read it back with DecodeEndpointConfig.
type endpointConfig struct {
	// URL is the endpoint's URL; the url column holds its URLKey, which the store keeps
	// unique per org. Rows written before it was kept here have it in the column.
	URL                      string                `json:"url,omitempty"`
	Description              string                `json:"description"`
	Topics                   []string              `json:"topics"`
	Method                   string                `json:"method"`
	Headers                  map[string]string     `json:"headers"`
	HeadersSealed            []byte                `json:"headers_sealed,omitempty"`
	URLPasswordSealed        []byte                `json:"url_password_sealed,omitempty"`
	PayloadFormat            string                `json:"payload_format"`
	AuthType                 string                `json:"auth_type"`
	Auth                     *authSettings         `json:"auth,omitempty"`
	Signature                *consign.Signature    `json:"signature,omitempty"`
	RateLimit                float64               `json:"rate_limit"`
	BurstLimit               int                   `json:"burst_limit"`
	Ordering                 string                `json:"ordering"`
	Coalesce                 bool                  `json:"coalesce"`
	Retry                    consign.RetryPolicy   `json:"retry"`
	FailurePolicy            consign.FailurePolicy `json:"failure_policy"`
	ResponseReferencePointer string                `json:"response_reference_pointer,omitempty"`
	ResponseFields           map[string]string     `json:"response_fields,omitempty"`
	SuccessStatuses          []int                 `json:"success_statuses,omitempty"`
	Filter                   json.RawMessage       `json:"filter,omitempty"`
	Transformation           string                `json:"transformation,omitempty"`
	Version                  string                `json:"version,omitempty"`
	TLS                      *tlsConfig            `json:"tls,omitempty"`
}

// tlsConfig is an endpoint's TLS settings as stored: the certificates' PEM as given, the
// private key sealed (EndpointRow.TLSKeySealed).
type tlsConfig struct {
	ClientCertificate string `json:"client_certificate,omitempty"`
	KeySealed         []byte `json:"client_key_sealed,omitempty"`
	CACertificates    string `json:"ca_certificates,omitempty"`
	// ExpiryNotified is the fingerprint of the certificate whose expiry was announced.
	ExpiryNotified string `json:"expiry_notified,omitempty"`
}

// authSettings are the parts of an endpoint's auth that are not its credential (which
// the row keeps sealed, TokenSealed).
type authSettings struct {
	Username  string   `json:"username,omitempty"`
	TokenURL  string   `json:"token_url,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	Audience  string   `json:"audience,omitempty"`
	AuthStyle string   `json:"auth_style,omitempty"`
}

// EncodeEndpointConfig returns the JSON document of an endpoint's settings. Headers
// sealed (HeadersSealed) are kept sealed only: their clear values are never written;
// nor is the auth's credential (TokenSealed, a column of its own).
func EncodeEndpointConfig(r *EndpointRow) []byte {
	e := &r.Endpoint
	headers := e.Headers
	if len(r.HeadersSealed) > 0 {
		headers = nil
	}
	var auth *authSettings
	if a := e.Auth; a.Username != "" || a.TokenURL != "" || a.ClientID != "" {
		auth = &authSettings{Username: a.Username, TokenURL: a.TokenURL, ClientID: a.ClientID, Scopes: a.Scopes,
			Audience: a.Audience, AuthStyle: a.AuthStyle}
	}
	var t *tlsConfig
	if e.TLS != nil {
		t = &tlsConfig{ClientCertificate: e.TLS.ClientCertificate, KeySealed: r.TLSKeySealed, CACertificates: e.TLS.CACertificates,
			ExpiryNotified: r.TLSExpiryNotified}
	}
	b, _ := json.Marshal(endpointConfig{
		URL: e.URL, Description: e.Description, Topics: e.Topics, Method: e.Method, Headers: headers, HeadersSealed: r.HeadersSealed,
		URLPasswordSealed: r.URLPasswordSealed,
		PayloadFormat:     e.PayloadFormat, AuthType: e.Auth.Type, Auth: auth, Signature: &e.Signature, RateLimit: e.RateLimit,
		BurstLimit: e.BurstLimit, Ordering: e.Ordering, Coalesce: e.Coalesce, Retry: e.Retry,
		FailurePolicy: e.FailurePolicy, ResponseReferencePointer: e.ResponseReferencePointer,
		ResponseFields: e.ResponseFields, SuccessStatuses: e.SuccessStatuses, Filter: e.Filter,
		Transformation: e.Transformation, Version: e.Version, TLS: t,
	})
	return b
}

// DecodeEndpointConfig fills an endpoint's settings from their JSON document; sealed
// headers stay sealed (HeadersSealed) for the caller to open.
func DecodeEndpointConfig(doc []byte, r *EndpointRow) error {
	e := &r.Endpoint
	var c endpointConfig
	if err := json.Unmarshal(doc, &c); err != nil {
		return fmt.Errorf("endpoint %s config: %w", e.ID, err)
	}
	if c.URL != "" {
		e.URL = c.URL
	}
	r.HeadersSealed, r.URLPasswordSealed = c.HeadersSealed, c.URLPasswordSealed
	e.Description, e.Topics, e.Method, e.Headers = c.Description, c.Topics, c.Method, c.Headers
	e.PayloadFormat, e.Auth.Type, e.RateLimit, e.BurstLimit = c.PayloadFormat, c.AuthType, c.RateLimit, c.BurstLimit
	e.Ordering, e.Coalesce, e.Retry, e.FailurePolicy = c.Ordering, c.Coalesce, c.Retry, c.FailurePolicy
	e.ResponseReferencePointer, e.ResponseFields = c.ResponseReferencePointer, c.ResponseFields
	e.SuccessStatuses, e.Filter, e.Transformation, e.Version = c.SuccessStatuses, c.Filter, c.Transformation, c.Version
	if c.Signature != nil {
		e.Signature = *c.Signature
	}
	if a := c.Auth; a != nil {
		e.Auth.Username, e.Auth.TokenURL, e.Auth.ClientID, e.Auth.Scopes = a.Username, a.TokenURL, a.ClientID, a.Scopes
		e.Auth.Audience, e.Auth.AuthStyle = a.Audience, a.AuthStyle
	}
	e.TLS, r.TLSKeySealed, r.TLSExpiryNotified = nil, nil, ""
	if c.TLS != nil {
		e.TLS = &consign.EndpointTLS{ClientCertificate: c.TLS.ClientCertificate, CACertificates: c.TLS.CACertificates}
		e.TLS.Summarize()
		r.TLSKeySealed, r.TLSExpiryNotified = c.TLS.KeySealed, c.TLS.ExpiryNotified
	}
	return nil
}
