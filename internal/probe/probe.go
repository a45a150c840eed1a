// Package probe attacks a running Consign the way a hostile client would, over HTTP only,
// and reports what it got wrong: `consign probe` runs it against a server, and a test runs
// it against the real app and expects no finding.
//
// # Design
//
// The probe signs in with the admin key, makes two orgs of its own (A, the attacker, and
// B, the victim) with an endpoint, a secret, an event, a delivery, a source, a receipt and
// a key each, runs three families of checks with A's key, and deletes both orgs.
//
//   - Bad inputs: malformed, truncated, deep and oversized bodies on every route that
//     takes one, bad headers, bad query parameters, and requests net/http itself must
//     refuse (written on a raw connection). Each must get a 4xx, as problem+json when
//     Consign answered (on ReadyCloud's API, /api/v2/, the error shapes its clients
//     parse); a 5xx, a 2xx or no answer is a finding, and so is a server that no longer
//     answers /healthz afterwards.
//   - Isolation: every operation of the server's own OpenAPI document that names an org,
//     called with A's key on B's org, and on A's org with B's object ids, and every
//     dashboard page and form of B with A's session. Anything but 403 or 404 is a finding,
//     and B's objects must be intact at the end.
//   - SSRF: endpoint URLs (created and updated) and poll URLs aimed at loopback, private,
//     link-local, metadata, CGNAT, multicast and reserved addresses, in IPv6 and odd IPv4
//     spellings, and host names that resolve to such addresses. A literal address must be
//     refused at creation; a name the server accepts must be blocked when it connects: a
//     test send must end without a response.
//
// Redirects are not probed: the sender never follows them (a 3xx is a failed attempt),
// which the sender's own tests hold.
package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config configures a probe.
type Config struct {
	// URL is the server's base URL, such as "http://127.0.0.1:8700".
	URL string
	// AdminKey is an admin API key of the server.
	AdminKey string
	// SlowBody, when positive, also sends a body a byte every 2 s and expects the server
	// to cut it within this time; 0 skips that check (it takes as long as the server
	// waits).
	SlowBody time.Duration
	// PrivateNames are host names that resolve to non-public addresses on the server's
	// side, for the SSRF checks, besides the built-in ones.
	PrivateNames []string
	// Client makes the requests; default one with a 30 s timeout that follows no
	// redirect.
	Client *http.Client
}

// Report is what a probe did and found.
type Report struct {
	// Inputs, Isolation and SSRF count the checks of each family.
	Inputs, Isolation, SSRF int
	// Blocked counts the SSRF targets the server accepted (host names, which it resolves
	// only when connecting) whose test send then ended without a response: blocked, or not
	// resolvable there. The other targets were refused when they were set.
	Blocked int
	// Findings lists every check that failed.
	Findings []Finding
	// Took is how long the probe ran.
	Took time.Duration
}

// Finding is one check that failed: what was sent and what came back.
type Finding struct {
	Family  string // "input", "isolation" or "ssrf"
	Request string // such as "POST /v1/orgs/org_…/events: 100000 nested arrays"
	Got     string // status and the start of the reply, or the error
	Want    string
}

func (f Finding) String() string {
	return fmt.Sprintf("[%s] %s: got %s, want %s", f.Family, f.Request, f.Got, f.Want)
}

// Run probes the server. It returns an error only when the probe cannot run (the server
// does not answer, the admin key is refused); what the server got wrong is in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	p := &prober{cfg: cfg, ctx: ctx, report: &Report{}}
	begun := time.Now()
	if err := p.setup(); err != nil {
		return nil, err
	}
	defer p.teardown()
	p.inputs()
	p.isolation()
	p.ssrf()
	p.report.Took = time.Since(begun)
	return p.report, nil
}

type prober struct {
	cfg    Config
	ctx    context.Context
	report *Report
	a, b   tenant
}

// tenant is one of the probe's orgs and the objects it made in it.
type tenant struct {
	org, key, keyID                string
	endpoint, secret               string
	event, delivery                string
	source, receipt, ingestURL     string
	endpointName, sourceName, name string
}

// reply is an answer as received.
type reply struct {
	path   string
	status int
	header http.Header
	body   []byte
}

func (r *reply) String() string {
	b := r.body
	if len(b) > 200 {
		b = b[:200]
	}
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(b))
}

// problem reports whether the reply is an error in the form its route promises:
// problem+json, or on ReadyCloud's API (/api/v2/) the shapes a ReadyCloud client parses,
// {"detail": "…"} or {"field": ["…"]}.
func (r *reply) problem() bool {
	ct := r.header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/problem+json") {
		return true
	}
	if !strings.HasPrefix(r.path, "/api/v2/") || !strings.HasPrefix(ct, "application/json") {
		return false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(r.body, &fields) != nil || len(fields) == 0 {
		return false
	}
	if detail, ok := fields["detail"]; ok {
		var s string
		return len(fields) == 1 && json.Unmarshal(detail, &s) == nil && s != ""
	}
	for _, v := range fields {
		var msgs []string
		if json.Unmarshal(v, &msgs) != nil || len(msgs) == 0 {
			return false
		}
	}
	return true
}

