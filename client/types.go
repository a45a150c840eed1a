package client

import (
	"github.com/consign-dev/consign"
)

// Types of the API's replies, shared with the server.
type (
	// Org is a tenant: everything else belongs to one org.
	Org = consign.Org
	// Role is what an org is on a marketplace: buyer, seller or both. It limits the
	// topics its endpoints may take.
	Role = consign.Role
	// Key is an API key. Key.Key, its value, is set only in the reply that creates it.
	Key = consign.APIKey
	// EventType is an entry of the catalog, with an optional JSON Schema.
	EventType = consign.EventType
	// EventTypeVersion is one payload version of an event type, with its downgrade.
	EventTypeVersion = consign.EventTypeVersion
	// Endpoint is a webhook configuration: target URL, topics and delivery settings.
	Endpoint = consign.Endpoint
	// Auth is how requests to an endpoint prove they come from Consign.
	Auth = consign.Auth
	// Signature is how requests to an endpoint are signed: Standard Webhooks (the
	// default), none, or an HMAC-SHA256 in the format a partner's receiver checks.
	Signature = consign.Signature
	// TLSInput is an endpoint's client certificate and key and the partner's private CAs,
	// all PEM; the key is sealed at rest and never shown again.
	TLSInput = consign.TLSInput
	// EndpointTLS is what replies show of an endpoint's TLS settings: the certificate's
	// subject, issuer and expiry and the CAs' subjects.
	EndpointTLS = consign.EndpointTLS
	// RetryPolicy is an endpoint's retry schedule and the age at which it gives up.
	RetryPolicy = consign.RetryPolicy
	// FailurePolicy says when an endpoint that keeps failing is deactivated.
	FailurePolicy = consign.FailurePolicy
	// Branding is how the partner portal shows an org: name, logo URL and #rrggbb colour.
	Branding = consign.Branding
	// Duration travels in JSON as a string such as "30s" or "72h".
	Duration = consign.Duration
	// Secret is a signing secret of an endpoint; Value is set only when it is created.
	Secret = consign.Secret
	// Job is background work on an endpoint (a replay, a recover run) with its status
	// and progress.
	Job = consign.Job
	// JobParams is what a job was asked to do.
	JobParams = consign.JobParams
	// JobProgress counts what a job has done.
	JobProgress = consign.JobProgress
	// Delivery is one event for one endpoint; Attempts is set when it is fetched alone.
	Delivery = consign.Delivery
	// Attempt is one HTTP request of a delivery and what came back.
	Attempt = consign.Attempt
	// AttemptRequest is what an attempt sent.
	AttemptRequest = consign.AttemptRequest
	// AttemptResponse is what the endpoint answered (body up to 64 KiB).
	AttemptResponse = consign.AttemptResponse
	// EndpointStats summarises an endpoint's recent deliveries and attempts.
	EndpointStats = consign.EndpointStats
	// FieldError names an invalid field of a request and what is wrong with it.
	FieldError = consign.FieldError
)

// Auth types of an endpoint (Auth.Type).
const (
	AuthSignature = consign.AuthSignature // the signature alone (default)
	AuthToken     = consign.AuthToken     // "Auth: <token>", not signed (ReadyCloud)
	AuthBasic     = consign.AuthBasic     // HTTP Basic: Username, Password
	AuthBearer    = consign.AuthBearer    // "Authorization: Bearer <Token>"
	AuthOAuth2    = consign.AuthOAuth2    // OAuth 2.0 client credentials: TokenURL, ClientID, ClientSecret
)

// Signature schemes of an endpoint (Signature.Scheme).
const (
	SignatureStandardWebhooks = consign.SignatureStandardWebhooks // webhook-signature (default)
	SignatureNone             = consign.SignatureNone
	SignatureHMACSHA256       = consign.SignatureHMACSHA256 // in the header and format a partner checks
)

// Roles of an org.
const (
	RoleBuyer  = consign.RoleBuyer
	RoleSeller = consign.RoleSeller
	RoleBoth   = consign.RoleBoth
)

// Delivery states.
const (
	StatusPending    = consign.StatusPending    // waiting for its next attempt
	StatusDelivering = consign.StatusDelivering // an attempt is in flight
	StatusSucceeded  = consign.StatusSucceeded  // a 2xx was received
	StatusFailed     = consign.StatusFailed     // gave up after the retry schedule
	StatusPaused     = consign.StatusPaused     // the endpoint is inactive
	StatusSuperseded = consign.StatusSuperseded // coalesced into a newer event
	StatusCancelled  = consign.StatusCancelled  // will not be sent

	JobReplay    = consign.JobReplay  // a replay of past events
	JobRecover   = consign.JobRecover // a recover run (finished when created)
	JobRunning   = consign.JobRunning
	JobCompleted = consign.JobCompleted
	JobFailed    = consign.JobFailed
	JobCancelled = consign.JobCancelled
)
