package probe

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// ssrfTargets are URLs aimed at the server's own network: each must be refused at
// creation or blocked when the server connects.
var ssrfTargets = []string{
	// Loopback, in every spelling.
	"https://127.0.0.1/", "https://127.0.0.1:8700/v1/orgs", "https://127.1/", "https://127.0.1/", "https://0x7f.1/",
	"https://0x7f000001/", "https://2130706433/", "https://0177.0.0.1/", "https://017700000001/", "https://127.000.000.001/",
	"https://127.255.255.254/", "https://0.0.0.0/", "https://0/", "https://[::1]/", "https://[0:0:0:0:0:0:0:1]/",
	"https://[::]/", "https://[::ffff:127.0.0.1]/", "https://[::ffff:7f00:1]/", "https://[0:0:0:0:0:ffff:127.0.0.1]/",
	"https://[::127.0.0.1]/", "https://[64:ff9b::127.0.0.1]/", "https://[2002:7f00:1::]/",
	// Private, CGNAT, link-local and cloud metadata.
	"https://10.0.0.1/", "https://10.255.255.255/", "https://172.16.0.1/", "https://172.31.255.254/", "https://192.168.0.1/",
	"https://192.168.1.1:8443/", "https://100.64.0.1/", "https://100.127.255.254/", "https://169.254.169.254/latest/meta-data/",
	"https://169.254.169.254/computeMetadata/v1/", "https://169.254.170.2/v2/credentials", "https://[fd00::1]/",
	"https://[fd00:ec2::254]/latest/meta-data/", "https://[fc00::1]/", "https://[fe80::1]/", "https://[fe80::1%25eth0]/",
	"https://[::ffff:169.254.169.254]/", "https://[::ffff:a9fe:a9fe]/", "https://0xa9fea9fe/", "https://2852039166/",
	"https://0251.0376.0251.0376/", "https://[::ffff:10.0.0.1]/", "https://[::ffff:192.168.0.1]/",
	// Multicast, broadcast and reserved.
	"https://224.0.0.1/", "https://239.255.255.250/", "https://255.255.255.255/", "https://240.0.0.1/", "https://[ff02::1]/",
	"https://[ff05::1:3]/", "https://192.0.0.8/", "https://198.18.0.1/",
	// Names.
	"https://localhost/", "https://localhost./", "https://LOCALHOST/", "https://api.localhost/", "https://localhost:8700/",
	"https://localhost.localdomain/", "https://ip6-localhost/", "https://ip6-loopback/", "https://metadata.google.internal/computeMetadata/v1/",
	"https://metadata/", "https://instance-data/latest/meta-data/",
	// Confusing forms: credentials, schemes.
	"https://example.com@127.0.0.1/", "https://127.0.0.1#@example.com/", "https://127.0.0.1\\@example.com/",
	"http://example.com/", "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://127.0.0.1/", "//127.0.0.1/",
}

