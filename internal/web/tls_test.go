package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/manage"
)

// TestEndpointPageShowsTLS: an endpoint with a client certificate and a private CA
// shows the certificate's subject, issuer and expiry and the CA's subject on its
// page, and none of the PEM documents, the private key above all.
func TestEndpointPageShowsTLS(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := context.Background()
	org := &consign.Org{Name: "Acme", Role: consign.RoleSeller}
	require.NoError(t, u.manage.CreateOrg(ctx, org))
	caPEM, certPEM, keyPEM, notAfter := clientCertificate(t)

	for _, tt := range []struct {
		name string
		in   consign.TLSInput
		want []string
	}{
		{"mutual TLS and a private CA", consign.TLSInput{ClientCertificate: certPEM, ClientKey: keyPEM, CACertificates: caPEM}, []string{
			"client certificate <code>CN=consign-client,O=Acme Outdoor</code>", "issued by <code>CN=Partner Root CA,O=Partner</code>",
			"expires " + notAfter.UTC().Format("2006-01-02 15:04:05"), "trusts only <code>CN=Partner Root CA,O=Partner</code>"}},
		{"a private CA alone", consign.TLSInput{CACertificates: caPEM}, []string{
			"no client certificate", "trusts only <code>CN=Partner Root CA,O=Partner</code>"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			ep, err := u.manage.CreateEndpoint(ctx, org.ID, &manage.EndpointInput{URL: "http://127.0.0.1:9/tls/" + strings.ReplaceAll(tt.name, " ", "-"), Topics: []string{"order.*"}, TLS: &in})
			require.NoError(t, err)
			p := u.browser(t)
			p.signIn(adminKey)
			res := p.get("/ui/orgs/" + org.ID + "/endpoints/" + ep.ID)
			require.Equal(t, http.StatusOK, res.status, res.body)
			require.Contains(t, res.body, "<dt>TLS</dt>")
			for _, w := range tt.want {
				require.Contains(t, res.body, w)
			}
			require.NotContains(t, res.body, "-----BEGIN")
			require.NotContains(t, res.body, "PRIVATE KEY")
		})
	}

	ep, err := u.manage.CreateEndpoint(ctx, org.ID, &manage.EndpointInput{URL: "http://127.0.0.1:9/plain", Topics: []string{"order.*"}})
	require.NoError(t, err)
	p := u.browser(t)
	p.signIn(adminKey)
	res := p.get("/ui/orgs/" + org.ID + "/endpoints/" + ep.ID)
	require.Equal(t, http.StatusOK, res.status)
	require.NotContains(t, res.body, "<dt>TLS</dt>", "an endpoint without TLS settings shows none")
}

// clientCertificate returns a partner CA and a client certificate it signed, with the
// certificate's key, all PEM, and the certificate's expiry.
func clientCertificate(t *testing.T) (caPEM, certPEM, keyPEM string, notAfter time.Time) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Partner Root CA", Organization: []string{"Partner"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(2, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	notAfter = time.Now().AddDate(1, 0, 0).Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "consign-client", Organization: []string{"Acme Outdoor"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})), notAfter
}
