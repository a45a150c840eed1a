package sender_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consign-dev/consign/internal/sender"
	"github.com/stretchr/testify/require"
)

func TestValidateTargetURL(t *testing.T) {
	t.Parallel()
	long := "https://example.com/" + strings.Repeat("a", sender.MaxURLLength-len("https://example.com/"))
	cases := []struct {
		url      string
		insecure bool
		err      string // "" means accepted
	}{
		// Accepted.
		{"https://example.com/webhook", false, ""},
		{"https://hooks.example.com:8443/a/b?x=1&y=2", false, ""},
		{"HTTPS://Example.COM/", false, ""},
		{"https://8.8.8.8/hook", false, ""},
		{"https://[2606:4700:4700::1111]/hook", false, ""},
		{"https://xn--bcher-kva.example/", false, ""},
		{"https://example.com./", false, ""},
		{"https://1e100.net/", false, ""},
		{long, false, ""},
		{"http://localhost:8080/hook", true, ""},
		{"http://127.0.0.1:8080/hook", true, ""},
		{"https://2130706433/", true, ""},
		{"http://[::1]:3000/", true, ""},

		// Refused, whatever the mode.
		{"", false, "url is required"},
		{long + "a", false, "url is 2049 characters long; the limit is 2048"},
		{"https://exa mple.com/", false, `url is not valid: invalid character " " in host name`},
		{"https://example.com:port/", true, `url is not valid: invalid port ":port" after host`},
		{"/relative/path", false, "url must be absolute, like https://example.com/webhook"},
		{"example.com/hook", false, "url must be absolute, like https://example.com/webhook"},
		{"ftp://example.com/", true, "url must use http or https, not ftp"},
		{"https:example.com", false, "url must have a host, like https://example.com/webhook"},
		{"https:///path", false, "url must have a host"},
		{"https://:443/", false, "url must have a host"},
		{"https://user:pass@example.com/", false, "url must not contain credentials (user:pass@)"},
		{"https://user@example.com/", true, "url must not contain credentials (user:pass@)"},
		{"https://example.com/#frag", false, "url must not contain a fragment (#...)"},
		{"https://example.com/#", false, "url must not contain a fragment (#...)"},
		{"https://example.com:0/", false, "url port must be between 1 and 65535"},
		{"https://example.com:65536/", false, "url port must be between 1 and 65535"},

		// Refused unless insecure.
		{"http://example.com/", false, "url must use https"},
		{"ftp://example.com/", false, "url must use https, not ftp"},
		{"https://127.0.0.1/", false, "127.0.0.1 is a loopback address; targets must be public"},
		{"https://[::1]:8443/", false, "::1 is a loopback address; targets must be public"},
		{"https://[::ffff:127.0.0.1]/", false, "::ffff:127.0.0.1 is an IPv4-mapped IPv6 address; targets must be public"},
		{"https://10.1.2.3/", false, "10.1.2.3 is a private address; targets must be public"},
		{"https://172.20.0.1/", false, "172.20.0.1 is a private address; targets must be public"},
		{"https://192.168.0.10/", false, "192.168.0.10 is a private address; targets must be public"},
		{"https://169.254.169.254/latest/meta-data/", false, "169.254.169.254 is the cloud metadata address; targets must be public"},
		{"https://[fd00:ec2::254]/", false, "fd00:ec2::254 is the cloud metadata address; targets must be public"},
		{"https://169.254.0.7/", false, "169.254.0.7 is a link-local address; targets must be public"},
		{"https://[fe80::1%25eth0]/", false, "fe80::1%eth0 is a link-local address; targets must be public"},
		{"https://100.64.0.1/", false, "100.64.0.1 is a shared (CGNAT) address; targets must be public"},
		{"https://224.0.0.251/", false, "224.0.0.251 is a multicast address; targets must be public"},
		{"https://[ff02::fb]/", false, "ff02::fb is a multicast address; targets must be public"},
		{"https://0.0.0.0/", false, "0.0.0.0 is an unspecified address; targets must be public"},
		{"https://[::]/", false, ":: is an unspecified address; targets must be public"},
		{"https://[fc00::5]/", false, "fc00::5 is a unique local (private) IPv6 address; targets must be public"},
		{"https://192.0.2.1/", false, "192.0.2.1 is a special-purpose address (192.0.2.0/24); targets must be public"},
		{"https://2130706433/", false, "2130706433 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d"},
		{"https://0177.0.0.1/", false, "0177.0.0.1 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d"},
		{"https://0x7f.1/", false, "0x7f.1 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d"},
		{"https://127.1/", false, "127.1 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d"},
		{"https://127.0.0.1./", false, "127.0.0.1. is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d"},
		{"https://134744072/", false, "134744072 is a non-standard spelling of the IP address 8.8.8.8; write addresses as a.b.c.d"},
		{"https://1.2.3.4.5/", false, "1.2.3.4.5 is not a valid IP address (a host name must not end in a number)"},
		{"https://localhost/", false, "localhost is a loopback name; targets must be public"},
		{"https://LocalHost.:8443/", false, "LocalHost. is a loopback name; targets must be public"},
		{"https://api.localhost/", false, "api.localhost is a loopback name; targets must be public"},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			err := sender.ValidateTargetURL(tc.url, tc.insecure)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.err)
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"86400", 24 * time.Hour, true},
		{"86401", 24 * time.Hour, true},
		{"99999999999999999999999999", 24 * time.Hour, true},
		{"0", 0, false},
		{"000", 0, false},
		{"", 0, false},
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"5s", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(90 * time.Second).Format(time.RFC1123), 0, false}, // "UTC": HTTP dates are GMT
		{"Sun, 01 Mar 2026 12:01:30 GMT", 90 * time.Second, true},  // IMF-fixdate
		{"Sunday, 01-Mar-26 12:01:30 GMT", 90 * time.Second, true}, // RFC 850
		{"Sun Mar  1 12:01:30 2026", 90 * time.Second, true},       // asctime
		{"Mon, 01 Mar 2027 12:00:00 GMT", 24 * time.Hour, true},    // capped
		{"Sun, 01 Mar 2026 12:00:00 GMT", 0, false},                // now
		{"Sun, 01 Mar 2026 11:59:59 GMT", 0, false},                // past
		{"Sun, 01 Mar 2026 12:01:30 +0100", 0, false},              // not an HTTP date
		{"2026-03-01T12:01:30Z", 0, false},                         // RFC 3339 is not allowed
	}
	for _, tc := range cases {
		got, ok := sender.ParseRetryAfter(tc.v, now)
		require.Equal(t, tc.ok, ok, "%q", tc.v)
		require.Equal(t, tc.want, got, "%q", tc.v)
	}
}

func FuzzValidateTargetURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/webhook", "http://localhost:8080", "https://127.0.0.1/",
		"https://[::ffff:127.0.0.1]/", "https://2130706433/", "https://0x7f.1/", "https://127.1/",
		"https://u:p@example.com/", "https://example.com/#x", "https:example.com", "https://[fe80::1%25eth0]/",
		"https://example.com:99999/", "https://%31%32%37.0.0.1/", "https://1.2.3.4.5/", "https://xn--bcher-kva.example/",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, insecure bool) {
		if sender.ValidateTargetURL(raw, insecure) != nil {
			return
		}
		// Anything accepted must be a usable absolute URL of the right
		// scheme, with a host, and no credentials or fragment.
		require.LessOrEqual(t, len(raw), sender.MaxURLLength)
		u, err := url.Parse(raw)
		require.NoError(t, err)
		if insecure {
			require.Contains(t, []string{"http", "https"}, u.Scheme)
		} else {
			require.Equal(t, "https", u.Scheme)
		}
		require.NotEmpty(t, u.Hostname())
		require.Nil(t, u.User)
		require.NotContains(t, raw, "#")
		if insecure {
			return
		}
		// And, in secure mode, not a non-public literal address in any
		// spelling.
		host := u.Hostname()
		if ip, err := netip.ParseAddr(host); err == nil {
			require.True(t, ip.Unmap().IsGlobalUnicast() && !ip.Unmap().IsPrivate() && !ip.Is4In6(), "accepted %s", ip)
		}
		// A host whose last label is a number (WHATWG: decimal, or 0x hex)
		// is an IPv4 address and must be in canonical dotted-quad form.
		last := strings.TrimSuffix(host, ".")
		last = last[strings.LastIndexByte(last, '.')+1:]
		lower := strings.ToLower(last)
		if isDecimal(last) || (strings.HasPrefix(lower, "0x") && strings.Trim(lower[2:], "0123456789abcdef") == "") {
			ip, err := netip.ParseAddr(host)
			require.NoError(t, err, "accepted numeric host %q", host)
			require.True(t, ip.Is4(), "accepted numeric host %q", host)
		}
	})
}

func isDecimal(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"7", "0", "", "-1", "99999999999999999999", "Sun, 01 Mar 2026 12:01:30 GMT", "Sunday, 01-Mar-26 12:01:30 GMT", "Sun Mar  1 12:01:30 2026", "garbage"} {
		f.Add(s, int64(1772366400))
	}
	f.Fuzz(func(t *testing.T, v string, unix int64) {
		now := time.Unix(unix, 0)
		d, ok := sender.ParseRetryAfter(v, now)
		if !ok {
			require.Zero(t, d)
			return
		}
		require.Positive(t, d)
		require.LessOrEqual(t, d, sender.MaxRetryAfter)
	})
}
