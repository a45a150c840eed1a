package consign

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"strconv"
	"strings"
	"time"
)

// MaxPEM bounds each PEM document of an endpoint's TLS settings, in bytes.
const MaxPEM = 64 << 10

// CertificateExpiringBefore is how long before a client certificate's not_after
// consign.endpoint.certificate_expiring is emitted.
const CertificateExpiringBefore = 14 * 24 * time.Hour

// TLSInput is what a client gives as an endpoint's "tls": a client certificate (with
// any intermediates) and its private key for mutual TLS, and/or the partner's CA
// certificates, trusted instead of the system roots for this endpoint alone. All empty
// removes the endpoint's TLS settings.
type TLSInput struct {
	ClientCertificate string `json:"client_certificate,omitempty"`
	ClientKey         string `json:"client_key,omitempty"`
	CACertificates    string `json:"ca_certificates,omitempty"`
}

// EndpointTLS is an endpoint's own TLS settings. Replies show the client certificate's
// subject, issuer and expiry and the subjects of the CAs; the PEM documents are kept
// out of replies, the key most of all (it is sealed at rest).
type EndpointTLS struct {
	Subject    string     `json:"subject,omitempty"`
	Issuer     string     `json:"issuer,omitempty"`
	NotAfter   *time.Time `json:"not_after,omitempty"`
	CASubjects []string   `json:"ca_subjects,omitempty"`
	// Fingerprint is the SHA-256 of the client certificate (DER, hex): it tells one
	// certificate from its replacement.
	Fingerprint string `json:"-"`

	ClientCertificate string `json:"-"`
	ClientKey         string `json:"-"`
	CACertificates    string `json:"-"`
}

// ParseTLS checks in against now and returns the endpoint's TLS settings, or nil when
// in is empty. Each problem is a field error under "tls.".
func ParseTLS(in TLSInput, now time.Time) (*EndpointTLS, error) {
	var v Validation
	t := parseTLS(&v, "tls.", in, now)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// parseTLS checks in against now, adding each problem to v as a field error under
// prefix, and returns the TLS settings it gives (nil when in is empty or wrong).
func parseTLS(out *Validation, prefix string, in TLSInput, now time.Time) *EndpointTLS {
	if in == (TLSInput{}) {
		return nil
	}
	var v Validation
	defer func() {
		for _, f := range v.fields {
			out.Add(prefix+strings.TrimPrefix(f.Field, "tls."), "%s", f.Message)
		}
	}()
	t := &EndpointTLS{ClientCertificate: in.ClientCertificate, ClientKey: in.ClientKey, CACertificates: in.CACertificates}
	for _, f := range []struct{ name, val string }{
		{"tls.client_certificate", in.ClientCertificate}, {"tls.client_key", in.ClientKey}, {"tls.ca_certificates", in.CACertificates},
	} {
		if len(f.val) > MaxPEM {
			v.Add(f.name, "is %d bytes; at most %d", len(f.val), MaxPEM)
		}
	}
	if len(v.fields) > 0 {
		return nil
	}
	switch {
	case in.ClientCertificate != "" && in.ClientKey == "":
		v.Add("tls.client_key", "is required with client_certificate: the PEM of its private key")
	case in.ClientCertificate == "" && in.ClientKey != "":
		v.Add("tls.client_certificate", "is required with client_key: the PEM of the certificate the key belongs to")
	case in.ClientCertificate != "":
		certs, msg := parseCertificates(in.ClientCertificate)
		if msg != "" {
			v.Add("tls.client_certificate", "%s", msg)
			break
		}
		if _, err := tls.X509KeyPair([]byte(in.ClientCertificate), []byte(in.ClientKey)); err != nil {
			v.Add("tls.client_key", "%s", strings.TrimPrefix(err.Error(), "tls: "))
			break
		}
		leaf := certs[0]
		if !now.Before(leaf.NotAfter) {
			v.Add("tls.client_certificate", "expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
			break
		}
		na := leaf.NotAfter.UTC()
		t.Subject, t.Issuer, t.NotAfter = leaf.Subject.String(), leaf.Issuer.String(), &na
		t.Fingerprint = fingerprint(leaf)
	}
	if in.CACertificates != "" {
		cas, msg := parseCertificates(in.CACertificates)
		if msg != "" {
			v.Add("tls.ca_certificates", "%s", msg)
		}
		for _, c := range cas {
			t.CASubjects = append(t.CASubjects, c.Subject.String())
		}
	}
	if len(v.fields) > 0 {
		return nil
	}
	return t
}

// Summarize fills the shown fields of t from its PEM documents (stored settings
// carry only those).
func (t *EndpointTLS) Summarize() {
	if certs, _ := parseCertificates(t.ClientCertificate); len(certs) > 0 {
		na := certs[0].NotAfter.UTC()
		t.Subject, t.Issuer, t.NotAfter = certs[0].Subject.String(), certs[0].Issuer.String(), &na
		t.Fingerprint = fingerprint(certs[0])
	}
	cas, _ := parseCertificates(t.CACertificates)
	t.CASubjects = nil
	for _, c := range cas {
		t.CASubjects = append(t.CASubjects, c.Subject.String())
	}
}

// parseCertificates returns the certificates of a PEM document, or what is wrong
// with it.
func parseCertificates(doc string) ([]*x509.Certificate, string) {
	var certs []*x509.Certificate
	rest := []byte(doc)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, "holds a " + b.Type + " block; only CERTIFICATE blocks belong here"
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, "certificate " + strconv.Itoa(len(certs)+1) + " does not parse: " + strings.TrimPrefix(err.Error(), "x509: ")
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, "is not PEM: expected -----BEGIN CERTIFICATE----- blocks"
	}
	return certs, ""
}

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
