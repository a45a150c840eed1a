package consign

import "time"

// Job kinds.
const (
	// JobReplay creates deliveries of past events that an endpoint never had (a new
	// partner's backfill), page by page within the endpoint's limits.
	JobReplay = "replay"
	// JobRecover re-queued an endpoint's deliveries (POST …/recover); recorded for its
	// count, it is finished when created.
	JobRecover = "recover"
)

// Job states.
const (
	JobRunning   = "running"
	JobCompleted = "completed"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// MaxReplayTypes bounds a replay's type list.
const MaxReplayTypes = 100

// Job is a tracked piece of background work on an endpoint.
type Job struct {
	ID         string      `json:"id"`
	OrgID      string      `json:"org_id"`
	EndpointID string      `json:"endpoint_id"`
	Kind       string      `json:"kind"`
	Status     string      `json:"status"`
	Params     JobParams   `json:"params"`
	Progress   JobProgress `json:"progress"`
	// Error says why a failed job stopped.
	Error      string     `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// JobParams is what a job was asked to do. Until is always set: a replay's defaults to
// the time it was asked for.
type JobParams struct {
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Types    []string  `json:"types,omitempty"`
	Statuses []string  `json:"statuses,omitempty"` // recover only
}

// JobProgress counts what a job has done.
type JobProgress struct {
	// Scanned is how many events of the window a replay has looked at.
	Scanned int `json:"scanned"`
	// Created is how many deliveries a replay created (events the endpoint never had
	// and that match it), or how many deliveries a recover re-queued.
	Created int `json:"created"`
	// Total is how many events of the replay's window (and types) there are to scan,
	// once counted; absent until then.
	Total *int `json:"total,omitempty"`
}

// Finished reports whether the job is over (completed, failed or cancelled).
func (j *Job) Finished() bool { return j.Status != JobRunning }
