package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"time"
)

// EndpointService manages an org's endpoints.
type EndpointService struct{ c *Client }

// EndpointInput is a new endpoint. Zero fields take the server's defaults: POST, the
// envelope payload format, signature auth, no rate or burst limit, no ordering, the
// default retry schedule and failure policy, active, and a generated secret.
type EndpointInput struct {
	// URL is the target: https:// and a public address unless the server runs with
	// --insecure-targets.
	URL         string   `json:"url"`
	Description string   `json:"description,omitempty"`
	Topics      []string `json:"topics"`           // event types, "order.*", or "*"
	Method      string   `json:"method,omitempty"` // "POST" or "PUT"
	// Headers are sent with every request; Consign's own headers cannot be overridden.
	// Replies show their values masked ("••••1234"); a masked value sent back keeps the
	// stored one.
	Headers       map[string]string `json:"headers,omitempty"`
	PayloadFormat string            `json:"payload_format,omitempty"` // "envelope" or "raw"
	Auth          *Auth             `json:"auth,omitempty"`
	// Signature is how requests are signed; nil: Standard Webhooks.
	Signature *Signature `json:"signature,omitempty"`
	// TLS gives the endpoint mutual TLS with the partner and/or the partner's private CA
	// instead of the system roots.
	TLS *TLSInput `json:"tls,omitempty"`
	// RateLimit is requests per second, BurstLimit requests in flight; 0 is no limit.
	RateLimit     float64        `json:"rate_limit,omitempty"`
	BurstLimit    int            `json:"burst_limit,omitempty"`
	Ordering      string         `json:"ordering,omitempty"` // "none" or "key"
	Coalesce      bool           `json:"coalesce,omitempty"`
	Retry         *RetryPolicy   `json:"retry,omitempty"`
	FailurePolicy *FailurePolicy `json:"failure_policy,omitempty"`
	// Active false creates the endpoint deactivated.
	Active *bool `json:"active,omitempty"`
	// ResponseReferencePointer is an RFC 6901 pointer (such as "/reference") into the
	// endpoint's JSON reply to a successful attempt; the value there is kept on the
	// delivery as ResponseReference.
	ResponseReferencePointer string `json:"response_reference_pointer,omitempty"`
	// ResponseFields names values to keep from that reply (name → pointer, at most 8);
	// they are kept on the delivery as ResponseFields.
	ResponseFields map[string]string `json:"response_fields,omitempty"`
	// SuccessStatuses, when set, are the only (2xx) statuses that count as success, such
	// as [200] for a ReadyCloud receiver; empty: any 2xx.
	SuccessStatuses []int `json:"success_statuses,omitempty"`
	// Filter picks which of the events the topics take are sent: JSON rules over
	// {"type", "payload", "ordering_key"}, such as
	// {"payload": {"total": {"$gte": 500}, "country": {"$in": ["US", "CA"]}}}.
	Filter json.RawMessage `json:"filter,omitempty"`
	// Transformation is JavaScript run on each webhook before it is signed:
	// function handler(webhook) { … return webhook } over {type, payload, url, method,
	// headers}; it may change those, or set webhook.cancel = true.
	Transformation string `json:"transformation,omitempty"`
	// Version pins the payload version, a date such as "2026-06-01": payloads of
	// versioned event types arrive converted down to their shape as of that date; empty:
	// the newest.
	Version string `json:"version,omitempty"`
	// Secret is the first signing secret ("whsec_…", or an ed25519 "whsk_…" key); empty
	// lets the server generate one.
	Secret string `json:"secret,omitempty"`
	// SecretExpiresAt is when the first secret stops signing.
	SecretExpiresAt *time.Time `json:"secret_expires_at,omitempty"`
}

// CreatedEndpoint is a new endpoint with its first secret's value, shown this once, and
// for an ed25519 key the public key that receivers verify with.
type CreatedEndpoint struct {
	Endpoint
	Secret    string `json:"secret,omitempty"`
	PublicKey string `json:"public_key,omitempty"`
}