// ssrf runs the outbound checks: each target as a new endpoint, as an endpoint's new
// URL, and as a source's poll URL.
func (p *prober) ssrf() {
	a := p.a
	base := "/v1/orgs/" + a.org
	targets := append([]string{}, ssrfTargets...)
	for _, n := range p.cfg.PrivateNames {
		targets = append(targets, "https://"+n+"/")
	}
	for _, target := range targets {
		// A new endpoint.
		p.report.SSRF++
		body, _ := json.Marshal(map[string]any{"url": target, "topics": []string{"order.created"}})
		r, err := p.send("POST", base+"/endpoints", a.key, body, nil)
		req := "POST " + base + "/endpoints with url " + target
		switch {
		case err != nil:
			p.find("ssrf", req, err.Error(), "422")
		case r.status == http.StatusCreated:
			var ep struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(r.body, &ep)
			p.blockedAtConnect(target, base+"/endpoints/"+ep.ID)
			_, _ = p.send("DELETE", base+"/endpoints/"+ep.ID, a.key, nil, nil)
		case r.status != http.StatusUnprocessableEntity:
			p.find("ssrf", req, r.String(), "422")
		}

		// An endpoint's URL changed.
		p.report.SSRF++
		body, _ = json.Marshal(map[string]any{"url": target})
		r, err = p.send("PATCH", base+"/endpoints/"+a.endpoint, a.key, body, nil)
		req = "PATCH " + base + "/endpoints/" + a.endpoint + " to url " + target
		switch {
		case err != nil:
			p.find("ssrf", req, err.Error(), "422")
		case r.status == http.StatusOK:
			p.blockedAtConnect(target, base+"/endpoints/"+a.endpoint)
			body, _ = json.Marshal(map[string]any{"url": "https://example.com/" + a.name})
			_, _ = p.send("PATCH", base+"/endpoints/"+a.endpoint, a.key, body, nil)
		case r.status != http.StatusUnprocessableEntity:
			p.find("ssrf", req, r.String(), "422")
		}

		// A source's poll URL: polls run on the server's schedule, so a name the server
		// accepts cannot be followed from here; a literal address must be refused.
		p.report.SSRF++
		body, _ = json.Marshal(map[string]any{"name": "probe-poll", "topic": "shipment.created",
			"poll": map[string]any{"url": target, "interval": "1h", "items_pointer": "/items", "id_pointer": "/id"}})
		r, err = p.send("POST", base+"/sources", a.key, body, nil)
		req = "POST " + base + "/sources with poll url " + target
		switch {
		case err != nil:
			p.find("ssrf", req, err.Error(), "422")
		case r.status == http.StatusCreated:
			var src struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(r.body, &src)
			_, _ = p.send("DELETE", base+"/sources/"+src.ID, a.key, nil, nil)
			if literal(target) {
				p.find("ssrf", req, r.String(), "422: a literal non-public address")
			}
		case r.status != http.StatusUnprocessableEntity:
			p.find("ssrf", req, r.String(), "422")
		}
	}
}

// blockedAtConnect sends a test event to an endpoint the server accepted and expects the
// attempt to end with no response: blocked, or a name that does not resolve.
func (p *prober) blockedAtConnect(target, endpoint string) {
	req := "POST " + endpoint + "/test, url " + target
	if literal(target) {
		p.find("ssrf", "an endpoint with url "+target, "accepted", "422: a literal non-public address")
	}
	// An inactive endpoint gets no test send: activate it first.
	_, _ = p.send("PATCH", endpoint, p.a.key, []byte(`{"active":true}`), nil)
	defer func() { _, _ = p.send("PATCH", endpoint, p.a.key, []byte(`{"active":false}`), nil) }()
	r, err := p.send("POST", endpoint+"/test", p.a.key, []byte(`{}`), nil)
	if err != nil {
		p.find("ssrf", req, err.Error(), "an attempt blocked before connecting")
		return
	}
	var rep struct {
		Attempt *struct {
			Response json.RawMessage `json:"response"`
			Error    *string         `json:"error"`
		} `json:"attempt"`
	}
	_ = json.Unmarshal(r.body, &rep)
	switch {
	case r.status != http.StatusOK || rep.Attempt == nil:
		p.find("ssrf", req, r.String(), "an attempt blocked before connecting")
	case len(rep.Attempt.Response) > 0 && string(rep.Attempt.Response) != "null":
		p.find("ssrf", req, "a response: "+string(rep.Attempt.Response), "no connection")
	case rep.Attempt.Error == nil:
		p.find("ssrf", req, r.String(), "an error saying why nothing was sent")
	default:
		p.report.Blocked++
	}
}

// literal reports whether a URL's host is an IP address, in any spelling a resolver
// would take without asking DNS (digits, dots, hex, brackets).
func literal(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return strings.Contains(h, ":") || strings.HasPrefix(h, "0x") || strings.Trim(h, "0123456789.") == ""
}
