package sender_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/sender"
)

func TestConfigWithDefaults(t *testing.T) {
	t.Parallel()
	c := sender.Config{}.WithDefaults()
	require.Equal(t, sender.DefaultTimeout, c.Timeout)
	require.Equal(t, sender.DefaultConnectTimeout, c.ConnectTimeout)
	require.Equal(t, sender.DefaultMaxResponseBody, c.MaxResponseBody)
	require.Equal(t, sender.DefaultMaxIdleConnsPerHost, c.MaxIdleConnsPerHost)
	require.Equal(t, sender.DefaultUserAgent, c.UserAgent)
	require.NotNil(t, c.Now)
	require.NoError(t, c.Validate())
	// Set fields are kept; a negative MaxResponseBody (capture nothing) is a setting.
	set := sender.Config{Timeout: time.Second, ConnectTimeout: time.Second, MaxResponseBody: -1, UserAgent: "x"}.WithDefaults()
	require.Equal(t, time.Second, set.Timeout)
	require.Equal(t, -1, set.MaxResponseBody)
	require.NoError(t, set.Validate())
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  sender.Config
		want []string // each must appear in the error; none: valid
	}{
		{"defaults", sender.Config{}, nil},
		{"negative timeout", sender.Config{Timeout: -time.Second}, []string{"Timeout is -1s"}},
		{"negative connect timeout", sender.Config{ConnectTimeout: -time.Second}, []string{"ConnectTimeout is -1s"}},
		// The attempt's deadline bounds the connect too: a short Timeout with the default
		// ConnectTimeout is a setting.
		{"connect longer than the attempt", sender.Config{Timeout: 200 * time.Millisecond}, nil},
		{"negative idle pool", sender.Config{MaxIdleConnsPerHost: -1}, []string{"MaxIdleConnsPerHost is -1"}},
		{"several at once", sender.Config{Timeout: -time.Second, MaxIdleConnsPerHost: -2}, []string{"Timeout is -1s", "MaxIdleConnsPerHost is -2"}},
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
		require.Panics(t, func() { sender.New(tc.cfg) }, tc.name)
	}
}
