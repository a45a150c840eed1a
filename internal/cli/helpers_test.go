package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/cli"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// adminKey is the admin key of every test server; 40 characters.
const adminKey = "test-admin-key-q7Vx2mP9rT4wZ8bN3cF6hJ1sD"

// server is a running Consign.
type server struct{ url string }

func start(tb testing.TB) *server {
	tb.Helper()
	a, err := app.Start(context.Background(), app.Config{
		Addr: "127.0.0.1:0", DataDir: tb.TempDir(), InsecureTargets: true, AdminKey: adminKey,
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, a.Close()) })
	return &server{url: a.URL()}
}

// result is what one run of the command line printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// run runs consign with args and the flags that reach the server.
func (s *server) run(tb testing.TB, stdin string, args ...string) result {
	tb.Helper()
	return runCLI(tb, stdin, append(args, "--server", s.url, "--key", adminKey)...)
}

func runCLI(tb testing.TB, stdin string, args ...string) result {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// ok runs a command that must succeed and returns its output.
func (s *server) ok(tb testing.TB, stdin string, args ...string) string {
	tb.Helper()
	r := s.run(tb, stdin, args...)
	require.Equal(tb, 0, r.code, "consign %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
	return r.stdout
}

// receiver answers every request with 200 and counts them.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   int
}

func newReceiver(tb testing.TB) *receiver {
	tb.Helper()
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.n++
		r.mu.Unlock()
		if strings.HasSuffix(req.URL.Path, "/vendor") {
			// A vendor that answers with its own reference and id, as Onport's do.
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Vendor-Request", "vr-1")
			_, _ = io.WriteString(w, `{"status": "received", "vendorReference": "VND-1001", "data": {"id": 77}}`)
			return
		}
		_, _ = io.WriteString(w, "thanks")
	}))
	tb.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Normalisation of what varies from run to run.
var (
	idRe   = regexp.MustCompile(`\b(org|key|ep|sec|evt|dlv|src|rcp|job|prt)_[0-9A-HJKMNP-TV-Z]{26}\b`)
	timeRe = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	portRe = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	msRe   = regexp.MustCompile(`\b\d+ms\b`)
	jsonMS = regexp.MustCompile(`"duration_ms":\s*\d+`)
	keyRe  = regexp.MustCompile(`\bcsk_[A-Za-z0-9_-]{43}`)
	secRe  = regexp.MustCompile(`\bwhsec_[A-Za-z0-9+/=]{44}`)
	inRe   = regexp.MustCompile(`/in/[A-Za-z0-9_-]+`)
	cplRe  = regexp.MustCompile(`\bcpl_[A-Za-z0-9_-]{43}`)
	gapRe  = regexp.MustCompile(`  +`)
	dateRe = regexp.MustCompile(`[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT`)
)

// normalize replaces ids (by kind and order of appearance: org_1, ep_2…), times, ports,
// durations and secret values.
func normalize(s string) string {
	seen := map[string]string{}
	counts := map[string]int{}
	s = idRe.ReplaceAllStringFunc(s, func(id string) string {
		if v, ok := seen[id]; ok {
			return v
		}
		prefix := id[:strings.IndexByte(id, '_')]
		counts[prefix]++
		seen[id] = fmt.Sprintf("%s_%d", prefix, counts[prefix])
		return seen[id]
	})
	s = timeRe.ReplaceAllString(s, "2026-01-02T03:04:05Z")
	s = dateRe.ReplaceAllString(s, "Fri, 02 Jan 2026 03:04:05 GMT")
	s = portRe.ReplaceAllString(s, "127.0.0.1:PORT")
	s = msRe.ReplaceAllString(s, "Nms")
	s = jsonMS.ReplaceAllString(s, `"duration_ms":N`)
	s = keyRe.ReplaceAllString(s, "csk_KEY")
	s = cplRe.ReplaceAllString(s, "cpl_TOKEN")
	s = inRe.ReplaceAllString(s, "/in/TOKEN")
	return secRe.ReplaceAllString(s, "whsec_SECRET")
}

// realign aligns the columns of normalised table output again: the replacements have
// other widths than what they replaced.
func realign(s string) string {
	var out bytes.Buffer
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	for line := range strings.Lines(s) {
		fmt.Fprintln(tw, gapRe.ReplaceAllString(strings.TrimRight(line, " \n"), "\t"))
	}
	tw.Flush()
	return out.String()
}

// indentJSON pretty-prints a JSON output so its golden file reads well.
func indentJSON(tb testing.TB, s string) string {
	tb.Helper()
	var b bytes.Buffer
	require.NoError(tb, json.Indent(&b, []byte(s), "", "  "), s)
	return b.String() + "\n"
}

// golden compares got with testdata/name.golden, or writes it with -update.
func golden(tb testing.TB, name, got string) {
	tb.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(tb, os.MkdirAll("testdata", 0o755))
		require.NoError(tb, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(tb, err, "run go test -update to create %s", path)
	require.Equal(tb, string(want), got, "output differs from %s (go test -update rewrites it)", path)
}

// transcript is how a golden file shows one run: the command, its output, its exit code.
func transcript(args []string, r result) string {
	var b strings.Builder
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if a == "" || strings.ContainsAny(a, " *'\"{}$") {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	fmt.Fprintf(&b, "$ consign %s\n", strings.Join(quoted, " "))
	b.WriteString(r.stdout)
	if r.stderr != "" {
		b.WriteString("--- stderr\n" + r.stderr)
	}
	fmt.Fprintf(&b, "--- exit %d\n", r.code)
	return b.String()
}
