package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/signing"
)

// binDir holds the consign binary built for this test run; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "consign-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create binary directory:", err)
		os.Exit(2)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var build struct {
	once sync.Once
	path string
	err  error
}

// consignBinary builds the real binary (not -race: it is the program under test, not the
// test) once per test run and returns its path. Its bound sits well inside the
// package's test timeout (30 minutes in CI) rather than at a quiet machine's pace: on a
// fresh machine it compiles the cgo SQLite driver and every dependency without the race
// detector while the other packages' race builds share the two cores (2.5 minutes at
// load 17 here with part of that work cached, against the 5 minutes it once had).
func consignBinary(tb testing.TB) string {
	tb.Helper()
	build.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		out := filepath.Join(binDir, "consign")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, ".")
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Run(); err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, stderr.String())
			return
		}
		build.path = out
	})
	if build.err != nil {
		tb.Fatal(build.err)
	}
	return build.path
}

// hermeticEnv is the test's environment without CONSIGN_* variables, so a developer's
// own settings cannot change what the binary does.
func hermeticEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONSIGN_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

type runResult struct {
	code           int
	stdout, stderr string
}

// runConsign runs the binary to completion with stdin and returns its exit code and
// output.
func runConsign(tb testing.TB, stdin []byte, args ...string) runResult {
	tb.Helper()
	bin := consignBinary(tb) // built before the run's deadline starts: a cold build can take longer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = hermeticEnv()
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
	default:
		tb.Fatalf("consign %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return runResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runConsign(t, nil, "version")
	if r.code != 0 {
		t.Fatalf("consign version: exit %d, stderr %q", r.code, r.stderr)
	}
	if want := "consign " + consign.Version + "\n"; r.stdout != want {
		t.Errorf("consign version printed %q, want %q", r.stdout, want)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	secret, err := signing.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	other, err := signing.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.ParseKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	const id = "evt_2xVerifyTest"
	body := []byte(`{"id":"evt_2xVerifyTest","type":"order.updated","timestamp":"2025-01-01T00:00:00Z","data":{"seq":1}}`)
	ts := time.Now().Unix()
	headers := []string{
		"--header", "webhook-id: " + id,
		"--header", "webhook-timestamp: " + strconv.FormatInt(ts, 10),
		"--header", "webhook-signature: " + signing.Header([]signing.Key{key}, id, ts, body),
	}
	otherKey, err := signing.ParseKey(other)
	if err != nil {
		t.Fatal(err)
	}
	// During a rotation the header carries one entry per active secret.
	rotating := []string{
		"--header", "webhook-id: " + id,
		"--header", "webhook-timestamp: " + strconv.FormatInt(ts, 10),
		"-H", "webhook-signature: " + signing.Header([]signing.Key{otherKey, key}, id, ts, body),
	}
	tampered := bytes.Replace(body, []byte(`"seq":1`), []byte(`"seq":2`), 1)
	oldTS := strconv.FormatInt(ts-3600, 10)

	tests := []struct {
		name   string
		args   []string
		body   []byte
		code   int
		stdout string // exact, when code is 0
		stderr string // contained, when code is not 0
	}{
		{"valid", append([]string{"verify", "--secret", secret}, headers...), body, 0, "valid\n", ""},
		{"valid, flags in another order", append(append([]string{"verify"}, headers...), "--secret", secret), body, 0, "valid\n", ""},
		{"valid, second of two signatures", append([]string{"verify", "--secret", secret}, rotating...), body, 0, "valid\n", ""},
		{"tampered body", append([]string{"verify", "--secret", secret}, headers...), tampered, 1, "", "invalid"},
		{"other secret", append([]string{"verify", "--secret", other}, headers...), body, 1, "", "invalid"},
		{"missing signature header", []string{"verify", "--secret", secret, "--header", "webhook-id: " + id,
			"--header", "webhook-timestamp: " + strconv.FormatInt(ts, 10)}, body, 1, "", "webhook-signature"},
		{"timestamp outside tolerance", []string{"verify", "--secret", secret, "--header", "webhook-id: " + id,
			"--header", "webhook-timestamp: " + oldTS,
			"--header", "webhook-signature: " + signing.Header([]signing.Key{key}, id, ts-3600, body)}, body, 1, "", "invalid"},
		{"malformed header flag", []string{"verify", "--secret", secret, "--header", "no colon here"}, body, 2, "", "name: value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runConsign(t, tt.body, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %q\nstderr: %q", r.code, tt.code, r.stdout, r.stderr)
			}
			if tt.code == 0 && r.stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", r.stdout, tt.stdout)
			}
			if tt.code != 0 {
				if r.stdout != "" {
					t.Errorf("stdout %q, want nothing when the signature does not verify", r.stdout)
				}
				if !strings.Contains(r.stderr, tt.stderr) {
					t.Errorf("stderr %q does not mention %q", r.stderr, tt.stderr)
				}
			}
		})
	}
}

// TestServeRejectsBadSettings: serve refuses settings that cannot work before it touches
// anything, and names them.
func TestServeRejectsBadSettings(t *testing.T) {
	t.Parallel()
	bin := consignBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := filepath.Join(t.TempDir(), "data")
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", "127.0.0.1:0", "--data", data)
	cmd.Env = hermeticEnv("CONSIGN_PUBLIC_URL=hooks.example.com")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("serve with a public URL without a scheme: %v, want exit 1\n%s", err, out)
	}
	if !strings.Contains(string(out), `PublicURL (CONSIGN_PUBLIC_URL) "hooks.example.com" must start with https://`) {
		t.Errorf("the error does not name CONSIGN_PUBLIC_URL:\n%s", out)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory was created (%v)", err)
	}
}

func TestServeRejectsShortAdminKey(t *testing.T) {
	t.Parallel()
	bin := consignBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir())
	cmd.Env = hermeticEnv("CONSIGN_ADMIN_KEY=too-short")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("serve with a short CONSIGN_ADMIN_KEY: %v, want exit 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "CONSIGN_ADMIN_KEY") {
		t.Errorf("the error does not name CONSIGN_ADMIN_KEY:\n%s", out)
	}
}
