package sender

import (
	"net/netip"
	"net/url"
	"testing"

	"code.dny.dev/ssrf"
	"github.com/stretchr/testify/require"
)

// nonPublic lists one address per category the product spec says must be
// refused, with the reason nonPublicReason gives.
var nonPublicCases = []struct {
	ip     string
	reason string
}{
	{"127.0.0.1", "a loopback address"},
	{"127.255.255.254", "a loopback address"},
	{"::1", "a loopback address"},
	{"10.0.0.1", "a private address"},
	{"172.16.0.1", "a private address"},
	{"172.31.255.255", "a private address"},
	{"192.168.1.1", "a private address"},
	{"169.254.169.254", "the cloud metadata address"},
	{"fd00:ec2::254", "the cloud metadata address"},
	{"169.254.1.1", "a link-local address"},
	{"fe80::1", "a link-local address"},
	{"fe80::1%eth0", "a link-local address"},
	{"100.64.0.1", "a shared (CGNAT) address"},
	{"100.127.255.254", "a shared (CGNAT) address"},
	{"224.0.0.1", "a multicast address"},
	{"239.255.255.250", "a multicast address"},
	{"ff02::1", "a multicast address"},
	{"ff0e::1", "a multicast address"},
	{"0.0.0.0", "an unspecified address"},
	{"::", "an unspecified address"},
	{"0.1.2.3", `a "this network" address`},
	{"255.255.255.255", "a reserved or broadcast address"},
	{"240.0.0.1", "a reserved or broadcast address"},
	{"fc00::1", "a unique local (private) IPv6 address"},
	{"fd12:3456::1", "a unique local (private) IPv6 address"},
	{"::ffff:127.0.0.1", "an IPv4-mapped IPv6 address"},
	{"::ffff:10.0.0.1", "an IPv4-mapped IPv6 address"},
	{"::ffff:8.8.8.8", "an IPv4-mapped IPv6 address"},
	{"::127.0.0.1", "not a global unicast IPv6 address"}, // IPv4-compatible
	{"fec0::1", "not a global unicast IPv6 address"},     // site-local
	{"64:ff9b::7f00:1", "a NAT64 address"},
	{"192.0.2.1", "a special-purpose address (192.0.2.0/24)"},
	{"198.18.0.1", "a special-purpose address (198.18.0.0/15)"},
	{"192.0.0.8", "a special-purpose address (192.0.0.0/24)"},
	{"2001:db8::1", "a special-purpose address (2001:db8::/32)"},
	{"2001::1", "a special-purpose address (2001::/23)"},                 // Teredo
	{"2002:7f00:1::1", "a special-purpose address (2002::/16)"},          // 6to4 of 127.0.0.1
	{"3fff::1", "a special-purpose address (3fff::/20)"},                 // documentation
	{"2620:4f:8000::1", "a special-purpose address (2620:4f:8000::/48)"}, // AS112
}

var publicCases = []string{"8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.1", "172.32.0.1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"}

func TestNonPublicReason(t *testing.T) {
	t.Parallel()
	for _, tc := range nonPublicCases {
		t.Run(tc.ip, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.reason, nonPublicReason(netip.MustParseAddr(tc.ip)))
		})
	}
	for _, ip := range publicCases {
		t.Run(ip, func(t *testing.T) {
			t.Parallel()
			require.Empty(t, nonPublicReason(netip.MustParseAddr(ip)))
		})
	}
}

// TestGuardianCoverage checks that code.dny.dev/ssrf on its own refuses
// every category as well, so it stays a valid second opinion after an
// upgrade.
func TestGuardianCoverage(t *testing.T) {
	t.Parallel()
	g := ssrf.New(ssrf.WithAnyPort())
	for _, tc := range nonPublicCases {
		require.Error(t, g.SafeAddr(netip.MustParseAddr(tc.ip)), tc.ip)
	}
	for _, ip := range publicCases {
		require.NoError(t, g.SafeAddr(netip.MustParseAddr(ip)), ip)
	}
}

