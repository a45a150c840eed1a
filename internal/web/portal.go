package web

import (
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/manage"
)

// CheckFrameAncestors checks the origins that may frame the dashboard: each an origin
// such as "https://app.example.com" or "https://*.example.com:8443" (scheme, host, an
// optional port; nothing after), or 'self'. The error names the first bad one.
func CheckFrameAncestors(origins []string) error {
	for _, o := range origins {
		if err := checkFrameAncestor(o); err != nil {
			return err
		}
	}
	return nil
}

// originHost is a host (a name, an IPv4 address or a bracketed IPv6 one, a name may
// start with "*.") and an optional port: the characters a CSP host-source allows,
// none that could end or add a directive.
var originHost = regexp.MustCompile(`^(\*\.)?([a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:.]+\])(:[0-9]{1,5})?$`)

func checkFrameAncestor(o string) error {
	if o == "'self'" {
		return nil
	}
	scheme, rest, ok := strings.Cut(o, "://")
	host := strings.TrimSuffix(rest, "/")
	switch {
	case !ok || (scheme != "https" && scheme != "http"):
		return fmt.Errorf("%q is not an origin: want https://host[:port], such as https://app.example.com (or 'self')", o)
	case !originHost.MatchString(host):
		return fmt.Errorf("%q is not an origin: want a scheme, a host and an optional port, nothing after (no path, query, spaces or ';')", o)
	}
	return nil
}

// cookie returns a dashboard cookie with the SameSite mode site; SameSite=None; Secure;
// Partitioned instead when the dashboard may be framed and the browser reached it securely, so
// that it is sent inside another site's iframe (package doc, "Embedding").
func (s *Server) cookie(r *http.Request, name, value string, maxAge int, site http.SameSite) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: true, Secure: secure(r), SameSite: site}
	if len(s.cfg.FrameAncestors) > 0 && (c.Secure || loopback(r.Host)) {
		c.SameSite, c.Secure, c.Partitioned = http.SameSiteNoneMode, true, true
	}
	return c
}

// loopback reports whether a request's host is the local machine, which browsers treat
// as a secure origin even over plain http (they keep Secure cookies for it).
func loopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

type portalMessage struct {
	Heading string
	Message string
	// SignIn offers the key sign-in to whoever else uses this browser.
	SignIn bool
}

// openPortal opens a portal link: the link is used up and the browser gets a session
// for the link's org only. A link that cannot be opened gets a page that says why.
func (s *Server) openPortal(w http.ResponseWriter, r *http.Request, q *req) error {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		// A link checker's HEAD must not use the link up before the partner opens it.
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	l, err := s.manage.UsePortalLink(r.Context(), r.PathValue("token"))
	if err != nil {
		code := consign.ErrorCode(err)
		if code != consign.ENOTFOUND && code != consign.EGONE {
			return err
		}
		s.render(w, r, &req{}, consign.HTTPStatus(code), "portal_message", "Link cannot be opened",
			portalMessage{Heading: "This link cannot be opened", Message: consign.ErrorMessage(err)})
		return nil
	}
	if old, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.delete(old.Value) // a portal never reuses a session id
	}
	value, _ := s.sessions.createPortal(l.OrgID, l.ReadOnly, s.cfg.PortalIdle)
	age := int(s.cfg.SessionTTL.Seconds())
	http.SetCookie(w, s.cookie(r, sessionCookie, value, age, http.SameSiteLaxMode))
	http.SetCookie(w, s.cookie(r, portalCookie, "1", age, http.SameSiteLaxMode))
	redirect(w, r, orgURL(l.OrgID, ""))
	return nil
}

