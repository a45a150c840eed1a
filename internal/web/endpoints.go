package web

import (
	"cmp"
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/dispatch"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/store"
)

// endpointsPerPage is the length of the endpoints list.
const endpointsPerPage = 50

type endpointRow struct {
	E     *consign.Endpoint
	Stats *consign.EndpointStats
	Chart template.HTML
}

type endpointsPage struct {
	Rows []endpointRow
	Next string // URL of the next page, "" on the last
}

// endpoints lists the org's endpoints with 24-hour health: success rate and volume.
func (s *Server) endpoints(w http.ResponseWriter, r *http.Request, q *req) error {
	p := store.Page{Limit: endpointsPerPage, Cursor: r.URL.Query().Get("cursor")}
	eps, err := s.manage.Endpoints(r.Context(), q.org.ID, p)
	if err != nil {
		return err
	}
	now := s.now()
	data := endpointsPage{}
	for _, e := range eps {
		row := endpointRow{E: e}
		if row.Stats, err = store.EndpointStats(r.Context(), s.store, q.org.ID, e.ID, now.Add(-24*time.Hour)); err != nil {
			return err
		}
		if row.Chart, err = s.volumeChart(r.Context(), q.org.ID, e.ID, now, true); err != nil {
			return err
		}
		data.Rows = append(data.Rows, row)
	}
	if len(eps) == p.Limit {
		data.Next = orgURL(q.org.ID, "endpoints?cursor="+eps[len(eps)-1].ID)
	}
	s.render(w, r, q, http.StatusOK, "endpoints", "Endpoints", data)
	return nil
}

// volumeChart draws an endpoint's deliveries per hour over the last 24 hours.
func (s *Server) volumeChart(ctx context.Context, orgID, endpointID string, now time.Time, small bool) (template.HTML, error) {
	w := newWindow(now, 24*time.Hour, time.Hour)
	ds, truncated, err := s.scanDeliveries(ctx, orgID, store.DeliveryFilter{EndpointID: endpointID}, w.start, sparkScan)
	if err != nil {
		return "", err
	}
	c := chart{
		Title: "Deliveries per hour, last 24 hours", Kind: chartBars, Unit: "deliveries", Labels: w.labels("15:04"), Ticks: w.ticks(8),
		Integer: true, Series: statusSeries(ds, w), Width: 720, Height: 160, Truncated: truncated,
	}
	if small {
		c.Width, c.Height, c.Spark = 120, 28, true
	}
	return c.SVG(), nil
}

// topicGroup is one prefix of the catalog in the topics picker.
type topicGroup struct {
	Name     string
	Wildcard string // "order.*"
	Types    []topicOption
}

type topicOption struct {
	Name, Description string
	Only              string // "buyers only" when restricted
	Allowed           bool
}

// endpointForm holds a form's values as typed, so a form with errors shows them again.
type endpointForm struct {
	URL, Description      string
	Topics                []string
	OtherTopics           string
	Method, PayloadFormat string
	AuthType, AuthToken   string
	// Basic, bearer and OAuth 2.0 credentials; stored ones are shown masked, and a form
	// that sends the mask back keeps them.
	AuthUsername, AuthPassword, AuthBearer   string
	TokenURL, ClientID, ClientSecret, Scopes string
	Audience, AuthStyle                      string
	RateLimit, BurstLimit                    string
	Headers                                  string
	Ordering                                 string
	Coalesce                                 bool
	RetrySchedule, RetryMaxAge               string
	DisableAfter                             string
	MaxFailures, FailureWindow               string
	SecretExpiresAt                          string
	Active                                   bool
	// Payload shaping: the pinned version (a date), the filter as JSON text, the
	// transformation's code.
	Version, Filter, Transformation string
	// The sample event "Run on a sample" tries the transformation on: its type, and its
	// payload (empty: the org's last event of the type).
	SampleType, SamplePayload string

	// TLS PEM documents: any filled replaces the endpoint's TLS settings as a whole, all
	// empty keeps them, RemoveTLS removes them. The key is never shown again, so its
	// textarea starts empty even after a form with errors.
	ClientCertificate, ClientKey, CACertificates string
	RemoveTLS                                    bool
}

