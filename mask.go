package consign

import (
	"maps"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaskPrefix starts every masked credential.
const MaskPrefix = "••••"

// Mask is how a credential a client configured (an endpoint's header value, a poll
// header) is shown once stored: "••••" and its last 4 characters, enough to tell two
// keys apart; a value shorter than 12 characters shows none of them, since its last 4
// would give away too much of it.
func Mask(v string) string {
	n := utf8.RuneCountInString(v)
	if n < 12 {
		return MaskPrefix
	}
	r := []rune(v)
	return MaskPrefix + string(r[n-4:])
}

// MaskHeaders returns a copy of h with every value masked.
func MaskHeaders(h map[string]string) map[string]string {
	if h == nil {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = Mask(v)
	}
	return out
}

// KeepMasked returns next with each value that is the mask of the value cur holds for
// the same header (names compared as HTTP compares them) replaced by that value: a
// client that sends back what it was shown keeps what is stored.
func KeepMasked(next, cur map[string]string) map[string]string {
	if len(next) == 0 || len(cur) == 0 {
		return next
	}
	out := maps.Clone(next)
	for k, v := range next {
		for ck, cv := range cur {
			if http.CanonicalHeaderKey(ck) == http.CanonicalHeaderKey(k) && v == Mask(cv) {
				out[k] = cv
			}
		}
	}
	return out
}

// Masked returns a copy of e fit for a reply: its header values, the password in its
// URL (a broker's) and its auth credential masked.
func (e *Endpoint) Masked() *Endpoint {
	out := *e
	out.URL = MaskURL(e.URL)
	out.Headers = MaskHeaders(e.Headers)
	out.Auth = e.Auth.Masked()
	return &out
}

// URLPassword returns the password in raw's user information (a broker URL's
// credential, amqps://user:PASSWORD@host/), and raw without it; ok is false when raw
// carries none. The user name stays: it names an account, like a header's name.
func URLPassword(raw string) (password, without string, ok bool) {
	prefix, user, rest, found := splitUserinfo(raw)
	if !found || user == nil {
		return "", raw, false
	}
	p, set := user.Password()
	if !set {
		return "", raw, false
	}
	return p, prefix + url.User(user.Username()).String() + "@" + rest, true
}

// WithURLPassword returns raw (with no password of its own) with password put in its
// user information; raw as given when it has no scheme:// or password is "".
func WithURLPassword(raw, password string) string {
	prefix, user, rest, found := splitUserinfo(raw)
	if !found || password == "" {
		return raw
	}
	name := ""
	if user != nil {
		name = user.Username()
	}
	return prefix + url.UserPassword(name, password).String() + "@" + rest
}

// splitUserinfo cuts a URL into "scheme://" (or "//"), its user information (nil
// when it has none) and what follows the "@" (or the authority, without one); found is
// false when raw has no authority. It does not parse the host, so that a list of hosts
// (kafka+tls://user:pass@a:9093,b:9093/topic) is cut as well as one.
func splitUserinfo(raw string) (prefix string, user *url.Userinfo, rest string, found bool) {
	i := strings.Index(raw, "//")
	if i < 0 || i > 0 && raw[i-1] != ':' || strings.ContainsAny(raw[:i], "/?#@") {
		return "", nil, raw, false
	}
	prefix, rest = raw[:i+2], raw[i+2:]
	authority := rest
	if end := strings.IndexAny(authority, "/?#"); end >= 0 {
		authority = authority[:end]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return prefix, nil, rest, true
	}
	u, err := url.Parse("x://" + authority[:at+1] + "h")
	if err != nil || u.User == nil {
		u = &url.URL{User: url.User(authority[:at])} // unparsable: all of it is secret
		if i := strings.IndexByte(authority[:at], ':'); i >= 0 {
			u.User = url.UserPassword(authority[:i], authority[i+1:at])
		}
	}
	return prefix, u.User, rest[at+1:], true
}

// KeepMaskedURL returns cur when next is cur as MaskURL shows it (a client sending back
// the URL it was shown keeps the password stored), else next.
func KeepMaskedURL(next, cur string) string {
	if next != cur && next == MaskURL(cur) {
		return cur
	}
	return next
}
