package job_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/job"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	c := job.Config{}.WithDefaults()
	require.Equal(t, 1000, c.PageSize)
	require.Equal(t, 1000, c.MaxQueued)
	require.Equal(t, 100*time.Millisecond, c.Wait)
	require.Equal(t, 5*time.Second, c.Poll)
	require.Equal(t, 30*time.Second, c.LeaseTTL)
	for _, tc := range []struct {
		name string
		cfg  job.Config
		want []string
	}{
		{"defaults", job.Config{}, nil},
		{"set", job.Config{PageSize: 1, MaxQueued: 1, Wait: time.Millisecond, Poll: time.Second, LeaseTTL: time.Second}, nil},
		{"page too large", job.Config{PageSize: 5000}, []string{"PageSize is 5000; it must be from 1 to 1000"}},
		{"negative", job.Config{PageSize: -1, MaxQueued: -1, Wait: -time.Second, Poll: -time.Second, LeaseTTL: -time.Second},
			[]string{"PageSize is -1", "MaxQueued is -1", "Wait is -1s", "Poll is -1s", "LeaseTTL is -1s"}},
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
		require.Panics(t, func() { job.NewRunner(nil, tc.cfg, nil, nil) }, tc.name)
	}
}
