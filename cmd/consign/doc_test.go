package main_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/consign-dev/consign/internal/brokertest"
)

// The documentation test: every ```sh (or bash, shell) block of README.md and
// docs/recipes/*.md runs with bash against a real server (the built binary, a fresh data
// directory, --insecure-targets), so a document cannot drift from the binary.
//
// The blocks of one document run in order in one shell state (variables set by one block
// are seen by the next), in a directory of their own, with
//   - CONSIGN_URL the server and ADMIN_KEY its admin key in the environment, and the
//     built consign first on PATH;
//   - curl failing on an HTTP error status (--fail-with-body): a 4xx or 5xx that the
//     document does not expect fails its block;
//   - the few placeholders a reader fills filled in: the server's address
//     http://127.0.0.1:8700, its admin key csk_…, the tour's receiver http://127.0.0.1:9000, and partner URLs
//     on example hosts (https://example.com/…, https://vendor.example.com/…,
//     https://api.deposco.example/…) pointing at a test receiver that answers 200 with
//     JSON.
//
// A block that must not run (it starts the server this test starts, needs PostgreSQL,
// runs the test suite) is marked on the line before its fence:
//
//	<!-- doc-test: skip (why) -->
//
// and counted; an unmarked block that fails fails the test.

// docFiles are the documents whose shell blocks must run.
func docFiles(tb testing.TB) []string {
	tb.Helper()
	recipes, err := filepath.Glob("../../docs/recipes/*.md")
	if err != nil || len(recipes) == 0 {
		tb.Fatalf("no recipes found: %v", err)
	}
	return append([]string{"../../README.md"}, recipes...)
}

// docBlock is one shell block of a document.
type docBlock struct {
	file string
	line int    // of the opening fence
	code string // the block's text
	skip string // why it must not run; "" runs it
}

var (
	fenceRE = regexp.MustCompile("^```(sh|bash|shell)\\s*$")
	skipRE  = regexp.MustCompile(`^<!-- doc-test: skip \((.+)\) -->$`)
	// anySkipRE finds markers, well-formed or not.
	anySkipRE = regexp.MustCompile(`doc-test:`)
)

// docBlocks reads the shell blocks of a markdown file.
func docBlocks(tb testing.TB, path string) []docBlock {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []docBlock
	var cur *docBlock
	fence := ""    // the backticks that opened the fence we are in ("": none)
	lastText := "" // the last non-blank line outside a fence
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case fence != "" && strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, "`") == "":
			if cur != nil {
				out = append(out, *cur)
			}
			cur, fence, lastText = nil, "", "" // a marker belongs to the next block only
		case cur != nil:
			cur.code += line + "\n"
		case fence != "":
		case fenceRE.MatchString(line):
			cur, fence = &docBlock{file: path, line: n}, "```"
			if m := skipRE.FindStringSubmatch(lastText); m != nil {
				cur.skip = m[1]
			} else if anySkipRE.MatchString(lastText) {
				tb.Errorf("%s:%d: a doc-test marker must read <!-- doc-test: skip (reason) -->, not %q", path, n-1, lastText)
			}
		case strings.HasPrefix(trimmed, "```"):
			fence = trimmed[:len(trimmed)-len(strings.TrimLeft(trimmed, "`"))]
		case trimmed != "":
			lastText = trimmed
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if cur != nil {
		tb.Fatalf("%s:%d: the block is never closed", path, cur.line)
	}
	return out
}

// partnerRE matches the partner URLs of the documents: https:// on example hosts.
var partnerRE = regexp.MustCompile(`https://([a-z0-9-]+\.)*example(\.com)?`)

// fill fills the placeholders a reader would: the server's address, its admin key
// (csk_…), the receivers' addresses.
func fill(code, server, partner string) string {
	code = strings.ReplaceAll(code, "http://127.0.0.1:8700", server)
	code = strings.ReplaceAll(code, "csk_…", adminKey)
	code = strings.ReplaceAll(code, "http://127.0.0.1:9000", partner)
	return partnerRE.ReplaceAllString(code, partner)
}

