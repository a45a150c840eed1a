package probe

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// bodyRoute is a route that reads a JSON body, with a valid body to cut short.
type bodyRoute struct {
	method, path, key string
	valid             string
}

// malformed are bodies no route accepts: not JSON, not one object, or an object with a
// field no route has.
func malformed() []struct{ name, body string } {
	deep := func(open, close string, n int) string { return strings.Repeat(open, n) + strings.Repeat(close, n) }
	return []struct{ name, body string }{
		{"a space", " "},
		{"an open brace", "{"},
		{"a close brace", "}"},
		{"an array", "[]"},
		{"a number", "12"},
		{"a string", `"x"`},
		{"true", "true"},
		{"two objects", "{}{}"},
		{"an object then text", "{} x"},
		{"a missing value", `{"a":}`},
		{"single quotes", `{'a':1}`},
		{"a missing colon", `{"a" 1}`},
		{"a trailing comma", `{"a":1,}`},
		{"an unclosed array", `{"a":[1,2}`},
		{"invalid UTF-8", "\xff\xfe{}"},
		{"an invalid UTF-8 key", "{\"\xff\":1}"},
		{"a NUL in a key", "{\"a\x00\":1}"},
		{"an unknown field", `{"probe_unknown_field":1}`},
		{"an unknown field with a lone surrogate", `{"\ud800":1}`},
		{"a huge exponent", `{"probe_unknown_field":1e999999}`},
		{"a long key", `{"` + strings.Repeat("k", 10000) + `":1}`},
		{"10,000 nested arrays", `{"probe_unknown_field":` + deep("[", "]", 10000) + `}`},
		{"100,000 nested arrays", deep("[", "]", 100000)},
		{"10,000 nested objects", strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)},
		{"an unterminated string", `{"a":"` + strings.Repeat("x", 1000)},
		{"a body over 256 KiB", `{"probe_unknown_field":"` + strings.Repeat("x", 300<<10) + `"}`},
		{"control characters", "{\x01\x02}"},
		{"a BOM", "\ufeff{}"},
	}
}

// inputs runs the bad-input checks.
func (p *prober) inputs() {
	a := p.a
	org := "/v1/orgs/" + a.org
	ep := org + "/endpoints/" + a.endpoint
	routes := []bodyRoute{
		{"POST", "/v1/orgs", p.cfg.AdminKey, `{"name":"probe-input","role":"seller"}`},
		{"PATCH", org, p.cfg.AdminKey, `{"name":"` + a.name + `"}`},
		{"POST", org + "/keys", a.key, `{"name":"probe-input-key"}`},
		{"POST", org + "/endpoints", a.key, `{"url":"https://example.com/probe-input","topics":["order.created"],"active":false}`},
		{"PATCH", ep, a.key, `{"description":"` + a.endpointName + `"}`},
		{"POST", ep + "/secrets", a.key, `{"expires_at":"2099-01-01T00:00:00Z"}`},
		{"POST", ep + "/secrets/rotate", a.key, `{"grace":"1h"}`},
		{"PATCH", ep + "/secrets/" + a.secret, a.key, `{"expires_at":null}`},
		{"POST", ep + "/recover", a.key, `{"since":"2020-01-01T00:00:00Z"}`},
		{"POST", org + "/events", a.key, `{"type":"order.created","payload":{"id":1,"note":"probe"},"idempotency_key":"probe-1"}`},
		{"POST", org + "/events/batch", a.key, `{"events":[{"type":"order.created","payload":{"id":2}}]}`},
		{"POST", org + "/sources", a.key, `{"name":"probe-input-source","topic":"shipment.created"}`},
		{"PATCH", org + "/sources/" + a.source, a.key, `{"name":"` + a.sourceName + `"}`},
		{"POST", "/v1/event-types", p.cfg.AdminKey, `{"name":"probe.input","description":"probe"}`},
		{"POST", "/api/v2/orgs/" + a.org + "/webhooks/", a.key, `{"entity":"orders","remote_url":"https://example.com/probe-rc"}`},
	}
	for _, rt := range routes {
		for _, m := range malformed() {
			p.badBody(rt, m.name, m.body)
		}
		// Every proper prefix of a valid body is invalid JSON.
		for n := 1; n < len(rt.valid); n++ {
			p.badBody(rt, fmt.Sprintf("the first %d bytes of a valid body", n), rt.valid[:n])
		}
	}
	p.healthy("input", "malformed bodies")
	p.oversized(org)
	p.badQueries(org)
	p.badHeaders(org)
	p.rawRequests(org)
	if p.cfg.SlowBody > 0 {
		p.slowBody(org)
	}
	p.healthy("input", "bad headers and raw requests")
}

