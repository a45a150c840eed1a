package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

func TestEventSharedBuildsOnce(t *testing.T) {
	t.Parallel()
	var s store.EventShared
	var builds atomic.Int32
	got := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			got[i] = s.Envelope(func() []byte {
				builds.Add(1)
				return []byte(`{"id":"evt_1"}`)
			})
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), builds.Load())
	for _, b := range got {
		require.Equal(t, `{"id":"evt_1"}`, string(b))
	}
}

func TestPageSizeAndBelow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		page  store.Page
		size  int
		below string
	}{
		{store.Page{}, store.DefaultPageSize, "\U0010FFFF"},
		{store.Page{Limit: -3}, store.DefaultPageSize, "\U0010FFFF"},
		{store.Page{Limit: 1, Cursor: "org_01"}, 1, "org_01"},
		{store.Page{Limit: store.MaxPageSize}, store.MaxPageSize, "\U0010FFFF"},
		{store.Page{Limit: store.MaxPageSize + 1}, store.MaxPageSize, "\U0010FFFF"},
	} {
		require.Equal(t, tc.size, tc.page.Size(), "%+v", tc.page)
		require.Equal(t, tc.below, tc.page.Below(), "%+v", tc.page)
	}
	// The empty cursor's stand-in sorts after every ID, byte by byte.
	require.Greater(t, store.Page{}.Below(), "zzz_ZZZZZZZZZZZZZZZZZZZZZZZZZZ")
}

// statsCounts is a StatsReader with fixed counts and durations; the drivers' own counting
// is in the conformance suite (storetest).
type statsCounts struct {
	counts    store.StatsCounts
	durations []int64 // in order
}

func (s *statsCounts) EndpointStatsCounts(context.Context, string, string, time.Time) (*store.StatsCounts, error) {
	c := s.counts
	return &c, nil
}

func (s *statsCounts) EndpointAttemptDuration(_ context.Context, _ string, _ time.Time, rank int) (int64, error) {
	return s.durations[rank], nil
}

func TestEndpointStats(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	many := make([]int64, 200)
	for i := range many {
		many[i] = int64(i + 1)
	}
	for _, tc := range []struct {
		name           string
		in             statsCounts
		rate           float64 // -1: none
		failed         int
		p50, p99       int64
		wantDeliveries map[string]int
	}{
		{"none", statsCounts{}, -1, 0, 0, 0, map[string]int{}},
		{"one", statsCounts{store.StatsCounts{Deliveries: map[string]int{"succeeded": 1}, Attempts: 1, Succeeded: 1}, []int64{7}},
			1, 0, 7, 7, map[string]int{"succeeded": 1}},
		{"five", statsCounts{store.StatsCounts{Attempts: 5, Succeeded: 2}, []int64{10, 20, 20, 30, 30}}, 0.4, 3, 20, 30, map[string]int{}},
		// floor(0.5·199) = 99, floor(0.99·199) = 197.
		{"two hundred", statsCounts{store.StatsCounts{Attempts: 200, Succeeded: 150}, many}, 0.75, 50, 100, 198, map[string]int{}},
	} {
		st, err := store.EndpointStats(t.Context(), &tc.in, "org_1", "ep_1", since)
		require.NoError(t, err, tc.name)
		require.Equal(t, "ep_1", st.EndpointID)
		require.Equal(t, since, st.Since)
		require.Equal(t, tc.wantDeliveries, st.Deliveries, tc.name)
		require.Equal(t, tc.failed, st.Failed, tc.name)
		if tc.rate < 0 {
			require.Nil(t, st.SuccessRate, tc.name)
			require.Nil(t, st.LatencyP50MS, tc.name)
			require.Nil(t, st.LatencyP99MS, tc.name)
			continue
		}
		require.InDelta(t, tc.rate, *st.SuccessRate, 1e-9, tc.name)
		require.Equal(t, tc.p50, *st.LatencyP50MS, tc.name)
		require.Equal(t, tc.p99, *st.LatencyP99MS, tc.name)
	}
}

func TestIDFloorSortsByCreationTime(t *testing.T) {
	t.Parallel()
	for _, at := range []time.Time{
		time.UnixMilli(0).UTC(),
		time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC),
		time.Date(2099, 1, 1, 23, 59, 59, 999e6, time.UTC),
	} {
		floor := store.IDFloor(consign.PrefixEvent, at)
		require.True(t, consign.HasPrefix(floor, consign.PrefixEvent), floor)
		for range 100 {
			id := consign.NewID(consign.PrefixEvent, at)
			require.LessOrEqual(t, floor, id)
			require.Less(t, id, store.IDFloor(consign.PrefixEvent, at.Add(time.Millisecond)))
		}
		if at.UnixMilli() > 0 {
			require.Less(t, consign.NewID(consign.PrefixEvent, at.Add(-time.Millisecond)), floor)
		}
	}
}
