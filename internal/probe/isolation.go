package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// bodies are what the isolation checks send to operations that read a body: valid
// requests, so that a refusal comes from the org check and not from validation.
var bodies = map[string]string{
	"POST /v1/orgs/{org}/keys":                          `{"name":"probe-intruder"}`,
	"POST /v1/orgs/{org}/endpoints":                     `{"url":"https://example.com/intruder","topics":["order.created"],"active":false}`,
	"PATCH /v1/orgs/{org}/endpoints/{id}":               `{"description":"changed by another org"}`,
	"POST /v1/orgs/{org}/endpoints/{id}/secrets":        `{}`,
	"POST /v1/orgs/{org}/endpoints/{id}/secrets/rotate": `{}`,
	"PATCH /v1/orgs/{org}/endpoints/{id}/secrets/{sid}": `{"expires_at":null}`,
	"POST /v1/orgs/{org}/endpoints/{id}/test":           `{}`,
	"POST /v1/orgs/{org}/endpoints/{id}/recover":        `{"since":"2020-01-01T00:00:00Z"}`,
	"POST /v1/orgs/{org}/events":                        `{"type":"order.created","payload":{"intruder":true}}`,
	"POST /v1/orgs/{org}/events/batch":                  `{"events":[{"type":"order.created","payload":{"intruder":true}}]}`,
	"POST /v1/orgs/{org}/sources":                       `{"name":"intruder","topic":"shipment.created"}`,
	"PATCH /v1/orgs/{org}/sources/{id}":                 `{"name":"changed by another org"}`,
	"PATCH /v1/orgs/{org}":                              `{"name":"changed by another org"}`,
	"POST /api/v2/orgs/{org}/webhooks/":                 `{"remote_url":"https://example.com/intruder"}`,
}

// isolation runs the cross-org checks with org A's key and session against org B.
func (p *prober) isolation() {
	ops, err := p.operations()
	if err != nil {
		p.find("isolation", "GET /openapi.json", err.Error(), "the server's operations")
		return
	}
	for _, op := range ops {
		method, tmpl, _ := strings.Cut(op, " ")
		if !strings.Contains(tmpl, "{org}") {
			continue
		}
		// B's org, B's objects; then A's own org with B's objects.
		targets := []string{}
		if path, ok := idsFor(tmpl, p.b.org, p.b); ok {
			targets = append(targets, path)
		}
		if strings.Count(tmpl, "{") > 1 {
			if path, ok := idsFor(tmpl, p.a.org, p.b); ok {
				targets = append(targets, path)
			}
		}
		for _, path := range targets {
			p.crossOrg(method, path, bodies[op], "another org's key")
		}
	}
	// An org key on admin operations, its own org included.
	for _, op := range []string{"GET /v1/orgs", "POST /v1/orgs", "PATCH /v1/orgs/" + p.a.org, "DELETE /v1/orgs/" + p.a.org,
		"POST /v1/event-types", "PATCH /v1/event-types/order.created"} {
		method, path, _ := strings.Cut(op, " ")
		body := `{"name":"intruder"}`
		if strings.Contains(path, "event-types") {
			body = `{"name":"intruder.type","description":"x"}`
		}
		p.report.Isolation++
		r, err := p.send(method, path, p.a.key, []byte(body), nil)
		switch {
		case err != nil:
			p.find("isolation", op+" with an org key", err.Error(), "403")
		case r.status != http.StatusForbidden:
			p.find("isolation", op+" with an org key", r.String(), "403")
		}
	}
	p.dashboard()
	p.intact()
}

