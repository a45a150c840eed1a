package app_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/api"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/dispatch"
	"github.com/consign-dev/consign/internal/guard"
	"github.com/consign-dev/consign/internal/inbound"
	"github.com/consign-dev/consign/internal/job"
	"github.com/consign-dev/consign/internal/sender"
)

// TestConfigValidate: each bad setting and each bad combination is named in the error,
// with the component's place in Config.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  app.Config
		want []string // each must appear in the error; none: valid
	}{
		{"defaults", app.Config{}, nil},
		{"set and consistent", app.Config{Addr: "127.0.0.1:0", PublicURL: "https://hooks.example.com",
			Sender: sender.Config{Timeout: time.Minute}, Dispatch: dispatch.Config{Lease: 2 * time.Minute}}, nil},
		{"bad address", app.Config{Addr: "8700"}, []string{`Addr (CONSIGN_ADDR) "8700" is not a listen address`}},
		{"bad public URL", app.Config{PublicURL: "hooks.example.com"}, []string{`PublicURL (CONSIGN_PUBLIC_URL) "hooks.example.com" must start with https://`}},
		{"bad API public URL", app.Config{API: api.Config{PublicURL: "hooks.example.com"}}, []string{"API.PublicURL"}},
		{"lease shorter than the send timeout", app.Config{Sender: sender.Config{Timeout: 3 * time.Minute}},
			[]string{"Dispatch.Lease (2m0s) must be longer than Sender.Timeout (3m0s)"}},
		{"lease as long as the send timeout", app.Config{Sender: sender.Config{Timeout: time.Minute}, Dispatch: dispatch.Config{Lease: time.Minute}},
			[]string{"Dispatch.Lease (1m0s) must be longer than Sender.Timeout (1m0s)"}},
		{"component settings, named", app.Config{Sender: sender.Config{ConnectTimeout: -time.Second}, Dispatch: dispatch.Config{Concurrency: -1},
			Inbound: inbound.Config{Workers: -1}, API: api.Config{MaxBody: -1}},
			[]string{"Sender.ConnectTimeout is -1s", "Dispatch.Concurrency is -1", "Inbound.Workers is -1", "API.MaxBody is -1"}},
		{"guard settings, named", app.Config{Guard: guard.Config{BodyBudget: -1, BodyTimeout: -time.Second}},
			[]string{"Guard.BodyBudget is -1", "Guard.BodyTimeout is -1s"}},
		{"job settings, named", app.Config{Jobs: job.Config{MaxQueued: -1}}, []string{"Jobs.MaxQueued is -1"}},
		{"weak admin key", app.Config{AdminKey: "an-admin-key-of-24-chars"}, []string{"AdminKey (CONSIGN_ADMIN_KEY) has 24 characters"}},
		{"bad trusted proxy", app.Config{Guard: guard.Config{TrustedProxies: []string{"10.0.0.0/8", "proxy.internal"}}},
			[]string{`Guard.TrustedProxies: "proxy.internal" is not an address or a CIDR range`}},
		{"inbound payload over ingest's", app.Config{Inbound: inbound.Config{MaxPayload: 1 << 20}},
			[]string{"Inbound.MaxPayload (1048576) is larger than the largest event payload (262144)"}},
		{"negative certificate check", app.Config{CertificateCheck: -time.Minute}, []string{"CertificateCheck is -1m0s"}},
		{"frame ancestors", app.Config{UIFrameAncestors: []string{"https://app.example.com", "https://*.example.com:8443", "'self'"}}, nil},
		{"frame ancestor with a path", app.Config{UIFrameAncestors: []string{"https://app.example.com/settings"}},
			[]string{`UIFrameAncestors (CONSIGN_UI_FRAME_ANCESTORS) "https://app.example.com/settings" is not an origin`}},
		{"frame ancestor that would add a directive", app.Config{UIFrameAncestors: []string{"https://a.example;script-src"}},
			[]string{`"https://a.example;script-src" is not an origin`}},
		{"frame ancestor without a scheme", app.Config{UIFrameAncestors: []string{"app.example.com"}},
			[]string{`"app.example.com" is not an origin: want https://host[:port]`}},
		// One node: the ownership settings are not used.
		{"slow resync on one node", app.Config{Dispatch: dispatch.Config{Resync: time.Minute}}, nil},
		{"slow resync in a cluster", app.Config{Database: "postgres://127.0.0.1/x", Dispatch: dispatch.Config{Resync: time.Minute}},
			[]string{"Dispatch.OwnerTTL (5s) must be longer than Resync (1m0s)"}},
	} {
		err := tc.cfg.WithDefaults().Validate()
		if tc.want == nil {
			require.NoError(t, err, tc.name)
			continue
		}
		require.Error(t, err, tc.name)
		for _, w := range tc.want {
			require.Contains(t, err.Error(), w, tc.name)
		}
	}
}

// TestStartRefusesBadSettings: Start reports the settings and touches nothing: the data
// directory is not even created.
func TestStartRefusesBadSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() + "/data"
	_, err := app.Start(t.Context(), app.Config{Addr: "127.0.0.1:0", DataDir: dir, Sender: sender.Config{Timeout: 5 * time.Minute}})
	require.ErrorContains(t, err, "invalid settings")
	require.ErrorContains(t, err, "Dispatch.Lease (2m0s) must be longer than Sender.Timeout (5m0s)")
	require.NoDirExists(t, dir)
}
