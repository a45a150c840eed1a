package store

import (
	"context"
	"time"

	"github.com/consign-dev/consign"
)

// JobStore is the storage of jobs (replays, recover runs) and the steps a replay takes.
//
// A replay scans its org's events in ID order (an event ID begins with its creation
// millisecond, so ID order is (created_at, id) order) from its cursor, and each step
// writes the step's deliveries and the new cursor in one transaction: a step either
// happened whole or not at all, and a job resumed after a crash starts where the last
// step ended. Each step also checks that the job is still running and that its cursor is
// where the runner read it, so two runners of one job (a node whose lease lapsed) never
// both write a step.
type JobStore interface {
	// JobInsert stores a new job. ECONFLICT when it is a replay and another replay of
	// the same endpoint is running.
	JobInsert(ctx context.Context, j *JobRow) error
	// JobGet returns a job of the org; orgID "" finds it in any org (the runner's view).
	JobGet(ctx context.Context, orgID, id string) (*JobRow, error)
	// JobList returns the org's jobs newest first; endpointID, when set, only that
	// endpoint's.
	JobList(ctx context.Context, orgID, endpointID string, p Page) ([]*JobRow, error)
	// JobsRunning returns every running job, across orgs, oldest first.
	JobsRunning(ctx context.Context) ([]*JobRow, error)
	// JobFinish ends a running job with status (completed, failed or cancelled) and
	// message; ECONFLICT if it is over already, ENOTFOUND if it is not in the org
	// (orgID "": any org).
	JobFinish(ctx context.Context, orgID, id, status, message string, now time.Time) (*JobRow, error)
	// JobReplayStep writes one step of a replay (see JobStore).
	JobReplayStep(ctx context.Context, p ReplayStep) (*ReplayStepResult, error)
	// EventsScan returns up to Limit events of the org with IDs above After, created in
	// [Since, Until), of the given types (all when empty), in ID order.
	EventsScan(ctx context.Context, p EventScan) ([]*consign.Event, error)
	// EventsCount counts the events EventsScan would return with no limit and no After.
	EventsCount(ctx context.Context, p EventScan) (int, error)
	// DeliveriesQueued counts the endpoint's deliveries waiting to be sent or in flight
	// (pending or delivering), up to max: what a replay keeps bounded.
	DeliveriesQueued(ctx context.Context, endpointID string, max int) (int, error)
}

// JobRow is a job as stored, with the runner's cursor: the ID of the last event a replay
// scanned ("" before the first).
type JobRow struct {
	consign.Job
	Cursor string
}

// EventScan selects a window of an org's events, in ID order.
type EventScan struct {
	OrgID        string
	After        string
	Since, Until time.Time
	Types        []string
	Limit        int
}

// ReplayStep is one step of a replay: the deliveries to create for the page of events
// scanned from From to Cursor.
type ReplayStep struct {
	JobID string
	// From is the cursor the step's page was read after; the step is refused (ECONFLICT)
	// if the job's cursor is elsewhere by now, or the job no longer runs.
	From, Cursor string
	// Scanned is how many events the page held.
	Scanned int
	// Total, when set, records how many events the job has to scan.
	Total *int
	// Writes holds one EventWrite per event to deliver, each with its one delivery to
	// the job's endpoint. A delivery of an event the endpoint already has (any delivery
	// of that event to that endpoint, in any state) is not created and its EventWrite
	// gets Duplicate; a delivery to an inactive endpoint is created paused.
	Writes []*EventWrite
	Now    time.Time
}

// ReplayStepResult is what a step did.
type ReplayStepResult struct {
	Created int
	Job     *JobRow
}

// IDFloor returns the lowest ID of the kind that an object created at t can have: every
// such ID created at t or later sorts at or above it, every one created before t below.
func IDFloor(prefix string, t time.Time) string {
	const digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	ms := uint64(max(t.UnixMilli(), 0))
	var b [26]byte
	for i := range b {
		b[i] = '0'
	}
	// The first 10 characters hold the 48 bits of milliseconds (consign.NewID).
	for i := 9; i >= 0; i-- {
		b[i] = digits[ms&31]
		ms >>= 5
	}
	return prefix + string(b[:])
}
