package app_test

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
)

// TestSSRFGuard runs the app with the outbound guard on (InsecureTargets false).
// Literal non-public targets are refused at creation; a host name that resolves to a
// non-public address is accepted (creation does no DNS) and refused when connecting, with
// no connection made.
func TestSSRFGuard(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *app.Config) { c.InsecureTargets = false })
	o := e.newOrg("ssrf")
	endpoints := "/v1/orgs/" + o.id + "/endpoints"

	var refused []badInput
	for _, u := range []string{
		"http://example.com/hook",
		"https://127.0.0.1/",
		"https://127.0.0.1:8443/hook",
		"https://10.0.0.1/",
		"https://192.168.1.1/",
		"https://172.16.0.1/",
		"https://100.64.0.1/",
		"https://169.254.169.254/latest/meta-data",
		"https://0.0.0.0/",
		"https://[::1]/",
		"https://[::ffff:127.0.0.1]/",
		"https://[::ffff:7f00:1]/",
		"https://[fd00::1]/",
		"https://[fe80::1]/",
		"https://2130706433/",
		"https://0x7f.1/",
		"https://0177.0.0.1/",
		"https://127.1/",
		"https://localhost/",
		"https://api.localhost/",
		"ftp://example.com/",
		"https://user:pass@example.com/",
	} {
		refused = append(refused, badInput{name: u, body: map[string]any{"url": u, "topics": []string{"*"}}, status: 422, field: "url"})
	}
	checkBad(t, e, o.key, "POST", endpoints, endpoints, refused)

	// A public address is accepted at creation (subscribed to nothing this test sends,
	// so no request leaves the machine).
	e.c.must(http.StatusCreated, "POST", endpoints, map[string]any{"url": "https://93.184.215.14/hook", "topics": []string{"webhook.updated"}}, o.key)

	// A host name that resolves to this machine: accepted, then blocked at connect time.
	host, ip := loopbackName(t)
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the probe below ends without TLS
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	require.NoError(t, err)
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()
	t.Cleanup(srv.Close)
	port := ln.Addr().(*net.TCPAddr).Port
	url := "https://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/hook"

	ep := e.createEndpoint(o, map[string]any{"url": url, "topics": []string{"*"}})
	rep := e.c.must(http.StatusOK, "POST", endpoints+"/"+ep["id"].(string)+"/test", nil, o.key)
	require.Equal(t, "failed", rep["status"], "%v", rep)
	at, _ := rep["attempt"].(map[string]any)
	require.NotNil(t, at, "the blocked send is recorded as an attempt: %v", rep)
	require.Nil(t, at["response"])
	msg, _ := at["error"].(string)
	require.Contains(t, msg, "blocked", "attempt error: %q", msg)
	require.Contains(t, msg, ip.String(), "the error names the refused address: %q", msg)
	d := e.delivery(o, rep["delivery_id"].(string))
	require.Len(t, d.Attempts, 1)
	require.Contains(t, *d.Attempts[0].Error, "blocked")

	// Queued deliveries are blocked the same way.
	id := e.publish(o, "order.created", map[string]any{"n": 1})
	var dl delivery
	for _, x := range e.deliveries(o, "event_id="+id) {
		if x.EndpointID == ep["id"] {
			dl = x
		}
	}
	require.NotEmpty(t, dl.ID)
	require.Eventually(t, func() bool { return e.delivery(o, dl.ID).AttemptsCount >= 1 }, waitFor, tick)
	dl = e.delivery(o, dl.ID)
	require.Contains(t, *dl.Attempts[0].Error, "blocked")

	require.Zero(t, conns.Load(), "a blocked target must receive no connection")
	// The server was reachable all along: the guard, not the network, stopped the sends.
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	c.Close()
	require.Eventually(t, func() bool { return conns.Load() == 1 }, waitFor, tick)
}

// loopbackName returns a host name other than "localhost" (which Consign refuses by name)
// that resolves to a non-public address of this machine, and that address. The machine's
// own name usually does (/etc/hosts).
func loopbackName(t *testing.T) (string, netip.Addr) {
	t.Helper()
	host, err := os.Hostname()
	require.NoError(t, err)
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
	if err != nil || len(addrs) == 0 || strings.EqualFold(host, "localhost") {
		t.Skipf("this machine's name %q does not resolve (%v); no name to test DNS-based blocking with", host, err)
	}
	for _, a := range addrs {
		a = a.Unmap()
		if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() {
			return host, a
		}
	}
	t.Skipf("this machine's name %q resolves only to public addresses %v", host, addrs)
	return "", netip.Addr{}
}
