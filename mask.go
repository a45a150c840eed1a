package consign

import (
	"maps"
	"net/http"
	"net/url"
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
// credential, amqp://user:PASSWORD@host/), and raw without it; ok is false when raw
// carries none. The user name stays: it names an account, like a header's name.
func URLPassword(raw string) (password, without string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return "", raw, false
	}
	p, set := u.User.Password()
	if !set {
		return "", raw, false
	}
	u.User = url.User(u.User.Username())
	return p, u.String(), true
}

// WithURLPassword returns raw (with no password of its own) with password put in its
// user information; raw as given when it does not parse or password is "".
func WithURLPassword(raw, password string) string {
	u, err := url.Parse(raw)
	if err != nil || password == "" {
		return raw
	}
	name := ""
	if u.User != nil {
		name = u.User.Username()
	}
	u.User = url.UserPassword(name, password)
	return u.String()
}

// KeepMaskedURL returns cur when next is cur as MaskURL shows it (a client sending back
// the URL it was shown keeps the password stored), else next.
func KeepMaskedURL(next, cur string) string {
	if next != cur && next == MaskURL(cur) {
		return cur
	}
	return next
}
