package api

// ReadyCloud's webhooks API (v2), served as it is documented so that ReadyCloud
// clients work unchanged (seed 002; docs/recipes/readycloud.md):
//
//	GET    /api/v2/orgs/{org}/webhooks/            {"count","next","previous","results":[…]}
//	POST   /api/v2/orgs/{org}/webhooks/            {"entity","remote_url"} → 201 webhook
//	GET    /api/v2/orgs/{org}/webhooks/{id}/       webhook
//	DELETE /api/v2/orgs/{org}/webhooks/{id}/       204
//	POST   /api/v2/orgs/{org}/webhooks/{id}/resume/  lift a suspension (Consign's addition)
//
// Authentication is a key of the org (or the admin key) as ?bearer_token= or a Bearer
// header. Errors are shaped as ReadyCloud's framework (Django REST framework) answers
// them, not as problem+json: {"detail": "…"} (401, 404, 405, …) and
// {"<field>": ["…"]} with 400 for invalid input (writeReadyCloudError). A ReadyCloud webhook is an ordinary Consign endpoint: PUT, raw payload,
// "Auth: <token>", subscribed to its entity's topics ("order.*" for orders), with the
// failure policy {max_failures: 3, window: 6h} and success_statuses [200] (ReadyCloud
// counts only 200 as success). Every endpoint of the org with that
// shape is listed here, however it was created.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/store"
)

// readyCloudEntities maps ReadyCloud's entity names to Consign subscriptions, in the
// order the seed lists them.
var readyCloudEntities = []struct{ entity, topic string }{
	{"orders", "order.*"},
	{"packaging", "packaging.*"},
	{"contact", "contact.*"},
	{"contact-address", "contact_address.*"},
	{"acceptance-scan", "acceptance_scan.*"},
	{"webhook", "webhook.*"},
}

// ReadyCloud's failure rule: suspended after more than 3 failures within 6 hours.
const (
	readyCloudMaxFailures = 3
	readyCloudWindow      = consign.Duration(6 * time.Hour)
)

func readyCloudTopic(entity string) (string, bool) {
	for _, e := range readyCloudEntities {
		if e.entity == entity {
			return e.topic, true
		}
	}
	return "", false
}

func readyCloudEntityNames() []string {
	names := make([]string, len(readyCloudEntities))
	for i, e := range readyCloudEntities {
		names[i] = e.entity
	}
	return names
}

// readyCloudEntity returns the entity of an endpoint that has the shape of a ReadyCloud
// webhook, or "" when it has not.
func readyCloudEntity(e *consign.Endpoint) string {
	if e.Method != http.MethodPut || e.PayloadFormat != consign.FormatRaw || e.Auth.Type != consign.AuthToken || len(e.Topics) != 1 {
		return ""
	}
	for _, m := range readyCloudEntities {
		if e.Topics[0] == m.topic {
			return m.entity
		}
	}
	return ""
}

func (s *Server) readyCloudRoutes() []route {
	const base = "/api/v2/orgs/{org}/webhooks/"
	return []route{
		{method: "GET", pattern: base + "{$}", access: orgMember, summary: "ReadyCloud v2: list webhooks", handle: s.rcList, out: rcListReply{}},
		{method: "POST", pattern: base + "{$}", access: orgMember, summary: "ReadyCloud v2: create a webhook", handle: s.rcCreate, in: rcInput{}, out: created(rcWebhook{})},
		// curl --upload-file data.json ".../webhooks/?bearer_token=…" appends the file's
		// name to a URL that ends in "/": the seed's own create arrives here.
		{method: "POST", pattern: base + "{upload}", access: orgMember, summary: "ReadyCloud v2: create a webhook (as curl --upload-file sends it, the file name appended)", handle: s.rcCreate, in: rcInput{}, out: created(rcWebhook{})},
		{method: "GET", pattern: base + "{id}/{$}", access: orgMember, summary: "ReadyCloud v2: get a webhook", handle: s.rcGet, out: rcWebhook{}},
		{method: "DELETE", pattern: base + "{id}/{$}", access: orgMember, summary: "ReadyCloud v2: delete a webhook", handle: s.rcDelete},
		{method: "POST", pattern: base + "{id}/resume/{$}", access: orgMember, summary: "ReadyCloud v2: lift a webhook's suspension", handle: s.rcResume, out: rcWebhook{}},
	}
}

// isReadyCloud reports whether a route takes the key as ?bearer_token= as well.
func isReadyCloud(pattern string) bool { return strings.HasPrefix(pattern, "/api/v2/") }

// rcInput is the body of a creation; other properties are read-only and ignored.
type rcInput struct {
	Entity    *string `json:"entity"`
	RemoteURL *string `json:"remote_url"`
}