// portalEnded answers a browser whose portal session is over: a page that says so
// (htmx reloads the page to show it).
func (s *Server) portalEnded(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if isHTMX(r) {
		w.Header().Set("HX-Refresh", "true")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.render(w, r, &req{}, http.StatusUnauthorized, "portal_message", "Session ended",
		portalMessage{Heading: "Your session has ended", SignIn: true, Message: fmt.Sprintf(
			"Partner portal sessions end after %s without activity, %s after the link was opened, or when you sign out. "+
				"Ask the platform that sent you here for a new link.", durText(s.cfg.PortalIdle), durText(s.cfg.SessionTTL))})
}

// themeColor is a brand colour without its "#", as theme.css takes it.
var themeColor = regexp.MustCompile(`^[0-9a-f]{6}$`)

// themeCSS is the portal header's colour: a stylesheet, since the policy allows no inline
// style. The colour is checked, so nothing else can be written into the sheet.
func (s *Server) themeCSS(w http.ResponseWriter, r *http.Request, q *req) error {
	c := r.URL.Query().Get("color")
	if !themeColor.MatchString(c) {
		return consign.Errorf(consign.ENOTFOUND, "no theme for colour %q: want six lowercase hex digits", c)
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, err := fmt.Fprintf(w, ".top.portal { background: #%s; border-bottom: 4px solid rgb(0 0 0 / 25%%); }\n", c)
	return err
}

// LogoSrc returns the branding's logo for an img src: checked when it was saved (an
// https URL or a data:image base64 URL), so a data: URL is passed as safe.
func (v *view) LogoSrc() template.URL {
	if v.Brand == nil {
		return ""
	}
	return template.URL(v.Brand.LogoURL) //nolint:gosec // validated by consign.Branding on save
}

// ThemeURL is the stylesheet of the portal's colour, or "".
func (v *view) ThemeURL() string {
	if v.Brand == nil || v.Brand.Color == "" {
		return ""
	}
	return Prefix + "theme.css?color=" + url.QueryEscape(strings.TrimPrefix(v.Brand.Color, "#"))
}

// CanChange reports whether the page shows controls that change things: not in a
// read-only portal session.
func (v *view) CanChange() bool { return !v.ReadOnly }

// Portal link lifetimes offered by the dashboard's form.
var portalLinkTTLs = []string{"15m", "1h", "8h", "24h", "168h"}

type portalPage struct {
	Branding consign.Branding
	Errors   fieldErrors
	TTLs     []string
	// Link and its expiry are shown once, after it was created.
	Link      string
	ExpiresAt time.Time
	ReadOnly  bool
}

// portalSettings shows the org's branding (the admin may change it) and makes portal links.
func (s *Server) portalSettings(w http.ResponseWriter, r *http.Request, q *req) error {
	p := portalPage{}
	if q.org.Branding != nil {
		p.Branding = *q.org.Branding
	}
	s.renderPortalSettings(w, r, q, http.StatusOK, p)
	return nil
}

func (s *Server) renderPortalSettings(w http.ResponseWriter, r *http.Request, q *req, status int, p portalPage) {
	p.TTLs = portalLinkTTLs
	s.render(w, r, q, status, "portal", "Partner portal", p)
}

// saveBranding changes the org's branding (admin key, as PATCH /v1/orgs/{org}).
func (s *Server) saveBranding(w http.ResponseWriter, r *http.Request, q *req) error {
	if !q.key.Admin() {
		return consign.Errorf(consign.EFORBIDDEN, "only the admin key changes an organization's branding")
	}
	b := consign.Branding{Name: r.PostFormValue("name"), LogoURL: r.PostFormValue("logo_url"), Color: r.PostFormValue("color")}
	o := *q.org
	o.Branding = &b
	if err := s.manage.UpdateOrg(r.Context(), &o); err != nil {
		if errs, ok := formErrors(err); ok {
			s.renderPortalSettings(w, r, q, http.StatusUnprocessableEntity, portalPage{Branding: b, Errors: errs})
			return nil
		}
		return err
	}
	q.sess.addFlash("ok", "Branding saved: the partner portal shows it from the next page on.")
	redirect(w, r, orgURL(o.ID, "portal"))
	return nil
}

// createPortalLink makes a portal link and shows its URL this once.
func (s *Server) createPortalLink(w http.ResponseWriter, r *http.Request, q *req) error {
	in := manage.PortalLinkInput{ReadOnly: r.PostFormValue("read_only") == "true"}
	if v := r.PostFormValue("expires_in"); v != "" {
		d, err := consign.ParseDuration(v)
		if err != nil {
			return consign.Invalid("expires_in", `must be a duration such as "1h"`)
		}
		in.ExpiresIn = (*consign.Duration)(&d)
	}
	l, token, err := s.manage.CreatePortalLink(r.Context(), q.org.ID, in)
	if err != nil {
		return err
	}
	p := portalPage{Link: s.publicBase(r) + Prefix + "portal/" + token, ExpiresAt: l.ExpiresAt, ReadOnly: l.ReadOnly}
	if q.org.Branding != nil {
		p.Branding = *q.org.Branding
	}
	s.renderPortalSettings(w, r, q, http.StatusCreated, p)
	return nil
}

// publicBase is the base of URLs the outside world opens: the configured public URL, or
// the scheme and host the request came to.
func (s *Server) publicBase(r *http.Request) string {
	if base := strings.TrimSuffix(s.cfg.PublicURL, "/"); base != "" {
		return base
	}
	scheme := "http"
	if secure(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
