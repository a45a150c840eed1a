package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
)

// serverEnv, when set, makes the test binary a Consign server in a process of its own
// (TestMain): data directory and admin key, separated by a newline. It prints its URL
// and serves until its standard input closes.
const serverEnv = "CONSIGN_BENCH_TEST_SERVER"

func TestMain(m *testing.M) {
	if v := os.Getenv(serverEnv); v != "" {
		dir, key, _ := strings.Cut(v, "\n")
		a, err := app.Start(context.Background(), app.Config{Addr: "127.0.0.1:0", DataDir: dir, InsecureTargets: true, AdminKey: key})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(a.URL())
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = a.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startServerProcess runs a Consign server in a child process and returns its URL, its
// admin key and its pid.
func startServerProcess(t *testing.T) (url, key string, pid int) {
	t.Helper()
	key = randomKey()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serverEnv+"="+t.TempDir()+"\n"+key)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "the server process printed its URL")
	return strings.TrimSpace(line), key, cmd.Process.Pid
}

// TestRunExternalServer: with --url every scenario but the in-process memory figures
// runs against a server in its own process, and each figure carries that process's CPU
// per unit, read from /proc: found by the port it listens on, or given.
func TestRunExternalServer(t *testing.T) {
	t.Parallel()
	url, key, pid := startServerProcess(t)
	for _, given := range []bool{false, true} {
		cfg := tiny(t)
		cfg.URL, cfg.Key = url, key
		cfg.Only = []string{ScenarioLoopback, ScenarioDeliver, ScenarioBurst, ScenarioFanout, ScenarioSingle, ScenarioBatch}
		if given {
			cfg.ServerPID, cfg.Type = pid, TypeCustom
		}
		var out bytes.Buffer
		rep, err := Run(context.Background(), cfg, &out)
		t.Log("\n" + out.String())
		require.NoError(t, err)
		require.Equal(t, pid, rep.ServerPID)
		how := "found by its port"
		if given {
			how = "given"
		}
		require.Contains(t, out.String(), fmt.Sprintf("server process %d (%s)", pid, how))
		for name, th := range map[string]*Throughput{"d11": rep.Deliver, "d11burst": rep.DeliverBurst, "d13": rep.FanoutDeliver,
			"single": rep.Single, "batch": rep.Batch} {
			require.Equal(t, th.Want, th.Done, name)
			require.Positive(t, th.ServerCPUPerUnit, "%s: the server's CPU per unit", name)
			require.Contains(t, rep.Summary(), " "+name+"_server_us=")
		}
		require.Zero(t, rep.Loopback.ServerCPUPerUnit, "the server has no part in the ceiling")
		require.Regexp(t, `deliveries/s 1→1 \(batch-fed, burst: published flat out\): [\d,]+ /s \(.*; server [\d.]+ µs of CPU each; the bench's own: \d+ µs of CPU each`, out.String())
		require.Nil(t, rep.Memory, "the server's memory is its own process's")
	}
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, stat string
		want       time.Duration
		err        string
	}{
		{"plain", "4242 (consign) S 1 4242 4242 0 -1 4194560 1500 0 0 0 250 75 0 0 20 0 9 0 100 0 0", 3250 * time.Millisecond, ""},
		{"name with spaces and parens", "7 (a b) (c)) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0", 30 * time.Millisecond, ""},
		{"no name", "7 S 1", 0, "no command name"},
		{"short", "7 (x) S 1 2 3", 0, "too few fields"},
		{"not a number", "7 (x) S 1 7 7 0 -1 0 0 0 0 0 x 2 0 0", 0, "stat:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStatCPU(tt.stat)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	self, err := procCPU("/proc/self/stat")
	require.NoError(t, err, "this test runs on Linux")
	require.Positive(t, self)
}

func TestListeningOn(t *testing.T) {
	t.Parallel()
	const (
		listen = "   3: 0100007F:2200 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0"
		conn   = "   4: 0100007F:2200 0100007F:D2B4 01 00000000:00000000 00:00000000 00000000     0        0 123457 1 0000000000000000 20 4 30 10 -1"
	)
	ino, ok := listeningOn(listen, 0x2200)
	require.True(t, ok)
	require.Equal(t, "123456", ino)
	_, ok = listeningOn(listen, 8700)
	require.False(t, ok, "another port")
	_, ok = listeningOn(conn, 0x2200)
	require.False(t, ok, "a connection, not a listener")
	_, ok = listeningOn("garbage", 0x2200)
	require.False(t, ok)
}

func TestFindServerRefuses(t *testing.T) {
	t.Parallel()
	_, err := findServer("http://127.0.0.1:8700", 0x7fffffff)
	require.ErrorContains(t, err, "--server-pid")
	// This process's own listener is not a server of its own.
	rcv, err := startReceiver()
	require.NoError(t, err)
	defer rcv.close()
	_, err = findServer(rcv.url, 0)
	require.ErrorContains(t, err, "give --server-pid")
}

// TestProcessClock: another process's CPU clock reads what /proc says of it, to the
// tick.
func TestProcessClock(t *testing.T) {
	t.Parallel()
	_, _, pid := startServerProcess(t)
	clock, ok := processClock(pid)
	require.True(t, ok, "Linux reads another process's CPU clock")
	stat, err := procCPU(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	require.InDelta(t, stat.Seconds(), clock.Seconds(), 0.05)
	require.Positive(t, clock, "a server that started has run")
}
