package web_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/web"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	c := web.Config{}.WithDefaults()
	require.Equal(t, 12*time.Hour, c.SessionTTL)
	require.Equal(t, 10000, c.MaxSessions)
	for _, tc := range []struct {
		name string
		cfg  web.Config
		want []string
	}{
		{"defaults", web.Config{}, nil},
		{"set", web.Config{SessionTTL: time.Minute, MaxSessions: 1}, nil},
		{"negative", web.Config{SessionTTL: -time.Minute, MaxSessions: -1}, []string{"SessionTTL is -1m0s", "MaxSessions is -1"}},
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
		require.Panics(t, func() { web.New(nil, nil, nil, nil, nil, tc.cfg) }, tc.name)
	}
}
