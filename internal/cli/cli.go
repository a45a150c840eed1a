// Package cli is the consign command line: it parses flags and CONSIGN_* environment
// variables (kong) into each command's configuration and runs it. main only wires the
// process (signals, exit code) to Run.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/alecthomas/kong"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/dispatch"
	"github.com/consign-dev/consign/internal/gcpace"
	"github.com/consign-dev/consign/internal/guard"
	"github.com/consign-dev/consign/internal/sender"
	"github.com/consign-dev/consign/webhook"
)

// Run runs the command line args and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var root struct {
		Serve   serveCmd   `cmd:"" help:"Run the API server and the dispatcher."`
		Verify  verifyCmd  `cmd:"" help:"Check a received webhook's signature (exit 0 valid, 1 not)."`
		Migrate migrateCmd `cmd:"" help:"Apply the store's pending migrations and exit."`
		Bench   benchCmd   `cmd:"" help:"Measure the spec's performance figures on this machine (in-process server, loopback receiver)."`
		Probe   probeCmd   `cmd:"" help:"Attack a running server with bad inputs, cross-org requests and SSRF targets; exit 1 if anything got through."`
		Version versionCmd `cmd:"" help:"Print the version."`

		clientCmds `embed:""` // orgs, endpoints, events… against a running server (client.go)
	}
	exit := -1
	parser, err := kong.New(&root, kong.Name("consign"),
		kong.Description("Consign: webhooks for commerce, in and out."),
		kong.Writers(stdout, stderr), kong.Exit(func(code int) { exit = code }),
		kong.Configuration(configFile))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 {
		return exit // --help
	}
	if err != nil {
		fmt.Fprintf(stderr, "consign: %v\n", err)
		return 2
	}
	env := &runEnv{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	if err := kctx.Run(env); err != nil {
		var ce codeError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "consign: %v\n", ce.err)
			return ce.code
		}
		fmt.Fprintf(stderr, "consign: %v\n", err)
		return 1
	}
	return 0
}

type runEnv struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
}

type codeError struct {
	code int
	err  error
}

func (e codeError) Error() string { return e.err.Error() }

type serveCmd struct {
	Addr             string        `default:":8700" env:"CONSIGN_ADDR" help:"Listen address."`
	Data             string        `default:"./consign-data" env:"CONSIGN_DATA" help:"Data directory of the embedded store (and of the encryption key file)."`
	Database         string        `env:"CONSIGN_DATABASE" help:"PostgreSQL address (postgres://…) to use instead of the embedded store; several nodes may share it."`
	Retention        time.Duration `default:"720h" env:"CONSIGN_RETENTION" help:"How long attempts, finished events and settled inbound receipts are kept (purged hourly); negative keeps everything."`
	InsecureTargets  bool          `env:"CONSIGN_INSECURE_TARGETS" help:"Allow http:// and private/loopback endpoint URLs (development and tests only)."`
	EgressProxy      string        `env:"CONSIGN_EGRESS_PROXY" placeholder:"http://HOST:PORT" help:"HTTP CONNECT proxy every outbound connection goes through (deliveries, source polls, OAuth token fetches), so partners can allow-list its address; target rules still apply to the target."`
	AdminKey         string        `env:"CONSIGN_ADMIN_KEY" help:"Accept this value as an admin API key."`
	EncryptionKey    string        `env:"CONSIGN_ENCRYPTION_KEY" help:"32-byte key (base64 or hex) that seals secrets at rest; default a key file in the data directory."`
	LogFormat        string        `default:"text" enum:"text,json" env:"CONSIGN_LOG_FORMAT" help:"Log format: text or json."`
	PublicURL        string        `env:"CONSIGN_PUBLIC_URL" help:"Base URL the world reaches this server at (for sources' ingest URLs and portal links); default: taken from each request."`
	UIFrameAncestors string        `name:"ui-frame-ancestors" env:"CONSIGN_UI_FRAME_ANCESTORS" placeholder:"ORIGINS" help:"Origins that may show the dashboard and partner portal in an iframe, separated by spaces, such as \"https://app.example.com https://*.example.com\"; default none. Inside another site's iframe the session cookie needs HTTPS (SameSite=None; Secure)."`
	BodyBudget       int64         `default:"134217728" env:"CONSIGN_BODY_BUDGET" help:"Bytes of request bodies all requests in flight may hold together (default 128 MiB); a request beyond it is answered 503 with Retry-After."`
	BodyTimeout      time.Duration `default:"10s" env:"CONSIGN_BODY_TIMEOUT" help:"How long a request body may take to arrive, plus one second for every --body-min-rate bytes received; a slower one is cut with 408."`
	BodyMinRate      int64         `default:"32768" env:"CONSIGN_BODY_MIN_RATE" help:"The slowest a long request body may arrive after --body-timeout, in bytes per second (default 32 KiB/s)."`
	Concurrency      int           `default:"256" env:"CONSIGN_CONCURRENCY" help:"Most delivery attempts in flight at once on this node; also the cap of an endpoint whose burst_limit is 0 (no limit)."`
	TrustedProxies   []string      `env:"CONSIGN_TRUSTED_PROXIES" placeholder:"CIDR,..." help:"Addresses or CIDR ranges of the proxies in front of the server, whose X-Forwarded-For names the client (for throttling failed sign-ins); default none: the client is the connection's peer."`
	AuthFailures     int           `default:"20" env:"CONSIGN_AUTH_FAILURES" help:"How many bad API keys a client address may present at once (API and dashboard sign-in) before it is answered 429."`
	AuthFailureRate  float64       `default:"1" env:"CONSIGN_AUTH_FAILURE_RATE" help:"How many bad API keys a second a client address may present after --auth-failures."`

	// Config is read by kong (configFile) before the other fields are resolved.
	Config kong.ConfigFlag `env:"CONSIGN_CONFIG" placeholder:"FILE" help:"JSON file of serve settings, keyed by flag name in snake_case (\"addr\", \"insecure_targets\"); flags and environment variables override it."`
}