type endpointFormPage struct {
	New    bool
	E      *consign.Endpoint // when editing
	F      endpointForm
	Groups []topicGroup
	Errors fieldErrors
	Action string
	// TryAction is where "Run on a sample" posts the form; Try its last result.
	TryAction string
	Try       *tryResult
}

func formOf(e *consign.Endpoint, catalog map[string]bool) endpointForm {
	f := endpointForm{
		URL: e.URL, Description: e.Description, Method: e.Method, PayloadFormat: e.PayloadFormat,
		AuthType: e.Auth.Type, AuthToken: e.Auth.Token, Headers: headersText(consign.MaskHeaders(e.Headers)), Ordering: e.Ordering,
		Coalesce: e.Coalesce, Active: e.Active,
		DisableAfter: durText(time.Duration(e.FailurePolicy.DisableAfter)),
		Version:      e.Version, Filter: indentJSON(e.Filter), Transformation: e.Transformation,
	}
	if a := e.Auth.Masked(); a.Type != consign.AuthToken {
		f.AuthToken = ""
		f.AuthUsername, f.AuthPassword, f.TokenURL, f.ClientID, f.ClientSecret = a.Username, a.Password, a.TokenURL, a.ClientID, a.ClientSecret
		f.Scopes, f.Audience, f.AuthStyle = strings.Join(a.Scopes, " "), a.Audience, a.AuthStyle
		if a.Type == consign.AuthBearer {
			f.AuthBearer = a.Token
		}
	}
	if e.RateLimit != 0 {
		f.RateLimit = strconv.FormatFloat(e.RateLimit, 'f', -1, 64)
	}
	if e.BurstLimit != 0 {
		f.BurstLimit = strconv.Itoa(e.BurstLimit)
	}
	if e.FailurePolicy.MaxFailures != 0 {
		f.MaxFailures = strconv.Itoa(e.FailurePolicy.MaxFailures)
		f.FailureWindow = durText(time.Duration(e.FailurePolicy.Window))
	}
	var sched []string
	for _, d := range e.Retry.Schedule {
		sched = append(sched, durText(time.Duration(d)))
	}
	f.RetrySchedule = strings.Join(sched, ", ")
	f.RetryMaxAge = durText(time.Duration(e.Retry.MaxAge))
	var other []string
	for _, t := range e.Topics {
		if catalog[t] {
			f.Topics = append(f.Topics, t)
		} else {
			other = append(other, t)
		}
	}
	f.OtherTopics = strings.Join(other, ", ")
	return f
}

func readEndpointForm(r *http.Request) endpointForm {
	v := r.PostForm
	return endpointForm{
		URL: v.Get("url"), Description: v.Get("description"), Topics: v["topics"], OtherTopics: v.Get("other_topics"),
		Method: v.Get("method"), PayloadFormat: v.Get("payload_format"), AuthType: v.Get("auth_type"),
		AuthToken: v.Get("auth_token"), AuthUsername: v.Get("auth_username"), AuthPassword: v.Get("auth_password"),
		AuthBearer: v.Get("auth_bearer"), TokenURL: v.Get("token_url"), ClientID: v.Get("client_id"),
		ClientSecret: v.Get("client_secret"), Scopes: v.Get("scopes"), Audience: v.Get("audience"), AuthStyle: v.Get("auth_style"),
		ClientCertificate: v.Get("tls_client_certificate"), ClientKey: v.Get("tls_client_key"),
		CACertificates: v.Get("tls_ca_certificates"), RemoveTLS: v.Get("tls_remove") == "on",
		RateLimit: v.Get("rate_limit"), BurstLimit: v.Get("burst_limit"),
		Headers: v.Get("headers"), Ordering: v.Get("ordering"), Coalesce: v.Get("coalesce") == "on",
		RetrySchedule: v.Get("retry_schedule"), RetryMaxAge: v.Get("retry_max_age"), DisableAfter: v.Get("disable_after"),
		MaxFailures: v.Get("max_failures"), FailureWindow: v.Get("failure_window"),
		SecretExpiresAt: v.Get("secret_expires_at"), Active: v.Get("active") == "on",
		Version: v.Get("version"), Filter: v.Get("filter"), SampleType: v.Get("sample_type"), SamplePayload: v.Get("sample_payload"),
		// Browsers send a textarea's lines ended by CRLF.
		Transformation: strings.ReplaceAll(v.Get("transformation"), "\r\n", "\n"),
	}
}

