// Package web is Consign's dashboard, served at /ui/ by the same binary as the API.
//
// # Design
//
// Pages are rendered on the server with html/template (contextual auto-escaping, so a
// partner's response body or header can never become markup) from templates and assets
// embedded with go:embed: the dashboard needs no network, no CDN and no build step.
// Charts are inline SVG drawn here (charts.go). JavaScript is an enhancement, not a
// requirement: every action is a plain HTML form that works without it; the vendored
// htmx (static/htmx.min.js, see static/README.md) only swaps in the result of a test
// send and refreshes a delivery's attempts while it is in flight, and static/app.js
// copies an ingest URL to the clipboard.
//
// The dashboard holds no business rules. Configuration goes through internal/manage
// (endpoints, secrets, keys, orgs) and internal/inbound (sources), exactly as the JSON API
// does; test sends and wake-ups through the dispatcher; lists and details are read from
// the store's listing methods. It never runs SQL.
//
// # Sign-in, sessions and CSRF
//
// A person signs in with an API key: the admin key (every org, with an org switcher) or
// an org key (that org only). The key is checked once with manage.Authenticate; the
// session then holds the key's SHA-256 hash, never its value, in server memory, under a
// random 256-bit session id. The cookie carries only that id (HttpOnly, SameSite=Strict,
// Path=/ui/, Secure behind HTTPS). Every request looks the key up again by its hash, so a
// deleted key ends its sessions at once. Sessions expire after Config.SessionTTL and on
// sign-out; a restart signs everyone out. With several nodes behind a load balancer, use
// sticky sessions (or sign in again on another node).
//
// Every state-changing request is a POST that must carry the session's CSRF token (a
// hidden field in every form), compared in constant time; the sign-in form uses a
// double-submit cookie instead, since there is no session yet. SameSite=Strict keeps the
// session cookie off cross-site requests, and net/http's CrossOriginProtection refuses
// cross-origin POSTs from browsers that send Sec-Fetch-Site or Origin. A POST that fails
// any of these gets 403 and changes nothing.
//
// # Partner portal
//
// A portal link (POST /v1/orgs/{org}/portal-links, internal/manage) is opened at
// /ui/portal/{token}: the link is marked used in the store (one use, atomically, so two
// clicks never make two sessions) and the browser gets a session bound to the link's org
// instead of a key: the same org pages an org key sees, but for inbound sources and API
// keys (the platform's own configuration and credentials), and no org list or admin page.
// The session ends after PortalIdle without a request or SessionTTL after the link was
// opened, whichever comes first, and when the org is deleted. A read-only link's session
// sees every page with the change controls hidden, and every form, and every POST but
// sign-out, is refused with 403 on the server whatever the page showed. The portal's
// header shows the org's branding (name, logo, colour) instead of Consign's.
//
// Its cookie is SameSite=Lax rather than Strict: the link is opened from the platform's
// site, and a Strict cookie set on that cross-site navigation would not be sent on the
// redirect that follows.
//
// # Embedding
//
// By default no site may frame the dashboard (frame-ancestors 'none' and X-Frame-Options
// DENY). Config.FrameAncestors lists the origins that may; inside their iframes the
// dashboard is a third-party site, whose cookies a browser sends only when they are
// SameSite=None (accepted only with Secure) and, where third-party cookies are blocked,
// Partitioned (CHIPS: kept per embedding site). So with FrameAncestors set, sessions
// reached over HTTPS (or at a loopback host, which browsers treat as secure) get
// SameSite=None; Secure; Partitioned cookies; over plain http the dashboard can be
// framed but its session cookie stays Lax/Strict, so it works only when opened on its
// own.
//
// # Org isolation
//
// Every org page lives under /ui/orgs/{org}/. An org key may open only its own org; any
// other org, and any object that is not in the org of the path, is answered 404, as the
// API does, so that another org's objects are not acknowledged to exist.
package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/manage"
)

// Prefix is the path the dashboard is served under.
const Prefix = "/ui/"