func TestDocumentsRun(t *testing.T) {
	t.Parallel()
	bin := consignBinary(t)
	for _, tool := range []string{"bash", "jq", "openssl"} { // what the documents use besides curl
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run the documents' shell blocks", tool)
		}
	}
	docBrokers(t)
	srv := startServer(t, bin, t.TempDir(), nil)
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status": "received", "reference": "VND-2", "id": 981, "shipments": [], "next": null}`)
	}))
	t.Cleanup(partner.Close)

	// bin holds consign and a curl that fails on an HTTP error status.
	binDir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(binDir, "consign")); err != nil {
		t.Fatal(err)
	}
	realCurl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is needed to run the documents' shell blocks")
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %q --fail-with-body \"$@\"\n", realCurl)
	if err := os.WriteFile(filepath.Join(binDir, "curl"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	env := hermeticEnv("CONSIGN_URL="+srv.url, "ADMIN_KEY="+adminKey, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))

	for _, path := range docFiles(t) {
		blocks := docBlocks(t, path)
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			state := filepath.Join(dir, ".doc-test-state")
			if err := os.WriteFile(state, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			ran, skipped := 0, 0
			for _, b := range blocks {
				if b.skip != "" {
					skipped++
					continue
				}
				ran++
				out, err := runBlock(dir, env, state, fill(b.code, srv.url, partner.URL))
				if err != nil {
					t.Fatalf("%s:%d: the block fails (%v):\n%s\n--- output\n%s", name, b.line, err, b.code, out)
				}
			}
			if ran == 0 {
				t.Fatalf("%s: no block ran (%d skipped)", name, skipped)
			}
			t.Logf("%s: %d blocks ran, %d marked skip", name, ran, skipped)
		})
	}
}

// runBlock runs one block with bash in dir, in the shell state the document's blocks
// before it left in the state file, and saves the state it leaves. It returns the
// block's output.
func runBlock(dir string, env []string, state, code string) (string, error) {
	script := fmt.Sprintf("set -a\nsource %q\nset -eo pipefail\n%s\nexport -p > %q\n", state, code, state)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := os.CreateTemp(dir, ".doc-test-out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, out, out
	// Its own process group, ended with the block: nothing a block starts outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	runErr := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	b, _ := os.ReadFile(out.Name())
	return string(b), runErr
}

func TestDocBlocks(t *testing.T) {
	t.Parallel()
	md := "# Title\n\n```sh\necho one\n```\n\n<!-- doc-test: skip (starts a server) -->\n\n```bash\nserve\n```\n\n" +
		"```go\nx := 1\n```\n````text\n```sh\nnot a block\n```\n````\n```shell\necho two\necho three\n```\n"
	path := filepath.Join(t.TempDir(), "doc.md")
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	got := docBlocks(t, path)
	want := []docBlock{
		{file: path, line: 3, code: "echo one\n"},
		{file: path, line: 9, code: "serve\n", skip: "starts a server"},
		{file: path, line: 21, code: "echo two\necho three\n"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("blocks:\n got %+v\nwant %+v", got, want)
	}
	if f := fill("curl http://127.0.0.1:8700/v1 https://api.deposco.example/s https://example.com/x http://127.0.0.1:9000/h csk_…", "S", "P"); f != "curl S/v1 P/s P/x P/h "+adminKey {
		t.Fatalf("fill: %q", f)
	}
}

// docBrokers makes what README.md's "Destinations beyond HTTP" has its reader make with
// the nats and rabbitmqadmin tools, which this machine lacks: a JetStream stream ORDERS
// taking orders.> (file storage) and a durable queue orders. Both are left in place, as a
// reader's would be (another run may be using them); the stream keeps an hour of messages
// and the queue its last thousand.
func docBrokers(t *testing.T) {
	t.Helper()
	nc, err := nats.Connect(brokertest.NATSServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateStream(t.Context(), jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"},
		Storage: jetstream.FileStorage, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	c, err := amqp.Dial(brokertest.AMQPServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("orders", true, false, false, false, amqp.Table{"x-max-length": int32(1000)}); err != nil {
		t.Fatal(err)
	}
}
