package brokertest

// TLS in front of the local brokers, which listen in plaintext: a test CA and its
// server certificate for 127.0.0.1, a TLS-terminating Proxy (AMQP, Redis), a NATS
// server of the test's own with TLS and JetStream (NATS negotiates TLS after its INFO,
// in the protocol, so a terminating proxy will not do), and kfake with TLS and SASL.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/consign-dev/consign/internal/destination"
)

// CA is a test certificate authority and the server certificate it signed for
// 127.0.0.1 and localhost.
type CA struct {
	// PEM is the CA's certificate: an endpoint's tls.ca_certificates.
	PEM string
	// Server serves the server certificate.
	Server *tls.Config
	// CertPEM and KeyPEM are the server certificate and its key.
	CertPEM, KeyPEM string
	pool            *x509.CertPool
}

// NewCA makes a CA and a server certificate.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "consign test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	ca := &CA{
		PEM:     string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		pool:    x509.NewCertPool(),
	}
	ca.pool.AddCert(caCert)
	pair, err := tls.X509KeyPair([]byte(ca.CertPEM), []byte(ca.KeyPEM))
	if err != nil {
		tb.Fatal(err)
	}
	ca.Server = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	return ca
}

// Pool is a pool holding the CA alone.
func (ca *CA) Pool() *x509.CertPool { return ca.pool }

// Client is a client TLS configuration that trusts the CA alone.
func (ca *CA) Client() *tls.Config {
	return &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}
}

// ClientTLS is an endpoint's TLS settings that trust the CA alone.
func (ca *CA) ClientTLS(tb testing.TB) *destination.ClientTLS {
	tb.Helper()
	ct, err := destination.NewClientTLS("", "", ca.PEM)
	if err != nil {
		tb.Fatal(err)
	}
	return ct
}

// NewTLSProxy starts a proxy to the broker at addr that terminates TLS with ca's server
// certificate; it stops when the test ends.
func NewTLSProxy(tb testing.TB, addr string, ca *CA) *Proxy {
	tb.Helper()
	return newProxy(tb, addr, ca.Server)
}

// freePort returns a loopback port nothing listens on now.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// NATSServerBinary is the nats-server the TLS tests start.
const NATSServerBinary = "/usr/sbin/nats-server"

// NATSTLS starts a NATS server of the test's own that requires TLS (ca's server
// certificate) with JetStream in a temporary directory, stopped when the test ends. It
// returns the server's tls:// URL and a connection to it that trusts ca.
func NATSTLS(tb testing.TB, ca *CA) (string, *nats.Conn) {
	tb.Helper()
	bin, err := exec.LookPath(NATSServerBinary)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s is missing: %v", NATSServerBinary, err)
		}
		tb.Skipf("%s is missing: %v", NATSServerBinary, err)
	}
	dir := tb.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, s := range map[string]string{cert: ca.CertPEM, key: ca.KeyPEM} {
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	port := strconv.Itoa(freePort(tb))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-a", "127.0.0.1", "-p", port, "-js", "-sd", filepath.Join(dir, "js"),
		"--tls", "--tlscert", cert, "--tlskey", key)
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	url := "tls://127.0.0.1:" + port
	var nc *nats.Conn
	for range 100 {
		if nc, err = nats.Connect(url, nats.Secure(ca.Client()), nats.Timeout(time.Second)); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("nats-server with TLS at %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	return url, nc
}

// Kafka SASL credentials of KafkaTLS.
const (
	KafkaUser = "consign"
	KafkaPass = "s3cret-pass"
)

// KafkaTLS starts an in-process Kafka cluster (kfake) that speaks TLS alone (ca's
// server certificate) and authenticates with SASL (mechanism: PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512; user KafkaUser, password KafkaPass), with topics of three partitions;
// it is closed when the test ends.
func KafkaTLS(tb testing.TB, ca *CA, mechanism string, topics ...string) *kfake.Cluster {
	tb.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...), kfake.TLS(ca.Server),
		kfake.EnableSASL(), kfake.Superuser(mechanism, KafkaUser, KafkaPass))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}
