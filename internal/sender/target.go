package sender

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"code.dny.dev/ssrf"
)

// MaxURLLength is the longest target URL ValidateTargetURL accepts.
const MaxURLLength = 2048

// ValidateTargetURL checks an endpoint URL when it is created or changed.
// It does no DNS lookup: a host name is checked again, after resolution, by
// the dial guard of every Send. Unless insecure, the URL must be https and
// a literal IP address must be public. Odd numeric spellings of an address
// (2130706433, 0177.0.0.1, 0x7f.1, 127.1) are refused too. The error text
// says exactly what is wrong and can be shown to the user as is.
func ValidateTargetURL(raw string, insecure bool) error {
	if raw == "" {
		return errors.New("url is required")
	}
	if len(raw) > MaxURLLength {
		return errors.New("url is " + strconv.Itoa(len(raw)) + " characters long; the limit is " + strconv.Itoa(MaxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("url is not valid: " + unwrapURLError(err).Error())
	}
	if u.Scheme == "" {
		return errors.New("url must be absolute, like https://example.com/webhook")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !insecure {
			return errors.New("url must use https")
		}
	default:
		if !insecure {
			return errors.New("url must use https, not " + u.Scheme)
		}
		return errors.New("url must use http or https, not " + u.Scheme)
	}
	if u.Opaque != "" {
		return errors.New("url must have a host, like " + u.Scheme + "://example.com/webhook")
	}
	if u.User != nil {
		return errors.New("url must not contain credentials (user:pass@)")
	}
	if strings.IndexByte(raw, '#') >= 0 {
		return errors.New("url must not contain a fragment (#...)")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("url must have a host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("url port must be between 1 and 65535")
		}
	}
	return CheckTargetHost(host, insecure)
}

// CheckTargetHost applies the target rules to a host name or literal address, without
// DNS: unless insecure, a literal address must be public, and loopback names and odd
// numeric spellings are refused (the dial guard checks names again once resolved). It
// serves every kind of destination, brokers included; its error text can be shown to
// the user as is.
func CheckTargetHost(host string, insecure bool) error {
	if insecure {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if reason := nonPublicReason(ip); reason != "" {
			return errors.New(host + " is " + reason + "; targets must be public")
		}
		return nil
	}
	if msg := numericHostProblem(host); msg != "" {
		return errors.New(msg)
	}
	if isLocalhostName(host) {
		return errors.New(host + " is a loopback name; targets must be public")
	}
	return nil
}

// The address ranges below are built on demand rather than kept in
// package-level variables; building them does not allocate.

func cgnatPrefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, 0, 0}), 10)
}

func thisNetworkPrefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{0, 0, 0, 0}), 8)
}

func reservedV4Prefix() netip.Prefix { // 240.0.0.0/4, includes broadcast
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{240, 0, 0, 0}), 4)
}

func globalUnicastV6() netip.Prefix { // 2000::/3
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20}), 3)
}

func nat64Prefix() netip.Prefix { // 64:ff9b::/96
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x00, 0x64, 0xff, 0x9b}), 96)
}

func isMetadataAddr(ip netip.Addr) bool {
	// 169.254.169.254 (most clouds), fd00:ec2::254 (AWS IPv6).
	return ip == netip.AddrFrom4([4]byte{169, 254, 169, 254}) ||
		ip.WithZone("") == netip.AddrFrom16([16]byte{0xfd, 0x00, 0x0e, 0xc2, 15: 0x54, 14: 0x02})
}

