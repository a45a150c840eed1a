package sender

import (
	"crypto/sha256"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// The checks and connection details of a request, shared by both HTTP clients
// (client.go, client_stdlib.go): what is refused and how it is worded does not
// depend on which client sends it.

// poolKey identifies the connections that can carry a request: same scheme,
// same host and port as written in the URL.
type poolKey struct {
	tls    bool
	host   string            // url.URL.Host, in ASCII
	client [sha256.Size]byte // the fingerprint of the endpoint's ClientTLS; zero without
}

// target is a Request's method and URL, checked and ready to write.
type target struct {
	method   string
	key      poolKey
	hostname string // for the dial and TLS's server name
	port     string
	uri      string // the request target: path and query
	req      *http.Request
	client   *ClientTLS // the endpoint's own TLS settings, or nil
}

// targetCache keeps the targets of the URLs sent to lately, checked and located: an
// endpoint's URL is parsed and checked once, not on every attempt (a URL and method
// always give the same target, as the checks depend on nothing else but the Sender's
// fixed settings). Refused URLs are not kept. It holds up to maxTargets URLs and starts
// afresh when full, so URLs that change with every attempt (a transformation's) cost
// no more than before.
type targetCache struct {
	mu sync.RWMutex
	m  map[targetKey]target
}

type targetKey struct{ method, url string }

// maxTargets bounds the URLs a targetCache holds.
const maxTargets = 4096

// get returns the target of method and rawURL as build gives it, from the cache when it
// was made before.
func (c *targetCache) get(method, rawURL string, build func(method, rawURL string) (target, bool, string)) (target, bool, string) {
	k := targetKey{method, rawURL}
	c.mu.RLock()
	t, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return t, false, ""
	}
	t, blocked, msg := build(method, rawURL)
	if msg != "" {
		return t, blocked, msg
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxTargets {
		c.m = make(map[targetKey]target)
	}
	c.m[k] = t
	c.mu.Unlock()
	return t, false, ""
}

// postRequest tells http.ReadResponse the method of the request it reads the
// answer to (HEAD has no body); it only reads it.
var postRequest = &http.Request{Method: http.MethodPost}

// parseTarget checks the method and URL of r. Its errors are texts for
// Outcome.Err.
func parseTarget(method, rawURL string) (*url.URL, target, string) {
	t := target{method: method, req: postRequest}
	if method != http.MethodPost {
		if !httpguts.ValidHeaderFieldName(method) {
			return nil, t, "invalid request: invalid method " + strconv.Quote(method)
		}
		t.req = &http.Request{Method: method}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, t, "invalid request: " + unwrapURLError(err).Error()
	}
	return u, t, ""
}

// locate fills in the connection details of t from u, whose scheme has
// passed preflight.
func (t *target) locate(u *url.URL) string {
	if u.Host == "" {
		return "invalid request: the URL has no host"
	}
	if u.User != nil {
		return "invalid request: the URL must not contain credentials (user:pass@); send them in a header"
	}
	host := u.Host
	if !ascii(host) {
		var err error
		if host, err = httpguts.PunycodeHostPort(host); err != nil {
			return "invalid request: host " + strconv.Quote(u.Host) + ": " + err.Error()
		}
	}
	t.key = poolKey{tls: u.Scheme == "https", host: host}
	t.hostname, t.port, _ = net.SplitHostPort(host)
	if t.hostname == "" {
		t.hostname, t.port = host, ""
		if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
			t.hostname = host[1 : len(host)-1]
		}
	}
	if t.port == "" {
		t.port = "80"
		if t.key.tls {
			t.port = "443"
		}
	}
	t.uri = u.RequestURI()
	return ""
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// reqExcluded are the caller's headers the framing writes itself or never
// sends.
var reqExcluded = map[string]bool{
	"Host": true, "User-Agent": true, "Content-Length": true,
	"Transfer-Encoding": true, "Trailer": true, "Connection": true,
}

// headerProblem returns why h cannot be sent (a name or value that would
// break the request's framing), or "".
func headerProblem(h http.Header) string {
	for k, vs := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return "invalid request: invalid header name " + strconv.Quote(k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return "invalid request: invalid value for header " + k
			}
		}
	}
	return ""
}
