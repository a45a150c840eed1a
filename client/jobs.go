package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
)

// JobService reads and cancels an org's jobs: replays and recover runs.
type JobService struct{ c *Client }

// JobListOptions selects a page of jobs, of one endpoint when EndpointID is set.
type JobListOptions struct {
	Limit      int
	Cursor     string
	EndpointID string
}

func (o *JobListOptions) values() url.Values {
	if o == nil {
		return url.Values{}
	}
	q := (&ListOptions{Limit: o.Limit, Cursor: o.Cursor}).values()
	if o.EndpointID != "" {
		q.Set("endpoint_id", o.EndpointID)
	}
	return q
}

// List returns a page of an org's jobs, newest first.
func (s *JobService) List(ctx context.Context, org string, opts *JobListOptions) (*Page[Job], error) {
	return list[Job](ctx, s.c, path("orgs", org, "jobs"), opts.values())
}

// All iterates over every job of an org that opts selects, from opts.Cursor on.
func (s *JobService) All(ctx context.Context, org string, opts *JobListOptions) iter.Seq2[Job, error] {
	o := deref(opts)
	return all(ctx, o.Cursor, func(ctx context.Context, cursor string) (*Page[Job], error) {
		o.Cursor = cursor
		return s.List(ctx, org, &o)
	})
}

// Get returns a job with its status and progress.
func (s *JobService) Get(ctx context.Context, org, id string) (*Job, error) {
	var j Job
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("orgs", org, "jobs", id), out: &j})
	return ptr(&j, err)
}

// Cancel stops a running job; the deliveries a replay created already are still sent.
func (s *JobService) Cancel(ctx context.Context, org, id string) (*Job, error) {
	var j Job
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "jobs", id, "cancel"), out: &j})
	return ptr(&j, err)
}
