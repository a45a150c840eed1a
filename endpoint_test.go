package consign_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
)

func TestNormalizeURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"https://EXAMPLE.com/x", "https://example.com/x"},
		{"HTTPS://Example.COM/x", "https://example.com/x"},
		{"https://example.com:443/x", "https://example.com/x"},
		{"http://example.com:80/x", "http://example.com/x"},
		{"https://example.com:8443/x", "https://example.com:8443/x"},
		{"http://example.com:443/x", "http://example.com:443/x"},
		{"https://example.com", "https://example.com/"},
		{"https://example.com?a=1", "https://example.com/?a=1"},
		{"https://example.com/Path/Case", "https://example.com/Path/Case"}, // paths are case-sensitive
		{"https://example.com/a b?q=a b", "https://example.com/a%20b?q=a%20b"},
		{"https://example.com/x?q=%2F&r=%zz", "https://example.com/x?q=%2F&r=%25zz"},
		{"https://example.com/x?q=\"<é>\"", "https://example.com/x?q=%22%3C%C3%A9%3E%22"},
		{"https://example.com/x?a=1&b=c:d@e/f?g", "https://example.com/x?a=1&b=c:d@e/f?g"},
		{"https://example.com/x?", "https://example.com/x"},
		{"https://[::1]:443/x", "https://[::1]/x"},
		{"nats://Host:4222/subject", "nats://Host:4222/subject"}, // not http: as given
		{"example.com/x", "example.com/x"},
		{"https://exa mple.com/x", "https://exa mple.com/x"}, // does not parse: as given
		{"", ""},
	} {
		require.Equal(t, tc.want, consign.NormalizeURL(tc.in), tc.in)
	}
}

// FuzzNormalizeURL: the normal form is a fixed point, parses, and carries nothing a
// request line may not.
func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{"https://EXAMPLE.com:443", "http://a/b c?d e&f=%zz", "https://[::1]:80/%41?%", "https://a/?\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n := consign.NormalizeURL(raw)
		if n == raw {
			if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return
			}
		}
		u, err := url.Parse(n)
		if err != nil {
			t.Fatalf("NormalizeURL(%q) = %q does not parse: %v", raw, n, err)
		}
		if again := consign.NormalizeURL(n); again != n {
			t.Fatalf("not a fixed point: %q → %q → %q", raw, n, again)
		}
		if target := u.RequestURI(); strings.ContainsAny(target, " \t\"<>\\^`{|}") || strings.ContainsFunc(target, func(r rune) bool { return r > 0x7e || r < 0x21 }) {
			t.Fatalf("request target %q of %q holds a character a request line may not", target, n)
		}
	})
}

func TestEndpointURLKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		e    consign.Endpoint
		want string
	}{
		{"signed: the URL", consign.Endpoint{URL: "https://a.example/x", Topics: []string{"order.*"}, Auth: consign.Auth{Type: consign.AuthSignature}}, "https://a.example/x"},
		{"token: URL and topics", consign.Endpoint{URL: "https://a.example/x", Topics: []string{"order.*"}, Auth: consign.Auth{Type: consign.AuthToken}}, "https://a.example/x order.*"},
		{"token: topics in order", consign.Endpoint{URL: "https://a.example/x", Topics: []string{"b.*", "a.*"}, Auth: consign.Auth{Type: consign.AuthToken}}, "https://a.example/x a.*,b.*"},
	} {
		require.Equal(t, tc.want, tc.e.URLKey(), tc.name)
	}
}
