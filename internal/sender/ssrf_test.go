package sender_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/consign-dev/consign/internal/sender"
	"github.com/stretchr/testify/require"
)

// TestSendSSRFLoopback targets real loopback servers with the guard on and
// checks that they never see a connection: the guard refuses in
// net.Dialer.Control, before connect(2).
func TestSendSSRFLoopback(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(http.ResponseWriter, *http.Request) {})
	port := strconv.Itoa(rc.Listener.Addr().(*net.TCPAddr).Port)

	cases := []struct {
		name string
		url  string
		err  string
		seen func() int64 // connections the would-be target accepted
	}{
		{"ipv4 loopback", "https://127.0.0.1:" + port + "/hook",
			"blocked: 127.0.0.1 is a loopback address (set --insecure-targets for development)", rc.conns.Load},
		{"name resolving to loopback", "https://localhost:" + port + "/hook",
			"blocked: 127.0.0.1 is a loopback address (set --insecure-targets for development)", rc.conns.Load},
		// Go dials an IPv4-mapped address over IPv4, so without the guard
		// this would reach rc.
		{"ipv4-mapped ipv6 loopback", "https://[::ffff:127.0.0.1]:" + port + "/hook",
			"blocked: 127.0.0.1 is a loopback address (set --insecure-targets for development)", rc.conns.Load},
		{"http scheme", "http://127.0.0.1:" + port + "/hook",
			"blocked: url must use https (set --insecure-targets for development)", rc.conns.Load},
		{"decimal spelling", "https://2130706433:" + port + "/hook",
			"blocked: 2130706433 is a non-standard spelling of the IP address 127.0.0.1; write addresses as a.b.c.d (set --insecure-targets for development)", rc.conns.Load},
		{"octal spelling", "https://0177.0.0.1:" + port + "/hook",
			"blocked: 0177.0.0.1 is a non-standard spelling of the IP address 127.0.0.1", rc.conns.Load},
		{"hex spelling", "https://0x7f.1:" + port + "/hook",
			"blocked: 0x7f.1 is a non-standard spelling of the IP address 127.0.0.1", rc.conns.Load},
		{"shortened spelling", "https://127.1:" + port + "/hook",
			"blocked: 127.1 is a non-standard spelling of the IP address 127.0.0.1", rc.conns.Load},
	}

	// IPv6 loopback, if this machine has it.
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		_ = srv.Listener.Close()
		srv.Listener = ln
		rc6 := startReceiver(t, srv, func(http.ResponseWriter, *http.Request) {}, false)
		cases = append(cases, struct {
			name string
			url  string
			err  string
			seen func() int64
		}{"ipv6 loopback", "https://[::1]:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/hook",
			"blocked: ::1 is a loopback address (set --insecure-targets for development)", rc6.conns.Load})
	} else {
		cases = append(cases, struct {
			name string
			url  string
			err  string
			seen func() int64
		}{"ipv6 loopback (no ::1 listener here)", "https://[::1]:" + port + "/hook",
			"blocked: ::1 is a loopback address (set --insecure-targets for development)", func() int64 { return 0 }})
	}

	s := newSender(t, sender.Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := s.Send(t.Context(), post(tc.url))
			require.Equal(t, sender.Blocked, out.Class, out.Err)
			require.Contains(t, out.Err, tc.err)
			require.Zero(t, out.Status)
			require.Zero(t, tc.seen(), "the target saw a connection")
		})
	}
	require.Zero(t, rc.hits.Load())
	require.Zero(t, rc.conns.Load())
}

// TestSendSSRFNonLoopback covers targets no test may contact. The guard
// refuses them in Control, before connect(2), so nothing leaves the host;
// the quick return shows no connect was attempted. (TestSendSSRFLoopback
// proves the hook is wired; TestControl covers every address category.)
func TestSendSSRFNonLoopback(t *testing.T) {
	t.Parallel()
	cases := []struct{ url, err string }{
		{"https://169.254.169.254/latest/meta-data/", "blocked: 169.254.169.254 is the cloud metadata address"},
		{"https://10.0.0.1/", "blocked: 10.0.0.1 is a private address"},
		{"https://172.16.5.4:8443/", "blocked: 172.16.5.4 is a private address"},
		{"https://192.168.1.1/", "blocked: 192.168.1.1 is a private address"},
		{"https://100.64.0.1/", "blocked: 100.64.0.1 is a shared (CGNAT) address"},
		{"https://169.254.10.10/", "blocked: 169.254.10.10 is a link-local address"},
		{"https://224.0.0.1/", "blocked: 224.0.0.1 is a multicast address"},
		{"https://0.0.0.0/", "blocked: 0.0.0.0 is an unspecified address"},
		{"https://[fd00::1]/", "blocked: fd00::1 is a unique local (private) IPv6 address"},
		{"https://[fe80::1%25lo]/", "blocked: fe80::1%lo is a link-local address"},
		{"https://[::ffff:10.0.0.1]/", "blocked: 10.0.0.1 is a private address"},
		{"https://192.0.2.10/", "blocked: 192.0.2.10 is a special-purpose address (192.0.2.0/24)"},
		{"http://example.com/", "blocked: url must use https (set --insecure-targets for development)"},
		{"https://0xa.1/", "blocked: 0xa.1 is a non-standard spelling of the IP address 10.0.0.1"},
	}
	s := newSender(t, sender.Config{Timeout: time.Minute, ConnectTimeout: time.Minute})
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			out := s.Send(t.Context(), post(tc.url))
			require.Equal(t, sender.Blocked, out.Class, out.Err)
			require.Contains(t, out.Err, tc.err)
			require.Less(t, out.Duration, time.Second)
		})
	}
}

// TestSendInsecureTargetsAllowsLoopback: with the guard off, http and
// loopback work (development and tests).
func TestSendInsecureTargetsAllowsLoopback(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {})
	port := strconv.Itoa(rc.Listener.Addr().(*net.TCPAddr).Port)
	s := newSender(t, sender.Config{InsecureTargets: true})
	for _, u := range []string{rc.URL, "http://localhost:" + port, "http://[::ffff:127.0.0.1]:" + port} {
		out := s.Send(t.Context(), post(u))
		require.Equal(t, sender.Success, out.Class, out.Err)
	}
}