// apply parses the form over an endpoint input; parse errors name the API's fields.
func (f *endpointForm) apply(in *manage.EndpointInput, creating bool) error {
	var p formParser
	in.URL, in.Description = strings.TrimSpace(f.URL), strings.TrimSpace(f.Description)
	in.Topics = append(append([]string(nil), f.Topics...), list(f.OtherTopics)...)
	in.Method, in.PayloadFormat, in.Ordering, in.Coalesce = f.Method, f.PayloadFormat, f.Ordering, f.Coalesce
	in.Auth = f.auth()
	in.TLS = f.tls(&p)
	in.RateLimit = p.float("rate_limit", f.RateLimit)
	in.BurstLimit = p.int("burst_limit", f.BurstLimit)
	in.Headers = p.headers("headers", f.Headers)
	in.Retry = consign.RetryPolicy{Schedule: p.durations("retry.schedule", f.RetrySchedule), MaxAge: p.duration("retry.max_age", f.RetryMaxAge)}
	in.FailurePolicy = consign.FailurePolicy{
		DisableAfter: p.duration("failure_policy.disable_after", f.DisableAfter),
		MaxFailures:  p.int("failure_policy.max_failures", f.MaxFailures),
		Window:       p.duration("failure_policy.window", f.FailureWindow),
	}
	in.Version, in.Transformation = strings.TrimSpace(f.Version), strings.TrimSpace(f.Transformation)
	in.Filter = nil // empty: no filter
	if rules := strings.TrimSpace(f.Filter); rules != "" {
		if !json.Valid([]byte(rules)) {
			p.fail("filter", "is not valid JSON: write rules such as {\"payload\": {\"total\": {\"$gte\": 500}}}, or leave it empty to send every event")
		} else {
			in.Filter = json.RawMessage(rules)
		}
	}
	if creating {
		in.SecretExpiresAt = p.time("secret_expires_at", f.SecretExpiresAt)
		active := f.Active
		in.Active = &active
	}
	return p.err()
}

// auth is the form's auth: the fields of the chosen type only.
func (f *endpointForm) auth() *consign.Auth {
	a := &consign.Auth{Type: f.AuthType}
	switch f.AuthType {
	case consign.AuthToken:
		a.Token = strings.TrimSpace(f.AuthToken)
	case consign.AuthBasic:
		a.Username, a.Password = strings.TrimSpace(f.AuthUsername), f.AuthPassword
	case consign.AuthBearer:
		a.Token = strings.TrimSpace(f.AuthBearer)
	case consign.AuthOAuth2:
		a.TokenURL, a.ClientID, a.ClientSecret = strings.TrimSpace(f.TokenURL), strings.TrimSpace(f.ClientID), strings.TrimSpace(f.ClientSecret)
		a.Scopes, a.Audience, a.AuthStyle = strings.Fields(strings.ReplaceAll(f.Scopes, ",", " ")), strings.TrimSpace(f.Audience), f.AuthStyle
	}
	return a
}