// Config configures the dashboard. Zero fields take their defaults (WithDefaults);
// Validate says which settings cannot work.
type Config struct {
	// PublicURL is the base URL the outside world reaches the server at, shown in
	// sources' ingest URLs; default: the scheme and host each request came to.
	PublicURL string
	// SessionTTL is how long a sign-in lasts; default 12 hours.
	SessionTTL time.Duration
	// MaxSessions bounds the sessions held in memory; when full, the oldest is dropped.
	// Default 10,000.
	MaxSessions int
	// PortalIdle is how long a partner portal session lasts without a request; default
	// 30 minutes. A portal session never outlives SessionTTL either.
	PortalIdle time.Duration
	// FrameAncestors are the origins that may show the dashboard in an iframe, such as
	// "https://app.example.com" (Content-Security-Policy frame-ancestors); default none.
	FrameAncestors []string
	// Throttle, if set, slows clients that keep signing in with bad keys.
	Throttle Throttle
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = 10000
	}
	if c.PortalIdle == 0 {
		c.PortalIdle = 30 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every setting of c (with its defaults applied) that cannot work,
// naming each.
func (c Config) Validate() error {
	var errs []error
	if c.SessionTTL <= 0 {
		errs = append(errs, fmt.Errorf("SessionTTL is %s; it must be positive", c.SessionTTL))
	}
	if c.MaxSessions <= 0 {
		errs = append(errs, fmt.Errorf("MaxSessions is %d; it must be positive", c.MaxSessions))
	}
	if c.PortalIdle <= 0 {
		errs = append(errs, fmt.Errorf("PortalIdle is %s; it must be positive", c.PortalIdle))
	}
	if err := CheckFrameAncestors(c.FrameAncestors); err != nil {
		errs = append(errs, fmt.Errorf("FrameAncestors: %w", err))
	}
	return errors.Join(errs...)
}

// Server serves the dashboard.
type Server struct {
	cfg      Config
	store    Store
	manage   maskedManage // endpoint URLs masked (masked.go)
	dispatch Dispatcher
	sources  Sources // nil: inbound sources are not available in this build
	jobs     Jobs
	log      *slog.Logger
	sessions *sessions
	pages    *pages
	mux      *http.ServeMux
	handler  http.Handler
	// frameAncestors is the frame-ancestors source list of every page.
	frameAncestors string
}

// New returns the dashboard. sources may be nil, which leaves the sources page empty
// with a note. cfg gets its defaults. It panics if cfg does not pass Validate (the
// composition root validates its settings first) or the embedded templates do not parse
// (a build bug that the package's tests catch).
func New(st Store, m *manage.Service, d Dispatcher, sources Sources, jobs Jobs, cfg Config) *Server {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic("web: invalid settings: " + err.Error())
	}
	s := &Server{
		cfg: cfg, store: st, manage: maskedManage{m}, dispatch: d, sources: sources, jobs: jobs, log: cfg.Logger,
		sessions: newSessions(cfg.SessionTTL, cfg.MaxSessions, cfg.Now),
		pages:    mustParsePages(),
		mux:      http.NewServeMux(),

		frameAncestors: "'none'",
	}
	if len(cfg.FrameAncestors) > 0 {
		s.frameAncestors = strings.Join(cfg.FrameAncestors, " ")
	}
	s.routes()
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, nil, consign.Errorf(consign.EFORBIDDEN, "cross-origin request refused"))
	}))
	s.handler = cop.Handler(s.mux)
	return s
}