func (c *serveCmd) Run(env *runEnv) error {
	var h slog.Handler = slog.NewTextHandler(env.stderr, nil)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(env.stderr, nil)
	}
	logger := slog.New(h)
	plan, stopPacing := gcpace.Pace(gcpace.Config{})
	defer stopPacing()
	logger.Info("collector", "pace", plan.String())
	a, err := app.Start(env.ctx, app.Config{
		Addr: c.Addr, DataDir: c.Data, Database: c.Database, Retention: c.Retention, InsecureTargets: c.InsecureTargets, AdminKey: c.AdminKey,
		EncryptionKey: c.EncryptionKey, PublicURL: c.PublicURL, Logger: logger,
		UIFrameAncestors: c.frameAncestors(),
		Guard: guard.Config{BodyBudget: c.BodyBudget, BodyTimeout: c.BodyTimeout, BodyMinRate: c.BodyMinRate,
			TrustedProxies: c.TrustedProxies, FailureBurst: c.AuthFailures, FailureRate: c.AuthFailureRate},
		Dispatch: dispatch.Config{Concurrency: c.Concurrency},
		Sender:   sender.Config{EgressProxy: c.EgressProxy},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "Consign %s listening on %s (API under /v1)\n", consign.Version, a.URL())
	fmt.Fprintf(env.stdout, "Dashboard: %s/ui/\n", a.URL())
	if a.NewAdminKey != "" {
		fmt.Fprintf(env.stdout, "Admin API key (shown once, store it now): %s\n", a.NewAdminKey)
	}
	<-env.ctx.Done()
	fmt.Fprintln(env.stdout, "shutting down")
	return a.Close()
}

// frameAncestors splits --ui-frame-ancestors at spaces (as in a CSP) or commas.
func (c *serveCmd) frameAncestors() []string {
	return strings.FieldsFunc(c.UIFrameAncestors, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

type migrateCmd struct {
	Data     string `default:"./consign-data" env:"CONSIGN_DATA" help:"Data directory of the embedded store."`
	Database string `env:"CONSIGN_DATABASE" help:"PostgreSQL address (postgres://…); when set, it is migrated instead of the embedded store."`
}

// Run applies pending migrations (serve does so too; this is for deploys that migrate
// before starting nodes).
func (c *migrateCmd) Run(env *runEnv) error {
	st, err := app.OpenStore(env.ctx, c.Database, c.Data)
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	where := c.Data
	if c.Database != "" {
		where = "the PostgreSQL database"
	}
	fmt.Fprintf(env.stdout, "migrations applied to %s\n", where)
	return nil
}

type verifyCmd struct {
	Secret    []string      `required:"" sep:"none" env:"CONSIGN_WEBHOOK_SECRET" help:"The endpoint's secret (whsec_…) or public key (whpk_…); repeat to accept any of several (rotation)."`
	Header    []string      `short:"H" sep:"none" help:"A received header as 'name: value' (repeat for webhook-id, webhook-timestamp, webhook-signature)."`
	Tolerance time.Duration `default:"5m" help:"How far webhook-timestamp may be from now."`
}

func (c *verifyCmd) Run(env *runEnv) error {
	h := http.Header{}
	for _, line := range c.Header {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return codeError{2, fmt.Errorf("--header %q: want 'name: value'", line)}
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	body, err := io.ReadAll(io.LimitReader(env.stdin, 64<<20))
	if err != nil {
		return codeError{2, fmt.Errorf("read body from stdin: %w", err)}
	}
	v, err := webhook.NewVerifier(c.Secret, webhook.WithTolerance(c.Tolerance))
	if err != nil {
		return codeError{2, err}
	}
	if err := v.Verify(h, body); err != nil {
		return codeError{1, fmt.Errorf("invalid: %w", err)}
	}
	fmt.Fprintln(env.stdout, "valid")
	return nil
}

type versionCmd struct{}

func (versionCmd) Run(env *runEnv) error {
	_, err := fmt.Fprintf(env.stdout, "consign %s\n", consign.Version)
	return err
}
