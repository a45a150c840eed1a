package sender

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func mustTarget(t testing.TB, method, raw string) *target {
	t.Helper()
	u, tg, msg := parseTarget(method, raw)
	require.Empty(t, msg)
	require.Empty(t, tg.locate(u))
	return &tg
}

func TestTargetLocate(t *testing.T) {
	cases := []struct {
		url                  string
		tls                  bool
		host, hostname, port string
		uri                  string
	}{
		{"https://hooks.example.com/in?a=1", true, "hooks.example.com", "hooks.example.com", "443", "/in?a=1"},
		{"http://127.0.0.1:8080", false, "127.0.0.1:8080", "127.0.0.1", "8080", "/"},
		{"https://[2001:db8::1]/x", true, "[2001:db8::1]", "2001:db8::1", "443", "/x"},
		{"https://[2001:db8::1]:8443/x%2Fy", true, "[2001:db8::1]:8443", "2001:db8::1", "8443", "/x%2Fy"},
		{"https://bücher.example/", true, "xn--bcher-kva.example", "xn--bcher-kva.example", "443", "/"},
	}
	for _, tc := range cases {
		tg := mustTarget(t, http.MethodPost, tc.url)
		require.Equal(t, poolKey{tls: tc.tls, host: tc.host}, tg.key, tc.url)
		require.Equal(t, tc.hostname, tg.hostname, tc.url)
		require.Equal(t, tc.port, tg.port, tc.url)
		require.Equal(t, tc.uri, tg.uri, tc.url)
	}
	u, _ := url.Parse("https:///nohost")
	var tg target
	require.Equal(t, "invalid request: the URL has no host", tg.locate(u))
	u, _ = url.Parse("https://user:pass@h.example/")
	require.Contains(t, tg.locate(u), "must not contain credentials")
}

// TestHeaderProblem: a header that would break the request's framing is refused
// before anything is dialed, whichever client sends it.
func TestHeaderProblem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		h    http.Header
		want string
	}{
		{http.Header{"X-Evil": {"a\r\nInjected: 1"}}, "invalid request: invalid value for header X-Evil"},
		{http.Header{"X-Evil": {"a\nb"}}, "invalid request: invalid value for header X-Evil"},
		{http.Header{"Bad Name": {"v"}}, `invalid request: invalid header name "Bad Name"`},
		{http.Header{"X-Nul": {"a\x00b"}}, "invalid request: invalid value for header X-Nul"},
		{http.Header{"X-Ok": {"a b\tc"}, "Content-Type": {"application/json"}}, ""},
	} {
		require.Equal(t, tc.want, headerProblem(tc.h))
	}

}

// TestTargetCache: a URL's target comes from the cache once made, equal to one made
// afresh and without allocating; refused URLs are refused every time and never kept;
// the cache stays within maxTargets.
func TestTargetCache(t *testing.T) { // not parallel: AllocsPerRun
	guarded := New(Config{})
	open := New(Config{InsecureTargets: true})
	tests := []struct {
		name        string
		s           *Sender
		method, url string
		wantBlocked bool
		wantMsg     string
	}{
		{name: "https", s: guarded, method: http.MethodPost, url: "https://hooks.example.com/in?x=1"},
		{name: "another method", s: guarded, method: http.MethodPut, url: "https://hooks.example.com/in?x=1"},
		{name: "http where https is required", s: guarded, method: http.MethodPost, url: "http://hooks.example.com/in", wantBlocked: true, wantMsg: "url must use https"},
		{name: "http allowed", s: open, method: http.MethodPost, url: "http://127.0.0.1:9/in"},
		{name: "no host", s: open, method: http.MethodPost, url: "http:///in", wantMsg: "invalid request: the URL has no host"},
		{name: "bad method", s: open, method: "PO ST", url: "http://127.0.0.1:9/in", wantMsg: `invalid request: invalid method "PO ST"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c targetCache
			for range 2 { // made, then from the cache
				got, blocked, msg := c.get(tt.method, tt.url, tt.s.target)
				require.Equal(t, tt.wantBlocked, blocked)
				require.Equal(t, tt.wantMsg, msg)
				if msg != "" {
					require.Empty(t, c.m, "a refused URL is not kept")
					continue
				}
				want, _, _ := tt.s.target(tt.method, tt.url)
				require.Equal(t, want, got)
			}
			if tt.wantMsg == "" {
				require.Zero(t, testing.AllocsPerRun(100, func() { _, _, _ = c.get(tt.method, tt.url, tt.s.target) }))
			}
		})
	}

	t.Run("bounded", func(t *testing.T) {
		var c targetCache
		for i := range maxTargets + 10 {
			_, _, msg := c.get(http.MethodPost, "http://127.0.0.1:9/"+strconv.Itoa(i), open.target)
			require.Empty(t, msg)
			require.LessOrEqual(t, len(c.m), maxTargets)
		}
	})
}