// Mount returns a handler that sends /ui and everything under /ui/ to ui and every
// other request to api.
func Mount(api, ui http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, Prefix) {
			ui.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", s.csp(""))
	h.Set("X-Content-Type-Options", "nosniff")
	if len(s.cfg.FrameAncestors) == 0 {
		h.Set("X-Frame-Options", "DENY") // for browsers that predate frame-ancestors
	}
	h.Set("Referrer-Policy", "same-origin")
	if r.URL.Path == "/ui" {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if r.Method == http.MethodPost {
		// Read the form here, so that a body too large, too slow or refused for the
		// server's budget is answered as such, not as the missing CSRF token it leaves.
		if err := r.ParseForm(); err != nil {
			_, said := errors.AsType[*consign.Error](err)
			_, tooLarge := errors.AsType[*http.MaxBytesError](err)
			if !said && !tooLarge {
				err = consign.Errorf(consign.EBADREQUEST, "the form cannot be read: %v", err)
			}
			s.renderError(w, r, nil, err)
			return
		}
	}
	s.handler.ServeHTTP(w, r)
}

// csp is the dashboard's Content-Security-Policy; imgOrigin, when set, is one more
// origin images may come from (a portal's https logo).
func (s *Server) csp(imgOrigin string) string {
	img := "'self' data:"
	if imgOrigin != "" {
		img += " " + imgOrigin
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src " + img + "; " +
		"connect-src 'self'; form-action 'self'; frame-ancestors " + s.frameAncestors + "; base-uri 'none'"
}

// maxForm is the largest form body the dashboard reads (a test payload is the largest).
const maxForm = 512 << 10

// access says who may open a route.
type access int

const (
	public   access = iota // anyone (sign-in, assets)
	signedIn               // any session
	adminKey               // a session of the admin key
	orgPage                // a session whose key may act on the {org} in the path; not the portal
	// portalView is an orgPage that a partner portal session of the org may read too.
	portalView
	// portalChange is an orgPage that a portal session of the org may use to change
	// things (a form, or the POST it sends), unless the session is read-only.
	portalChange
)

// req is what a handler knows about the request beyond net/http.
type req struct {
	sess *session
	key  *consign.APIKey
	org  *consign.Org // set on org pages
}

// handlerFunc is a dashboard handler; an error it returns becomes an error page.
type handlerFunc func(w http.ResponseWriter, r *http.Request, q *req) error

// handle registers a route.
func (s *Server) handle(pattern string, a access, h handlerFunc) {
	s.mux.Handle(pattern, s.wrap(a, h))
}

// wrap applies sessions, CSRF checks, authorization and panic recovery.
func (s *Server) wrap(a access, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := &req{}
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("panic in dashboard handler", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				s.renderError(w, r, q, fmt.Errorf("panic: %v", v))
			}
		}()
		if a != public {
			w.Header().Set("Cache-Control", "no-store")
			sess, key, err := s.authenticate(r)
			if err != nil {
				s.renderError(w, r, nil, err)
				return
			}
			if sess == nil {
				if c, err := r.Cookie(portalCookie); err == nil && c.Value == "1" {
					s.portalEnded(w, r)
					return
				}
				if isHTMX(r) {
					// htmx would swap the sign-in page into a fragment; have it load the page.
					target := Prefix + "signin"
					if u, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil && safeNext(u.RequestURI()) != "" {
						target += "?next=" + url.QueryEscape(u.RequestURI())
					}
					w.Header().Set("HX-Redirect", target)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				if r.Method == http.MethodGet || r.Method == http.MethodHead {
					target := Prefix + "signin"
					if r.URL.Path != Prefix {
						target += "?next=" + url.QueryEscape(r.URL.RequestURI())
					}
					http.Redirect(w, r, target, http.StatusSeeOther)
					return
				}
				s.renderError(w, r, nil, consign.Errorf(consign.EFORBIDDEN, "you are not signed in, or your session has expired: sign in and try again"))
				return
			}
			q.sess, q.key = sess, key
			if r.Method == http.MethodPost && !sess.checkCSRF(r.PostFormValue(csrfField)) {
				s.renderError(w, r, q, consign.Errorf(consign.EFORBIDDEN, "this form is stale or did not come from the dashboard (missing or wrong CSRF token): reload the page and try again"))
				return
			}
			if sess.portal {
				if a == adminKey || a == orgPage {
					s.renderError(w, r, q, consign.Errorf(consign.ENOTFOUND, "page not found: the partner portal shows this organization's endpoints, deliveries and events"))
					return
				}
				changes := a == portalChange || (a != signedIn && r.Method != http.MethodGet && r.Method != http.MethodHead)
				if sess.readOnly && changes {
					s.renderError(w, r, q, consign.Errorf(consign.EFORBIDDEN, "this portal session is read-only: it can look at everything and change nothing; ask the platform for a link that allows changes"))
					return
				}
			}
			switch {
			case a == adminKey && !key.Admin():
				s.renderError(w, r, q, consign.Errorf(consign.ENOTFOUND, "page not found"))
				return
			case a == orgPage || a == portalView || a == portalChange:
				org, err := s.orgFor(r.Context(), key, r.PathValue("org"))
				if err != nil {
					s.renderError(w, r, q, err)
					return
				}
				q.org = org
			}
		}
		if err := h(w, r, q); err != nil {
			s.renderError(w, r, q, err)
		}
	})
}

// authenticate returns the request's session and its key, or nils when there is none
// (or it expired, or its key was deleted).
func (s *Server) authenticate(r *http.Request) (*session, *consign.APIKey, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil, nil
	}
	sess := s.sessions.get(c.Value)
	if sess == nil {
		return nil, nil, nil
	}
	if sess.portal {
		// No key: the session stands for its org, as an org key of it would, and the
		// portal's rules (wrap) narrow what it may open.
		return sess, &consign.APIKey{OrgID: sess.orgID, Name: "partner portal"}, nil
	}
	key, err := s.store.KeyByHash(r.Context(), sess.keyHash)
	if consign.ErrorCode(err) == consign.ENOTFOUND {
		s.sessions.delete(c.Value)
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	return sess, key, nil
}

// orgFor returns the org of the path if the key may act on it; otherwise ENOTFOUND, the
// same answer as for an org that does not exist.
func (s *Server) orgFor(ctx context.Context, key *consign.APIKey, id string) (*consign.Org, error) {
	if !key.Admin() && key.OrgID != id {
		return nil, consign.Errorf(consign.ENOTFOUND, "org %q not found", id)
	}
	return s.store.OrgGet(ctx, id)
}

// renderError writes an error page; internal details go to the log only.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, q *req, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = consign.Errorf(consign.ETOOLARGE, "the form is larger than %d bytes", mbe.Limit)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = consign.Errorf(consign.EUNAVAILABLE, "the request was cancelled or timed out")
	}
	code := consign.ErrorCode(err)
	status := consign.HTTPStatus(code)
	if code == consign.EINTERNAL {
		s.log.Error("dashboard: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if e, ok := errors.AsType[*consign.Error](err); ok && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", consign.RetryAfterSeconds(e.RetryAfter))
	}
	if q == nil {
		q = &req{}
	}
	s.render(w, r, q, status, "error", http.StatusText(status), errorPage{Status: status, Message: consign.ErrorMessage(err)})
}

type errorPage struct {
	Status  int
	Message string
}

// checkToken compares a presented token with the expected one in constant time.
func checkToken(got, want string) bool {
	return want != "" && len(got) == len(want) && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// isHTMX reports whether the request was made by htmx, which wants a fragment.
func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// secure reports whether the browser reached us over HTTPS (directly or via a proxy).
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