// badBody sends one malformed body and expects a 4xx problem.
func (p *prober) badBody(rt bodyRoute, name, body string) {
	p.report.Inputs++
	req := rt.method + " " + rt.path + ": " + name
	r, err := p.send(rt.method, rt.path, rt.key, []byte(body), nil)
	switch {
	case err != nil:
		p.find("input", req, err.Error(), "a 4xx problem")
	case r.status < 400 || r.status >= 500:
		p.find("input", req, r.String(), "a 4xx problem")
	case !r.problem():
		p.find("input", req, r.String()+" ("+r.header.Get("Content-Type")+")", "application/problem+json")
	}
}

// oversized sends bodies over each limit: 413.
func (p *prober) oversized(org string) {
	for _, tc := range []struct{ name, path string }{
		{"a 17 MiB batch", org + "/events/batch"},
		{"a 1 MiB event", org + "/events"},
	} {
		size := 1 << 20
		if strings.HasSuffix(tc.path, "batch") {
			size = 17 << 20
		}
		body := `{"events":[{"type":"order.created","payload":{"x":"` + strings.Repeat("x", size) + `"}}]}`
		p.report.Inputs++
		r, err := p.send("POST", tc.path, p.a.key, []byte(body), nil)
		switch {
		case err != nil:
			// The server may close the connection once it has answered 413.
			if !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "broken pipe") {
				p.find("input", "POST "+tc.path+": "+tc.name, err.Error(), "413")
			}
		case r.status != http.StatusRequestEntityTooLarge || !r.problem():
			p.find("input", "POST "+tc.path+": "+tc.name, r.String(), "413 problem")
		}
	}
}

// badQueries sends list parameters out of range.
func (p *prober) badQueries(org string) {
	for _, q := range []string{"limit=0", "limit=-1", "limit=501", "limit=abc", "limit=1e3", "limit=%00",
		"cursor=" + strings.Repeat("c", 1000), "status=nonsense", "since=yesterday", "endpoint_id=" + strings.Repeat("e", 500)} {
		for _, path := range []string{org + "/events", org + "/deliveries", org + "/endpoints", "/v1/orgs"} {
			key := p.a.key
			if path == "/v1/orgs" {
				key = p.cfg.AdminKey
			}
			p.report.Inputs++
			req := "GET " + path + "?" + q
			r, err := p.send("GET", path+"?"+q, key, nil, nil)
			switch {
			case err != nil:
				p.find("input", req, err.Error(), "a 4xx problem or a list")
			case r.status >= 500, r.status >= 400 && !r.problem():
				p.find("input", req, r.String(), "a 4xx problem or a list")
			}
		}
	}
}

// badHeaders sends credentials and content headers a client may get wrong.
func (p *prober) badHeaders(org string) {
	path := org + "/endpoints"
	for _, tc := range []struct {
		name string
		hdr  http.Header
	}{
		{"no key", http.Header{}},
		{"Basic credentials", http.Header{"Authorization": {"Basic YWRtaW46YWRtaW4="}}},
		{"an empty bearer", http.Header{"Authorization": {"Bearer "}}},
		{"a 10 KB bearer", http.Header{"Authorization": {"Bearer " + strings.Repeat("k", 10000)}}},
		{"a key in the query", http.Header{"X-Probe-Query": {"1"}}},
		{"a key with a trailing tab", http.Header{"Authorization": {"Bearer " + p.a.key + "x\t"}}},
	} {
		p.report.Inputs++
		target := path
		if tc.hdr.Get("X-Probe-Query") != "" {
			target += "?bearer_token=" + url.QueryEscape(p.a.key)
		}
		r, err := p.send("GET", target, "", nil, tc.hdr)
		req := "GET " + path + ": " + tc.name
		switch {
		case err != nil:
			p.find("input", req, err.Error(), "401")
		case r.status != http.StatusUnauthorized && r.status != http.StatusTooManyRequests:
			p.find("input", req, r.String(), "401 (or 429 once throttled)")
		case !r.problem():
			p.find("input", req, r.String(), "application/problem+json")
		}
	}
}

