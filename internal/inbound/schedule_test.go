package inbound_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/inbound"
)

func TestNextRun(t *testing.T) {
	t.Parallel()
	// Friday 14 March 2025, 15:09:26 UTC = 11:09:26 in New York (EDT, UTC-4 since 9 March).
	now := time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)
	tests := []struct {
		name     string
		interval time.Duration
		cron, tz string
		after    time.Time
		want     time.Time
	}{
		{"Interval", time.Second, "", "", now, now.Add(time.Second)},
		{"IntervalDay", 24 * time.Hour, "", "", now, now.Add(24 * time.Hour)},
		{"MidnightUTC", 0, "0 0 * * *", "UTC", now, time.Date(2025, time.March, 15, 0, 0, 0, 0, time.UTC)},
		{"MidnightNewYork", 0, "0 0 * * *", "America/New_York", now, time.Date(2025, time.March, 15, 4, 0, 0, 0, time.UTC)},
		{"MidnightNewYorkInWinter", 0, "0 0 * * *", "America/New_York",
			time.Date(2025, time.January, 10, 12, 0, 0, 0, time.UTC), time.Date(2025, time.January, 11, 5, 0, 0, 0, time.UTC)},
		{"ExactlyOnTheTimeIsNext", 0, "0 0 * * *", "UTC",
			time.Date(2025, time.March, 15, 0, 0, 0, 0, time.UTC), time.Date(2025, time.March, 16, 0, 0, 0, 0, time.UTC)},
		{"EveryFifteenMinutes", 0, "*/15 * * * *", "UTC", now, time.Date(2025, time.March, 14, 15, 15, 0, 0, time.UTC)},
		{"WeekdaysAtTwo", 0, "0 2 * * 1-5", "Europe/Berlin", now, time.Date(2025, time.March, 17, 1, 0, 0, 0, time.UTC)},
		{"FirstOfMonth", 0, "30 3 1 * *", "UTC", now, time.Date(2025, time.April, 1, 3, 30, 0, 0, time.UTC)},
		// 2:30 does not exist in New York on 9 March 2025 (clocks go 2:00 → 3:00): that day
		// is skipped (robfig/cron's rule), which is why off-hours syncs should avoid 2–3 am.
		{"SkippedByDST", 0, "30 2 * * *", "America/New_York",
			time.Date(2025, time.March, 8, 12, 0, 0, 0, time.UTC), time.Date(2025, time.March, 10, 6, 30, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := &consign.SourcePoll{Interval: consign.Duration(tt.interval), Cron: tt.cron, Timezone: tt.tz}
			got, err := inbound.NextRun(p, tt.after)
			require.NoError(t, err)
			require.Equal(t, time.UTC, got.Location())
			require.True(t, tt.want.Equal(got), "want %s, got %s", tt.want, got)
			require.True(t, got.After(tt.after))
		})
	}
}

func TestNextRunErrors(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)
	tests := []struct {
		cron, tz, err string
	}{
		{"0 0 * *", "UTC", "not a five-field cron expression"},
		{"0 0 0 * * *", "UTC", "not a five-field cron expression"},
		{"61 0 * * *", "UTC", "not a five-field cron expression"},
		{"@daily", "UTC", "not a five-field cron expression"},
		{"0 0 * * *", "Mars/Olympus_Mons", "unknown time zone"},
		{"0 0 * * *", "Local", "name an IANA zone"},
		{"CRON_TZ=UTC 0 0 * * *", "UTC", `in "timezone"`},
		{"0 0 30 2 *", "UTC", "never comes round"},
	}
	for _, tt := range tests {
		_, err := inbound.NextRun(&consign.SourcePoll{Cron: tt.cron, Timezone: tt.tz}, now)
		require.ErrorContains(t, err, tt.err, "%s in %s", tt.cron, tt.tz)
	}
}
