package ingest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/ingest"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	c := ingest.Config{}.WithDefaults()
	require.Equal(t, ingest.DefaultMaxBatchEvents, c.MaxBatchEvents)
	require.Equal(t, ingest.DefaultSharedBatchEvents, c.SharedBatchEvents)
	require.Equal(t, ingest.DefaultMaxPayload, c.MaxPayload)
	require.NotNil(t, c.Now)
	require.NotNil(t, c.Logger)
	require.NotNil(t, c.Tracer)
	for _, tc := range []struct {
		name string
		cfg  ingest.Config
		want []string
	}{
		{"defaults", ingest.Config{}, nil},
		{"set", ingest.Config{MaxBatchEvents: 1, MaxPayload: 1}, nil},
		{"negative batch", ingest.Config{MaxBatchEvents: -1}, []string{"MaxBatchEvents is -1; it must be positive"}},
		{"negative shared batch", ingest.Config{SharedBatchEvents: -2}, []string{"SharedBatchEvents is -2; it must be positive"}},
		{"negative payload", ingest.Config{MaxPayload: -5}, []string{"MaxPayload is -5; it must be positive"}},
		{"both", ingest.Config{MaxBatchEvents: -1, MaxPayload: -5}, []string{"MaxBatchEvents is -1", "MaxPayload is -5"}},
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
		require.Panics(t, func() { ingest.New(nil, tc.cfg) }, tc.name)
	}
}