// EndpointPatch changes an endpoint: nil fields keep their values. Setting Active to
// true reactivates a deactivated endpoint, resets its health, starts a fresh failure
// window and sends, in order, the deliveries that waited (paused) while it was inactive
// — or cancels them, with DiscardPaused; false deactivates it. The server merges Headers
// into the endpoint's.
type EndpointPatch struct {
	URL           *string           `json:"url,omitzero"`
	Description   *string           `json:"description,omitzero"`
	Topics        []string          `json:"topics,omitzero"`
	Method        *string           `json:"method,omitzero"`
	Headers       map[string]string `json:"headers,omitzero"`
	PayloadFormat *string           `json:"payload_format,omitzero"`
	Auth          *Auth             `json:"auth,omitzero"`
	// Signature replaces the endpoint's signature as a whole.
	Signature *Signature `json:"signature,omitzero"`
	// TLS replaces the endpoint's certificate, key and CAs as a whole; &TLSInput{}
	// removes them.
	TLS           *TLSInput      `json:"tls,omitzero"`
	RateLimit     *float64       `json:"rate_limit,omitzero"`
	BurstLimit    *int           `json:"burst_limit,omitzero"`
	Ordering      *string        `json:"ordering,omitzero"`
	Coalesce      *bool          `json:"coalesce,omitzero"`
	Retry         *RetryPolicy   `json:"retry,omitzero"`
	FailurePolicy *FailurePolicy `json:"failure_policy,omitzero"`
	Active        *bool          `json:"active,omitzero"`
	// ResponseReferencePointer "" stops taking a reference from replies.
	ResponseReferencePointer *string `json:"response_reference_pointer,omitzero"`
	// ResponseFields replaces the endpoint's response fields as a whole.
	ResponseFields map[string]string `json:"response_fields,omitzero"`
	// SuccessStatuses replaces the statuses that count as success as a whole.
	SuccessStatuses []int `json:"success_statuses,omitzero"`
	// Filter replaces the endpoint's filter; json.RawMessage("null") removes it.
	Filter json.RawMessage `json:"filter,omitzero"`
	// Transformation replaces the endpoint's transformation; "" removes it.
	Transformation *string `json:"transformation,omitzero"`
	// Version replaces the pinned payload version; "" receives the newest.
	Version *string `json:"version,omitzero"`
	// DiscardPaused, with Active true, cancels what waited instead of sending it.
	DiscardPaused bool `json:"discard_paused,omitzero"`
}

// Create makes an endpoint. The reply carries its first secret's value this once.
func (s *EndpointService) Create(ctx context.Context, org string, in EndpointInput) (*CreatedEndpoint, error) {
	var e CreatedEndpoint
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "endpoints"), body: in, out: &e})
	return ptr(&e, err)
}

// List returns a page of an org's endpoints.
func (s *EndpointService) List(ctx context.Context, org string, opts *ListOptions) (*Page[Endpoint], error) {
	return list[Endpoint](ctx, s.c, path("orgs", org, "endpoints"), opts.values())
}

// All iterates over every endpoint of an org from opts.Cursor on.
func (s *EndpointService) All(ctx context.Context, org string, opts *ListOptions) iter.Seq2[Endpoint, error] {
	o := deref(opts)
	return all(ctx, o.Cursor, func(ctx context.Context, cursor string) (*Page[Endpoint], error) {
		o.Cursor = cursor
		return s.List(ctx, org, &o)
	})
}

// Get returns an endpoint.
func (s *EndpointService) Get(ctx context.Context, org, id string) (*Endpoint, error) {
	var e Endpoint
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("orgs", org, "endpoints", id), out: &e})
	return ptr(&e, err)
}

// Update changes an endpoint.
func (s *EndpointService) Update(ctx context.Context, org, id string, p EndpointPatch) (*Endpoint, error) {
	var e Endpoint
	_, err := s.c.do(ctx, request{method: http.MethodPatch, path: path("orgs", org, "endpoints", id), body: p, out: &e})
	return ptr(&e, err)
}

// Delete removes an endpoint and its deliveries.
func (s *EndpointService) Delete(ctx context.Context, org, id string) error {
	_, err := s.c.do(ctx, request{method: http.MethodDelete, path: path("orgs", org, "endpoints", id)})
	return err
}

// TestInput is the event a test sends; zero fields send a sample "consign.test" event.
type TestInput struct {
	Type    string `json:"type,omitempty"`
	Payload any    `json:"payload,omitempty"`
}

// TestResult is the outcome of a test: its delivery and the attempt, with what the
// endpoint answered.
type TestResult struct {
	DeliveryID string   `json:"delivery_id"`
	EventID    string   `json:"event_id"`
	Status     string   `json:"status"`
	Attempt    *Attempt `json:"attempt"`
}

// Test sends an event to the endpoint now and waits for the attempt.
func (s *EndpointService) Test(ctx context.Context, org, id string, in TestInput) (*TestResult, error) {
	var r TestResult
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "endpoints", id, "test"), body: in, out: &r})
	return ptr(&r, err)
}

// TransformationTest is an event to run an endpoint's transformation on; Code, when
// set, is run instead of the stored transformation. Zero Type and Payload: a sample
// "consign.test" event.
type TransformationTest struct {
	Type    string `json:"type,omitempty"`
	Payload any    `json:"payload,omitempty"`
	Code    string `json:"code,omitempty"`
}

// TransformedWebhook is a webhook as a transformation returned it.
type TransformedWebhook struct {
	Type    string            `json:"type"`
	Payload json.RawMessage   `json:"payload"`
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
}

// TransformationResult is what the transformation made of the event: the webhook as it
// would be sent, Cancelled, or (OK false) the Error that would fail the delivery.
type TransformationResult struct {
	OK        bool                `json:"ok"`
	Cancelled bool                `json:"cancelled"`
	Webhook   *TransformedWebhook `json:"webhook"`
	Error     string              `json:"error"`
}

