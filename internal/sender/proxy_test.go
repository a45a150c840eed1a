package sender_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/sender"
)

// tinyproxy runs Debian's tinyproxy, a real HTTP CONNECT forward proxy, on a free
// loopback port and returns its URL and a function that reads its log. Under CI the
// test fails when tinyproxy is missing (.ci/run installs it).
func tinyproxy(t *testing.T) (proxyURL string, logText func() string) {
	t.Helper()
	bin, err := exec.LookPath("tinyproxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tinyproxy is not installed (apt-get install tinyproxy)")
		}
		t.Skip("tinyproxy is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	// Not t.TempDir: its parent is private, and tinyproxy started as root writes its log
	// as nobody.
	dir, err := os.MkdirTemp("", "tinyproxy")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	logPath := filepath.Join(dir, "tinyproxy.log")
	conf := fmt.Sprintf("Port %d\nListen 127.0.0.1\nTimeout 30\nLogFile %q\nLogLevel Connect\nMaxClients 20\nAllow 127.0.0.1\n", port, logPath)
	if os.Geteuid() == 0 {
		conf += "User nobody\nGroup nogroup\n"
		require.NoError(t, os.Chmod(dir, 0o777))
	}
	confPath := filepath.Join(dir, "tinyproxy.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o644))
	cmd := exec.Command(bin, "-d", "-c", confPath)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "tinyproxy did not listen on %s", addr)
	return "http://" + addr, func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
}

// TestSendThroughEgressProxy: with an egress proxy every attempt goes through its
// CONNECT tunnel (the proxy's log shows it), and the target rules still judge the
// target: a loopback target is refused before the proxy is asked, even though the proxy
// itself is on loopback.
func TestSendThroughEgressProxy(t *testing.T) {
	t.Parallel()
	proxy, proxyLog := tinyproxy(t)
	rc := newTLSReceiver(t, func(w http.ResponseWriter, r *http.Request) {})
	roots := x509.NewCertPool()
	roots.AddCert(rc.Certificate())
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(rc.URL, "https://"))

	s := newSender(t, sender.Config{InsecureTargets: true, RootCAs: roots, EgressProxy: proxy})
	for i := range 2 {
		out := s.Send(context.Background(), post(rc.URL))
		require.Equal(t, sender.Success, out.Class, "attempt %d: %s", i, out.Err)
	}
	require.EqualValues(t, 2, rc.hits.Load())
	require.Eventually(t, func() bool { return strings.Contains(proxyLog(), "CONNECT 127.0.0.1:"+port) },
		5*time.Second, 20*time.Millisecond, "the proxy's log shows the tunnel: %s", proxyLog())

	guarded := newSender(t, sender.Config{RootCAs: roots, EgressProxy: proxy})
	out := guarded.Send(context.Background(), post(rc.URL))
	require.Equal(t, sender.Blocked, out.Class, out.Err)
	require.Contains(t, out.Err, "127.0.0.1 is")
	require.EqualValues(t, 2, rc.hits.Load(), "the refused target got nothing")
	require.Equal(t, 1, strings.Count(proxyLog(), "CONNECT 127.0.0.1:"+port), "the proxy was not asked for the refused target")
}

func TestEgressProxyValidate(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"socks5://127.0.0.1:1080", "http://proxy.example", "127.0.0.1:3128", "http://127.0.0.1:3128/path"} {
		require.Error(t, sender.Config{EgressProxy: bad}.WithDefaults().Validate(), bad)
	}
	require.NoError(t, sender.Config{EgressProxy: "http://user:pw@10.0.0.5:3128"}.WithDefaults().Validate())
}
