package guard_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/guard"
)

// TestConfigValidate: defaults pass; each bad setting is named.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, guard.Config{}.WithDefaults().Validate())
	d := guard.Config{}.WithDefaults()
	require.Equal(t, int64(128<<20), d.BodyBudget)
	require.Equal(t, 10*time.Second, d.BodyTimeout)
	err := guard.Config{BodyBudget: -1, BodyTimeout: -time.Second, BodyMinRate: -1}.WithDefaults().Validate()
	for _, want := range []string{"BodyBudget is -1", "BodyTimeout is -1s", "BodyMinRate is -1"} {
		require.ErrorContains(t, err, want)
	}
}

// TestBudgetIsShared: concurrent requests together never hold more than the budget;
// the ones that would go over are refused with EUNAVAILABLE and a Retry-After, and all
// is given back when they end.
func TestBudgetIsShared(t *testing.T) {
	t.Parallel()
	const budget, requests, each = 64 << 10, 32, 8 << 10
	g := guard.New(guard.Config{BodyBudget: budget})
	var (
		mu            sync.Mutex
		peak, refused int
		release       = make(chan struct{})
		arrived, done sync.WaitGroup
	)
	h := g.Bodies(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		mu.Lock()
		if err != nil {
			refused++
			require.Equal(t, consign.EUNAVAILABLE, consign.ErrorCode(err))
			e, _ := err.(*consign.Error)
			require.Positive(t, e.RetryAfter)
		}
		peak = max(peak, int(g.Held()))
		mu.Unlock()
		arrived.Done()
		<-release // hold the body's bytes until every request has read
	}))
	arrived.Add(requests)
	done.Add(requests)
	for range requests {
		go func() {
			defer done.Done()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", each))))
		}()
	}
	arrived.Wait()
	close(release)
	done.Wait()
	require.LessOrEqual(t, peak, budget)
	// At most budget/each bodies fit whole (fewer when refused ones held part of theirs).
	require.GreaterOrEqual(t, refused, requests-budget/each, "with %d bytes, at most %d bodies of %d fit", budget, budget/each, each)
	require.Zero(t, g.Held(), "every request gave its bytes back")
}

// TestClient: X-Forwarded-For names the client only when the connection comes from a
// trusted proxy, and only as far as the last trusted hop: what the client itself wrote
// at the left is never believed.
func TestClient(t *testing.T) {
	t.Parallel()
	g := guard.New(guard.Config{TrustedProxies: []string{"10.0.0.0/8", "fd00::1"}})
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no proxy", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"untrusted peer's header ignored", "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"trusted proxy", "10.1.2.3:443", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client's own entry ignored", "10.1.2.3:443", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"two trusted hops", "10.1.2.3:443", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several header lines", "10.1.2.3:443", []string{"1.1.1.1", "198.51.100.1", "10.9.9.9"}, "198.51.100.1"},
		{"with ports", "10.1.2.3:443", []string{"198.51.100.1:7777"}, "198.51.100.1"},
		{"IPv6 proxy and client", "[fd00::1]:443", []string{"[2001:db8::5]:80"}, "2001:db8::5"},
		{"mapped IPv4 peer", "[::ffff:10.1.2.3]:443", []string{"198.51.100.1"}, "198.51.100.1"},
		{"garbage from the proxy", "10.1.2.3:443", []string{"1.1.1.1, not-an-address"}, "10.1.2.3"},
		{"only trusted hops", "10.1.2.3:443", []string{"10.0.0.9"}, "10.0.0.9"},
		{"no header", "10.1.2.3:443", nil, "10.1.2.3"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		require.Equal(t, tc.want, g.Client(r).String(), tc.name)
	}
	require.ErrorContains(t, guard.Config{TrustedProxies: []string{"10.0.0.0/33"}}.WithDefaults().Validate(),
		`TrustedProxies: "10.0.0.0/33" is not an address or a CIDR range`)
}

// FuzzClient: whatever a peer and its header say, Client never panics; a peer that is
// not a trusted proxy is the client whatever the header says, and only a header can
// name another.
func FuzzClient(f *testing.F) {
	f.Add("10.1.2.3:443", "198.51.100.1, 10.9.9.9")
	f.Add("[fd00::1]:1", "[2001:db8::5]:80,,")
	f.Add("203.0.113.7:5000", "10.0.0.1")
	f.Add("junk", "")
	trusted := netip.MustParsePrefix("10.0.0.0/8")
	g := guard.New(guard.Config{TrustedProxies: []string{trusted.String(), "fd00::/8"}})
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		got := g.Client(r)
		peer, err := netip.ParseAddrPort(remote)
		if err != nil {
			require.False(t, got.IsValid(), "no peer address, yet client %s", got)
			return
		}
		addr := peer.Addr().Unmap()
		if !trusted.Contains(addr) && !netip.MustParsePrefix("fd00::/8").Contains(addr) {
			require.Equal(t, addr, got, "an untrusted peer's header named the client")
		}
		if strings.TrimSpace(xff) == "" {
			require.Equal(t, addr, got)
		}
	})
}

// TestThrottle: a client gets FailureBurst failures, then one per 1/FailureRate; over
// that it is refused with 429 and a Retry-After, before its key is looked at, unless
// the key authenticated before. Other clients are not affected, and an IPv6 client is
// counted by its /64.
func TestThrottle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	g := guard.New(guard.Config{FailureBurst: 3, FailureRate: 0.5, Now: func() time.Time { return now }})
	from := func(addr string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		return r
	}
	bad, other := from("203.0.113.7:1"), from("203.0.113.8:1")
	g.Succeeded("good-key")
	for i := range 3 {
		require.NoError(t, g.Allow(bad, "guess"), "failure %d is within the burst", i+1)
		g.Failed(bad)
	}
	err := g.Allow(bad, "guess")
	require.Equal(t, consign.ELIMIT, consign.ErrorCode(err))
	e := err.(*consign.Error)
	require.Equal(t, 2*time.Second, e.RetryAfter, "one failure per 2 s")
	require.Contains(t, e.Message, "try again in 2 seconds")
	require.NoError(t, g.Allow(bad, "good-key"), "a key that authenticated is still looked at")
	require.NoError(t, g.Allow(other, "guess"), "another address is not affected")

	now = now.Add(2 * time.Second)
	require.NoError(t, g.Allow(bad, "guess"), "the allowance refills")
	g.Failed(bad)
	require.Error(t, g.Allow(bad, "guess"))

	// IPv6: the whole /64 is one client.
	for range 3 {
		g.Failed(from("[2001:db8:1:2::a]:1"))
	}
	require.Error(t, g.Allow(from("[2001:db8:1:2::b]:1"), "guess"), "same /64")
	require.NoError(t, g.Allow(from("[2001:db8:1:3::a]:1"), "guess"), "another /64")
}

// TestThrottleIsBounded: however many addresses fail, the table holds at most
// MaxClients, and a client that keeps failing is still slowed.
func TestThrottleIsBounded(t *testing.T) {
	t.Parallel()
	g := guard.New(guard.Config{FailureBurst: 1, MaxClients: 100})
	for i := range 10000 {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255)
		g.Failed(r)
		require.LessOrEqual(t, g.Clients(), 100)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "203.0.113.7:1"
	g.Failed(r)
	require.Error(t, g.Allow(r, "guess"))
}
