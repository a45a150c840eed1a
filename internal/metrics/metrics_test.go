package metrics

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// TestStoreTimesEveryMethod fails when the Store interface gained a method that the
// generated decorator does not time: run go generate ./internal/metrics.
func TestStoreTimesEveryMethod(t *testing.T) {
	t.Parallel()
	st := reflect.TypeFor[store.Store]()
	ctx := reflect.TypeFor[context.Context]()
	for i := range st.NumMethod() {
		m := st.Method(i)
		if m.Type.NumIn() == 0 || m.Type.In(0) != ctx {
			continue
		}
		if !slices.Contains(storeMethods, m.Name) {
			t.Errorf("store.Store.%s is not timed; run go generate ./internal/metrics", m.Name)
		}
	}
}

// TestAttemptedSeries: each attempt counts in its outcome's and endpoint's series and in
// its outcome's latency histogram, and counting a known series allocates nothing.
func TestAttemptedSeries(t *testing.T) {
	m := New()
	m.Attempted("ep_a", consign.StatusSucceeded, 3*time.Millisecond)
	m.Attempted("ep_a", consign.StatusSucceeded, 4*time.Millisecond)
	m.Attempted("ep_a", consign.StatusPending, time.Second)
	m.Attempted("ep_b", consign.StatusSucceeded, time.Millisecond)

	count := func(outcome, endpoint string) float64 {
		var d dto.Metric
		require.NoError(t, m.deliveries.WithLabelValues(outcome, endpoint).Write(&d))
		return d.GetCounter().GetValue()
	}
	series := func(name string) int {
		families, err := m.reg.Gather()
		require.NoError(t, err)
		for _, f := range families {
			if f.GetName() == name {
				return len(f.GetMetric())
			}
		}
		return 0
	}
	require.InDelta(t, 2, count("succeeded", "ep_a"), 0)
	require.InDelta(t, 1, count("retry", "ep_a"), 0)
	require.InDelta(t, 1, count("succeeded", "ep_b"), 0)
	require.Equal(t, 3, series("consign_deliveries_total"))
	require.Equal(t, 2, series("consign_attempt_duration_seconds"), "one histogram per outcome")
	require.Zero(t, testing.AllocsPerRun(100, func() { m.Attempted("ep_a", consign.StatusSucceeded, time.Millisecond) }))
	require.InDelta(t, 103, count("succeeded", "ep_a"), 0)
}