// crossOrg makes one request with A's key that must be refused.
func (p *prober) crossOrg(method, path, body, who string) {
	p.report.Isolation++
	var b []byte
	if body != "" {
		b = []byte(body)
	} else if method == "POST" || method == "PATCH" {
		b = []byte(`{}`)
	}
	r, err := p.send(method, path, p.a.key, b, nil)
	req := method + " " + path + " with " + who
	switch {
	case err != nil:
		p.find("isolation", req, err.Error(), "403 or 404")
	case r.status >= 400 && r.status < 500 && !forbidden(r.status):
		// Refused before the object was looked at (validation)? Then an id that does
		// not exist gets the same answer, and nothing is learnt.
		if other, err := p.send(method, p.fake(path), p.a.key, b, nil); err != nil || other.status != r.status {
			p.find("isolation", req, r.String(), "403 or 404, or what an id that does not exist gets")
		}
	case !forbidden(r.status):
		p.find("isolation", req, r.String(), "403 or 404")
	case p.leaks(r.body):
		p.find("isolation", req, r.String(), "a refusal that names nothing of the other org")
	}
}

// fake replaces B's ids in a path by ids of the same kind that do not exist.
func (p *prober) fake(path string) string {
	b := p.b
	for _, id := range []string{b.endpoint, b.secret, b.event, b.delivery, b.source, b.receipt, b.keyID, b.org} {
		if prefix, _, ok := strings.Cut(id, "_"); ok {
			path = strings.ReplaceAll(path, id, prefix+"_"+strings.Repeat("0", 26))
		}
	}
	return path
}

// leaks reports whether a reply shows something of B that the request did not name.
func (p *prober) leaks(body []byte) bool {
	s := string(body)
	return strings.Contains(s, p.b.name) || strings.Contains(s, p.b.ingestURL) || strings.Contains(s, p.b.key)
}

