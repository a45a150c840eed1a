package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// testJob covers jobs and the steps of a replay: scans of a window of events, one step's
// deliveries and cursor written together, refused steps, and the one running replay per
// endpoint.
func testJob(t *testing.T, open opener) {
	t.Run("InsertGetListFinish", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		j := newJob(org.ID, ep.ID, now)
		j.Params.Types = []string{"order.created"}
		require.NoError(t, s.JobInsert(t.Context(), j))
		got, err := s.JobGet(t.Context(), org.ID, j.ID)
		require.NoError(t, err)
		require.Equal(t, j.Job, got.Job)
		_, err = s.JobGet(t.Context(), other.ID, j.ID)
		requireCode(t, consign.ENOTFOUND, err)

		// One running replay per endpoint; a recover record beside it is fine.
		requireCode(t, consign.ECONFLICT, s.JobInsert(t.Context(), newJob(org.ID, ep.ID, now.Add(time.Millisecond))))
		rec := newJob(org.ID, ep.ID, now.Add(2*time.Millisecond))
		rec.Kind, rec.Status, rec.FinishedAt = consign.JobRecover, consign.JobCompleted, ptr(now)
		require.NoError(t, s.JobInsert(t.Context(), rec))

		list, err := s.JobList(t.Context(), org.ID, "", store.Page{})
		require.NoError(t, err)
		require.Equal(t, []string{rec.ID, j.ID}, jobIDs(list))
		list, err = s.JobList(t.Context(), org.ID, "ep_other", store.Page{})
		require.NoError(t, err)
		require.Empty(t, list)
		list, err = s.JobList(t.Context(), org.ID, ep.ID, store.Page{Limit: 1, Cursor: rec.ID})
		require.NoError(t, err)
		require.Equal(t, []string{j.ID}, jobIDs(list))
		running, err := s.JobsRunning(t.Context())
		require.NoError(t, err)
		require.Equal(t, []string{j.ID}, jobIDs(running))

		_, err = s.JobFinish(t.Context(), other.ID, j.ID, consign.JobCancelled, "", now)
		requireCode(t, consign.ENOTFOUND, err)
		done, err := s.JobFinish(t.Context(), org.ID, j.ID, consign.JobFailed, "the endpoint was deleted", now.Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, consign.JobFailed, done.Status)
		require.Equal(t, "the endpoint was deleted", done.Error)
		requireTime(t, now.Add(time.Second), *done.FinishedAt)
		_, err = s.JobFinish(t.Context(), "", j.ID, consign.JobCompleted, "", now)
		requireCode(t, consign.ECONFLICT, err)
		// Over, it no longer holds the endpoint: another replay may start.
		next := newJob(org.ID, ep.ID, now.Add(3*time.Millisecond))
		next.CreatedAt = now.Add(-time.Hour)
		require.NoError(t, s.JobInsert(t.Context(), next))

		// Retention deletes finished jobs only: the recover record, then the failed job.
		p := s.(store.Purger)
		n, err := p.JobsPurge(t.Context(), now.Add(time.Millisecond), 100)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		n, err = p.JobsPurge(t.Context(), now.Add(time.Hour), 100)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		list, err = s.JobList(t.Context(), org.ID, "", store.Page{})
		require.NoError(t, err)
		require.Equal(t, []string{next.ID}, jobIDs(list), "a running job is kept however old")
	})

	t.Run("Scan", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org, other := insertOrg(t, s, now), insertOrg(t, s, now)
		var evs []*consign.Event
		for i := range 6 {
			typ := "order.created"
			if i%2 == 1 {
				typ = "order.updated"
			}
			ev := newEvent(org.ID, typ, now.Add(time.Duration(i)*time.Second))
			insertEvent(t, s, ev)
			evs = append(evs, ev)
			insertEvent(t, s, newEvent(other.ID, typ, now.Add(time.Duration(i)*time.Second)))
		}
		ids := func(es []*consign.Event) []string {
			out := []string{}
			for _, e := range es {
				out = append(out, e.ID)
			}
			return out
		}
		window := store.EventScan{OrgID: org.ID, Since: now.Add(time.Second), Until: now.Add(5 * time.Second), Limit: 10}
		for _, tc := range []struct {
			name string
			scan func(store.EventScan) store.EventScan
			want []*consign.Event
		}{
			{"Window", func(p store.EventScan) store.EventScan { return p }, evs[1:5]},
			{"Limit", func(p store.EventScan) store.EventScan { p.Limit = 2; return p }, evs[1:3]},
			{"After", func(p store.EventScan) store.EventScan { p.After = evs[2].ID; return p }, evs[3:5]},
			{"Types", func(p store.EventScan) store.EventScan { p.Types = []string{"order.updated"}; return p }, []*consign.Event{evs[1], evs[3]}},
			{"Empty", func(p store.EventScan) store.EventScan {
				p.Since = now.Add(time.Hour)
				p.Until = now.Add(2 * time.Hour)
				return p
			}, nil},
		} {
			got, err := s.EventsScan(t.Context(), tc.scan(window))
			require.NoError(t, err, tc.name)
			require.Equal(t, ids(tc.want), ids(got), tc.name)
			if tc.name != "Limit" && tc.name != "After" {
				n, err := s.EventsCount(t.Context(), tc.scan(window))
				require.NoError(t, err, tc.name)
				require.Equal(t, len(tc.want), n, tc.name)
			}
		}
	})

	t.Run("ReplayStep", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		ep := insertEndpoint(t, s, org.ID, now)
		old := newEvent(org.ID, "order.created", now.Add(-time.Hour))
		had := newEvent(org.ID, "order.created", now.Add(-time.Hour+time.Second))
		insertEvent(t, s, old)
		insertEvent(t, s, had, ep.ID)
		j := newJob(org.ID, ep.ID, now)
		require.NoError(t, s.JobInsert(t.Context(), j))
		step := store.ReplayStep{JobID: j.ID, From: "", Cursor: had.ID, Scanned: 2, Total: ptr(2), Now: now,
			Writes: replayWrites(ep.ID, now, old, had)}
		res, err := s.JobReplayStep(t.Context(), step)
		require.NoError(t, err)
		require.Equal(t, 1, res.Created, "the endpoint had the second event")
		require.False(t, step.Writes[0].Duplicate)
		require.True(t, step.Writes[1].Duplicate)
		require.Equal(t, had.ID, res.Job.Cursor)
		require.Equal(t, consign.JobProgress{Scanned: 2, Created: 1, Total: ptr(2)}, res.Job.Progress)
		got, err := s.JobGet(t.Context(), "", j.ID)
		require.NoError(t, err)
		require.Equal(t, res.Job.Progress, got.Progress)
		require.Equal(t, had.ID, got.Cursor)

		ds, err := s.DeliveryList(t.Context(), org.ID, store.DeliveryFilter{EventID: old.ID})
		require.NoError(t, err)
		require.Len(t, ds, 1)
		require.Equal(t, consign.StatusPending, ds[0].Status)
		requireTime(t, now, ds[0].CreatedAt, "a replayed delivery is made at the step")
		require.Contains(t, claimIDs(claim(t, s, now, ep.ID)), ds[0].ID, "due at once")
		n, err := s.DeliveriesQueued(t.Context(), ep.ID, 10)
		require.NoError(t, err)
		require.Equal(t, 2, n, "the replayed delivery and the live one")
		n, err = s.DeliveriesQueued(t.Context(), ep.ID, 1)
		require.NoError(t, err)
		require.Equal(t, 1, n, "counted up to max")

		// The same step again: the cursor moved, so it is refused and writes nothing.
		_, err = s.JobReplayStep(t.Context(), store.ReplayStep{JobID: j.ID, From: "", Cursor: had.ID, Scanned: 2, Now: now,
			Writes: replayWrites(ep.ID, now, old)})
		requireCode(t, consign.ECONFLICT, err)
		// From the right cursor, an event it has now is skipped.
		res, err = s.JobReplayStep(t.Context(), store.ReplayStep{JobID: j.ID, From: had.ID, Cursor: had.ID, Now: now,
			Writes: replayWrites(ep.ID, now, old)})
		require.NoError(t, err)
		require.Zero(t, res.Created)
		ds, err = s.DeliveryList(t.Context(), org.ID, store.DeliveryFilter{EventID: old.ID})
		require.NoError(t, err)
		require.Len(t, ds, 1, "never two deliveries of one event to the endpoint")

		// A cancelled job takes no more steps.
		_, err = s.JobFinish(t.Context(), org.ID, j.ID, consign.JobCancelled, "", now)
		require.NoError(t, err)
		_, err = s.JobReplayStep(t.Context(), store.ReplayStep{JobID: j.ID, From: had.ID, Cursor: had.ID, Now: now})
		requireCode(t, consign.ECONFLICT, err)
	})

	t.Run("ReplayStepInactiveAndOrdered", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		org := insertOrg(t, s, now)
		off := insertEndpoint(t, s, org.ID, now, func(e *store.EndpointRow) { e.Active = false })
		ordered := insertEndpoint(t, s, org.ID, now, func(e *store.EndpointRow) { e.Ordering = consign.OrderingKey })
		a := newEvent(org.ID, "order.created", now.Add(-2*time.Second))
		a.OrderingKey = "order-1"
		b := newEvent(org.ID, "order.updated", now.Add(-time.Second))
		b.OrderingKey = "order-1"
		insertEvent(t, s, a)
		insertEvent(t, s, b)

		j := newJob(org.ID, off.ID, now)
		require.NoError(t, s.JobInsert(t.Context(), j))
		_, err := s.JobReplayStep(t.Context(), store.ReplayStep{JobID: j.ID, Cursor: b.ID, Scanned: 2, Now: now,
			Writes: replayWrites(off.ID, now, a, b)})
		require.NoError(t, err)
		ds, err := s.DeliveryList(t.Context(), org.ID, store.DeliveryFilter{EndpointID: off.ID})
		require.NoError(t, err)
		require.Len(t, ds, 2)
		for _, d := range ds {
			require.Equal(t, consign.StatusPaused, d.Status, "an inactive endpoint's replayed deliveries wait, paused")
		}

		j = newJob(org.ID, ordered.ID, now)
		require.NoError(t, s.JobInsert(t.Context(), j))
		ws := replayWrites(ordered.ID, now, a, b)
		for _, w := range ws {
			w.Deliveries[0].OrderingKey, w.Deliveries[0].Ordered = "order-1", true
		}
		_, err = s.JobReplayStep(t.Context(), store.ReplayStep{JobID: j.ID, Cursor: b.ID, Scanned: 2, Now: now, Writes: ws})
		require.NoError(t, err)
		first := claim(t, s, now, ordered.ID)
		require.Len(t, first, 1, "one of a key at a time")
		require.Equal(t, a.ID, first[0].EventID, "in the events' order")
	})
}

func newJob(orgID, endpointID string, at time.Time) *store.JobRow {
	return &store.JobRow{Job: consign.Job{
		ID: consign.NewID(consign.PrefixJob, at), OrgID: orgID, EndpointID: endpointID, Kind: consign.JobReplay,
		Status: consign.JobRunning, Params: consign.JobParams{Since: at.Add(-24 * time.Hour), Until: at},
		CreatedAt: at, UpdatedAt: at,
	}}
}

// replayWrites returns a step's writes: one delivery of each event to the endpoint.
func replayWrites(endpointID string, at time.Time, evs ...*consign.Event) []*store.EventWrite {
	ws := make([]*store.EventWrite, len(evs))
	for i, ev := range evs {
		ws[i] = &store.EventWrite{Event: ev, Deliveries: newDeliveries(at, endpointID)}
	}
	return ws
}

func jobIDs(js []*store.JobRow) []string {
	out := []string{}
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}
