package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/bizkey"
	"github.com/consign-dev/consign/internal/dispatch"
	"github.com/consign-dev/consign/internal/ingest"
	"github.com/consign-dev/consign/internal/job"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/store"
)

func (s *Server) routes() []route {
	return append([]route{
		{"GET", "/healthz", public, "liveness", s.healthz, nil, statusReply{}},
		{"GET", "/readyz", public, "readiness: the store answers", s.readyz, nil, statusReply{}},
		{"GET", "/openapi.json", public, "this OpenAPI 3.1 document", s.openapi, nil, map[string]any{}},

		{"POST", "/v1/orgs", admin, "create an org", s.createOrg, orgInput{}, created(consign.Org{})},
		{"GET", "/v1/orgs", admin, "list orgs", s.listOrgs, nil, list[*consign.Org]{}},
		{"GET", "/v1/orgs/{org}", orgMember, "get an org", s.getOrg, nil, consign.Org{}},
		{"PATCH", "/v1/orgs/{org}", admin, "update an org", s.updateOrg, orgInput{}, consign.Org{}},
		{"DELETE", "/v1/orgs/{org}", admin, "delete an org and everything in it", s.deleteOrg, nil, nil},

		{"POST", "/v1/orgs/{org}/keys", orgMember, "create an org API key (value shown once)", s.createKey, keyInput{}, created(consign.APIKey{})},
		{"GET", "/v1/orgs/{org}/keys", orgMember, "list org API keys", s.listKeys, nil, list[*consign.APIKey]{}},
		{"DELETE", "/v1/orgs/{org}/keys/{id}", orgMember, "delete an org API key", s.deleteKey, nil, nil},
		{"POST", "/v1/orgs/{org}/portal-links", orgMember, "create a one-time link that signs a browser into the dashboard for this org only (the partner portal)", s.createPortalLink, manage.PortalLinkInput{}, created(portalLinkReply{})},

		{"GET", "/v1/event-types", anyKey, "list the event-type catalog", s.listEventTypes, nil, list[*consign.EventType]{}},
		{"POST", "/v1/event-types", admin, "add a custom event type", s.createEventType, manage.EventTypeInput{}, created(consign.EventType{})},
		{"GET", "/v1/event-types/{name}", anyKey, "get an event type", s.getEventType, nil, consign.EventType{}},
		{"PATCH", "/v1/event-types/{name}", admin, "update an event type", s.updateEventType, manage.EventTypeInput{}, consign.EventType{}},
		{"POST", "/v1/event-types/{name}/versions", admin, "add a payload version to an event type: events are published in it from now on; endpoints pinned to an earlier date receive them downgraded", s.addEventTypeVersion, manage.EventTypeVersionInput{}, created(consign.EventTypeVersion{})},
		{"GET", "/v1/event-types/{name}/versions", anyKey, "list an event type's payload versions, oldest first", s.listEventTypeVersions, nil, list[consign.EventTypeVersion]{}},
		{"GET", "/v1/event-types/{name}/versions/{version}", anyKey, "get one payload version of an event type", s.getEventTypeVersion, nil, consign.EventTypeVersion{}},

		{"POST", "/v1/orgs/{org}/endpoints", orgMember, "create an endpoint (first secret shown once)", s.createEndpoint, manage.EndpointInput{}, created(consign.Endpoint{})},
		{"GET", "/v1/orgs/{org}/endpoints", orgMember, "list endpoints", s.listEndpoints, nil, list[*consign.Endpoint]{}},
		{"GET", "/v1/orgs/{org}/endpoints/{id}", orgMember, "get an endpoint", s.getEndpoint, nil, consign.Endpoint{}},
		{"PATCH", "/v1/orgs/{org}/endpoints/{id}", orgMember, "update, activate (sending or, with discard_paused, cancelling what waited) or deactivate an endpoint", s.updateEndpoint, manage.EndpointPatch{}, consign.Endpoint{}},
		{"DELETE", "/v1/orgs/{org}/endpoints/{id}", orgMember, "delete an endpoint", s.deleteEndpoint, nil, nil},
		{"POST", "/v1/orgs/{org}/endpoints/{id}/secrets", orgMember, "add a signing secret (value shown once)", s.addSecret, manage.SecretInput{}, created(consign.Secret{})},
		{"GET", "/v1/orgs/{org}/endpoints/{id}/secrets", orgMember, "list signing secrets (no values)", s.listSecrets, nil, list[*consign.Secret]{}},
		{"POST", "/v1/orgs/{org}/endpoints/{id}/secrets/rotate", orgMember, "rotate: new secret now, others expire after the grace period", s.rotateSecret, rotateInput{}, created(consign.Secret{})},
		{"PATCH", "/v1/orgs/{org}/endpoints/{id}/secrets/{sid}", orgMember, "set a secret's expiry", s.updateSecret, secretExpiryInput{}, consign.Secret{}},
		{"DELETE", "/v1/orgs/{org}/endpoints/{id}/secrets/{sid}", orgMember, "delete a secret", s.deleteSecret, nil, nil},
		{"POST", "/v1/orgs/{org}/endpoints/{id}/test", orgMember, "send a test event now and return the attempt", s.testEndpoint, testInput{}, testReply{}},
		{"POST", "/v1/orgs/{org}/endpoints/{id}/transformation/test", orgMember, "run the endpoint's transformation (or the code given) on an event without sending anything", s.testTransformation, manage.TransformationTest{}, manage.TransformationResult{}},
		{"POST", "/v1/orgs/{org}/endpoints/{id}/recover", orgMember, "re-queue failed deliveries since a time (recorded as a completed recover job)", s.recoverEndpoint, recoverInput{}, accepted(recoverReply{})},
		{"POST", "/v1/orgs/{org}/endpoints/{id}/replay", orgMember, "start a replay job: deliver the past events of a window that the endpoint never had, within its limits", s.replayEndpoint, job.ReplayInput{}, accepted(consign.Job{})},
		{"GET", "/v1/orgs/{org}/endpoints/{id}/stats", orgMember, "counts by status, success rate and latency over a window", s.endpointStats, nil, consign.EndpointStats{}},

		{"POST", "/v1/orgs/{org}/events", orgMember, "publish one event", s.createEvent, ingest.EventInput{}, accepted(event{})},
		{"POST", "/v1/orgs/{org}/events/batch", orgMember, "publish up to 1000 events in one durable write", s.createEventBatch, batchInput{}, accepted(batchReply{})},
		{"GET", "/v1/orgs/{org}/events", orgMember, "list events", s.listEvents, nil, list[event]{}},
		{"GET", "/v1/orgs/{org}/events/{id}", orgMember, "get an event with its deliveries", s.getEvent, nil, event{}},

		{"GET", "/v1/orgs/{org}/jobs", orgMember, "list jobs (replays, recover runs), newest first", s.listJobs, nil, list[*consign.Job]{}},
		{"GET", "/v1/orgs/{org}/jobs/{id}", orgMember, "get a job with its status and progress", s.getJob, nil, consign.Job{}},
		{"POST", "/v1/orgs/{org}/jobs/{id}/cancel", orgMember, "cancel a running job (deliveries it created are still sent)", s.cancelJob, nil, consign.Job{}},

		{"GET", "/v1/orgs/{org}/deliveries", orgMember, "list deliveries", s.listDeliveries, nil, list[*consign.Delivery]{}},
		{"GET", "/v1/orgs/{org}/deliveries/{id}", orgMember, "get a delivery with its attempts", s.getDelivery, nil, consign.Delivery{}},
		{"POST", "/v1/orgs/{org}/deliveries/{id}/retry", orgMember, "send a delivery again now", s.retryDelivery, nil, accepted(consign.Delivery{})},
	}, append(s.sourceRoutes(), s.readyCloudRoutes()...)...)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := s.store.Ping(r.Context()); err != nil {
		s.log.Error("readiness: store does not answer", "err", err)
		return consign.Errorf(consign.EUNAVAILABLE, "the store does not answer")
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Orgs.

type orgInput struct {
	Name string       `json:"name"`
	Role consign.Role `json:"role,omitempty"`
	// Branding is how the partner portal shows the org. In a PATCH, the fields given
	// replace those fields ("" clears one) and null removes the branding.
	Branding *consign.Branding `json:"branding,omitempty"`
}

func (s *Server) createOrg(w http.ResponseWriter, r *http.Request) error {
	var in orgInput
	if err := decode(r, &in); err != nil {
		return err
	}
	o := &consign.Org{Name: in.Name, Role: in.Role, Branding: in.Branding}
	if err := s.manage.CreateOrg(r.Context(), o); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, o)
}

func (s *Server) listOrgs(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	orgs, err := s.store.OrgList(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newList(orgs, p, func(o *consign.Org) string { return o.ID }))
}

func (s *Server) getOrg(w http.ResponseWriter, r *http.Request) error {
	o, err := s.store.OrgGet(r.Context(), r.PathValue("org"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, o)
}

func (s *Server) updateOrg(w http.ResponseWriter, r *http.Request) error {
	o, err := s.store.OrgGet(r.Context(), r.PathValue("org"))
	if err != nil {
		return err
	}
	in := orgInput{Name: o.Name, Role: o.Role, Branding: o.Branding}
	if err := decode(r, &in); err != nil {
		return err
	}
	o.Name, o.Role, o.Branding = in.Name, in.Role, in.Branding
	if err := s.manage.UpdateOrg(r.Context(), o); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, o)
}

func (s *Server) deleteOrg(w http.ResponseWriter, r *http.Request) error {
	if err := s.manage.DeleteOrg(r.Context(), r.PathValue("org")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Keys.

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	var in keyInput
	if err := decode(r, &in); err != nil {
		return err
	}
	k, err := s.manage.CreateKey(r.Context(), r.PathValue("org"), in.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, k)
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	if _, err := s.store.OrgGet(r.Context(), r.PathValue("org")); err != nil {
		return err
	}
	keys, err := s.store.KeyList(r.Context(), r.PathValue("org"), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newList(keys, p, func(k *consign.APIKey) string { return k.ID }))
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) error {
	if err := s.manage.DeleteKey(r.Context(), r.PathValue("org"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Portal links.

// portalLinkReply is a new portal link: its absolute URL (holding the token, shown this
// once) and when it stops working.
type portalLinkReply struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
	ReadOnly  bool      `json:"read_only"`
}

func (s *Server) createPortalLink(w http.ResponseWriter, r *http.Request) error {
	var in manage.PortalLinkInput
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return decodeError(err)
	}
	if len(bytes.TrimSpace(body)) > 0 { // every field is optional: no body is {}
		if err := decodeFrom(bytes.NewReader(body), &in); err != nil {
			return err
		}
	}
	l, token, err := s.manage.CreatePortalLink(r.Context(), r.PathValue("org"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, portalLinkReply{ID: l.ID, URL: s.publicBase(r) + "/ui/portal/" + token,
		ExpiresAt: l.ExpiresAt, ReadOnly: l.ReadOnly})
}

// Event types.

func (s *Server) listEventTypes(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.store.EventTypeList(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list[*consign.EventType]{Data: ts})
}

func (s *Server) createEventType(w http.ResponseWriter, r *http.Request) error {
	var in manage.EventTypeInput
	if err := decode(r, &in); err != nil {
		return err
	}
	t, err := s.manage.CreateEventType(r.Context(), &in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, t)
}

func (s *Server) getEventType(w http.ResponseWriter, r *http.Request) error {
	t, err := s.store.EventTypeGet(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *Server) updateEventType(w http.ResponseWriter, r *http.Request) error {
	t, err := s.manage.UpdateEventType(r.Context(), r.PathValue("name"), func(in *manage.EventTypeInput) error { return decode(r, in) })
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *Server) addEventTypeVersion(w http.ResponseWriter, r *http.Request) error {
	var in manage.EventTypeVersionInput
	if err := decode(r, &in); err != nil {
		return err
	}
	v, err := s.manage.AddEventTypeVersion(r.Context(), r.PathValue("name"), &in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listEventTypeVersions(w http.ResponseWriter, r *http.Request) error {
	t, err := s.store.EventTypeGet(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	vs := t.Versions
	if vs == nil {
		vs = []consign.EventTypeVersion{}
	}
	return writeJSON(w, http.StatusOK, list[consign.EventTypeVersion]{Data: vs})
}

func (s *Server) getEventTypeVersion(w http.ResponseWriter, r *http.Request) error {
	v, err := s.manage.EventTypeVersion(r.Context(), r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// Endpoints.

func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request) error {
	var in manage.EndpointInput
	if err := decode(r, &in); err != nil {
		return err
	}
	e, err := s.manage.CreateEndpoint(r.Context(), r.PathValue("org"), &in)
	if err != nil {
		return err
	}
	e.Endpoint = e.Masked()
	return writeJSON(w, http.StatusCreated, e)
}

func (s *Server) listEndpoints(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	eps, err := s.manage.Endpoints(r.Context(), r.PathValue("org"), p)
	if err != nil {
		return err
	}
	for i, e := range eps {
		eps[i] = e.Masked()
	}
	return writeJSON(w, http.StatusOK, newList(eps, p, func(e *consign.Endpoint) string { return e.ID }))
}

func (s *Server) getEndpoint(w http.ResponseWriter, r *http.Request) error {
	e, err := s.manage.Endpoint(r.Context(), r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e.Masked())
}

func (s *Server) updateEndpoint(w http.ResponseWriter, r *http.Request) error {
	e, err := s.manage.UpdateEndpoint(r.Context(), r.PathValue("org"), r.PathValue("id"),
		func(in *manage.EndpointPatch) error { return decode(r, in) })
	if err != nil {
		return err
	}
	s.dispatch.Wake(e.ID) // activation may have made deliveries due
	return writeJSON(w, http.StatusOK, e.Masked())
}

func (s *Server) deleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	if err := s.manage.DeleteEndpoint(r.Context(), r.PathValue("org"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) addSecret(w http.ResponseWriter, r *http.Request) error {
	var in manage.SecretInput
	if err := decode(r, &in); err != nil {
		return err
	}
	sec, err := s.manage.AddSecret(r.Context(), r.PathValue("org"), r.PathValue("id"), &in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, sec)
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request) error {
	secs, err := s.manage.Secrets(r.Context(), r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list[*consign.Secret]{Data: secs})
}

func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	in := rotateInput{Grace: consign.Duration(24 * time.Hour)}
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	sec, err := s.manage.RotateSecret(r.Context(), r.PathValue("org"), r.PathValue("id"), time.Duration(in.Grace), in.Value)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, sec)
}

func (s *Server) updateSecret(w http.ResponseWriter, r *http.Request) error {
	var in secretExpiryInput
	if err := decode(r, &in); err != nil {
		return err
	}
	sec, err := s.manage.SetSecretExpiry(r.Context(), r.PathValue("org"), r.PathValue("id"), r.PathValue("sid"), in.ExpiresAt)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sec)
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request) error {
	if err := s.manage.DeleteSecret(r.Context(), r.PathValue("org"), r.PathValue("id"), r.PathValue("sid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) testEndpoint(w http.ResponseWriter, r *http.Request) error {
	var in testInput
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	if in.Type != "" {
		if msg := consign.ValidTypeName(in.Type); msg != "" {
			return consign.Invalid("type", "%s", msg)
		}
	}
	d, err := s.dispatch.SendTest(r.Context(), r.PathValue("org"), r.PathValue("id"), in.Type, in.Payload)
	if err != nil {
		return err
	}
	reply := map[string]any{"delivery_id": d.ID, "event_id": d.EventID, "status": d.Status, "attempt": nil}
	if len(d.Attempts) > 0 {
		reply["attempt"] = d.Attempts[0]
	}
	return writeJSON(w, http.StatusOK, reply)
}

func (s *Server) testTransformation(w http.ResponseWriter, r *http.Request) error {
	var in manage.TransformationTest
	if err := decode(r, &in); err != nil {
		return err
	}
	res, err := s.manage.TestTransformation(r.Context(), r.PathValue("org"), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) recoverEndpoint(w http.ResponseWriter, r *http.Request) error {
	var in recoverInput
	if err := decode(r, &in); err != nil {
		return err
	}
	var since time.Time
	if in.Since != nil {
		since = *in.Since
	}
	now := s.cfg.Now().UTC()
	n, err := s.dispatch.Recover(r.Context(), r.PathValue("org"), r.PathValue("id"),
		dispatch.RecoverInput{Since: since, Until: in.Until, Statuses: in.Status, Types: in.Types})
	if err != nil {
		return err
	}
	p := consign.JobParams{Since: since.UTC(), Until: now, Types: in.Types, Statuses: in.Status}
	if in.Until != nil {
		p.Until = in.Until.UTC()
	}
	j, err := s.jobs.RecordRecover(r.Context(), r.PathValue("org"), r.PathValue("id"), p, n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, recoverReply{Job: *j, Requeued: n})
}

func (s *Server) replayEndpoint(w http.ResponseWriter, r *http.Request) error {
	var in job.ReplayInput
	if err := decode(r, &in); err != nil {
		return err
	}
	j, err := s.jobs.Replay(r.Context(), r.PathValue("org"), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/orgs/"+j.OrgID+"/jobs/"+j.ID)
	return writeJSON(w, http.StatusAccepted, j)
}

// Jobs.

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	js, err := s.jobs.List(r.Context(), r.PathValue("org"), r.URL.Query().Get("endpoint_id"), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newList(js, p, func(j *consign.Job) string { return j.ID }))
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	j, err := s.jobs.Get(r.Context(), r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, j)
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) error {
	j, err := s.jobs.Cancel(r.Context(), r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, j)
}

func (s *Server) endpointStats(w http.ResponseWriter, r *http.Request) error {
	window := 24 * time.Hour
	if v := r.URL.Query().Get("window"); v != "" {
		d, err := consign.ParseDuration(v)
		if err != nil || d <= 0 || d > 90*24*time.Hour {
			return consign.Invalid("window", `must be a duration from 1s to 2160h, such as "1h" or "7d"`)
		}
		window = d
	}
	st, err := store.EndpointStats(r.Context(), s.store, r.PathValue("org"), r.PathValue("id"), s.cfg.Now().UTC().Add(-window))
	if err != nil {
		return err
	}
	st.Window = consign.Duration(window)
	st.Dispatch = s.dispatch.EndpointState(st.EndpointID)
	return writeJSON(w, http.StatusOK, st)
}

// Events.

func (s *Server) createEvent(w http.ResponseWriter, r *http.Request) error {
	var in ingest.EventInput
	verbatim, err := decodeEvent(r, s.cfg.MaxBody, s.ingest, &in)
	if err != nil {
		return err
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if in.IdempotencyKey != "" && in.IdempotencyKey != key {
			return consign.Invalid("idempotency_key", "differs from the Idempotency-Key header; send one or make them equal")
		}
		in.IdempotencyKey = key
	}
	res, err := s.ingest.Publish(r.Context(), r.PathValue("org"), []ingest.EventInput{in})
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if res[0].Duplicate {
		status = http.StatusOK
	}
	return writeEvent(w, status, res[0].Event, verbatim && !res[0].Duplicate)
}

func (s *Server) createEventBatch(w http.ResponseWriter, r *http.Request) error {
	in, err := decodeBatch(r, s.cfg.MaxBatchBody, s.ingest)
	if err != nil {
		return err
	}
	defer in.release()
	res, err := s.ingest.Publish(r.Context(), r.PathValue("org"), in.Events)
	if err != nil {
		return err
	}
	return writeEvents(w, http.StatusAccepted, res, in.verbatim)
}

// event is an event as the API shows it.
type event struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	Payload        json.RawMessage `json:"payload"`
	IdempotencyKey *string         `json:"idempotency_key"`
	OrderingKey    *string         `json:"ordering_key"`
	CreatedAt      time.Time       `json:"created_at"`
	Deliveries     []deliveryState `json:"deliveries,omitempty"`
}

type deliveryState struct {
	ID            string `json:"id"`
	EndpointID    string `json:"endpoint_id"`
	Status        string `json:"status"`
	AttemptsCount int    `json:"attempts_count"`
}

func eventView(e *consign.Event) event {
	v := event{ID: e.ID, Type: e.Type, Payload: e.Payload, CreatedAt: e.CreatedAt}
	if e.IdempotencyKey != "" {
		v.IdempotencyKey = &e.IdempotencyKey
	}
	if e.OrderingKey != "" {
		v.OrderingKey = &e.OrderingKey
	}
	return v
}

func (s *Server) withDeliveries(r *http.Request, e *consign.Event) (event, error) {
	v := eventView(e)
	ds, err := s.store.DeliveryList(r.Context(), e.OrgID, store.DeliveryFilter{EventID: e.ID, Page: store.Page{Limit: 1000}})
	if err != nil {
		return v, err
	}
	v.Deliveries = make([]deliveryState, len(ds))
	for i, d := range ds {
		v.Deliveries[i] = deliveryState{ID: d.ID, EndpointID: d.EndpointID, Status: d.Status, AttemptsCount: d.AttemptsCount}
	}
	return v, nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	key, err := keyParam(r)
	if err != nil {
		return err
	}
	evs, err := s.store.EventList(r.Context(), r.PathValue("org"), store.EventFilter{Page: p, Type: r.URL.Query().Get("type"), Key: key})
	if err != nil {
		return err
	}
	out := make([]event, len(evs))
	for i, e := range evs {
		if out[i], err = s.withDeliveries(r, e); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, newList(out, p, func(e event) string { return e.ID }))
}

// keyParam is the business key a list is searched by (?key=), "" when not given.
func keyParam(r *http.Request) (string, error) {
	q := r.URL.Query()
	if !q.Has("key") {
		return "", nil
	}
	key := q.Get("key")
	if msg := bizkey.ValidQuery(key); msg != "" {
		return "", consign.Invalid("key", "%s", msg)
	}
	return key, nil
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) error {
	e, err := s.store.EventGet(r.Context(), r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := s.withDeliveries(r, e)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// Deliveries.

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.DeliveryFilter{Page: p, EndpointID: q.Get("endpoint_id"), EventID: q.Get("event_id"), Status: q.Get("status")}
	if f.Status != "" && !consign.ValidStatus(f.Status) {
		return consign.Invalid("status", "must be one of pending, delivering, succeeded, failed, paused, superseded, cancelled")
	}
	if f.Key, err = keyParam(r); err != nil {
		return err
	}
	ds, err := s.store.DeliveryList(r.Context(), r.PathValue("org"), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newList(ds, p, func(d *consign.Delivery) string { return d.ID }))
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) error {
	d, err := s.store.DeliveryGet(r.Context(), r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request) error {
	d, err := s.dispatch.Retry(r.Context(), r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, d)
}
