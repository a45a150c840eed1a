package consign_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http/httpguts"

	"github.com/consign-dev/consign"
)

// TestHeaderValues: an endpoint's header values (and its token) are refused at creation,
// with an error that names the header, when an HTTP client would refuse to send them, so
// that no endpoint is accepted only to fail every attempt.
func TestHeaderValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"plain", "Bearer abc.def-123", true},
		{"spaces and tabs", "a b\tc", true},
		{"UTF-8", "Grüße", true},
		{"empty", "", true},
		{"at the limit", strings.Repeat("k", consign.MaxHeaderValue), true},
		{"over the limit", strings.Repeat("k", consign.MaxHeaderValue+1), false},
		{"bell", "abc\a", false},
		{"escape", "\x1b[31mred", false},
		{"backspace", "ab\bc", false},
		{"vertical tab", "a\vb", false},
		{"form feed", "a\fb", false},
		{"unit separator", "a\x1fb", false},
		{"delete", "a\x7fb", false},
		{"line feed", "a\nb", false},
		{"carriage return", "a\rb", false},
		{"NUL", "a\x00b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.ok, httpguts.ValidHeaderFieldValue(tc.value) && len(tc.value) <= consign.MaxHeaderValue,
				"the case disagrees with what net/http sends")
			e := &consign.Endpoint{URL: "https://example.com/hook", Topics: []string{"*"},
				Headers: map[string]string{"X-Partner-Key": tc.value}}
			tok := &consign.Endpoint{URL: "https://example.com/hook", Topics: []string{"*"},
				Auth: consign.Auth{Type: consign.AuthToken, Token: tc.value}}
			if tc.ok {
				require.NoError(t, e.Normalize())
				require.NoError(t, tok.Normalize())
				return
			}
			requireFieldMessage(t, e.Normalize(), "headers", `"X-Partner-Key"`)
			requireFieldMessage(t, tok.Normalize(), "auth.token", "")
		})
	}
}

// requireFieldMessage checks that err is EINVALID with an error on field whose message
// contains phrase.
func requireFieldMessage(tb testing.TB, err error, field, phrase string) {
	tb.Helper()
	ce, ok := err.(*consign.Error)
	require.True(tb, ok, "want a field error, got %v", err)
	require.Equal(tb, consign.EINVALID, ce.Code)
	for _, f := range ce.Fields {
		if f.Field == field && strings.Contains(f.Message, phrase) {
			return
		}
	}
	require.Failf(tb, "no such field error", "want %s naming %s, got %v", field, phrase, ce.Fields)
}

// FuzzEndpointHeaders: an endpoint accepts a custom header exactly when net/http can send
// it (a valid name, a value of at most MaxHeaderValue bytes that net/http allows) and it
// is not one Consign sets itself.
func FuzzEndpointHeaders(f *testing.F) {
	f.Add("X-Partner-Key", "Bearer abc")
	f.Add("X-Partner-Key", "abc\a")
	f.Add("x-a", "a\tb")
	f.Add("Webhook-Id", "x")
	f.Add("X A", "x")
	f.Add("X-Bell", "\x7f")
	f.Add("X-U", "\xff\xfe")
	f.Fuzz(func(t *testing.T, name, value string) {
		e := &consign.Endpoint{URL: "https://example.com/hook", Topics: []string{"*"}, Headers: map[string]string{name: value}}
		err := e.Normalize()
		sendable := httpguts.ValidHeaderFieldName(name) && len(name) <= 100 &&
			httpguts.ValidHeaderFieldValue(value) && len(value) <= consign.MaxHeaderValue
		reserved := map[string]bool{"Content-Type": true, "Content-Length": true, "User-Agent": true, "Host": true,
			"Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true, "Webhook-Sequence": true,
			"Transfer-Encoding": true, "Connection": true, "Auth": true}[http.CanonicalHeaderKey(name)]
		if sendable && !reserved {
			require.NoError(t, err, "%q: %q", name, value)
			require.Equal(t, value, e.Headers[http.CanonicalHeaderKey(name)])
			return
		}
		require.Error(t, err, "%q: %q accepted but cannot be sent", name, value)
		requireFieldMessage(t, err, "headers", "")
	})
}

func TestMask(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", "••••"},
		{"acme", "••••"},
		{"eleven-char", "••••"},
		{"twelve-chars", "••••hars"},
		{"Bearer sk_live_1234", "••••1234"},
		{"ключ-доступа-9876", "••••9876"},
	} {
		require.Equal(t, tc.want, consign.Mask(tc.in), tc.in)
	}
	cur := map[string]string{"X-Partner-Key": "pk_live_abcdef1234", "X-Tenant": "acme"}
	next := map[string]string{"x-partner-key": "••••1234", "X-Tenant": "••••", "X-New": "••••1234"}
	require.Equal(t, map[string]string{"x-partner-key": "pk_live_abcdef1234", "X-Tenant": "acme", "X-New": "••••1234"},
		consign.KeepMasked(next, cur), "a masked value sent back keeps the stored one; a header that had none keeps what was sent")
	require.Equal(t, map[string]string{"X-Tenant": "acme"}, consign.KeepMasked(map[string]string{"X-Tenant": "acme"}, cur))
	require.Equal(t, "••••", next["X-Tenant"], "KeepMasked leaves its argument alone")
}