// nonPublicReason returns why ip must not be a webhook target, as a phrase
// completing "<ip> is ...", or "" if ip is a public address. Our own checks
// give precise words; the ssrf library's IANA special-purpose lists are
// consulted last as a backstop.
func nonPublicReason(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "not a valid address"
	case ip.Is4In6():
		return "an IPv4-mapped IPv6 address"
	case ip.IsUnspecified():
		return "an unspecified address"
	case ip.IsLoopback():
		return "a loopback address"
	case isMetadataAddr(ip):
		return "the cloud metadata address"
	case ip.IsLinkLocalUnicast():
		return "a link-local address"
	case ip.IsMulticast():
		return "a multicast address"
	case ip.IsPrivate() && ip.Is4():
		return "a private address"
	case ip.IsPrivate():
		return "a unique local (private) IPv6 address"
	}
	if ip.Is4() {
		switch {
		case cgnatPrefix().Contains(ip):
			return "a shared (CGNAT) address"
		case thisNetworkPrefix().Contains(ip):
			return `a "this network" address`
		case reservedV4Prefix().Contains(ip):
			return "a reserved or broadcast address"
		}
		for _, p := range ssrf.IPv4DeniedPrefixes {
			if p.Contains(ip) {
				return "a special-purpose address (" + p.String() + ")"
			}
		}
		return ""
	}
	ip = ip.WithZone("")
	switch {
	case nat64Prefix().Contains(ip):
		return "a NAT64 address"
	case !globalUnicastV6().Contains(ip):
		return "not a global unicast IPv6 address"
	}
	for _, p := range ssrf.IPv6DeniedPrefixes {
		if p.Contains(ip) {
			return "a special-purpose address (" + p.String() + ")"
		}
	}
	return ""
}

// isLocalhostName reports the RFC 6761 loopback names.
func isLocalhostName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// numericHostProblem returns a complaint if host looks like an IPv4 address
// but is not in canonical dotted-quad form, following the WHATWG URL rule
// that a host whose last label is a number is an IPv4 address. Resolvers
// disagree on such hosts (glibc's inet_aton reads 2130706433, 0177.0.0.1,
// 0x7f.1 and 127.1 as 127.0.0.1), so they are always refused. It returns
// "" for host names and canonical addresses.
func numericHostProblem(host string) string {
	if host == "" || strings.IndexByte(host, ':') >= 0 {
		return "" // IPv6 literals are left to netip
	}
	trimmed := strings.TrimSuffix(host, ".")
	last := trimmed[strings.LastIndexByte(trimmed, '.')+1:]
	if !isNumericLabel(last) {
		return ""
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		return ""
	}
	if ip, ok := parseLegacyIPv4(trimmed); ok {
		return host + " is a non-standard spelling of the IP address " + ip.String() + "; write addresses as a.b.c.d"
	}
	return host + " is not a valid IP address (a host name must not end in a number)"
}

// isNumericLabel reports whether s is decimal digits, or 0x followed by hex
// digits.
func isNumericLabel(s string) bool {
	if s == "" {
		return false
	}
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		for i := 2; i < len(s); i++ {
			if !isHex(s[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// parseLegacyIPv4 parses the inet_aton forms: one to four parts, each
// decimal, octal (leading 0) or hex (0x), the last part filling the
// remaining bytes.
func parseLegacyIPv4(s string) (netip.Addr, bool) {
	var parts [4]uint64
	n := 0
	for {
		i := strings.IndexByte(s, '.')
		part := s
		if i >= 0 {
			part = s[:i]
		}
		if n == 4 {
			return netip.Addr{}, false
		}
		v, ok := parseLegacyNumber(part)
		if !ok {
			return netip.Addr{}, false
		}
		parts[n] = v
		n++
		if i < 0 {
			break
		}
		s = s[i+1:]
	}
	var v uint64
	for i := 0; i < n-1; i++ {
		if parts[i] > 0xff {
			return netip.Addr{}, false
		}
		v |= parts[i] << (8 * (3 - i))
	}
	lastBits := 8 * (5 - n)
	if parts[n-1] >= 1<<lastBits {
		return netip.Addr{}, false
	}
	v |= parts[n-1]
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseLegacyNumber parses one inet_aton part; values above 32 bits fail.
func parseLegacyNumber(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, s = 16, s[2:]
		if s == "" {
			return 0, true
		}
	case len(s) >= 2 && s[0] == '0':
		base, s = 8, s[1:]
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		case 'A' <= c && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		v = v*base + d
		if v > 0xffffffff {
			return 0, false
		}
	}
	return v, true
}