// TestControl calls the dial hook directly, as net.Dialer does before
// connect(2).
func TestControl(t *testing.T) {
	t.Parallel()
	s := New(Config{})
	t.Cleanup(s.Close)
	for _, tc := range nonPublicCases {
		ap := netip.AddrPortFrom(netip.MustParseAddr(tc.ip), 443)
		network := "tcp6"
		if ap.Addr().Is4() {
			network = "tcp4"
		}
		err := s.control(network, ap.String(), nil)
		require.Error(t, err, tc.ip)
		require.Contains(t, err.Error(), "blocked: ")
		require.Contains(t, err.Error(), "(set --insecure-targets for development)")
		require.Contains(t, err.Error(), tc.reason)
	}
	for _, ip := range publicCases {
		ap := netip.AddrPortFrom(netip.MustParseAddr(ip), 8443)
		network := "tcp6"
		if ap.Addr().Is4() {
			network = "tcp4"
		}
		require.NoError(t, s.control(network, ap.String(), nil), ip)
	}
	// The library's network check still applies.
	err := s.control("udp4", "8.8.8.8:443", nil)
	require.ErrorContains(t, err, "blocked: prohibited network type")
	require.ErrorContains(t, s.control("tcp4", "not-an-address", nil), "blocked: cannot check the address")
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	guarded := New(Config{})
	insecure := New(Config{InsecureTargets: true})
	t.Cleanup(guarded.Close)
	t.Cleanup(insecure.Close)
	cases := []struct {
		url     string
		insec   bool
		msg     string
		blocked bool
	}{
		{"https://example.com/", false, "", false},
		{"https://127.0.0.1/", false, "", false}, // left to the dial guard
		{"https://[::1]/", false, "", false},
		{"http://example.com/", false, "url must use https", true},
		{"ftp://example.com/", false, "url must use https", true},
		{"https://2130706433/", false, "2130706433 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d", true},
		{"https://0x7f.1/", false, "0x7f.1 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d", true},
		{"https://127.0.0.1./", false, "127.0.0.1. is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d", true},
		{"http://127.0.0.1/", true, "", false},
		{"https://2130706433/", true, "", false},
		{"ftp://example.com/", true, "url must use http or https", false},
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.url)
		require.NoError(t, err)
		s := guarded
		if tc.insec {
			s = insecure
		}
		msg, blocked := s.preflight(u)
		require.Equal(t, tc.msg, msg, tc.url)
		require.Equal(t, tc.blocked, blocked, tc.url)
	}
}

func TestNumericHostProblem(t *testing.T) {
	t.Parallel()
	cases := []struct{ host, want string }{
		{"example.com", ""},
		{"127.0.0.1", ""},
		{"8.8.8.8", ""},
		{"1e100.net", ""},
		{"0x.example", ""},
		{"2130706433", "2130706433 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d"},
		{"0177.0.0.1", "0177.0.0.1 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d"},
		{"0x7f.1", "0x7f.1 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d"},
		{"0X7F000001", "0X7F000001 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d"},
		{"127.1", "127.1 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d"},
		{"10.1.1", "10.1.1 is a non-standard spelling of the IP address 10.1.0.1; write addresses as a.b.c.d"},
		{"127.0.0.01", "127.0.0.01 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d"},
		{"134744072", "134744072 is a non-standard spelling of the IP address 8.8.8.8; write addresses as a.b.c.d"},
		{"0x", "0x is a non-standard spelling of the IP address 0.0.0.0; write addresses as a.b.c.d"},
		{"1.2.3.4.5", "1.2.3.4.5 is not a valid IP address (a host name must not end in a number)"},
		{"256.1.1.1", "256.1.1.1 is not a valid IP address (a host name must not end in a number)"},
		{"4294967296", "4294967296 is not a valid IP address (a host name must not end in a number)"},
		{"08.1.1.1", "08.1.1.1 is not a valid IP address (a host name must not end in a number)"},
		{"example.123", "example.123 is not a valid IP address (a host name must not end in a number)"},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, numericHostProblem(tc.host), tc.host)
	}
}

func TestNoAllocPolicyChecks(t *testing.T) {
	ip := netip.MustParseAddr("93.184.215.14")
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = nonPublicReason(ip) }))
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = numericHostProblem("hooks.example.com") }))
}