// TestTransformation runs the endpoint's transformation (or in.Code) on an event
// without sending anything. Code that does not compile is an *Error naming "code".
func (s *EndpointService) TestTransformation(ctx context.Context, org, id string, in TransformationTest) (*TransformationResult, error) {
	var r TransformationResult
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "endpoints", id, "transformation", "test"), body: in, out: &r})
	return ptr(&r, err)
}

// RecoverInput selects the deliveries to send again: created since Since (and before
// Until), with one of Status (default: failed), of one of Types (default: all).
type RecoverInput struct {
	Since  time.Time  `json:"since"`
	Until  *time.Time `json:"until,omitempty"`
	Status []string   `json:"status,omitempty"`
	Types  []string   `json:"types,omitempty"`
}

// RecoverJob is a recover run, recorded as a completed job: Requeued deliveries are sent
// again within the endpoint's limits.
type RecoverJob struct {
	Job
	Requeued int `json:"requeued"`
}

// Recover re-queues an endpoint's deliveries that match in.
func (s *EndpointService) Recover(ctx context.Context, org, id string, in RecoverInput) (*RecoverJob, error) {
	var j RecoverJob
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "endpoints", id, "recover"), body: in, out: &j})
	return ptr(&j, err)
}

// ReplayInput asks for a replay: the events created in [Since, Until) (Until zero: now)
// of Types (default: every type the endpoint subscribes to) that the endpoint never
// had. Since may reach back no further than the server's retention.
type ReplayInput struct {
	Since time.Time  `json:"since"`
	Until *time.Time `json:"until,omitempty"`
	Types []string   `json:"types,omitempty"`
}

// Replay starts a replay job: deliveries of the past events the endpoint never had,
// created within its limits. Follow it with Jobs.Get.
func (s *EndpointService) Replay(ctx context.Context, org, id string, in ReplayInput) (*Job, error) {
	var j Job
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "endpoints", id, "replay"), body: in, out: &j})
	return ptr(&j, err)
}

// Stats summarises an endpoint's deliveries and attempts over the last window (zero:
// the server's default, 24 hours).
func (s *EndpointService) Stats(ctx context.Context, org, id string, window time.Duration) (*EndpointStats, error) {
	q := url.Values{}
	if window != 0 {
		q.Set("window", window.String())
	}
	var st EndpointStats
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("orgs", org, "endpoints", id, "stats"), query: q, out: &st})
	return ptr(&st, err)
}

// SecretService manages an endpoint's signing secrets. Every active secret signs each
// request, so receivers can switch from one to the next without a gap.
type SecretService struct{ c *Client }

// SecretInput is a new secret: a value ("whsec_…" or "whsk_…"; empty: generated) and
// an optional expiry.
type SecretInput struct {
	Value     string     `json:"value,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// RotateInput is a rotation: a new secret now (Value, or generated) while the others
// expire after Grace (nil: the server's default, 24 hours; zero: now).
type RotateInput struct {
	Grace *time.Duration
	Value string
}

// MarshalJSON writes Grace as a duration string.
func (in RotateInput) MarshalJSON() ([]byte, error) {
	var out struct {
		Grace *Duration `json:"grace,omitempty"`
		Value string    `json:"value,omitempty"`
	}
	if in.Grace != nil {
		g := Duration(*in.Grace)
		out.Grace = &g
	}
	out.Value = in.Value
	return json.Marshal(out)
}

// Add adds a secret, active at once; the reply carries its value this once.
func (s *SecretService) Add(ctx context.Context, org, endpoint string, in SecretInput) (*Secret, error) {
	var sec Secret
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "endpoints", endpoint, "secrets"), body: in, out: &sec})
	return ptr(&sec, err)
}

// List returns an endpoint's secrets, without their values.
func (s *SecretService) List(ctx context.Context, org, endpoint string) ([]Secret, error) {
	var page Page[Secret]
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("orgs", org, "endpoints", endpoint, "secrets"), out: &page})
	return page.Data, err
}

// SetExpiry sets when a secret stops signing; nil: never.
func (s *SecretService) SetExpiry(ctx context.Context, org, endpoint, id string, expiresAt *time.Time) (*Secret, error) {
	var sec Secret
	_, err := s.c.do(ctx, request{method: http.MethodPatch, path: path("orgs", org, "endpoints", endpoint, "secrets", id),
		body: map[string]*time.Time{"expires_at": expiresAt}, out: &sec})
	return ptr(&sec, err)
}

// Delete removes a secret. The server refuses to remove the last one that still signs.
func (s *SecretService) Delete(ctx context.Context, org, endpoint, id string) error {
	_, err := s.c.do(ctx, request{method: http.MethodDelete, path: path("orgs", org, "endpoints", endpoint, "secrets", id)})
	return err
}

// Rotate adds a new secret now and lets the others expire after the grace period; the
// reply carries the new value this once.
func (s *SecretService) Rotate(ctx context.Context, org, endpoint string, in RotateInput) (*Secret, error) {
	var sec Secret
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "endpoints", endpoint, "secrets", "rotate"), body: in, out: &sec})
	return ptr(&sec, err)
}
