package guard

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/consign-dev/consign"
)

// knownFor is how long a key that authenticated stays known: from a client out of
// allowance, a known key is still looked at.
const knownFor = time.Hour

// throttle is the per-client failure count and the set of keys known to be good.
type throttle struct {
	mu      sync.Mutex
	clients map[netip.Prefix]*rate.Limiter
	known   map[[32]byte]time.Time
}

// Allow reports whether the client of r may present credential now: nil, or an ELIMIT
// error with RetryAfter when the client has used up its allowance of failures and the
// credential is not a key that authenticated on this node within the last hour.
func (g *Guard) Allow(r *http.Request, credential string) error {
	now := g.cfg.Now()
	g.throttle.mu.Lock()
	lim := g.throttle.clients[clientKey(g.Client(r))]
	g.throttle.mu.Unlock()
	if lim == nil {
		return nil
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 || g.known(credential, now) {
		return nil
	}
	g.refused(ReasonThrottled)
	wait := time.Duration((1 - tokens) / g.cfg.FailureRate * float64(time.Second))
	secs := consign.RetryAfterSeconds(wait)
	unit := "seconds"
	if secs == "1" {
		unit = "second"
	}
	return &consign.Error{Code: consign.ELIMIT, RetryAfter: wait, Message: fmt.Sprintf(
		"too many failed attempts to authenticate from your address: try again in %s %s", secs, unit)}
}

// Failed counts a failed authentication against the client of r.
func (g *Guard) Failed(r *http.Request) {
	now := g.cfg.Now()
	key := clientKey(g.Client(r))
	t := &g.throttle
	t.mu.Lock()
	lim := t.clients[key]
	if lim == nil {
		if len(t.clients) >= g.cfg.MaxClients {
			g.evict(now)
		}
		lim = rate.NewLimiter(rate.Limit(g.cfg.FailureRate), g.cfg.FailureBurst)
		t.clients[key] = lim
	}
	t.mu.Unlock()
	lim.AllowN(now, 1)
}

// Clients returns how many clients' failures the guard remembers.
func (g *Guard) Clients() int {
	g.throttle.mu.Lock()
	defer g.throttle.mu.Unlock()
	return len(g.throttle.clients)
}

// Succeeded remembers credential as a key that authenticated.
func (g *Guard) Succeeded(credential string) {
	now := g.cfg.Now()
	h := sha256.Sum256([]byte(credential))
	t := &g.throttle
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.known[h]; !ok && len(t.known) >= g.cfg.MaxClients {
		for k, at := range t.known {
			if now.Sub(at) > knownFor || len(t.known) >= g.cfg.MaxClients {
				delete(t.known, k)
			}
		}
	}
	t.known[h] = now
}

func (g *Guard) known(credential string, now time.Time) bool {
	if credential == "" {
		return false
	}
	h := sha256.Sum256([]byte(credential))
	g.throttle.mu.Lock()
	at, ok := g.throttle.known[h]
	g.throttle.mu.Unlock()
	return ok && now.Sub(at) <= knownFor
}

// evict makes room in the client table (its lock held): first the clients whose
// allowance is whole again, then any, down to nine tenths of the table.
func (g *Guard) evict(now time.Time) {
	t := &g.throttle
	for k, lim := range t.clients {
		if lim.TokensAt(now) >= float64(g.cfg.FailureBurst) {
			delete(t.clients, k)
		}
	}
	for k := range t.clients {
		if len(t.clients) < g.cfg.MaxClients*9/10 {
			break
		}
		delete(t.clients, k)
	}
}

// Client returns the address of the client that sent r: the connection's peer, or, when
// the peer is a trusted proxy, the first address in X-Forwarded-For (read from the right)
// that is not one. The zero Addr when the peer's address cannot be read.
func (g *Guard) Client(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	client := ap.Addr().Unmap()
	if !g.trusted(client) {
		return client
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			hop, ok := parseHop(parts[j])
			if !ok {
				return client // a proxy wrote what it should not: stay with the last known hop
			}
			client = hop
			if !g.trusted(hop) {
				return hop
			}
		}
	}
	return client
}

func (g *Guard) trusted(a netip.Addr) bool {
	for _, p := range g.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a port ("1.2.3.4:5",
// "[::1]:5").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// clientKey is what failures are counted under: an IPv4 address, or the /64 an IPv6
// address is in (one subscriber's usual allocation, which its owner can fill with
// addresses at will).
func clientKey(a netip.Addr) netip.Prefix {
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}