// tls is the form's TLS settings for the API: nil keeps the stored ones, {} removes
// them, anything typed replaces them as a whole.
func (f *endpointForm) tls(p *formParser) *consign.TLSInput {
	t := consign.TLSInput{ClientCertificate: strings.TrimSpace(f.ClientCertificate), ClientKey: strings.TrimSpace(f.ClientKey),
		CACertificates: strings.TrimSpace(f.CACertificates)}
	switch {
	case f.RemoveTLS && t != (consign.TLSInput{}):
		p.fail("tls.remove", "either tick “remove TLS settings” or paste new certificates, not both")
		return nil
	case f.RemoveTLS:
		return &consign.TLSInput{}
	case t == (consign.TLSInput{}):
		return nil
	}
	return &t
}

// topicGroups arranges the catalog for the picker, by prefix, with each prefix's
// wildcard, and marks the types the org's role may not take.
func (s *Server) topicGroups(ctx context.Context, org *consign.Org) ([]topicGroup, map[string]bool, error) {
	ts, err := s.store.EventTypeList(ctx)
	if err != nil {
		return nil, nil, err
	}
	known := map[string]bool{"*": true}
	byPrefix := map[string]*topicGroup{}
	var groups []*topicGroup
	for _, t := range ts {
		prefix, _, _ := strings.Cut(t.Name, ".")
		if strings.HasPrefix(t.Name, consign.OperationalPrefix) {
			prefix = "consign"
		}
		g := byPrefix[prefix]
		if g == nil {
			g = &topicGroup{Name: prefix, Wildcard: prefix + ".*"}
			byPrefix[prefix] = g
			groups = append(groups, g)
			known[g.Wildcard] = true
		}
		opt := topicOption{Name: t.Name, Description: t.Description, Allowed: org.Role.May(t.AvailableFor)}
		if len(t.AvailableFor) > 0 {
			var who []string
			for _, r := range t.AvailableFor {
				who = append(who, string(r)+"s")
			}
			opt.Only = strings.Join(who, " and ") + " only"
		}
		g.Types = append(g.Types, opt)
		known[t.Name] = true
	}
	slices.SortFunc(groups, func(a, b *topicGroup) int {
		// Consign's own events last: partners rarely want them.
		return cmp.Or(cmp.Compare(boolInt(a.Name == "consign"), boolInt(b.Name == "consign")), strings.Compare(a.Name, b.Name))
	})
	out := make([]topicGroup, len(groups))
	for i, g := range groups {
		slices.SortFunc(g.Types, func(a, b topicOption) int { return strings.Compare(a.Name, b.Name) })
		out[i] = *g
	}
	return out, known, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Server) newEndpoint(w http.ResponseWriter, r *http.Request, q *req) error {
	def := &consign.Endpoint{Method: http.MethodPost, PayloadFormat: consign.FormatEnvelope, Auth: consign.Auth{Type: consign.AuthSignature},
		Ordering: consign.OrderingNone, Retry: consign.DefaultRetry(), Active: true,
		FailurePolicy: consign.FailurePolicy{DisableAfter: consign.Duration(72 * time.Hour)}}
	return s.renderEndpointForm(w, r, q, http.StatusOK, nil, formOf(def, nil), nil)
}

func (s *Server) renderEndpointForm(w http.ResponseWriter, r *http.Request, q *req, status int, e *consign.Endpoint, f endpointForm, errs fieldErrors) error {
	return s.renderEndpointFormWith(w, r, q, status, e, f, errs, nil)
}