// operations lists "METHOD /path" of every operation in the server's OpenAPI document.
func (p *prober) operations() ([]string, error) {
	r, err := p.send("GET", "/openapi.json", "", nil, nil)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		return nil, err
	}
	var ops []string
	for path, methods := range doc.Paths {
		for m := range methods {
			ops = append(ops, strings.ToUpper(m)+" "+path)
		}
	}
	if len(ops) == 0 {
		return nil, errNoDoc
	}
	slices.Sort(ops)
	return ops, nil
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// dashboard signs in as A and opens B's pages and forms.
func (p *prober) dashboard() {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: p.cfg.Client.Timeout, Transport: p.cfg.Client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (int, string, error) {
		resp, err := hc.Get(p.cfg.URL + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	post := func(path string, form url.Values) (int, string, error) {
		resp, err := hc.PostForm(p.cfg.URL+path, form)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	_, page, err := get("/ui/signin")
	m := csrfField.FindStringSubmatch(page)
	if err != nil || m == nil {
		p.find("isolation", "GET /ui/signin", "no sign-in form", "a form with a CSRF token")
		return
	}
	if status, _, err := post("/ui/signin", url.Values{"csrf": {m[1]}, "key": {p.a.key}}); err != nil || status != http.StatusSeeOther {
		p.find("isolation", "POST /ui/signin with org A's key", "no session", "303 to the dashboard")
		return
	}
	_, home, _ := get("/ui/orgs/" + p.a.org + "/")
	m = csrfField.FindStringSubmatch(home)
	if m == nil {
		p.find("isolation", "GET /ui/orgs/{A}/", "no CSRF token for A's session", "A's overview")
		return
	}
	csrf := m[1]
	b := p.b
	for _, org := range []string{b.org, p.a.org} {
		o := "/ui/orgs/" + org + "/"
		pages := []string{"endpoints/" + b.endpoint, "endpoints/" + b.endpoint + "/edit", "deliveries/" + b.delivery,
			"events/" + b.event, "sources/" + b.source}
		if org == b.org {
			pages = append(pages, "", "endpoints", "endpoints/new", "deliveries", "events", "sources", "sources/new", "keys")
		}
		for _, pg := range pages {
			p.report.Isolation++
			status, body, err := get(o + pg)
			req := "GET " + o + pg + " in org A's session"
			switch {
			case err != nil:
				p.find("isolation", req, err.Error(), "404")
			case !forbidden(status):
				p.find("isolation", req, http.StatusText(status), "404")
			case p.leaks([]byte(body)):
				p.find("isolation", req, "a page naming org B's objects", "404")
			}
		}
		forms := []string{"endpoints/" + b.endpoint + "/edit", "endpoints/" + b.endpoint + "/active", "endpoints/" + b.endpoint + "/test",
			"endpoints/" + b.endpoint + "/recover", "endpoints/" + b.endpoint + "/secrets", "endpoints/" + b.endpoint + "/secrets/rotate",
			"endpoints/" + b.endpoint + "/secrets/" + b.secret + "/expiry", "endpoints/" + b.endpoint + "/secrets/" + b.secret + "/delete",
			"deliveries/" + b.delivery + "/retry", "sources/" + b.source + "/rotate", "sources/" + b.source + "/delete",
			"keys/" + b.keyID + "/delete", "endpoints/" + b.endpoint + "/delete"}
		if org == b.org {
			forms = append(forms, "endpoints", "sources", "keys")
		}
		for _, f := range forms {
			p.report.Isolation++
			form := url.Values{"csrf": {csrf}, "confirm": {"yes"}, "name": {"intruder"}, "url": {"https://example.com/intruder"},
				"description": {"changed by another org"}, "active": {"false"}, "topics": {"order.created"}, "topic": {"shipment.created"},
				"since": {"2020-01-01T00:00"}}
			status, _, err := post(o+f, form)
			req := "POST " + o + f + " in org A's session"
			switch {
			case err != nil:
				p.find("isolation", req, err.Error(), "404")
			case status >= 400 && status < 500 && !forbidden(status):
				if other, _, err := post(p.fake(o+f), form); err != nil || other != status {
					p.find("isolation", req, http.StatusText(status), "404, or what an id that does not exist gets")
				}
			case !forbidden(status):
				p.find("isolation", req, http.StatusText(status), "404")
			}
		}
	}
}

// intact checks that B's objects are all there, unchanged, after the checks.
func (p *prober) intact() {
	b := p.b
	base := "/v1/orgs/" + b.org
	for _, path := range []string{base, base + "/endpoints/" + b.endpoint, base + "/endpoints/" + b.endpoint + "/secrets",
		base + "/events/" + b.event, base + "/deliveries/" + b.delivery, base + "/sources/" + b.source,
		base + "/sources/" + b.source + "/receipts/" + b.receipt} {
		p.report.Isolation++
		r, err := p.send("GET", path, b.key, nil, nil)
		switch {
		case err != nil:
			p.find("isolation", "GET "+path+" with org B's key, after", err.Error(), "200")
		case r.status != http.StatusOK:
			p.find("isolation", "GET "+path+" with org B's key, after", r.String(), "200: org B's object unharmed")
		case strings.Contains(string(r.body), "another org") || strings.Contains(string(r.body), "intruder"):
			p.find("isolation", "GET "+path+" with org B's key, after", r.String(), "org B's object unchanged")
		}
	}
	// B's key, secret and source token still in place: counts unchanged.
	var keys, secrets struct {
		Data []json.RawMessage `json:"data"`
	}
	p.report.Isolation++
	if err := p.must(http.StatusOK, "GET", base+"/keys", b.key, nil, &keys); err != nil || len(keys.Data) != 1 {
		p.find("isolation", "GET "+base+"/keys with org B's key, after", describe(err, len(keys.Data)), "org B's one key")
	}
	p.report.Isolation++
	if err := p.must(http.StatusOK, "GET", base+"/endpoints/"+b.endpoint+"/secrets", b.key, nil, &secrets); err != nil || len(secrets.Data) != 1 {
		p.find("isolation", "GET "+base+"/endpoints/…/secrets with org B's key, after", describe(err, len(secrets.Data)), "org B's one secret")
	}
	p.report.Isolation++
	if in, err := url.Parse(b.ingestURL); err == nil {
		if r, err := p.send("POST", in.Path, "", []byte(`{"id":"after"}`), nil); err != nil || r.status != http.StatusOK {
			p.find("isolation", "POST org B's ingest URL, after", describeReply(r, err), "200: the token still works")
		}
	}
}

func describe(err error, n int) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d of them", n)
}

func describeReply(r *reply, err error) string {
	if err != nil {
		return err.Error()
	}
	return r.String()
}
