package dispatch

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

func TestTripped(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { v := now.Add(-d); return &v }
	policy := func(disableAfter time.Duration, maxFailures int, window time.Duration) consign.FailurePolicy {
		return consign.FailurePolicy{DisableAfter: consign.Duration(disableAfter), MaxFailures: maxFailures, Window: consign.Duration(window)}
	}
	for _, tc := range []struct {
		name         string
		policy       consign.FailurePolicy
		failingSince *time.Time
		failures     int
		want         string // substring of the reason; "" = not tripped
	}{
		{"healthy", policy(72*time.Hour, 0, 0), nil, 0, ""},
		{"failing for less than disable_after", policy(72*time.Hour, 0, 0), ago(71 * time.Hour), 0, ""},
		{"failing for exactly disable_after", policy(72*time.Hour, 0, 0), ago(72 * time.Hour), 0, "nothing accepted for 72h0m0s"},
		{"failing for longer", policy(72*time.Hour, 0, 0), ago(100 * time.Hour), 0, "failing since 2026-11-19T08:00:00Z"},
		{"ReadyCloud: more than 3 failures in 6h", policy(72*time.Hour, 3, 6*time.Hour), ago(time.Hour), 4, "4 failed attempts within 6h0m0s (more than 3)"},
		{"exactly max_failures is allowed", policy(72*time.Hour, 3, 6*time.Hour), ago(time.Hour), 3, ""},
		{"failure count without a policy", policy(72*time.Hour, 0, 0), ago(time.Hour), 1000, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := &consign.Endpoint{FailurePolicy: tc.policy, FailingSince: tc.failingSince}
			got := Tripped(e, tc.failures, now)
			if tc.want == "" {
				require.Empty(t, got)
			} else {
				require.Contains(t, got, tc.want)
			}
		})
	}
}

func TestRetryDelayJitter(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	p := consign.DefaultRetry()
	for _, tc := range []struct {
		attempts int
		base     time.Duration
	}{{1, 5 * time.Second}, {2, 30 * time.Second}, {9, 8 * time.Hour}, {10, 8 * time.Hour}, {40, 8 * time.Hour}} {
		for range 200 {
			d := p.Delay(tc.attempts, rnd)
			require.GreaterOrEqual(t, d, tc.base*8/10, "attempt %d", tc.attempts)
			require.LessOrEqual(t, d, tc.base*12/10, "attempt %d", tc.attempts)
		}
	}
}

func TestHealthOf(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	out := func(ep string, status int, at time.Time) *store.Outcome {
		a := &consign.Attempt{N: 1, StartedAt: at}
		if status > 0 {
			a.Response = &consign.AttemptResponse{Status: status}
		}
		return &store.Outcome{EndpointID: ep, Attempt: a}
	}
	got := healthOf([]*store.Outcome{
		out("a", 500, t0), out("a", 0, t0.Add(time.Second)), // a fails twice: failing since t0
		out("b", 500, t0), out("b", 200, t0.Add(time.Second)), // b recovers: healthy
		out("c", 200, t0), out("c", 503, t0.Add(2*time.Second)), // c fails after a success
		{EndpointID: "d", Status: consign.StatusPaused}, // no attempt: no change
	})
	require.Equal(t, []store.HealthChange{
		{EndpointID: "a", OK: false, FailingSince: t0, Failures: 2},
		{EndpointID: "b", OK: true, Failures: 1}, // healthy, and its failure is judged
		{EndpointID: "c", OK: false, FailingSince: t0.Add(2 * time.Second), Failures: 1},
	}, got)
}

func TestEnvelopeKeepsPayloadBytes(t *testing.T) {
	t.Parallel()
	c := &store.Claim{EventID: "evt_1", EventType: "order.fulfilled", Payload: []byte(`{"b":1,  "a":[1,2]}`),
		EventCreatedAt: time.Date(2026, 11, 23, 12, 0, 0, 5e6, time.UTC)}
	require.Equal(t, `{"id":"evt_1","type":"order.fulfilled","timestamp":"2026-11-23T12:00:00.005Z","data":{"b":1,  "a":[1,2]}}`, string(envelope(c)))
}
