package maint_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/maint"
)

// fakePurger has rows of given ages and deletes them as the drivers do, limit at a time.
type fakePurger struct {
	attempts, events, receipts, filtered, jobs []time.Time
	calls                                      int
	fail                                       error
}

func take(rows *[]time.Time, before time.Time, limit int) int {
	var keep []time.Time
	n := 0
	for _, t := range *rows {
		if t.Before(before) && n < limit {
			n++
			continue
		}
		keep = append(keep, t)
	}
	*rows = keep
	return n
}

func (f *fakePurger) AttemptsPurge(_ context.Context, before time.Time, limit int) (int, error) {
	f.calls++
	return take(&f.attempts, before, limit), f.fail
}

func (f *fakePurger) EventsPurge(_ context.Context, before time.Time, limit int) (int, error) {
	f.calls++
	return take(&f.events, before, limit), f.fail
}

func (f *fakePurger) ReceiptsPurge(_ context.Context, before time.Time, limit int) (int, error) {
	f.calls++
	return take(&f.receipts, before, limit), f.fail
}

func (f *fakePurger) FilteredPurge(_ context.Context, before time.Time, limit int) (int, error) {
	f.calls++
	return take(&f.filtered, before, limit), f.fail
}

func (f *fakePurger) JobsPurge(_ context.Context, before time.Time, limit int) (int, error) {
	f.calls++
	return take(&f.jobs, before, limit), f.fail
}

func TestRetentionPurge(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)
	var f fakePurger
	for i := range 5 {
		f.attempts = append(f.attempts, now.Add(-31*24*time.Hour-time.Duration(i)))
		f.events = append(f.events, now.Add(-31*24*time.Hour-time.Duration(i)))
		f.receipts = append(f.receipts, now.Add(-31*24*time.Hour-time.Duration(i)))
		f.filtered = append(f.filtered, now.Add(-31*24*time.Hour-time.Duration(i)))
		f.jobs = append(f.jobs, now.Add(-31*24*time.Hour-time.Duration(i)))
	}
	f.jobs = append(f.jobs, now.Add(-time.Hour))
	f.filtered = append(f.filtered, now.Add(-time.Minute))
	f.receipts = append(f.receipts, now.Add(-time.Hour))
	f.attempts = append(f.attempts, now.Add(-29*24*time.Hour))
	f.events = append(f.events, now)
	r := maint.NewRetention(&f, maint.RetentionConfig{Batch: 2, Now: func() time.Time { return now }})
	p, err := r.Purge(t.Context())
	require.NoError(t, err)
	require.Equal(t, maint.Purged{Attempts: 5, Events: 5, Receipts: 5, Filtered: 5, Jobs: 5}, p)
	require.Len(t, f.attempts, 1, "the default age is 30 days")
	require.Len(t, f.events, 1)
	require.Len(t, f.receipts, 1)
	require.Len(t, f.filtered, 1)
	require.Len(t, f.jobs, 1)
	require.Equal(t, 15, f.calls, "batches of 2 until one comes back short")

	f.fail = errors.New("database gone")
	_, err = r.Purge(t.Context())
	require.ErrorIs(t, err, f.fail)
}
