package sender

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// blockedError is returned by the dial guard. It reaches Send wrapped in a
// *net.OpError.
type blockedError struct{ msg string }

func (e *blockedError) Error() string { return "blocked: " + e.msg + insecureHint }

// errHandshakeTimeout is reported when the TLS handshake outlasts the
// connect timeout.
var errHandshakeTimeout = errors.New("TLS handshake timeout")

// errHeaderTooLarge is reported when the response header block passes
// maxResponseHeaderBytes.
var errHeaderTooLarge = errors.New("server response headers exceeded the limit")

// GuardedDialer returns a dialer that connects only to public addresses, judged after
// DNS resolution and before connect(2) by the same guard as the HTTP sender's (unless
// insecure): what a destination other than HTTP dials a broker with. A refused address
// fails the dial with an error BlockedReason recognises.
func GuardedDialer(insecure bool, timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !insecure {
		s := &Sender{guard: ssrf.New(ssrf.WithAnyPort())}
		d.Control = s.control
	}
	return d
}

// BlockedReason returns what the dial guard said if err (or an error it wraps) is its
// refusal of an address.
func BlockedReason(err error) (string, bool) {
	var be *blockedError
	if errors.As(err, &be) {
		return be.Error(), true
	}
	return "", false
}

// control is the net.Dialer.Control hook used unless InsecureTargets. It
// runs after DNS resolution and before connect(2), once for every address
// tried, so a refused address never receives a packet.
func (s *Sender) control(network, address string, c syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &blockedError{msg: "cannot check the address " + address}
	}
	if reason := nonPublicReason(ap.Addr()); reason != "" {
		return &blockedError{msg: ap.Addr().String() + " is " + reason}
	}
	// Second opinion from the library (it also checks the network type).
	if err := s.guard.Safe(network, address, c); err != nil {
		return &blockedError{msg: err.Error()}
	}
	return nil
}

// describe turns a connection or body-read error into a class and a text a
// person can act on. ctx is the caller's context and deadline the end of
// the attempt.
func (s *Sender) describe(ctx context.Context, deadline time.Time, err error) (Class, string) {
	var be *blockedError
	if errors.As(err, &be) {
		return Blocked, be.Error()
	}
	if ctx.Err() != nil {
		return Failure, "canceled: " + context.Cause(ctx).Error()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(deadline) {
		return Failure, "timeout after " + s.timeout.String()
	}
	return Failure, s.describeNet(err)
}

// describeNet handles the errors that do not depend on contexts.
func (s *Sender) describeNet(err error) string {
	var op *net.OpError
	isOp := errors.As(err, &op)
	addr, at := "", ""
	if isOp && op.Addr != nil {
		addr = op.Addr.String()
		at = " (" + addr + ")"
	}

	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound:
			return "dns: no such host " + dnsErr.Name
		case dnsErr.IsTimeout:
			return "dns: timeout looking up " + dnsErr.Name
		}
		return "dns: lookup " + dnsErr.Name + " failed: " + dnsErr.Err
	}

	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		msg := "TLS handshake: " + strings.TrimPrefix(certErr.Err.Error(), "x509: ")
		var unknown x509.UnknownAuthorityError
		if errors.As(certErr.Err, &unknown) {
			msg += " (a partner with its own CA: give it in the endpoint's tls.ca_certificates)"
		}
		return msg
	}
	var recErr tls.RecordHeaderError
	if errors.As(err, &recErr) {
		return "TLS handshake: the server did not answer with TLS (is it plain http?)"
	}
	msg := err.Error()
	if errors.Is(err, errHandshakeTimeout) {
		return "TLS handshake: timeout after " + s.connectTimeout.String()
	}
	if i := strings.Index(msg, "tls: "); i >= 0 {
		msg = "TLS handshake: " + msg[:i] + msg[i+len("tls: "):]
		// crypto/tls keeps its alert type to itself: its text is what there is.
		if strings.HasSuffix(msg, "remote error: certificate required") || strings.HasSuffix(msg, "remote error: bad certificate") {
			msg += " (the receiver wants a client certificate it trusts: the endpoint's tls.client_certificate and tls.client_key)"
		}
		return msg
	}

	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		if addr == "" {
			return "connection refused"
		}
		return "connection refused by " + addr
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer" + at
	case errors.Is(err, syscall.EPIPE):
		return "connection closed by peer while sending the request" + at
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable" + at
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable" + at
	case errors.Is(err, syscall.ETIMEDOUT):
		return "connect timeout" + at
	}
	if isOp && op.Op == "dial" && op.Timeout() {
		return "connect timeout after " + s.connectTimeout.String() + at
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed by the server before a complete response"
	}
	if errors.Is(err, errHeaderTooLarge) {
		return "response headers larger than 64 KiB"
	}
	if i := strings.Index(msg, "malformed HTTP "); i >= 0 {
		return "invalid HTTP response: " + msg[i+len("malformed HTTP "):]
	}
	return strings.TrimPrefix(msg, "net/http: ")
}
