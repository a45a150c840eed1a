package sender

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync"
)

// ClientTLS is one endpoint's own TLS settings: a client certificate for mutual TLS
// and/or the CAs that replace the system roots (and Config.RootCAs) for its
// receiver. Requests that carry one travel on connections of their own: pooled by the
// settings' fingerprint beside the host, never handed to a request without them or
// with others, and with a TLS session cache of their own, so that no session
// resumed by another endpoint carries this one's identity or the reverse. Build it
// once per endpoint version and share it between attempts: it is safe for concurrent
// use and read-only once built.
type ClientTLS struct {
	id    [sha256.Size]byte
	certs []tls.Certificate
	roots *x509.CertPool

	once sync.Once
	conf *tls.Config // derived from the Sender's settings on first use
}

// NewClientTLS parses an endpoint's client certificate and key (both PEM, both empty
// for none) and CA bundle (PEM, empty for the system roots).
func NewClientTLS(certPEM, keyPEM, caPEM string) (*ClientTLS, error) {
	ct := &ClientTLS{}
	if certPEM != "" || keyPEM != "" {
		pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
		if err != nil {
			return nil, err
		}
		ct.certs = []tls.Certificate{pair}
	}
	if caPEM != "" {
		ct.roots = x509.NewCertPool()
		if !ct.roots.AppendCertsFromPEM([]byte(caPEM)) {
			return nil, errors.New("no CA certificate in the bundle")
		}
	}
	h := sha256.New()
	for _, s := range []string{certPEM, keyPEM, caPEM} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Sum(ct.id[:0])
	return ct, nil
}

// config returns the TLS settings of ct's connections: base with ct's certificate
// and roots and a session cache of its own.
func (ct *ClientTLS) config(base *tls.Config) *tls.Config {
	ct.once.Do(func() {
		c := base.Clone()
		c.Certificates = ct.certs
		if ct.roots != nil {
			c.RootCAs = ct.roots
		}
		c.ClientSessionCache = tls.NewLRUClientSessionCache(64)
		ct.conf = c
	})
	return ct.conf
}

// Apply returns a copy of base with ct's client certificate and CAs (base alone when ct
// is nil): the TLS settings of a connection other than HTTP, such as a broker's. Unlike
// the HTTP client's, each call makes a new copy with no session cache of its own: a
// broker connection is long-lived, its handshakes rare.
func (ct *ClientTLS) Apply(base *tls.Config) *tls.Config {
	c := base.Clone()
	if ct == nil {
		return c
	}
	c.Certificates = ct.certs
	if ct.roots != nil {
		c.RootCAs = ct.roots
	}
	return c
}
