package api

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	c := Config{}.WithDefaults()
	require.EqualValues(t, DefaultMaxBody, c.MaxBody)
	require.EqualValues(t, DefaultMaxBatchBody, c.MaxBatchBody)
	require.NotNil(t, c.Now)
	require.NotNil(t, c.Logger)
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"defaults", Config{}, nil},
		{"public URL", Config{PublicURL: "https://hooks.example.com"}, nil},
		{"public URL with a path", Config{PublicURL: "http://127.0.0.1:8700/consign/"}, nil},
		{"negative limits", Config{MaxBody: -1, MaxBatchBody: -2}, []string{"MaxBody is -1", "MaxBatchBody is -2"}},
		{"public URL without scheme", Config{PublicURL: "hooks.example.com"}, []string{`PublicURL "hooks.example.com" must start with https://`}},
		{"public URL of another scheme", Config{PublicURL: "ftp://hooks.example.com"}, []string{`must start with https://`}},
		{"public URL without host", Config{PublicURL: "https:///in"}, []string{`PublicURL "https:///in" has no host`}},
		{"public URL with a query", Config{PublicURL: "https://hooks.example.com/?a=1"}, []string{"no credentials, query or fragment"}},
		{"public URL with credentials", Config{PublicURL: "https://u:p@hooks.example.com"}, []string{"no credentials, query or fragment"}},
		{"public URL that does not parse", Config{PublicURL: "https://exa mple.com"}, []string{"is not a URL"}},
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
