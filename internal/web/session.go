package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// Cookie and form field names.
const (
	sessionCookie = "consign_session"
	signinCookie  = "consign_signin" // the sign-in form's double-submit token
	portalCookie  = "consign_portal" // "1" while a browser is in a portal session: its end is explained, not a sign-in form
	csrfField     = "csrf"
)

// session is one signed-in browser. It holds the hash of the key it signed in with,
// never the key itself; or, for a partner portal session, the org it may see.
type session struct {
	keyHash []byte
	keyID   string
	csrf    string
	expires time.Time // guarded by sessions.mu

	// A portal session has no key: it stands for orgID, read-only or not. It expires
	// idle after its last request, but never after hardExpires.
	portal      bool
	orgID       string
	readOnly    bool
	idle        time.Duration
	hardExpires time.Time

	mu    sync.Mutex
	flash []flash
}

// flash is a one-time message shown on the next page the session opens.
type flash struct {
	Kind    string // "ok" or "error"
	Message string
}

func (s *session) checkCSRF(token string) bool { return checkToken(token, s.csrf) }

// addFlash queues a message for the next page.
func (s *session) addFlash(kind, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.flash) < 10 {
		s.flash = append(s.flash, flash{Kind: kind, Message: msg})
	}
}

// takeFlash returns the queued messages and forgets them.
func (s *session) takeFlash() []flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

// sessions is the in-memory session table, keyed by the SHA-256 of the cookie value so
// that the table itself holds nothing a browser could present.
type sessions struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSessions(ttl time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, max: max, now: now, m: map[[32]byte]*session{}}
}

// randomToken returns 256 random bits, URL-safe.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func sessionKey(cookie string) [32]byte { return sha256.Sum256([]byte(cookie)) }

// create starts a session for a key and returns the cookie value that names it.
func (ss *sessions) create(keyHash []byte, keyID string) (string, *session) {
	return ss.add(&session{keyHash: keyHash, keyID: keyID, expires: ss.now().Add(ss.ttl)})
}

// createPortal starts a partner portal session for an org; it lasts idle after each
// request and at most the table's TTL in all.
func (ss *sessions) createPortal(orgID string, readOnly bool, idle time.Duration) (string, *session) {
	now := ss.now()
	hard := now.Add(ss.ttl)
	return ss.add(&session{portal: true, orgID: orgID, readOnly: readOnly, idle: idle, hardExpires: hard,
		expires: minTime(now.Add(idle), hard)})
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// add stores a new session under a fresh cookie value and returns both.
func (ss *sessions) add(s *session) (string, *session) {
	now := ss.now()
	value := randomToken()
	s.csrf = randomToken()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= ss.max {
		ss.sweep(now)
	}
	for len(ss.m) >= ss.max {
		ss.dropOldest()
	}
	ss.m[sessionKey(value)] = s
	return value, s
}

// get returns the live session a cookie value names, or nil.
func (ss *sessions) get(cookie string) *session {
	if cookie == "" || len(cookie) > 100 {
		return nil
	}
	k := sessionKey(cookie)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[k]
	if s == nil {
		return nil
	}
	now := ss.now()
	if !now.Before(s.expires) {
		delete(ss.m, k)
		return nil
	}
	if s.idle > 0 {
		s.expires = minTime(now.Add(s.idle), s.hardExpires)
	}
	return s
}

// delete ends a session.
func (ss *sessions) delete(cookie string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sessionKey(cookie))
}

// sweep drops expired sessions; the caller holds mu.
func (ss *sessions) sweep(now time.Time) {
	for k, s := range ss.m {
		if !now.Before(s.expires) {
			delete(ss.m, k)
		}
	}
}

// dropOldest drops the session that expires first; the caller holds mu.
func (ss *sessions) dropOldest() {
	var oldest [32]byte
	var at time.Time
	for k, s := range ss.m {
		if at.IsZero() || s.expires.Before(at) {
			oldest, at = k, s.expires
		}
	}
	delete(ss.m, oldest)
}