// renderEndpointFormWith renders the form with the result of "Run on a sample", if any.
func (s *Server) renderEndpointFormWith(w http.ResponseWriter, r *http.Request, q *req, status int, e *consign.Endpoint, f endpointForm, errs fieldErrors, try *tryResult) error {
	groups, _, err := s.topicGroups(r.Context(), q.org)
	if err != nil {
		return err
	}
	f.ClientKey = "" // a private key is never sent back to the browser
	if f.SampleType == "" {
		// The first type the endpoint names, else the catalog's first.
		for _, t := range f.Topics {
			if !strings.HasSuffix(t, "*") {
				f.SampleType = t
				break
			}
		}
		if f.SampleType == "" && len(groups) > 0 && len(groups[0].Types) > 0 {
			f.SampleType = groups[0].Types[0].Name
		}
	}
	p := endpointFormPage{New: e == nil, E: e, F: f, Groups: groups, Errors: errs, Action: orgURL(q.org.ID, "endpoints"),
		TryAction: orgURL(q.org.ID, "transformation/test"), Try: try}
	title := "New endpoint"
	if e != nil {
		p.Action = orgURL(q.org.ID, "endpoints/"+e.ID+"/edit")
		title = "Edit endpoint"
	}
	s.render(w, r, q, status, "endpoint_form", title, p)
	return nil
}

func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request, q *req) error {
	f := readEndpointForm(r)
	var in manage.EndpointInput
	err := f.apply(&in, true)
	var created *manage.CreatedEndpoint
	if err == nil {
		created, err = s.manage.CreateEndpoint(r.Context(), q.org.ID, &in)
	}
	if err != nil {
		if errs, ok := formErrors(err); ok {
			return s.renderEndpointForm(w, r, q, http.StatusUnprocessableEntity, nil, f, errs)
		}
		return err
	}
	// The first secret is shown in this reply only.
	return s.renderEndpoint(w, r, q, http.StatusCreated, created.Endpoint, endpointExtras{FirstSecret: created.Secret, PublicKey: created.PublicKey})
}

