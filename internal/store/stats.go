package store

import (
	"context"
	"time"

	"github.com/consign-dev/consign"
)

// StatsCounts is what a driver counts for an endpoint's statistics: its deliveries
// created since a time, by status, and its attempts started since then.
type StatsCounts struct {
	Deliveries map[string]int
	Attempts   int
	Succeeded  int
	// Filtered is the events the endpoint's filter turned away since the start of the
	// minute of the time.
	Filtered int
}

// StatsReader is the part of a Store that EndpointStats reads.
type StatsReader interface {
	// EndpointStatsCounts counts the endpoint's deliveries and attempts since a time;
	// ENOTFOUND when the endpoint is not in the org.
	EndpointStatsCounts(ctx context.Context, orgID, endpointID string, since time.Time) (*StatsCounts, error)
	// EndpointAttemptDuration returns the duration in milliseconds of the endpoint's
	// attempt since a time at a rank in order of duration, 0 being the quickest.
	EndpointAttemptDuration(ctx context.Context, endpointID string, since time.Time, rank int) (int64, error)
}

// EndpointStats summarises an endpoint's deliveries and attempts since a time: the
// drivers count, this computes. A latency quantile q is the duration at rank
// floor(q·(n-1)) of the n attempts, so p50 and p99 are durations some attempt took.
func EndpointStats(ctx context.Context, s StatsReader, orgID, endpointID string, since time.Time) (*consign.EndpointStats, error) {
	c, err := s.EndpointStatsCounts(ctx, orgID, endpointID, since)
	if err != nil {
		return nil, err
	}
	st := &consign.EndpointStats{EndpointID: endpointID, Since: since, Deliveries: c.Deliveries,
		Attempts: c.Attempts, Succeeded: c.Succeeded, Failed: c.Attempts - c.Succeeded, Filtered: c.Filtered}
	if st.Deliveries == nil {
		st.Deliveries = map[string]int{}
	}
	if st.Attempts == 0 {
		return st, nil
	}
	rate := float64(st.Succeeded) / float64(st.Attempts)
	st.SuccessRate = &rate
	quantile := func(q float64) (*int64, error) {
		v, err := s.EndpointAttemptDuration(ctx, endpointID, since, int(q*float64(st.Attempts-1)))
		return &v, err
	}
	if st.LatencyP50MS, err = quantile(0.50); err != nil {
		return nil, err
	}
	if st.LatencyP99MS, err = quantile(0.99); err != nil {
		return nil, err
	}
	return st, nil
}
