package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages holds one template set per page: the shared layout and partials plus the page's
// own "content".
type pages struct {
	sets map[string]*template.Template
}

func mustParsePages() *pages {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	p := &pages{sets: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		p.sets[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return p
}

// view is what every page template gets.
type view struct {
	Title   string
	Page    string
	CSRF    string
	Key     *consign.APIKey
	Org     *consign.Org
	Orgs    []*consign.Org // the admin's org switcher
	Flash   []flash
	Sources bool // inbound sources are available
	// Portal is set in a partner portal session, ReadOnly in a read-only one; Brand is
	// the org's branding there.
	Portal   bool
	ReadOnly bool
	Brand    *consign.Branding
	Data     any
}

// Nav reports whether a navigation item is the current section.
func (v *view) Nav(section string) bool {
	return strings.HasPrefix(v.Page, section)
}

// OrgURL returns the URL of a page of the current org.
func (v *view) OrgURL(rest string) string {
	if v.Org == nil {
		return Prefix
	}
	return orgURL(v.Org.ID, rest)
}

func orgURL(orgID, rest string) string {
	return Prefix + "orgs/" + orgID + "/" + strings.TrimPrefix(rest, "/")
}

// render writes a whole page: the layout around the page's "content".
func (s *Server) render(w http.ResponseWriter, r *http.Request, q *req, status int, page, title string, data any) {
	v := s.view(r, q, page, title, data)
	if origin := v.Brand.LogoOrigin(); origin != "" {
		w.Header().Set("Content-Security-Policy", s.csp(origin)) // the org's logo
	}
	s.execute(w, status, page, "layout", v)
}

// renderFragment writes one named template of a page, for htmx swaps.
func (s *Server) renderFragment(w http.ResponseWriter, r *http.Request, q *req, page, name string, data any) {
	v := s.view(r, q, page, "", data)
	s.execute(w, http.StatusOK, page, name, v)
}

func (s *Server) view(r *http.Request, q *req, page, title string, data any) *view {
	v := &view{Title: title, Page: page, Key: q.key, Org: q.org, Sources: s.sources != nil, Data: data}
	if q.sess != nil {
		v.CSRF = q.sess.csrf
		v.Flash = q.sess.takeFlash()
		if q.sess.portal {
			v.Portal, v.ReadOnly = true, q.sess.readOnly
			if v.Org == nil { // an error page before the org was read
				if o, err := s.store.OrgGet(r.Context(), q.sess.orgID); err == nil {
					v.Org = o
				}
			}
			if v.Org != nil {
				v.Brand = v.Org.Branding
			}
		}
	}
	if q.key != nil && q.key.Admin() {
		orgs, err := s.store.OrgList(r.Context(), store.Page{Limit: 500})
		if err != nil {
			s.log.Warn("dashboard: list orgs for the switcher", "err", err)
		}
		v.Orgs = orgs
	}
	return v
}

func (s *Server) execute(w http.ResponseWriter, status int, page, name string, v *view) {
	t := s.pages.sets[page]
	if t == nil {
		panic("web: no page " + page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, v); err != nil {
		s.log.Error("dashboard: render", "page", page, "err", err)
		http.Error(w, "internal error while rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// redirect sends the browser to a page after a POST (303, so it GETs it).
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// kv is one entry of a map shown in order.
type kv struct{ K, V string }

var funcs = template.FuncMap{
	"ts": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		case *time.Time:
			if v == nil || v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return fmt.Sprint(t)
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"dtlocal": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02T15:04")
	},
	"pct": func(f *float64) string {
		if f == nil {
			return "—"
		}
		return pctText(*f)
	},
	"ms": func(v *int64) string {
		if v == nil {
			return "—"
		}
		return strconv.FormatInt(*v, 10) + " ms"
	},
	"msf": func(v *float64) string {
		if v == nil {
			return "—"
		}
		return strconv.FormatFloat(*v, 'f', 1, 64) + " ms"
	},
	"dur": func(d consign.Duration) string { return durText(time.Duration(d)) },
	"sorted": func(m map[string]string) []kv {
		out := make([]kv, 0, len(m))
		for k, v := range m {
			out = append(out, kv{k, v})
		}
		slices.SortFunc(out, func(a, b kv) int { return strings.Compare(a.K, b.K) })
		return out
	},
	"pretty":    prettyJSON,
	"prettyRaw": func(b json.RawMessage) string { return prettyJSON(string(b)) },
	"join":      strings.Join,
	"has":       slices.Contains[[]string],
	"statusText": func(code int) string {
		return http.StatusText(code)
	},
	"okStatus": func(code int) bool { return code >= 200 && code < 300 },
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"orgURL": orgURL,
	"list":   func(xs ...string) []string { return xs },
	"add":    func(a, b int) int { return a + b },
	"durationsText": func(ds []consign.Duration) string {
		parts := make([]string, len(ds))
		for i, d := range ds {
			parts[i] = durText(time.Duration(d))
		}
		return strings.Join(parts, ", ")
	},
}

// pctText formats a ratio as a percentage with one decimal where it matters.
func pctText(f float64) string {
	if math.IsNaN(f) {
		return "—"
	}
	p := f * 100
	if p == math.Trunc(p) {
		return strconv.FormatFloat(p, 'f', 0, 64) + " %"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + " %"
}

// durText writes a duration the way people say it: "72h", "30s", "1h30m", "5m".
func durText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// prettyJSON indents s if it is JSON, and returns it unchanged otherwise.
func prettyJSON(s string) string {
	t := strings.TrimSpace(s)
	if t == "" || (t[0] != '{' && t[0] != '[') {
		return s
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(t), "", "  "); err != nil {
		return s
	}
	return buf.String()
}
