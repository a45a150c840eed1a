package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/store"
)

type signinPage struct {
	Token string
	Next  string
	Error string
}

// signinPage shows the sign-in form with a fresh double-submit token.
func (s *Server) signinPage(w http.ResponseWriter, r *http.Request, q *req) error {
	if sess, _, err := s.authenticate(r); err == nil && sess != nil {
		redirect(w, r, Prefix)
		return nil
	}
	s.renderSignin(w, r, http.StatusOK, safeNext(r.URL.Query().Get("next")), "")
	return nil
}

func (s *Server) renderSignin(w http.ResponseWriter, r *http.Request, status int, next, msg string) {
	token := randomToken()
	http.SetCookie(w, s.cookie(r, signinCookie, token, 3600, http.SameSiteStrictMode))
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, &req{}, status, "signin", "Sign in", signinPage{Token: token, Next: next, Error: msg})
}

// signin checks the key and starts a session.
func (s *Server) signin(w http.ResponseWriter, r *http.Request, q *req) error {
	c, err := r.Cookie(signinCookie)
	if err != nil || !checkToken(r.PostFormValue(csrfField), c.Value) {
		return consign.Errorf(consign.EFORBIDDEN, "the sign-in form is stale or did not come from the dashboard: reload the page and try again (cookies must be enabled)")
	}
	next := safeNext(r.PostFormValue("next"))
	value := strings.TrimSpace(r.PostFormValue("key"))
	t := s.cfg.Throttle
	if t != nil && value != "" {
		if err := t.Allow(r, value); err != nil {
			e, ok := errors.AsType[*consign.Error](err)
			if !ok || e.RetryAfter <= 0 {
				return err
			}
			wait := consign.RetryAfterSeconds(e.RetryAfter)
			w.Header().Set("Retry-After", wait)
			s.renderSignin(w, r, consign.HTTPStatus(e.Code), next, "Too many failed sign-ins from your address: try again in "+wait+" s.")
			return nil
		}
	}
	key, err := s.manage.Authenticate(r.Context(), value)
	if consign.ErrorCode(err) == consign.EUNAUTHORIZED {
		msg := "That API key is not valid."
		if value == "" {
			msg = "Enter an API key."
		} else {
			s.log.Warn("dashboard: sign-in with an invalid API key", "remote", r.RemoteAddr)
			if t != nil {
				t.Failed(r)
			}
		}
		s.renderSignin(w, r, http.StatusUnauthorized, next, msg)
		return nil
	} else if err != nil {
		return err
	}
	if t != nil {
		t.Succeeded(value)
	}
	if old, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.delete(old.Value) // a new sign-in never reuses a session id
	}
	cookie, _ := s.sessions.create(manage.HashKey(value), key.ID)
	http.SetCookie(w, s.cookie(r, sessionCookie, cookie, int(s.cfg.SessionTTL.Seconds()), http.SameSiteStrictMode))
	http.SetCookie(w, s.cookie(r, signinCookie, "", -1, http.SameSiteStrictMode))
	http.SetCookie(w, s.cookie(r, portalCookie, "", -1, http.SameSiteLaxMode))
	if next == "" {
		next = Prefix
	}
	redirect(w, r, next)
	return nil
}

// safeNext keeps a post-sign-in destination only if it is a dashboard path.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return ""
	}
	return next
}

func (s *Server) signout(w http.ResponseWriter, r *http.Request, q *req) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.delete(c.Value)
	}
	http.SetCookie(w, s.cookie(r, sessionCookie, "", -1, http.SameSiteStrictMode))
	if q.sess.portal {
		// The portal cookie stays: the next page says the session ended, not "sign in".
		redirect(w, r, Prefix)
		return nil
	}
	redirect(w, r, Prefix+"signin")
	return nil
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request, q *req) error {
	return consign.Errorf(consign.ENOTFOUND, "there is no dashboard page at %s", r.URL.Path)
}

type orgsPage struct {
	Orgs   []*consign.Org
	Form   orgForm
	Errors fieldErrors
}

type orgForm struct{ Name, Role string }

// home is the admin's list of orgs; an org key goes straight to its org.
func (s *Server) home(w http.ResponseWriter, r *http.Request, q *req) error {
	if !q.key.Admin() {
		redirect(w, r, orgURL(q.key.OrgID, ""))
		return nil
	}
	return s.renderOrgs(w, r, q, http.StatusOK, orgForm{Role: string(consign.RoleBoth)}, nil)
}

func (s *Server) renderOrgs(w http.ResponseWriter, r *http.Request, q *req, status int, f orgForm, errs fieldErrors) error {
	orgs, err := s.store.OrgList(r.Context(), store.Page{Limit: 500})
	if err != nil {
		return err
	}
	s.render(w, r, q, status, "orgs", "Organizations", orgsPage{Orgs: orgs, Form: f, Errors: errs})
	return nil
}

func (s *Server) switchOrg(w http.ResponseWriter, r *http.Request, q *req) error {
	id := r.URL.Query().Get("org")
	if id == "" {
		redirect(w, r, Prefix)
		return nil
	}
	if _, err := s.store.OrgGet(r.Context(), id); err != nil {
		return err
	}
	redirect(w, r, orgURL(id, ""))
	return nil
}

func (s *Server) createOrg(w http.ResponseWriter, r *http.Request, q *req) error {
	f := orgForm{Name: r.PostFormValue("name"), Role: r.PostFormValue("role")}
	o := &consign.Org{Name: f.Name, Role: consign.Role(f.Role)}
	if err := s.manage.CreateOrg(r.Context(), o); err != nil {
		if errs, ok := formErrors(err); ok {
			return s.renderOrgs(w, r, q, http.StatusUnprocessableEntity, f, errs)
		}
		return err
	}
	q.sess.addFlash("ok", "Organization "+o.Name+" created.")
	redirect(w, r, orgURL(o.ID, ""))
	return nil
}

type keysPage struct {
	Keys    []*consign.APIKey
	Created *consign.APIKey
	Errors  fieldErrors
	Name    string
}

func (s *Server) keys(w http.ResponseWriter, r *http.Request, q *req) error {
	return s.renderKeys(w, r, q, http.StatusOK, keysPage{})
}

func (s *Server) renderKeys(w http.ResponseWriter, r *http.Request, q *req, status int, p keysPage) error {
	keys, err := s.store.KeyList(r.Context(), q.org.ID, store.Page{Limit: 500})
	if err != nil {
		return err
	}
	p.Keys = keys
	s.render(w, r, q, status, "keys", "API keys", p)
	return nil
}

// createKey makes an org key and shows its value, this once, in the reply to the POST
// (it is not kept anywhere to show again).
func (s *Server) createKey(w http.ResponseWriter, r *http.Request, q *req) error {
	name := r.PostFormValue("name")
	k, err := s.manage.CreateKey(r.Context(), q.org.ID, name)
	if err != nil {
		if errs, ok := formErrors(err); ok {
			return s.renderKeys(w, r, q, http.StatusUnprocessableEntity, keysPage{Errors: errs, Name: name})
		}
		return err
	}
	return s.renderKeys(w, r, q, http.StatusCreated, keysPage{Created: k})
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request, q *req) error {
	id := r.PathValue("id")
	if id == q.key.ID {
		return consign.Errorf(consign.ECONFLICT, "this is the key you are signed in with; sign in with another key to delete it")
	}
	if err := s.manage.DeleteKey(r.Context(), q.org.ID, id); err != nil {
		return err
	}
	q.sess.addFlash("ok", "Key "+id+" deleted; it no longer works.")
	redirect(w, r, orgURL(q.org.ID, "keys"))
	return nil
}
