package manage_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/sender"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	c := manage.Config{}.WithDefaults()
	require.NotNil(t, c.Now)
	require.NotNil(t, c.Logger)
	for _, tc := range []struct {
		name string
		cfg  manage.Config
		want string
	}{
		{"with a URL check", manage.Config{ValidateURL: sender.ValidateTargetURL}, ""},
		{"without a URL check", manage.Config{}, "ValidateURL is not set"},
	} {
		err := tc.cfg.WithDefaults().Validate()
		if tc.want == "" {
			require.NoError(t, err, tc.name)
			continue
		}
		require.ErrorContains(t, err, tc.want, tc.name)
		require.Panics(t, func() { manage.New(nil, nil, tc.cfg) }, tc.name)
	}
}
