// Package api is Consign's HTTP API (v1): JSON in and out, problem+json errors.
//
// Handlers return error; one function (writeError) turns any error into an RFC 9457
// reply, mapping *consign.Error codes to statuses in one table, so no handler writes an
// error by hand and no internal detail reaches a client. Routes are declared in one
// table (routes) with their method, pattern and access rule; the OpenAPI document and the
// route test read the same table.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/manage"
	"github.com/consign-dev/consign/internal/store"
)

// Config configures the API. Zero fields take their defaults (WithDefaults); Validate
// says which settings cannot work.
type Config struct {
	// MaxBody is the largest request body in bytes; default 256 KiB.
	MaxBody int64
	// MaxBatchBody is the largest body of POST …/events/batch; default 16 MiB.
	MaxBatchBody int64
	// PublicURL is the base URL the outside world reaches the server at, for sources'
	// ingest URLs (such as "https://hooks.example.com"); default: the scheme and host each
	// request came to.
	PublicURL string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Throttle, if set, slows clients that keep presenting bad keys.
	Throttle Throttle
	// Tracer, if set, gives each request a server span named by its route (never its
	// path, which for ingest URLs holds a credential), continuing an incoming
	// traceparent.
	Tracer trace.Tracer
}

// Server serves the API.
type Server struct {
	cfg      Config
	store    Store
	manage   *manage.Service
	ingest   Publisher
	dispatch Dispatcher
	inbound  Sources
	jobs     Jobs
	log      *slog.Logger
	mux      *http.ServeMux
	doc      []byte // the OpenAPI document
}

// access says who may call a route.
type access int

const (
	public    access = iota // no key
	anyKey                  // any valid key
	admin                   // the admin key
	orgMember               // the admin key or a key of the {org} in the path
)

// route is one API operation.
type route struct {
	method, pattern string
	access          access
	summary         string
	handle          func(w http.ResponseWriter, r *http.Request) error
	// in is the zero value of the request body's type; nil: no body.
	in any
	// out is the zero value of the reply body's type, or created(…)/accepted(…) of it for
	// those statuses; nil: 204 No Content. The OpenAPI document is built from in and out.
	out any
}

// Defaults of Config.
const (
	DefaultMaxBody      = 256 << 10
	DefaultMaxBatchBody = 16 << 20
)

// WithDefaults returns c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxBatchBody == 0 {
		c.MaxBatchBody = DefaultMaxBatchBody
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every setting of c (with its defaults applied) that cannot work,
// naming each.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBody <= 0 {
		errs = append(errs, fmt.Errorf("MaxBody is %d; it must be positive", c.MaxBody))
	}
	if c.MaxBatchBody <= 0 {
		errs = append(errs, fmt.Errorf("MaxBatchBody is %d; it must be positive", c.MaxBatchBody))
	}
	if err := CheckPublicURL(c.PublicURL); err != nil {
		errs = append(errs, fmt.Errorf("PublicURL %w", err))
	}
	return errors.Join(errs...)
}

// CheckPublicURL checks a base URL that sources' ingest URLs are built on: "" (take each
// request's own), or an absolute http or https URL with a host and nothing after its path.
// The error says what is wrong with the URL, after its name.
func CheckPublicURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL: %v", raw, unwrapURLError(err))
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q must start with https:// (or http://)", raw)
	case u.Host == "":
		return fmt.Errorf("%q has no host", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q must be a scheme, a host and at most a path: no credentials, query or fragment", raw)
	}
	return nil
}

func unwrapURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// New returns the API server. cfg gets its defaults; New panics when it does not pass
// Validate (the composition root validates its settings first).
func New(s Store, m *manage.Service, in Publisher, d Dispatcher, ib Sources, j Jobs, cfg Config) *Server {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic("api: invalid settings: " + err.Error())
	}
	srv := &Server{cfg: cfg, store: s, manage: m, ingest: in, dispatch: d, inbound: ib, jobs: j, log: cfg.Logger, mux: http.NewServeMux()}
	routes := srv.routes()
	for _, rt := range routes {
		srv.mux.Handle(rt.method+" "+rt.pattern, srv.wrap(rt))
	}
	doc, err := openAPI(routes)
	if err != nil {
		panic(fmt.Sprintf("api: building the OpenAPI document: %v", err)) // a bug in a route's types
	}
	srv.doc = doc
	return srv
}

// ServeHTTP implements http.Handler. Requests the table has no route for get a
// problem+json 404, or 405 with Allow when the path exists with other methods.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, pattern := s.mux.Handler(r); pattern == "" {
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r) // the mux's own 404/405 answer: keep its status and Allow
		if rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.header.Get("Allow"))
			s.writeError(w, r, &consign.Error{Code: consign.EMETHOD, Message: fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, rec.header.Get("Allow"))})
			return
		}
		s.writeError(w, r, consign.Errorf(consign.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// statusRecorder captures the status and headers of the mux's built-in replies.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }

type ctxKey struct{}

// caller returns the key that authenticated the request.
func caller(r *http.Request) *consign.APIKey {
	k, _ := r.Context().Value(ctxKey{}).(*consign.APIKey)
	return k
}

// wrap applies body limits, authentication, authorization and panic recovery.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("panic in handler", "route", rt.pattern, "panic", v, "stack", string(debug.Stack()))
				s.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		if s.cfg.Tracer != nil {
			ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span := s.cfg.Tracer.Start(ctx, rt.method+" "+rt.pattern, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.route", rt.pattern)))
			defer span.End()
			r = r.WithContext(ctx)
		}
		limit := s.cfg.MaxBody
		if strings.HasSuffix(rt.pattern, "/events/batch") {
			limit = s.cfg.MaxBatchBody
		}
		if strings.HasPrefix(rt.pattern, "/in/") {
			limit = s.inbound.MaxBody()
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if rt.access != public {
			tok := bearer(r)
			if tok == "" && isReadyCloud(rt.pattern) {
				tok = r.URL.Query().Get("bearer_token") // ReadyCloud's documented way
			}
			key, err := s.authenticate(r, tok)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			if err := authorize(rt.access, key, r.PathValue("org")); err != nil {
				s.writeError(w, r, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, key))
		}
		if err := rt.handle(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// authenticate checks the key tok presented, through the throttle: a client that keeps
// presenting keys that do not authenticate is answered 429 for a while.
func (s *Server) authenticate(r *http.Request, tok string) (*consign.APIKey, error) {
	t := s.cfg.Throttle
	if t == nil || tok == "" {
		return s.manage.Authenticate(r.Context(), tok)
	}
	if err := t.Allow(r, tok); err != nil {
		return nil, err
	}
	key, err := s.manage.Authenticate(r.Context(), tok)
	switch consign.ErrorCode(err) {
	case "":
		t.Succeeded(tok)
	case consign.EUNAUTHORIZED:
		t.Failed(r)
	}
	return key, err
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func authorize(a access, k *consign.APIKey, org string) error {
	switch {
	case k.Admin():
		return nil
	case a == admin:
		return consign.Errorf(consign.EFORBIDDEN, "this operation needs the admin key")
	case a == orgMember && k.OrgID != org:
		// Another org's objects are not acknowledged to exist.
		return consign.Errorf(consign.ENOTFOUND, "org %q not found", org)
	}
	return nil
}

// problem is an RFC 9457 problem document.
type problem struct {
	Type   string               `json:"type"`
	Title  string               `json:"title"`
	Status int                  `json:"status"`
	Detail string               `json:"detail"`
	Errors []consign.FieldError `json:"errors,omitempty"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = &consign.Error{Code: consign.ETOOLARGE, Message: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = consign.Errorf(consign.EUNAVAILABLE, "the request was cancelled or timed out before it finished")
	}
	code := consign.ErrorCode(err)
	status := consign.HTTPStatus(code)
	if code == consign.EINTERNAL {
		// The route's pattern, not the path: the path of an ingest URL is its credential.
		s.log.Error("internal error", "method", r.Method, "route", r.Pattern, "err", err)
	}
	p := problem{Type: "urn:consign:error:" + code, Title: http.StatusText(status), Status: status, Detail: consign.ErrorMessage(err)}
	var e *consign.Error
	if errors.As(err, &e) {
		p.Errors = e.Fields
	}
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, code)
		}
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="consign"`)
	}
	if e != nil && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", consign.RetryAfterSeconds(e.RetryAfter))
	}
	if isReadyCloudPath(r.URL.Path) {
		writeReadyCloudError(w, status, err)
		return
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeJSON writes v with the status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body strictly: one object, no unknown fields, types as declared.
// Its errors name the field and say what was expected.
func decode(r *http.Request, v any) error {
	return decodeFrom(r.Body, v)
}

// decodeFrom is decode for a body given as a reader.
func decodeFrom(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return consign.Errorf(consign.EBADREQUEST, "request body must hold one JSON value and nothing after it")
	}
	return nil
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	var ce *consign.Error
	switch {
	case errors.As(err, &mbe), errors.As(err, &ce):
		return err // too large, too slow, or over the server's budget: said already
	case errors.Is(err, io.EOF):
		return consign.Errorf(consign.EBADREQUEST, "request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return consign.Errorf(consign.EBADREQUEST, "request body ends in the middle of its JSON")
	case errors.As(err, &syn):
		return consign.Errorf(consign.EBADREQUEST, "request body is not valid JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return consign.Errorf(consign.EBADREQUEST, "request body must be %s, not %s", jsonKind(typ.Type.String()), typ.Value)
		}
		msg := fmt.Sprintf("must be %s, not %s", jsonKind(typ.Type.String()), typ.Value)
		if typ.Type == reflect.TypeFor[consign.Duration]() {
			msg = fmt.Sprintf(`must be a duration such as "30s", "5m" or "72h", not %s`, typ.Value)
		}
		return &consign.Error{Code: consign.EBADREQUEST, Message: field + ": " + msg,
			Fields: []consign.FieldError{{Field: field, Message: msg}}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &consign.Error{Code: consign.EBADREQUEST, Message: fmt.Sprintf("unknown field %q", name),
			Fields: []consign.FieldError{{Field: name, Message: "unknown field"}}}
	}
	var te *time.ParseError
	if errors.As(err, &te) {
		return consign.Errorf(consign.EBADREQUEST, `times must be RFC 3339 such as "2026-11-23T12:00:00Z", not %q`, te.Value)
	}
	return consign.Errorf(consign.EBADREQUEST, "request body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names a Go type the way a JSON user thinks of it.
func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["), strings.Contains(goType, "."):
		if strings.Contains(goType, "Time") || strings.Contains(goType, "Duration") || goType == "consign.Role" {
			return "a string"
		}
		return "an object"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	}
	return goType
}

// page reads ?limit= and ?cursor=.
func page(r *http.Request) (store.Page, error) {
	p := store.Page{Limit: 50, Cursor: r.URL.Query().Get("cursor")}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return p, consign.Invalid("limit", "must be a whole number from 1 to 500")
		}
		p.Limit = n
	}
	if len(p.Cursor) > 100 {
		return p, consign.Invalid("cursor", "is not a cursor returned by this API")
	}
	return p, nil
}

// list is the reply shape of every list.
type list[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func newList[T any](items []T, p store.Page, id func(T) string) list[T] {
	l := list[T]{Data: items}
	if l.Data == nil {
		l.Data = []T{}
	}
	if len(items) == p.Limit && len(items) > 0 {
		c := id(items[len(items)-1])
		l.NextCursor = &c
	}
	return l
}
