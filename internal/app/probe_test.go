package app_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/guard"
	"github.com/consign-dev/consign/internal/probe"
)

// TestProbe runs the probe (bad inputs, isolation between orgs, SSRF) against the real
// app with the outbound guard on, and expects no finding.
func TestProbe(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *app.Config) {
		c.InsecureTargets = false
		c.Guard = guard.Config{BodyTimeout: time.Second}
	})
	cfg := probe.Config{URL: e.c.base, AdminKey: adminKey, SlowBody: 5 * time.Second}
	if host, err := os.Hostname(); err == nil {
		cfg.PrivateNames = append(cfg.PrivateNames, host) // resolves to this machine here
	}
	rep, err := probe.Run(t.Context(), cfg)
	require.NoError(t, err)
	t.Logf("probe: %d bad inputs, %d cross-org requests, %d SSRF targets (%d host names accepted, their test sends answered by no one) in %s; %d findings",
		rep.Inputs, rep.Isolation, rep.SSRF, rep.Blocked, rep.Took.Round(100*time.Millisecond), len(rep.Findings))
	for _, f := range rep.Findings {
		t.Error(f)
	}
	require.Greater(t, rep.Inputs, 500)
	require.Greater(t, rep.Isolation, 100)
	require.Greater(t, rep.SSRF, 100)
	require.Positive(t, rep.Blocked, "host names are accepted at creation and blocked when connecting")
}