// send makes one request; body nil sends none.
func (p *prober) send(method, path, key string, body []byte, hdr http.Header) (*reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(p.ctx, method, p.cfg.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &reply{path: req.URL.Path, status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// must makes a request the probe needs to go on with, and decodes its reply into v.
func (p *prober) must(want int, method, path, key string, in, v any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	r, err := p.send(method, path, key, body, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if r.status != want {
		return fmt.Errorf("%s %s: %s (want %d)", method, path, r, want)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

func (p *prober) find(family, request, got, want string) {
	p.report.Findings = append(p.report.Findings, Finding{Family: family, Request: request, Got: got, Want: want})
}

// setup makes the two orgs and their objects.
func (p *prober) setup() error {
	if r, err := p.send("GET", "/healthz", "", nil, nil); err != nil {
		return fmt.Errorf("the server does not answer at %s: %w", p.cfg.URL, err)
	} else if r.status != http.StatusOK {
		return fmt.Errorf("GET %s/healthz: %s", p.cfg.URL, r)
	}
	stamp := time.Now().UTC().Format("20060102T150405")
	for _, t := range []*tenant{&p.a, &p.b} {
		name := "probe-" + stamp + "-a"
		if t == &p.b {
			name = "probe-" + stamp + "-b"
		}
		t.name = name
		var org, key, ep, src struct {
			ID        string `json:"id"`
			Key       string `json:"key"`
			IngestURL string `json:"ingest_url"`
		}
		if err := p.must(http.StatusCreated, "POST", "/v1/orgs", p.cfg.AdminKey, map[string]any{"name": name}, &org); err != nil {
			return fmt.Errorf("the probe could not create its orgs (is the admin key right?): %w", err)
		}
		t.org = org.ID
		base := "/v1/orgs/" + t.org
		if err := p.must(http.StatusCreated, "POST", base+"/keys", p.cfg.AdminKey, map[string]any{"name": "probe"}, &key); err != nil {
			return err
		}
		t.key, t.keyID = key.Key, key.ID
		t.endpointName = name + "-endpoint"
		if err := p.must(http.StatusCreated, "POST", base+"/endpoints", t.key, map[string]any{
			"url": "https://example.com/" + name, "topics": []string{"order.created"}, "description": t.endpointName, "active": false}, &ep); err != nil {
			return err
		}
		t.endpoint = ep.ID
		var secrets struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := p.must(http.StatusOK, "GET", base+"/endpoints/"+t.endpoint+"/secrets", t.key, nil, &secrets); err != nil || len(secrets.Data) == 0 {
			return fmt.Errorf("listing the probe endpoint's secrets: %v", err)
		}
		t.secret = secrets.Data[0].ID
		var ev struct {
			ID string `json:"id"`
		}
		if err := p.must(http.StatusAccepted, "POST", base+"/events", t.key, map[string]any{"type": "order.created", "payload": map[string]any{"probe": name}}, &ev); err != nil {
			return err
		}
		t.event = ev.ID
		var dl struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := p.must(http.StatusOK, "GET", base+"/deliveries?event_id="+t.event, t.key, nil, &dl); err != nil || len(dl.Data) == 0 {
			return fmt.Errorf("the probe's event made no delivery: %v", err)
		}
		t.delivery = dl.Data[0].ID
		t.sourceName = name + "-source"
		if err := p.must(http.StatusCreated, "POST", base+"/sources", t.key, map[string]any{"name": t.sourceName, "topic": "shipment.created"}, &src); err != nil {
			return err
		}
		t.source, t.ingestURL = src.ID, src.IngestURL
		in, err := url.Parse(src.IngestURL)
		if err != nil {
			return fmt.Errorf("the source's ingest URL %q: %w", src.IngestURL, err)
		}
		if err := p.must(http.StatusOK, "POST", in.Path, "", map[string]any{"id": name}, nil); err != nil {
			return err
		}
		var rcs struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := p.must(http.StatusOK, "GET", base+"/sources/"+t.source+"/receipts", t.key, nil, &rcs); err != nil || len(rcs.Data) == 0 {
			return fmt.Errorf("the probe's receipt is not listed: %v", err)
		}
		t.receipt = rcs.Data[0].ID
	}
	return nil
}

// teardown deletes the probe's orgs.
func (p *prober) teardown() {
	for _, t := range []tenant{p.a, p.b} {
		if t.org != "" {
			_, _ = p.send("DELETE", "/v1/orgs/"+t.org, p.cfg.AdminKey, nil, nil)
		}
	}
}

// healthy checks that the server still answers, after a family of checks.
func (p *prober) healthy(family, after string) {
	r, err := p.send("GET", "/healthz", "", nil, nil)
	switch {
	case err != nil:
		p.find(family, "GET /healthz after "+after, err.Error(), "200")
	case r.status != http.StatusOK:
		p.find(family, "GET /healthz after "+after, r.String(), "200")
	}
}

// idsFor fills a path template of the OpenAPI document with org and ids of t.
func idsFor(path, org string, t tenant) (string, bool) {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if !strings.HasPrefix(s, "{") {
			continue
		}
		prev := ""
		if i > 0 {
			prev = segs[i-1]
		}
		switch s {
		case "{org}":
			segs[i] = org
		case "{sid}":
			segs[i] = t.secret
		case "{rid}":
			segs[i] = t.receipt
		case "{id}":
			switch prev {
			case "endpoints", "webhooks":
				segs[i] = t.endpoint
			case "events":
				segs[i] = t.event
			case "deliveries":
				segs[i] = t.delivery
			case "sources":
				segs[i] = t.source
			case "keys":
				segs[i] = t.keyID
			default:
				return "", false
			}
		default:
			return "", false
		}
	}
	return strings.Join(segs, "/"), true
}

// forbidden reports whether a status refuses access: 403, 404 (another org's objects
// are not acknowledged to exist), or 429 (throttled, not served).
func forbidden(status int) bool {
	return slices.Contains([]int{http.StatusForbidden, http.StatusNotFound, http.StatusTooManyRequests}, status)
}

var errNoDoc = errors.New("the server's /openapi.json lists no operations")
