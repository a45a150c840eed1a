package cli_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBenchWarmupFlag: `consign bench --warmup` reaches the delivery scenario, and 0
// turns the warm-up off (the whole stream measured).
func TestBenchWarmupFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		flag string
		want int // deliveries before the measured part
	}{{"0", 0}, {"120", 120}} {
		t.Run(tc.flag, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, "", "bench", "--only", "d11", "--events", "200", "--batch-size", "50", "--concurrency", "8",
				"--warmup", tc.flag, "--json")
			require.Equal(t, 0, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			var rep struct {
				Deliver struct {
					Done, Want, Warmup int
					StreamPerSecond    float64 `json:"stream_per_second"`
				} `json:"deliveries_1_1"`
			}
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
			d := rep.Deliver
			require.Equal(t, 200, d.Want, r.stdout)
			require.Equal(t, d.Want, d.Done)
			require.Equal(t, tc.want, d.Warmup)
			if tc.want == 0 {
				require.Zero(t, d.StreamPerSecond)
			} else {
				require.Positive(t, d.StreamPerSecond)
			}
		})
	}
}
