package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"html"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/store"
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

// TestEndpointTLSForm: TLS settings pasted into the endpoint form are kept and shown by
// subject; an edit that leaves the TLS boxes empty keeps them, the remove box removes
// them, errors are shown by the box they concern, and the private key is in no page,
// not even the form that refused it.
func TestEndpointTLSForm(t *testing.T) {
	t.Parallel()
	u := newUI(t)
	ctx := context.Background()
	org := &consign.Org{Name: "Acme", Role: consign.RoleSeller}
	require.NoError(t, u.manage.CreateOrg(ctx, org))
	b := u.browser(t)
	token := b.signIn(adminKey)
	caPEM, certPEM, keyPEM, _ := clientCertificate(t)
	_, _, otherKeyPEM, _ := clientCertificate(t)
	// The key's base64 lines, which no page may hold (the form's placeholder names "PRIVATE KEY").
	var keyLines []string
	for _, k := range []string{keyPEM, otherKeyPEM} {
		for _, l := range strings.Split(strings.TrimSpace(k), "\n") {
			if !strings.HasPrefix(l, "-----") {
				keyLines = append(keyLines, l)
			}
		}
	}
	noKey := func(t *testing.T, p page) {
		t.Helper()
		body := html.UnescapeString(p.body)
		for _, l := range keyLines {
			require.False(t, strings.Contains(body, l), "the private key is shown")
		}
	}
	const subject = "client certificate <code>CN=consign-client,O=Acme Outdoor</code>"
	base := func(hook string) url.Values {
		return url.Values{"csrf": {token}, "url": {"http://127.0.0.1:9/" + hook}, "topics": {"product.*"}, "active": {"on"},
			"method": {"POST"}, "payload_format": {"envelope"}, "auth_type": {"signature"}}
	}
	with := func(v url.Values, kv ...string) url.Values {
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	// Refused at creation, each by the box it concerns, the typed certificate kept and the key not.
	for _, tt := range []struct {
		name  string
		form  url.Values
		field string // the textarea whose error is shown
		want  string
	}{
		{"certificate without its key", with(base("a"), "tls_client_certificate", certPEM), "tls-key-err", "is required with client_certificate"},
		{"a key of another certificate", with(base("b"), "tls_client_certificate", certPEM, "tls_client_key", otherKeyPEM), "tls-key-err", "private key does not match public key"},
		{"CA that is not PEM", with(base("c"), "tls_ca_certificates", "not a certificate"), "tls-ca-err", "ca_certificates"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := b.post("/ui/orgs/"+org.ID+"/endpoints", tt.form)
			require.Equal(t, http.StatusUnprocessableEntity, res.status, res.body)
			require.Contains(t, res.body, `id="`+tt.field+`"`)
			require.Contains(t, res.body, tt.want)
			noKey(t, res)
			if c := tt.form.Get("tls_client_certificate"); c != "" {
				require.True(t, strings.Contains(html.UnescapeString(res.body), ">"+c+"</textarea>"), "the pasted certificate is kept")
			}
			require.Regexp(t, `name="tls_client_key"[^>]*></textarea>`, res.body)
		})
	}

	res := b.post("/ui/orgs/"+org.ID+"/endpoints", with(base("hooks"),
		"tls_client_certificate", certPEM, "tls_client_key", keyPEM, "tls_ca_certificates", caPEM))
	require.Equal(t, http.StatusCreated, res.status, res.body)
	noKey(t, res)
	eps, err := u.manage.Endpoints(ctx, org.ID, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, eps, 1)
	id := eps[0].ID
	show := func() page {
		t.Helper()
		p := b.get("/ui/orgs/" + org.ID + "/endpoints/" + id)
		require.Equal(t, http.StatusOK, p.status)
		noKey(t, p)
		return p
	}
	require.Contains(t, show().body, subject)
	require.Contains(t, show().body, "trusts only <code>CN=Partner Root CA,O=Partner</code>")

	edit := b.get("/ui/orgs/" + org.ID + "/endpoints/" + id + "/edit")
	require.Equal(t, http.StatusOK, edit.status)
	noKey(t, edit)
	require.Contains(t, edit.body, subject, "the form says what is stored")
	require.Regexp(t, `name="tls_client_key"[^>]*></textarea>`, edit.body)
	require.Contains(t, edit.body, `name="tls_remove"`)

	// Empty boxes keep the settings, the key included.
	res = b.post("/ui/orgs/"+org.ID+"/endpoints/"+id+"/edit", with(base("hooks"), "description", "edited"))
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	got, err := u.manage.Endpoint(ctx, org.ID, id)
	require.NoError(t, err)
	require.Equal(t, "edited", got.Description)
	require.NotNil(t, got.TLS, "an edit with empty TLS boxes removed the settings")
	require.Equal(t, strings.TrimSpace(keyPEM), strings.TrimSpace(got.TLS.ClientKey))
	require.Contains(t, show().body, subject)

	// The remove box with new certificates is refused: which one was meant?
	res = b.post("/ui/orgs/"+org.ID+"/endpoints/"+id+"/edit", with(base("hooks"), "tls_remove", "on", "tls_ca_certificates", caPEM))
	require.Equal(t, http.StatusUnprocessableEntity, res.status, res.body)
	require.Contains(t, res.body, "not both")
	noKey(t, res)

	// Pasting a CA alone replaces the settings as a whole: the client certificate goes.
	res = b.post("/ui/orgs/"+org.ID+"/endpoints/"+id+"/edit", with(base("hooks"), "tls_ca_certificates", caPEM))
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	p := show()
	require.NotContains(t, p.body, subject)
	require.Contains(t, p.body, "no client certificate")

	res = b.post("/ui/orgs/"+org.ID+"/endpoints/"+id+"/edit", with(base("hooks"), "tls_remove", "on"))
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	got, err = u.manage.Endpoint(ctx, org.ID, id)
	require.NoError(t, err)
	require.Nil(t, got.TLS, "the remove box kept the settings")
	require.NotContains(t, show().body, "<dt>TLS</dt>")
	edit = b.get("/ui/orgs/" + org.ID + "/endpoints/" + id + "/edit")
	require.NotContains(t, edit.body, `name="tls_remove"`, "nothing left to remove")
}