// rawRequests writes requests net/http's client will not send, on a raw connection,
// and expects a 4xx (from net/http itself, so not necessarily a problem).
func (p *prober) rawRequests(org string) {
	auth := "Authorization: Bearer " + p.a.key + "\r\n"
	path := org + "/events"
	for _, tc := range []struct{ name, request string }{
		{"a control character in a header", "GET " + path + " HTTP/1.1\r\nHost: x\r\nX-Probe: a\x01b\r\n" + auth + "\r\n"},
		{"a header line without a colon", "GET " + path + " HTTP/1.1\r\nHost: x\r\nX-Probe\r\n" + auth + "\r\n"},
		{"a 100 KB header", "GET " + path + " HTTP/1.1\r\nHost: x\r\nX-Probe: " + strings.Repeat("h", 100<<10) + "\r\n" + auth + "\r\n"},
		{"Content-Length abc", "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n" + auth + "\r\n{}"},
		{"Content-Length -1", "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n" + auth + "\r\n{}"},
		{"two different Content-Lengths", "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n" + auth + "\r\n{}"},
		{"a bad chunk size", "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + auth + "\r\nzz\r\n{}\r\n0\r\n\r\n"},
		{"an unknown transfer coding", "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n" + auth + "\r\n2\r\n{}\r\n0\r\n\r\n"},
		{"a space in the path", "GET " + path + "/a b HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"},
		{"no Host", "GET " + path + " HTTP/1.1\r\n" + auth + "\r\n"},
		{"HTTP/9.9", "GET " + path + " HTTP/9.9\r\nHost: x\r\n" + auth + "\r\n"},
		{"a NUL in the path", "GET " + path + "%00 HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"},
		{"a 10,000-character path", "GET " + path + "/" + strings.Repeat("p", 10000) + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"},
		{"an unknown method", "BREW " + path + " HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"},
		{"a JSON body of the wrong type", "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n" + auth + "\r\n[]"},
	} {
		p.report.Inputs++
		status, err := p.raw(tc.request, 10*time.Second)
		req := "raw request to " + path + ": " + tc.name
		switch {
		case err != nil:
			p.find("input", req, err.Error(), "a 4xx")
		case (status < 400 || status >= 500) && status != http.StatusNotImplemented && status != http.StatusHTTPVersionNotSupported:
			p.find("input", req, fmt.Sprint(status), "a 4xx (or 501, 505)")
		}
	}
	// A body announced large and never sent: the server must not wait on it forever
	// nor hold what was announced; the client goes away, and the server answers others.
	var held []net.Conn
	for range 20 {
		p.report.Inputs++
		conn, err := p.dial(10 * time.Second)
		if err != nil {
			p.find("input", "a 16 MiB body announced, 1 byte sent", err.Error(), "a connection")
			continue
		}
		_, _ = io.WriteString(conn, "POST "+org+"/events/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 16777216\r\n"+auth+"\r\n{")
		held = append(held, conn)
	}
	p.healthy("input", "20 bodies of 16 MiB announced and 1 byte sent, held open")
	for _, c := range held {
		c.Close()
	}
}

// slowBody sends a body a byte every 2 s and expects it cut within SlowBody.
func (p *prober) slowBody(org string) {
	p.report.Inputs++
	req := fmt.Sprintf("POST %s/events, a body a byte every 2 s", org)
	conn, err := p.dial(10 * time.Second)
	if err != nil {
		p.find("input", req, err.Error(), "a connection")
		return
	}
	defer conn.Close()
	begun := time.Now()
	_, _ = io.WriteString(conn, "POST "+org+"/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nAuthorization: Bearer "+p.a.key+"\r\n\r\n{")
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if _, err := io.WriteString(conn, " "); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(begun.Add(p.cfg.SlowBody + 5*time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	took := time.Since(begun)
	switch {
	case err != nil:
		p.find("input", req, fmt.Sprintf("no answer after %s (%v)", took.Round(time.Second), err), "408 within "+p.cfg.SlowBody.String())
	case resp.StatusCode != http.StatusRequestTimeout || took > p.cfg.SlowBody:
		p.find("input", req, fmt.Sprintf("%d after %s", resp.StatusCode, took.Round(100*time.Millisecond)), "408 within "+p.cfg.SlowBody.String())
	}
}

// raw writes a request on a new connection and returns the reply's status.
func (p *prober) raw(request string, within time.Duration) (int, error) {
	conn, err := p.dial(within)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(within))
	if _, err := io.WriteString(conn, request); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, fmt.Errorf("no reply: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// dial opens a connection to the server, with TLS for an https URL.
func (p *prober) dial(within time.Duration) (net.Conn, error) {
	u, err := url.Parse(p.cfg.URL)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: within}
	if u.Scheme == "https" {
		port := u.Port()
		if port == "" {
			port = "443"
		}
		return tls.DialWithDialer(d, "tcp", net.JoinHostPort(u.Hostname(), port), &tls.Config{ServerName: u.Hostname()})
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return d.Dial("tcp", net.JoinHostPort(u.Hostname(), port))
}
