package web

import (
	"net/http"
	"strconv"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/job"
)

type jobPage struct {
	J        *consign.Job
	Endpoint *consign.Endpoint // nil once deleted
	Live     bool
	// Percent is how far a replay got through its window (0–100), -1 before it is
	// counted.
	Percent int
}

// replayEndpoint starts a replay of the endpoint's past events (POST …/replay) and shows
// its job.
func (s *Server) replayEndpoint(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	e, err := s.manage.Endpoint(ctx, q.org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	var fp formParser
	in := job.ReplayInput{Since: fp.time("since", r.PostFormValue("since")), Until: fp.time("until", r.PostFormValue("until")),
		Types: list(r.PostFormValue("types"))}
	err = fp.err()
	var j *consign.Job
	if err == nil {
		j, err = s.jobs.Replay(ctx, q.org.ID, e.ID, in)
	}
	if err != nil {
		if errs, ok := formErrors(err); ok {
			return s.renderEndpoint(w, r, q, http.StatusUnprocessableEntity, e, endpointExtras{Errors: errs, ErrorsFor: "replay"})
		}
		if consign.ErrorCode(err) == consign.ECONFLICT {
			return s.renderEndpoint(w, r, q, http.StatusConflict, e, endpointExtras{
				Errors: fieldErrors{{Message: consign.ErrorMessage(err)}}, ErrorsFor: "replay"})
		}
		return err
	}
	q.sess.addFlash("ok", "Replay started: past events the endpoint never had are being delivered within its limits.")
	redirect(w, r, orgURL(q.org.ID, "jobs/"+j.ID))
	return nil
}

// job shows a job's status and progress; a running one refreshes itself.
func (s *Server) job(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	j, err := s.jobs.Get(ctx, q.org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	p := jobPage{J: j, Live: !j.Finished(), Percent: -1}
	if t := j.Progress.Total; t != nil {
		p.Percent = 100
		if *t > 0 {
			p.Percent = min(100, j.Progress.Scanned*100 / *t)
		}
	}
	if p.Endpoint, err = s.manage.Endpoint(ctx, q.org.ID, j.EndpointID); err != nil && consign.ErrorCode(err) != consign.ENOTFOUND {
		return err
	}
	if isHTMX(r) && r.URL.Query().Get("fragment") == "progress" {
		s.renderFragment(w, r, q, "job", "progress", p)
		return nil
	}
	s.render(w, r, q, http.StatusOK, "job", "Job "+j.ID, p)
	return nil
}

// cancelJob stops a running job.
func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, q *req) error {
	j, err := s.jobs.Cancel(r.Context(), q.org.ID, r.PathValue("id"))
	switch {
	case consign.ErrorCode(err) == consign.ECONFLICT:
		q.sess.addFlash("error", consign.ErrorMessage(err))
	case err != nil:
		return err
	default:
		q.sess.addFlash("ok", "Job cancelled after "+strconv.Itoa(j.Progress.Created)+" deliveries; those are still sent.")
	}
	redirect(w, r, orgURL(q.org.ID, "jobs/"+r.PathValue("id")))
	return nil
}
