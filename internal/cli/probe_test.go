package cli_test

import (
	"context"
	"log/slog"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
)

// TestProbeCommand: `consign probe` against a server with the outbound guard on prints
// its counts and no finding, and exits 0; without the admin key it says what is missing.
func TestProbeCommand(t *testing.T) {
	t.Parallel()
	a, err := app.Start(context.Background(), app.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), AdminKey: adminKey,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) })

	r := runCLI(t, "", "probe", "--server", a.URL(), "--key", adminKey, "--slow-body", "0")
	require.Equal(t, 0, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.Regexp(t, regexp.MustCompile(`(?m)^bad inputs: \d{3,}$`), r.stdout)
	require.Regexp(t, regexp.MustCompile(`(?m)^cross-org requests: \d{3,}$`), r.stdout)
	require.Regexp(t, regexp.MustCompile(`(?m)^SSRF targets: \d{3,} \(\d+ host names accepted, none of whose test sends got a response\)$`), r.stdout)
	require.Contains(t, r.stdout, "findings: 0\n")

	r = runCLI(t, "", "probe", "--server", a.URL())
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "no admin key")
}
