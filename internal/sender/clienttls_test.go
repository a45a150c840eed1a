package sender_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/sender"
)

// selfSigned returns a self-signed certificate and its key, PEM.
func selfSigned(t *testing.T, name string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// TestSendClientTLS: a request with an endpoint's ClientTLS presents its certificate
// and trusts its CAs alone, on connections that requests without it (or with other
// settings) never reuse.
func TestSendClientTLS(t *testing.T) {
	t.Parallel()
	var lastCN atomic.Value
	srv := httptest.NewUnstartedServer(nil)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	rc := startReceiver(t, srv, func(w http.ResponseWriter, r *http.Request) {
		cn := ""
		if len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		lastCN.Store(cn)
	}, true)
	roots := x509.NewCertPool()
	roots.AddCert(rc.Certificate())
	s := newSender(t, sender.Config{InsecureTargets: true, RootCAs: roots})

	certA, keyA := selfSigned(t, "endpoint-a")
	certB, keyB := selfSigned(t, "endpoint-b")
	serverCA := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rc.Certificate().Raw}))
	a, err := sender.NewClientTLS(certA, keyA, "")
	require.NoError(t, err)
	b, err := sender.NewClientTLS(certB, keyB, serverCA)
	require.NoError(t, err)
	otherCA, _ := selfSigned(t, "another CA")
	wrongCA, err := sender.NewClientTLS("", "", otherCA)
	require.NoError(t, err)

	for i, tc := range []struct {
		tls    *sender.ClientTLS
		wantCN string
	}{
		{a, "endpoint-a"}, {nil, ""}, {b, "endpoint-b"}, {a, "endpoint-a"}, {nil, ""}, {b, "endpoint-b"},
	} {
		r := post(rc.URL)
		r.TLS = tc.tls
		out := s.Send(t.Context(), r)
		require.Equal(t, sender.Success, out.Class, "request %d: %s", i, out.Err)
		require.Equal(t, tc.wantCN, lastCN.Load(), "request %d presents its own endpoint's certificate", i)
	}
	require.EqualValues(t, 3, rc.conns.Load(), "one kept-alive connection per TLS settings, reused by its own requests")

	r := post(rc.URL)
	r.TLS = wrongCA
	out := s.Send(t.Context(), r)
	require.Equal(t, sender.Failure, out.Class)
	require.Contains(t, out.Err, "certificate signed by unknown authority", "the endpoint's CAs replace the roots")
}

func TestNewClientTLSRefuses(t *testing.T) {
	t.Parallel()
	certA, keyA := selfSigned(t, "a")
	_, keyB := selfSigned(t, "b")
	for name, in := range map[string][3]string{
		"key of another certificate": {certA, keyB, ""},
		"certificate without key":    {certA, "", ""},
		"CA bundle without PEM":      {"", "", "not pem"},
	} {
		_, err := sender.NewClientTLS(in[0], in[1], in[2])
		require.Error(t, err, name)
	}
	_, err := sender.NewClientTLS(certA, keyA, "")
	require.NoError(t, err)
}
