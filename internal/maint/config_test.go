package maint_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/maint"
)

func TestRetentionConfigValidate(t *testing.T) {
	t.Parallel()
	c := maint.RetentionConfig{}.WithDefaults()
	require.Equal(t, 720*time.Hour, c.Age)
	require.Equal(t, time.Hour, c.Every)
	require.Equal(t, 1000, c.Batch)
	for _, tc := range []struct {
		name string
		cfg  maint.RetentionConfig
		want []string
	}{
		{"defaults", maint.RetentionConfig{}, nil},
		{"set", maint.RetentionConfig{Age: time.Minute, Every: time.Second, Batch: 1}, nil},
		{"negative", maint.RetentionConfig{Age: -time.Hour, Every: -time.Second, Batch: -1},
			[]string{"Age is -1h0m0s", "Every is -1s", "Batch is -1"}},
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
		require.Panics(t, func() { maint.NewRetention(nil, tc.cfg) }, tc.name)
	}
}

func TestCertExpiryConfigValidate(t *testing.T) {
	t.Parallel()
	require.Equal(t, time.Hour, maint.CertExpiryConfig{}.WithDefaults().Every)
	for _, tc := range []struct {
		name string
		cfg  maint.CertExpiryConfig
		want string
	}{
		{"defaults", maint.CertExpiryConfig{}, ""},
		{"set", maint.CertExpiryConfig{Every: time.Second}, ""},
		{"negative", maint.CertExpiryConfig{Every: -time.Second}, "Every is -1s"},
	} {
		err := tc.cfg.WithDefaults().Validate()
		if tc.want == "" {
			require.NoError(t, err, tc.name)
			continue
		}
		require.ErrorContains(t, err, tc.want, tc.name)
		require.Panics(t, func() { maint.NewCertExpiry(nil, tc.cfg) }, tc.name)
	}
}
