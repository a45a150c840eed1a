package consign_test

import (
	"testing"
	"time"

	"github.com/consign-dev/consign"
)

// FuzzParseTLS: whatever a client sends as tls, ParseTLS answers with settings or a
// field error, never a panic, and settings it accepts carry their summary.
func FuzzParseTLS(f *testing.F) {
	f.Add("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "", "")
	f.Add("", "", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	f.Add("x", "-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----\n", "")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cert, key, ca string) {
		got, err := consign.ParseTLS(consign.TLSInput{ClientCertificate: cert, ClientKey: key, CACertificates: ca}, now)
		if err != nil {
			if consign.ErrorCode(err) != consign.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if got != nil && cert != "" && (got.Subject == "" && got.Issuer == "" || got.NotAfter == nil) {
			t.Fatalf("accepted a client certificate without its summary: %+v", got)
		}
	})
}
