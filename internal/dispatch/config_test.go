package dispatch

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigWithDefaults(t *testing.T) {
	t.Parallel()
	c := Config{}.WithDefaults()
	require.Equal(t, DefaultConcurrency, c.Concurrency)
	require.Equal(t, DefaultConcurrency, c.EndpointConcurrency, "burst_limit 0 is capped only by the node-wide limit")
	require.Equal(t, 500, Config{Concurrency: 500}.WithDefaults().EndpointConcurrency)
	require.Equal(t, DefaultClaimBatch, c.ClaimBatch)
	require.Equal(t, DefaultMaxQueued, c.MaxQueued)
	require.Equal(t, DefaultLease, c.Lease)
	require.Equal(t, DefaultResync, c.Resync)
	require.Equal(t, DefaultPolicySweep, c.PolicySweep)
	require.Equal(t, DefaultOwnerTTL, c.OwnerTTL)
	require.Equal(t, DefaultIdleRelease, c.IdleRelease)
	require.NotEmpty(t, c.Node)
	require.NotNil(t, c.Now)
	require.NotNil(t, c.Logger)
	require.NoError(t, c.Validate())
	require.NoError(t, c.ValidateCluster())
	require.Equal(t, 7*time.Minute, Config{Lease: 7 * time.Minute}.WithDefaults().Lease, "a set field is kept")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     Config
		cluster bool
		want    []string // each must appear in the error; none: valid
	}{
		{"defaults", Config{}, false, nil},
		{"defaults in a cluster", Config{}, true, nil},
		{"negative concurrency", Config{Concurrency: -1}, false, []string{"Concurrency is -1; it must be positive"}},
		{"negative counts", Config{EndpointConcurrency: -2, ClaimBatch: -3, MaxQueued: -4}, false,
			[]string{"EndpointConcurrency is -2", "ClaimBatch is -3", "MaxQueued is -4"}},
		{"negative durations", Config{Lease: -time.Second, Resync: -time.Second, PolicySweep: -time.Second, OwnerTTL: -time.Second, IdleRelease: -time.Second}, false,
			[]string{"Lease is -1s", "Resync is -1s", "PolicySweep is -1s", "OwnerTTL is -1s", "IdleRelease is -1s"}},
		// One node: ownership is not used, a long resync is fine.
		{"slow resync, one node", Config{Resync: time.Hour}, false, nil},
		{"ownership shorter than a heartbeat", Config{Resync: 10 * time.Second}, true,
			[]string{"OwnerTTL (5s) must be longer than Resync (10s)"}},
		{"ownership as long as a heartbeat", Config{Resync: 5 * time.Second}, true, []string{"OwnerTTL (5s) must be longer than Resync (5s)"}},
		{"ownership longer than a heartbeat", Config{Resync: 200 * time.Millisecond, OwnerTTL: time.Minute}, true, nil},
	} {
		c := tc.cfg.WithDefaults()
		err := c.Validate()
		if tc.cluster {
			err = c.ValidateCluster()
		}
		if tc.want == nil {
			require.NoError(t, err, tc.name)
			continue
		}
		require.Error(t, err, tc.name)
		for _, w := range tc.want {
			require.Contains(t, err.Error(), w, tc.name)
		}
		if !tc.cluster {
			require.Panics(t, func() { New(nil, nil, nil, nil, tc.cfg) }, tc.name)
		}
	}
}
