package inbound_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/inbound"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	c := inbound.Config{}.WithDefaults()
	require.EqualValues(t, 1<<20, c.MaxBody)
	require.Equal(t, 256<<10, c.MaxPayload)
	require.Equal(t, 16, c.Workers)
	require.NotNil(t, c.ValidateURL)
	for _, tc := range []struct {
		name string
		cfg  inbound.Config
		want []string
	}{
		{"defaults", inbound.Config{}, nil},
		{"small limits", inbound.Config{MaxBody: 1, MaxPayload: 1, MaxHeaders: 1, MaxHeaderBytes: 1, Workers: 1, PollConcurrency: 1}, nil},
		{"negative sizes", inbound.Config{MaxBody: -1, MaxPayload: -2, MaxHeaders: -3, MaxHeaderBytes: -4},
			[]string{"MaxBody is -1", "MaxPayload is -2", "MaxHeaders is -3", "MaxHeaderBytes is -4"}},
		{"negative workers", inbound.Config{Workers: -1, PollConcurrency: -1}, []string{"Workers is -1", "PollConcurrency is -1"}},
		{"negative durations", inbound.Config{FailureEventEvery: -time.Second, Sweep: -time.Second, PollRetry: -time.Second, PollCheck: -time.Second},
			[]string{"FailureEventEvery is -1s", "Sweep is -1s", "PollRetry is -1s", "PollCheck is -1s"}},
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
		require.Panics(t, func() { inbound.New(nil, nil, nil, nil, tc.cfg) }, tc.name)
	}
}