// rcListReply is a page of webhooks as ReadyCloud (Django REST framework) shows it.
type rcListReply struct {
	Count    int         `json:"count"`
	Next     *string     `json:"next"`
	Previous *string     `json:"previous"`
	Results  []rcWebhook `json:"results"`
}

// rcWebhook is a webhook exactly as ReadyCloud shows it.
type rcWebhook struct {
	URL         string     `json:"url"`
	RemoteURL   string     `json:"remote_url"`
	Token       string     `json:"token"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	Entity      string     `json:"entity"`
	SuspendedAt *time.Time `json:"suspended_at"`
}

func rcView(e *consign.Endpoint) rcWebhook {
	w := rcWebhook{
		URL: "/api/v2/orgs/" + url.PathEscape(e.OrgID) + "/webhooks/" + url.PathEscape(e.ID) + "/", RemoteURL: e.URL,
		Token: e.Auth.Token, CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(), Entity: readyCloudEntity(e),
	}
	if !e.Active && e.DisabledAt != nil {
		t := e.DisabledAt.UTC()
		w.SuspendedAt = &t
	}
	return w
}

// rcEndpoint returns the org's endpoint id if it is a ReadyCloud webhook; others are not
// acknowledged to exist here.
func (s *Server) rcEndpoint(ctx context.Context, org, id string) (*consign.Endpoint, error) {
	e, err := s.manage.Endpoint(ctx, org, id)
	if err != nil {
		return nil, err
	}
	if readyCloudEntity(e) == "" {
		return nil, consign.Errorf(consign.ENOTFOUND, "webhook %q not found", id)
	}
	return e, nil
}

// rcMaxWebhooks bounds how many endpoints the list reads to find an org's webhooks.
const rcMaxWebhooks = 10000

func (s *Server) rcList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	pageNo, size := 1, 50
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return consign.Errorf(consign.EBADREQUEST, "page must be a whole number from 1")
		}
		pageNo = n
	}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return consign.Errorf(consign.EBADREQUEST, "page_size must be a whole number from 1 to 500")
		}
		size = n
	}
	org := r.PathValue("org")
	if _, err := s.store.OrgGet(r.Context(), org); err != nil {
		return err
	}
	var all []rcWebhook
	p := store.Page{Limit: 500}
	for read := 0; read < rcMaxWebhooks; {
		eps, err := s.manage.Endpoints(r.Context(), org, p)
		if err != nil {
			return err
		}
		for _, e := range eps {
			if readyCloudEntity(e) != "" {
				all = append(all, rcView(e))
			}
		}
		read += len(eps)
		if len(eps) < p.Limit {
			break
		}
		p.Cursor = eps[len(eps)-1].ID
	}
	// Oldest first, as ReadyCloud numbers them.
	slices.SortStableFunc(all, func(a, b rcWebhook) int { return a.CreatedAt.Compare(b.CreatedAt) })
	from := (pageNo - 1) * size
	if from >= len(all) && pageNo > 1 {
		return consign.Errorf(consign.ENOTFOUND, "invalid page: page %d is past the last page", pageNo)
	}
	to := min(from+size, len(all))
	reply := rcListReply{Count: len(all), Results: all[from:to]}
	if reply.Results == nil {
		reply.Results = []rcWebhook{}
	}
	// Links are relative, like the items' "url". bearer_token stays in them only when the
	// request carried it that way (a header-authenticated client keeps its key out of URLs).
	link := func(n int) *string {
		v := url.Values{}
		if tok := q.Get("bearer_token"); tok != "" {
			v.Set("bearer_token", tok)
		}
		v.Set("page", strconv.Itoa(n))
		if q.Get("page_size") != "" {
			v.Set("page_size", strconv.Itoa(size))
		}
		l := r.URL.Path + "?" + v.Encode()
		return &l
	}
	if to < len(all) {
		reply.Next = link(pageNo + 1)
	}
	if pageNo > 1 {
		reply.Previous = link(pageNo - 1)
	}
	return writeJSON(w, http.StatusOK, reply)
}

func (s *Server) rcCreate(w http.ResponseWriter, r *http.Request) error {
	// Read-only properties a client sends back (url, token, created_at, …) are ignored,
	// as ReadyCloud ignores them; entity and remote_url must be strings.
	var in rcInput
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return consign.Errorf(consign.EBADREQUEST, `request body must be a JSON object such as {"entity": "orders", "remote_url": "https://example.com/orders/v2/"}`)
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return decodeError(err)
	}
	entity := "orders"
	if in.Entity != nil {
		entity = *in.Entity
	}
	topic, ok := readyCloudTopic(entity)
	if !ok {
		msg := fmt.Sprintf("must be one of %s (default orders), not %q", strings.Join(readyCloudEntityNames(), ", "), entity)
		return &consign.Error{Code: consign.EBADREQUEST, Message: "entity " + msg,
			Fields: []consign.FieldError{{Field: "entity", Message: msg}}}
	}
	if in.RemoteURL == nil || strings.TrimSpace(*in.RemoteURL) == "" {
		msg := "is required: the HTTPS URL to send the webhooks to"
		return &consign.Error{Code: consign.EBADREQUEST, Message: "remote_url " + msg,
			Fields: []consign.FieldError{{Field: "remote_url", Message: msg}}}
	}
	ein := &manage.EndpointInput{
		URL:             *in.RemoteURL,
		Description:     "ReadyCloud webhook (" + entity + ")",
		Topics:          []string{topic},
		Method:          http.MethodPut,
		PayloadFormat:   consign.FormatRaw,
		Auth:            &consign.Auth{Type: consign.AuthToken},
		FailurePolicy:   consign.FailurePolicy{MaxFailures: readyCloudMaxFailures, Window: readyCloudWindow},
		SuccessStatuses: []int{http.StatusOK},
	}
	created, err := s.manage.CreateEndpoint(r.Context(), r.PathValue("org"), ein)
	if consign.ErrorCode(err) == consign.ECONFLICT {
		msg := "a webhook of this entity for this remote_url exists already in this org"
		return &consign.Error{Code: consign.EINVALID, Message: "remote_url: " + msg, Fields: []consign.FieldError{{Field: "remote_url", Message: msg}}}
	}
	if err != nil {
		return renameField(err, "url", "remote_url")
	}
	return writeJSON(w, http.StatusCreated, rcView(created.Endpoint))
}

// renameField renames a field in a validation error (Consign's url is ReadyCloud's
// remote_url).
func renameField(err error, from, to string) error {
	var e *consign.Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	c.Fields = slices.Clone(e.Fields)
	for i := range c.Fields {
		if c.Fields[i].Field == from {
			c.Fields[i].Field = to
		}
	}
	c.Message = strings.ReplaceAll(c.Message, from+":", to+":")
	return &c
}

func (s *Server) rcGet(w http.ResponseWriter, r *http.Request) error {
	e, err := s.rcEndpoint(r.Context(), r.PathValue("org"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rcView(e))
}

func (s *Server) rcDelete(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.rcEndpoint(r.Context(), r.PathValue("org"), r.PathValue("id")); err != nil {
		return err
	}
	if err := s.manage.DeleteEndpoint(r.Context(), r.PathValue("org"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rcResume activates a suspended webhook again (the same as the v1 PATCH of the
// endpoint with {"active": true}); its paused deliveries are sent.
func (s *Server) rcResume(w http.ResponseWriter, r *http.Request) error {
	org, id := r.PathValue("org"), r.PathValue("id")
	if _, err := s.rcEndpoint(r.Context(), org, id); err != nil {
		return err
	}
	e, err := s.manage.UpdateEndpoint(r.Context(), org, id, func(in *manage.EndpointPatch) error {
		active := true
		in.Active = &active
		return nil
	})
	if err != nil {
		return err
	}
	s.dispatch.Wake(e.ID)
	return writeJSON(w, http.StatusOK, rcView(e))
}

// isReadyCloudPath reports whether a request is for the ReadyCloud API, whose errors
// take ReadyCloud's shapes.
func isReadyCloudPath(path string) bool { return strings.HasPrefix(path, "/api/v2/") }

// writeReadyCloudError answers an error as ReadyCloud's framework does: invalid input
// is 400 {"<field>": ["…"]} (a body that cannot be read: {"detail": "…"}), everything
// else {"detail": "…"} with the usual status. A 401 says how to pass the key.
func writeReadyCloudError(w http.ResponseWriter, status int, err error) {
	code := consign.ErrorCode(err)
	var body any = map[string]string{"detail": consign.ErrorMessage(err)}
	switch code {
	case consign.EINVALID, consign.EBADREQUEST, consign.ECONFLICT:
		status = http.StatusBadRequest
		if e, ok := errors.AsType[*consign.Error](err); ok && len(e.Fields) > 0 {
			fields := map[string][]string{}
			for _, f := range e.Fields {
				name := f.Field
				if name == "" {
					name = "non_field_errors"
				}
				fields[name] = append(fields[name], f.Message)
			}
			body = fields
		}
	case consign.EUNAUTHORIZED:
		body = map[string]string{"detail": consign.ErrorMessage(err) +
			": pass an API key of the org as ?bearer_token=KEY in the URL, or as an Authorization: Bearer KEY header"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
