// Package job runs and records the background work users start on an endpoint: replays
// (a new partner's backfill: deliveries of past events the endpoint never had) and
// recover runs (re-queued failed deliveries).
//
// A replay is a row in the store's jobs table with a cursor, not a process: Service
// validates the request and inserts the job; Runner, on every node, finds running jobs,
// takes each under a cluster lease (one node at a time with PostgreSQL; the embedded
// store has one process), and steps it. A step reads the next page of the org's events of
// the window in ID order (creation order), keeps those that match the endpoint as fan-out
// would (its topics, the org's role, its filter; the request's types), and hands them to
// the store, which writes the deliveries the endpoint does not have yet and the new cursor
// in one transaction. A crash therefore loses or repeats no step, and the next runner
// resumes from the cursor.
//
// A replay never floods the queue: before each step it counts the endpoint's queued
// deliveries (pending or delivering, live traffic included) and creates only up to
// MaxQueued of them, waiting while the queue is full. The dispatcher then sends them
// like any others, at the endpoint's rate and burst and in the order of its ordering
// keys, so a backfill costs other endpoints and live traffic nothing but the sends it
// makes. Deliveries of an inactive endpoint are created paused (as fan-out does) and do
// not count: they are sent when the endpoint is activated.
package job

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// Store is what jobs need of the store.
type Store interface {
	store.JobStore
	EndpointGet(ctx context.Context, orgID, id string) (*store.EndpointRow, error)
	EventTypeGet(ctx context.Context, name string) (*consign.EventType, error)
	OrgGet(ctx context.Context, id string) (*consign.Org, error)
}

// ReplayInput is what POST …/endpoints/{id}/replay asks for.
type ReplayInput struct {
	// Since is the start of the window of events to replay (by their creation time);
	// required, and no older than the retention.
	Since *time.Time `json:"since" doc:"replay events created at or after this time (RFC 3339); required; no older than the server's retention"`
	// Until ends the window (exclusive); default: the time of the request.
	Until *time.Time `json:"until,omitempty" doc:"replay events created before this time; default: now"`
	// Types, when set, replays only events of these types (each must exist).
	Types []string `json:"types,omitempty" doc:"only events of these types; default: every type the endpoint subscribes to"`
}

// Service starts, lists and cancels jobs.
type Service struct {
	store Store
	cfg   Config
	// kick tells the runner of this process that a job was created.
	kick func()
}

// NewService returns a Service. kick, if set, is called when a replay is created (the
// runner's Kick).
func NewService(st Store, cfg Config, kick func()) *Service {
	return &Service{store: st, cfg: cfg.WithDefaults(), kick: kick}
}

// Replay validates in and starts a replay of the endpoint's past events.
func (s *Service) Replay(ctx context.Context, orgID, endpointID string, in ReplayInput) (*consign.Job, error) {
	ep, err := s.store.EndpointGet(ctx, orgID, endpointID)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	var v consign.Validation
	until := now
	if in.Until != nil {
		until = in.Until.UTC()
		if until.After(now) {
			v.Add("until", "is in the future; leave it out to replay up to now")
		}
	}
	switch {
	case in.Since == nil || in.Since.IsZero():
		v.Add("since", "is required (RFC 3339 time, such as %q)", now.Add(-24*time.Hour).Format(time.RFC3339))
	case !in.Since.Before(until):
		v.Add("since", "must be before until (%s)", until.Format(time.RFC3339))
	case s.cfg.Retention > 0 && in.Since.Before(now.Add(-s.cfg.Retention)):
		v.Add("since", "is older than the retention (%s): events before %s are deleted; use a later time",
			s.cfg.Retention, now.Add(-s.cfg.Retention).Format(time.RFC3339))
	}
	if len(in.Types) > consign.MaxReplayTypes {
		v.Add("types", "has %d types; at most %d", len(in.Types), consign.MaxReplayTypes)
	}
	var types []string
	for _, t := range in.Types {
		if slices.Contains(types, t) {
			continue
		}
		if _, err := s.store.EventTypeGet(ctx, t); err != nil {
			if consign.ErrorCode(err) != consign.ENOTFOUND {
				return nil, err
			}
			v.Add("types", "%q is not an event type (GET /v1/event-types lists them)", t)
			continue
		}
		if !ep.Subscribes(t) {
			v.Add("types", "%q is not among the endpoint's topics %v: it would replay nothing", t, ep.Topics)
			continue
		}
		types = append(types, t)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	j := &store.JobRow{Job: consign.Job{
		ID: consign.NewID(consign.PrefixJob, now), OrgID: ep.OrgID, EndpointID: ep.ID, Kind: consign.JobReplay,
		Status: consign.JobRunning, Params: consign.JobParams{Since: in.Since.UTC(), Until: until, Types: types},
		CreatedAt: now, UpdatedAt: now,
	}}
	if err := s.store.JobInsert(ctx, j); err != nil {
		return nil, err
	}
	if s.kick != nil {
		s.kick()
	}
	return &j.Job, nil
}

// RecordRecover records a recover run that re-queued n deliveries as a completed job.
func (s *Service) RecordRecover(ctx context.Context, orgID, endpointID string, p consign.JobParams, n int) (*consign.Job, error) {
	now := s.cfg.Now().UTC()
	j := &store.JobRow{Job: consign.Job{
		ID: consign.NewID(consign.PrefixJob, now), OrgID: orgID, EndpointID: endpointID, Kind: consign.JobRecover,
		Status: consign.JobCompleted, Params: p, Progress: consign.JobProgress{Scanned: n, Created: n, Total: &n},
		CreatedAt: now, UpdatedAt: now, FinishedAt: &now,
	}}
	if err := s.store.JobInsert(ctx, j); err != nil {
		return nil, fmt.Errorf("record the recover run: %w", err)
	}
	return &j.Job, nil
}

// Get returns a job of the org.
func (s *Service) Get(ctx context.Context, orgID, id string) (*consign.Job, error) {
	j, err := s.store.JobGet(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	return &j.Job, nil
}

// List returns the org's jobs newest first (only the endpoint's when endpointID is set).
func (s *Service) List(ctx context.Context, orgID, endpointID string, p store.Page) ([]*consign.Job, error) {
	rows, err := s.store.JobList(ctx, orgID, endpointID, p)
	if err != nil {
		return nil, err
	}
	out := make([]*consign.Job, len(rows))
	for i, r := range rows {
		out[i] = &r.Job
	}
	return out, nil
}

// Cancel stops a running job. Deliveries a replay created already stay queued and are
// sent; ECONFLICT if the job is over.
func (s *Service) Cancel(ctx context.Context, orgID, id string) (*consign.Job, error) {
	j, err := s.store.JobFinish(ctx, orgID, id, consign.JobCancelled, "", s.cfg.Now().UTC())
	if err != nil {
		return nil, err
	}
	return &j.Job, nil
}