func (s *Server) editEndpoint(w http.ResponseWriter, r *http.Request, q *req) error {
	e, err := s.manage.Endpoint(r.Context(), q.org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	_, known, err := s.topicGroups(r.Context(), q.org)
	if err != nil {
		return err
	}
	return s.renderEndpointForm(w, r, q, http.StatusOK, e, formOf(e, known), nil)
}

func (s *Server) updateEndpoint(w http.ResponseWriter, r *http.Request, q *req) error {
	id := r.PathValue("id")
	f := readEndpointForm(r)
	e, err := s.manage.UpdateEndpoint(r.Context(), q.org.ID, id, func(in *manage.EndpointPatch) error { return f.apply(&in.EndpointInput, false) })
	if err != nil {
		if errs, ok := formErrors(err); ok {
			cur, gerr := s.manage.Endpoint(r.Context(), q.org.ID, id)
			if gerr != nil {
				return gerr
			}
			return s.renderEndpointForm(w, r, q, http.StatusUnprocessableEntity, cur, f, errs)
		}
		return err
	}
	q.sess.addFlash("ok", "Endpoint saved.")
	redirect(w, r, orgURL(q.org.ID, "endpoints/"+e.ID))
	return nil
}

// setActive activates or deactivates an endpoint. Activation resets its health and
// sends its paused deliveries, or cancels them when the form says discard_paused.
func (s *Server) setActive(w http.ResponseWriter, r *http.Request, q *req) error {
	active := r.PostFormValue("active") == "true"
	discard := active && r.PostFormValue("discard_paused") == "true"
	e, err := s.manage.UpdateEndpoint(r.Context(), q.org.ID, r.PathValue("id"), func(in *manage.EndpointPatch) error {
		in.Active, in.DiscardPaused = &active, discard
		return nil
	})
	if err != nil {
		return err
	}
	s.dispatch.Wake(e.ID)
	msg := "Endpoint deactivated: its deliveries wait, paused, until it is activated."
	switch {
	case discard:
		msg = "Endpoint activated: health reset; what waited was cancelled, new events are sent."
	case active:
		msg = "Endpoint activated: health reset, what waited is being sent in order."
	}
	q.sess.addFlash("ok", msg)
	redirect(w, r, backTo(r, orgURL(q.org.ID, "endpoints/"+e.ID)))
	return nil
}

// backTo returns the form's "back" field if it is a page of the dashboard, else def.
func backTo(r *http.Request, def string) string {
	if b := safeNext(r.PostFormValue("back")); b != "" {
		return b
	}
	return def
}

func (s *Server) deleteEndpoint(w http.ResponseWriter, r *http.Request, q *req) error {
	if r.PostFormValue("confirm") != "yes" {
		return consign.Invalid("confirm", "tick the box to confirm that the endpoint and its deliveries are deleted")
	}
	if err := s.manage.DeleteEndpoint(r.Context(), q.org.ID, r.PathValue("id")); err != nil {
		return err
	}
	q.sess.addFlash("ok", "Endpoint deleted.")
	redirect(w, r, orgURL(q.org.ID, "endpoints"))
	return nil
}

type secretRow struct {
	S      *consign.Secret
	Active bool
}

// endpointExtras are the one-time parts of an endpoint page: values shown once, a test
// result, form errors.
type endpointExtras struct {
	FirstSecret string
	PublicKey   string
	NewSecret   *consign.Secret
	Test        *testResult
	TestType    string
	TestPayload string
	Errors      fieldErrors
	ErrorsFor   string // which form the errors belong to: "secret", "rotate", "recover", "replay", "test"
}

type endpointPage struct {
	endpointExtras
	E         *consign.Endpoint
	Stats     *consign.EndpointStats
	Sending   *consign.EndpointDispatch // this node's live state; nil when it holds none
	Chart     template.HTML
	Secrets   []secretRow
	TestTypes []string
	Recent    []*consign.Delivery
	Statuses  []string
	Jobs      []*consign.Job // the endpoint's latest replays and recover runs
}

// endpoint shows one endpoint: health, settings, secrets, test send, recovery.
func (s *Server) endpoint(w http.ResponseWriter, r *http.Request, q *req) error {
	e, err := s.manage.Endpoint(r.Context(), q.org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.renderEndpoint(w, r, q, http.StatusOK, e, endpointExtras{})
}

func (s *Server) renderEndpoint(w http.ResponseWriter, r *http.Request, q *req, status int, e *consign.Endpoint, x endpointExtras) error {
	e = e.Masked() // header values are credentials: shown masked, kept by a form that sends them back
	ctx := r.Context()
	now := s.now()
	p := endpointPage{endpointExtras: x, E: e, Statuses: deliveryStatuses}
	var err error
	if p.Stats, err = store.EndpointStats(ctx, s.store, q.org.ID, e.ID, now.Add(-24*time.Hour)); err != nil {
		return err
	}
	if p.Chart, err = s.volumeChart(ctx, q.org.ID, e.ID, now, false); err != nil {
		return err
	}
	p.Sending = s.dispatch.EndpointState(e.ID)
	secs, err := s.manage.Secrets(ctx, q.org.ID, e.ID)
	if err != nil {
		return err
	}
	for _, sec := range secs {
		p.Secrets = append(p.Secrets, secretRow{S: sec, Active: sec.ActiveAt(now)})
	}
	if p.TestTypes, err = s.testTypes(ctx, e); err != nil {
		return err
	}
	if p.Recent, err = s.store.DeliveryList(ctx, q.org.ID, store.DeliveryFilter{EndpointID: e.ID, Page: store.Page{Limit: 10}}); err != nil {
		return err
	}
	if p.Jobs, err = s.jobs.List(ctx, q.org.ID, e.ID, store.Page{Limit: 5}); err != nil {
		return err
	}
	s.render(w, r, q, status, "endpoint", e.URL, p)
	return nil
}

// testTypes are the event types a test send offers: consign.test first, then the
// catalog types the endpoint subscribes to.
func (s *Server) testTypes(ctx context.Context, e *consign.Endpoint) ([]string, error) {
	ts, err := s.store.EventTypeList(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{consign.TypeTest}
	for _, t := range ts {
		if t.Name != consign.TypeTest && e.Subscribes(t.Name) {
			out = append(out, t.Name)
		}
	}
	return out, nil
}

// testResult is what a test send shows: the attempt, or why none was made.
type testResult struct {
	DeliveryID string
	Status     string
	Attempt    *attemptView
}

// testEndpoint sends a test event now and shows the receiver's answer. An htmx request
// gets only the result; without JavaScript the whole page is rendered with it.
func (s *Server) testEndpoint(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	e, err := s.manage.Endpoint(ctx, q.org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	typ := strings.TrimSpace(r.PostFormValue("type"))
	payload := strings.TrimSpace(r.PostFormValue("payload"))
	x := endpointExtras{TestType: typ, TestPayload: payload}
	if typ != "" {
		if msg := consign.ValidTypeName(typ); msg != "" {
			err = consign.Invalid("type", "%s", msg)
		}
	}
	if err == nil && payload != "" && !json.Valid([]byte(payload)) {
		err = consign.Invalid("payload", "is not valid JSON; leave it empty for a sample payload")
	}
	var d *consign.Delivery
	if err == nil {
		d, err = s.dispatch.SendTest(ctx, q.org.ID, e.ID, typ, json.RawMessage(payload))
	}
	if err != nil {
		errs, ok := formErrors(err)
		if !ok {
			if consign.ErrorCode(err) == consign.EINTERNAL {
				return err
			}
			errs = fieldErrors{{Field: "", Message: consign.ErrorMessage(err)}}
		}
		x.Errors, x.ErrorsFor = errs, "test"
	} else {
		x.Test = &testResult{DeliveryID: d.ID, Status: d.Status}
		if len(d.Attempts) > 0 {
			ev, err := s.store.EventGet(ctx, q.org.ID, d.EventID)
			if err != nil && consign.ErrorCode(err) != consign.ENOTFOUND {
				return err
			}
			x.Test.Attempt = &attemptView{A: &d.Attempts[0], Body: requestBody(ev, e)}
		}
	}
	if isHTMX(r) {
		s.renderFragment(w, r, q, "endpoint", "test-result", endpointPage{endpointExtras: x, E: e})
		return nil
	}
	status := http.StatusOK
	if x.Errors != nil {
		status = http.StatusUnprocessableEntity
	}
	return s.renderEndpoint(w, r, q, status, e, x)
}

// recoverEndpoint re-queues the endpoint's deliveries created in a time range (failed
// ones by default), as POST …/recover does.
func (s *Server) recoverEndpoint(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	e, err := s.manage.Endpoint(ctx, q.org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	var fp formParser
	since := fp.time("since", r.PostFormValue("since"))
	until := fp.time("until", r.PostFormValue("until"))
	status := r.PostFormValue("status")
	if since == nil && !fp.bad {
		fp.fail("since", "is required: re-queue deliveries created since when?")
	}
	if status != "" && !consign.ValidStatus(status) {
		fp.fail("status", "is not a delivery status")
	}
	if err := fp.err(); err != nil {
		errs, _ := formErrors(err)
		return s.renderEndpoint(w, r, q, http.StatusUnprocessableEntity, e, endpointExtras{Errors: errs, ErrorsFor: "recover"})
	}
	in := dispatch.RecoverInput{Since: *since, Until: until, Types: list(r.PostFormValue("types"))}
	if status != "" {
		in.Statuses = []string{status}
	}
	n, err := s.dispatch.Recover(ctx, q.org.ID, e.ID, in)
	if err != nil {
		return err
	}
	p := consign.JobParams{Since: since.UTC(), Until: s.now().UTC(), Types: in.Types, Statuses: in.Statuses}
	if until != nil {
		p.Until = until.UTC()
	}
	if _, err := s.jobs.RecordRecover(ctx, q.org.ID, e.ID, p, n); err != nil {
		return err
	}
	q.sess.addFlash("ok", "Re-queued "+strconv.Itoa(n)+" deliveries; they are sent within the endpoint's limits.")
	redirect(w, r, backTo(r, orgURL(q.org.ID, "endpoints/"+e.ID)))
	return nil
}

// addSecret adds a signing secret; its value is shown in this reply only.
func (s *Server) addSecret(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	e, err := s.manage.Endpoint(ctx, q.org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	var fp formParser
	in := manage.SecretInput{Value: strings.TrimSpace(r.PostFormValue("value")), ExpiresAt: fp.time("expires_at", r.PostFormValue("expires_at"))}
	err = fp.err()
	var sec *consign.Secret
	if err == nil {
		sec, err = s.manage.AddSecret(ctx, q.org.ID, e.ID, &in)
	}
	if err != nil {
		if errs, ok := formErrors(err); ok {
			return s.renderEndpoint(w, r, q, http.StatusUnprocessableEntity, e, endpointExtras{Errors: errs, ErrorsFor: "secret"})
		}
		return err
	}
	return s.renderEndpoint(w, r, q, http.StatusCreated, e, endpointExtras{NewSecret: sec})
}

// rotateSecret adds a secret now and lets the others expire after a grace period.
func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	e, err := s.manage.Endpoint(ctx, q.org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	var fp formParser
	grace := fp.duration("grace", r.PostFormValue("grace"))
	err = fp.err()
	var sec *consign.Secret
	if err == nil {
		sec, err = s.manage.RotateSecret(ctx, q.org.ID, e.ID, time.Duration(grace), "")
	}
	if err != nil {
		if errs, ok := formErrors(err); ok {
			return s.renderEndpoint(w, r, q, http.StatusUnprocessableEntity, e, endpointExtras{Errors: errs, ErrorsFor: "rotate"})
		}
		return err
	}
	return s.renderEndpoint(w, r, q, http.StatusCreated, e, endpointExtras{NewSecret: sec})
}

// secretExpiry sets or clears when a secret stops signing.
func (s *Server) secretExpiry(w http.ResponseWriter, r *http.Request, q *req) error {
	ctx := r.Context()
	id, sid := r.PathValue("id"), r.PathValue("sid")
	var fp formParser
	at := fp.time("expires_at", r.PostFormValue("expires_at"))
	if err := fp.err(); err != nil {
		e, gerr := s.manage.Endpoint(ctx, q.org.ID, id)
		if gerr != nil {
			return gerr
		}
		errs, _ := formErrors(err)
		return s.renderEndpoint(w, r, q, http.StatusUnprocessableEntity, e, endpointExtras{Errors: errs, ErrorsFor: "expiry-" + sid})
	}
	if _, err := s.manage.SetSecretExpiry(ctx, q.org.ID, id, sid, at); err != nil {
		return err
	}
	msg := "Secret " + sid + " never expires."
	if at != nil {
		msg = "Secret " + sid + " expires at " + at.Format("2006-01-02 15:04 UTC") + "."
	}
	q.sess.addFlash("ok", msg)
	redirect(w, r, orgURL(q.org.ID, "endpoints/"+id)+"#secrets")
	return nil
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, q *req) error {
	id, sid := r.PathValue("id"), r.PathValue("sid")
	if err := s.manage.DeleteSecret(r.Context(), q.org.ID, id, sid); err != nil {
		if consign.ErrorCode(err) == consign.ECONFLICT {
			q.sess.addFlash("error", consign.ErrorMessage(err))
			redirect(w, r, orgURL(q.org.ID, "endpoints/"+id)+"#secrets")
			return nil
		}
		return err
	}
	q.sess.addFlash("ok", "Secret "+sid+" deleted.")
	redirect(w, r, orgURL(q.org.ID, "endpoints/"+id)+"#secrets")
	return nil
}

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }
