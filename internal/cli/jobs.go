package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/consign-dev/consign/client"
)

type endpointsReplayCmd struct {
	remote
	orgFlag
	Endpoint string   `required:"" help:"The endpoint's id."`
	Since    string   `required:"" help:"Events created from this time: RFC 3339, or a duration ago such as 24h or 3d."`
	Until    string   `help:"Events created before this time: RFC 3339, or a duration ago (default: now)."`
	Types    []string `help:"Only events of these types (default: every type the endpoint subscribes to)."`
	Wait     bool     `help:"Wait for the job to finish, then show it."`
}

func (c *endpointsReplayCmd) Run(env *runEnv) error {
	now := time.Now()
	since, err := parseSince(c.Since, now)
	if err != nil {
		return codeError{2, fmt.Errorf("--since %w", err)}
	}
	in := client.ReplayInput{Since: since, Types: c.Types}
	if c.Until != "" {
		until, err := parseSince(c.Until, now)
		if err != nil {
			return codeError{2, fmt.Errorf("--until %w", err)}
		}
		in.Until = &until
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	j, err := s.Endpoints.Replay(env.ctx, c.Org, c.Endpoint, in)
	if err != nil {
		return s.fail(err)
	}
	if c.Wait {
		if j, err = waitJob(env, s, c.Org, j.ID); err != nil {
			return s.fail(err)
		}
	}
	return s.print(func(w io.Writer) { showJob(w, j) })
}

type jobsCmd struct {
	List   jobsListCmd   `cmd:"" help:"List an org's jobs, newest first."`
	Get    jobsGetCmd    `cmd:"" help:"Show a job's status and progress."`
	Cancel jobsCancelCmd `cmd:"" help:"Stop a running job (deliveries it created are still sent)."`
}

type jobsListCmd struct {
	remote
	orgFlag
	pageFlags
	Endpoint string `help:"Only this endpoint's jobs."`
}

func (c *jobsListCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	page, err := s.Jobs.List(env.ctx, c.Org, &client.JobListOptions{Limit: c.Limit, Cursor: c.Cursor, EndpointID: c.Endpoint})
	if err != nil {
		return s.fail(err)
	}
	return s.printList(page.NextCursor, func(w io.Writer) {
		t := newTable(w, "ID", "KIND", "STATUS", "ENDPOINT", "SCANNED", "CREATED", "TOTAL", "CREATED AT")
		for _, j := range page.Data {
			t.row(j.ID, j.Kind, j.Status, j.EndpointID, j.Progress.Scanned, j.Progress.Created, total(j.Progress.Total), j.CreatedAt)
		}
		t.flush()
	})
}

type jobsGetCmd struct {
	remote
	orgFlag
	ID   string `arg:"" help:"The job's id."`
	Wait bool   `help:"Wait for the job to finish, then show it."`
}

func (c *jobsGetCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	var j *client.Job
	if c.Wait {
		j, err = waitJob(env, s, c.Org, c.ID)
	} else {
		j, err = s.Jobs.Get(env.ctx, c.Org, c.ID)
	}
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showJob(w, j) })
}

type jobsCancelCmd struct {
	remote
	orgFlag
	ID string `arg:"" help:"The job's id."`
}

func (c *jobsCancelCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	j, err := s.Jobs.Cancel(env.ctx, c.Org, c.ID)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showJob(w, j) })
}

// waitJob asks for the job every half second until it is over.
func waitJob(env *runEnv, s *session, org, id string) (*client.Job, error) {
	for {
		j, err := s.Jobs.Get(env.ctx, org, id)
		if err != nil || j.Status != client.JobRunning {
			return j, err
		}
		select {
		case <-env.ctx.Done():
			return nil, env.ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func showJob(w io.Writer, j *client.Job) {
	pairs := []any{"id", j.ID, "kind", j.Kind, "status", j.Status, "endpoint", j.EndpointID,
		"since", j.Params.Since, "until", j.Params.Until}
	if len(j.Params.Types) > 0 {
		pairs = append(pairs, "types", j.Params.Types)
	}
	pairs = append(pairs, "scanned", j.Progress.Scanned, "created", j.Progress.Created, "total", total(j.Progress.Total))
	if j.Error != "" {
		pairs = append(pairs, "error", j.Error)
	}
	pairs = append(pairs, "created_at", j.CreatedAt, "finished_at", j.FinishedAt)
	fields(w, pairs...)
}

// total shows a job's total, "-" until it is counted.
func total(n *int) any {
	if n == nil {
		return nil
	}
	return *n
}
