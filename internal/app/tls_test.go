package app_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
)

// testCA is a certificate authority made in the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

// serial numbers the test certificates; tests run in parallel.
var serial atomic.Int64

func nextSerial() *big.Int { return big.NewInt(serial.Add(1)) }

func newTestCA(tb testing.TB, name string) *testCA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(tb, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(tb, err)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue returns a certificate for name signed by ca, valid until notAfter, and its
// key, both PEM.
func (ca *testCA) issue(tb testing.TB, name string, notAfter time.Time, usage x509.ExtKeyUsage) (certPEM, keyPEM string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name, Organization: []string{"Partner"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(tb, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(tb, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// newMTLSReceiver is a partner's HTTPS receiver with a certificate from serverCA that
// demands a client certificate signed by clientCA (nil: asks for none).
func newMTLSReceiver(tb testing.TB, serverCA, clientCA *testCA) *receiver {
	tb.Helper()
	certPEM, keyPEM := serverCA.issue(tb, "127.0.0.1", time.Now().Add(24*time.Hour), x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	require.NoError(tb, err)
	rc := &receiver{ch: make(chan *received, 100)}
	rc.Server = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	rc.Server.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	if clientCA != nil {
		pool := x509.NewCertPool()
		pool.AddCert(clientCA.cert)
		rc.Server.TLS.ClientAuth, rc.Server.TLS.ClientCAs = tls.RequireAndVerifyClientCert, pool
	}
	rc.Server.StartTLS()
	tb.Cleanup(rc.Close)
	return rc
}

// TestEndpointMutualTLS: a receiver that demands a client certificate from the
// partner's CA takes deliveries from the endpoint that carries one, and refuses the
// others with a reason on the attempt; its private CA is trusted only by the
// endpoints that list it.
func TestEndpointMutualTLS(t *testing.T) {
	t.Parallel()
	e := start(t)
	partnerCA, clientCA := newTestCA(t, "Partner Server CA"), newTestCA(t, "Partner Client CA")
	rc := newMTLSReceiver(t, partnerCA, clientCA)
	certPEM, keyPEM := clientCA.issue(t, "consign.example", time.Now().Add(20*24*time.Hour), x509.ExtKeyUsageClientAuth)

	for _, tc := range []struct {
		name    string
		tls     map[string]any
		ok      bool
		errHas  string
		subject string
	}{
		{"client certificate and the partner's CA", map[string]any{"client_certificate": certPEM, "client_key": keyPEM,
			"ca_certificates": partnerCA.pem}, true, "", "CN=consign.example,O=Partner"},
		{"the partner's CA without a client certificate", map[string]any{"ca_certificates": partnerCA.pem}, false, "certificate required (the receiver wants a client certificate", ""},
		{"no tls settings: the private CA is not trusted", nil, false, "certificate signed by unknown authority (a partner with its own CA", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := e.newOrg(tc.name)
			body := map[string]any{"url": rc.URL, "topics": []string{"order.*"}, "retry": fastRetry("300ms")}
			if tc.tls != nil {
				body["tls"] = tc.tls
			}
			ep := e.createEndpoint(o, body)
			var shown map[string]any
			e.c.get("/v1/orgs/"+o.id+"/endpoints/"+ep["id"].(string), o.key, &shown)
			for _, reply := range []map[string]any{ep, shown} {
				if tc.subject != "" {
					got := reply["tls"].(map[string]any)
					require.Equal(t, tc.subject, got["subject"])
					require.Equal(t, "CN=Partner Client CA", got["issuer"])
					require.NotEmpty(t, got["not_after"])
					require.Equal(t, []any{"CN=Partner Server CA"}, got["ca_subjects"])
				}
				raw, _ := jsonText(reply)
				require.NotContains(t, raw, "PRIVATE KEY", "the key is never shown")
			}

			id := e.publish(o, "order.created", map[string]any{"order": "A-1"})
			if tc.ok {
				got := rc.next(t)
				require.Equal(t, id, got.Header.Get("Webhook-Id"))
				e.waitStatus(o, e.onlyDelivery(o, id).ID, consign.StatusSucceeded)
				return
			}
			d := e.waitStatus(o, e.onlyDelivery(o, id).ID, consign.StatusFailed)
			require.NotEmpty(t, d.Attempts)
			require.NotNil(t, d.Attempts[0].Error)
			require.Contains(t, *d.Attempts[0].Error, tc.errHas)
		})
	}
}

// TestEndpointTLSKeySealed: the client key is in no data file in clear, and a PATCH
// that does not name tls keeps it (deliveries still carry the certificate).
func TestEndpointTLSKeySealed(t *testing.T) {
	t.Parallel()
	e := start(t)
	partnerCA, clientCA := newTestCA(t, "Partner Server CA"), newTestCA(t, "Partner Client CA")
	rc := newMTLSReceiver(t, partnerCA, clientCA)
	certPEM, keyPEM := clientCA.issue(t, "consign.example", time.Now().Add(60*24*time.Hour), x509.ExtKeyUsageClientAuth)
	o := e.newOrg("sealed")
	ep := e.createEndpoint(o, map[string]any{"url": rc.URL, "topics": []string{"order.*"},
		"tls": map[string]any{"client_certificate": certPEM, "client_key": keyPEM, "ca_certificates": partnerCA.pem}})
	path := "/v1/orgs/" + o.id + "/endpoints/" + ep["id"].(string)
	got := e.c.must(http.StatusOK, "PATCH", path, map[string]any{"description": "renamed"}, o.key)
	require.Equal(t, ep["tls"], got["tls"], "a PATCH without tls keeps it")
	id := e.publish(o, "order.created", map[string]any{"order": "A-2"})
	rc.next(t)
	e.waitStatus(o, e.onlyDelivery(o, id).ID, consign.StatusSucceeded)

	// How the key could show in a file: its PEM as is or JSON-escaped, and its first
	// base64 line, which holds the start of the private scalar (the last lines hold the
	// public key, which the certificate carries too).
	escaped, _ := json.Marshal(keyPEM)
	lines := []string{keyPEM, string(escaped[1 : len(escaped)-1]), strings.Split(keyPEM, "\n")[1]}

	// Removed with an empty tls: the reply shows none.
	got = e.c.must(http.StatusOK, "PATCH", path, map[string]any{"tls": map[string]any{}}, o.key)
	require.Nil(t, got["tls"])

	e.close()
	var certSeen bool
	certLine := strings.Split(certPEM, "\n")[3]
	require.NoError(t, filepath.WalkDir(e.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		certSeen = certSeen || bytes.Contains(b, []byte(certLine))
		for _, l := range lines {
			require.False(t, bytes.Contains(b, []byte(l)), "%s holds the client key in clear: %s", p, l)
		}
		return nil
	}))
	require.True(t, certSeen, "the certificate, stored in clear, is found: the files searched hold the endpoint")
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// TestEndpointTLSValidation: TLS settings that could never connect are refused at
// creation, each with the field at fault.
func TestEndpointTLSValidation(t *testing.T) {
	t.Parallel()
	e := start(t)
	o := e.newOrg("tls-validation")
	ca := newTestCA(t, "Client CA")
	cert, key := ca.issue(t, "a", time.Now().Add(time.Hour), x509.ExtKeyUsageClientAuth)
	_, otherKey := ca.issue(t, "b", time.Now().Add(time.Hour), x509.ExtKeyUsageClientAuth)
	expired, expiredKey := ca.issue(t, "old", time.Now().Add(-time.Minute), x509.ExtKeyUsageClientAuth)
	for _, tc := range []struct {
		name   string
		tls    map[string]any
		fields []string
	}{
		{"key of another certificate", map[string]any{"client_certificate": cert, "client_key": otherKey}, []string{"tls.client_key"}},
		{"certificate without key", map[string]any{"client_certificate": cert}, []string{"tls.client_key"}},
		{"key without certificate", map[string]any{"client_key": key}, []string{"tls.client_certificate"}},
		{"certificate not PEM", map[string]any{"client_certificate": "MIIB", "client_key": key}, []string{"tls.client_certificate"}},
		{"key where the certificate goes", map[string]any{"client_certificate": key, "client_key": key}, []string{"tls.client_certificate"}},
		{"expired certificate", map[string]any{"client_certificate": expired, "client_key": expiredKey}, []string{"tls.client_certificate"}},
		{"CA bundle not PEM", map[string]any{"ca_certificates": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, []string{"tls.ca_certificates"}},
		{"too large", map[string]any{"ca_certificates": strings.Repeat("a", consign.MaxPEM+1)}, []string{"tls.ca_certificates"}},
	} {
		r := e.c.raw("POST", "/v1/orgs/"+o.id+"/endpoints", map[string]any{"url": "https://partner.example.com/hook",
			"topics": []string{"order.*"}, "tls": tc.tls}, o.key, nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", tc.name, r.body)
		require.ElementsMatch(t, tc.fields, requireProblem(t, r).fields(), "%s: %s", tc.name, r.body)
		for _, k := range []string{key, otherKey, expiredKey} {
			require.NotContains(t, string(r.body), strings.Split(k, "\n")[1], "%s: the problem does not echo a key", tc.name)
		}
	}
}
