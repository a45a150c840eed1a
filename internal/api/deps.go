package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/dispatch"
	"github.com/consign-dev/consign/internal/inbound"
	"github.com/consign-dev/consign/internal/ingest"
	"github.com/consign-dev/consign/internal/job"
	"github.com/consign-dev/consign/internal/store"
)

// What the API needs of the parts around it, declared here so that each is what the
// handlers use and no more. Configuration changes (orgs, keys, endpoints, secrets, event
// types) go through *manage.Service itself: the API is a presentation of its rules and
// must not be given anything else.

// Store is what the API reads from the store directly: health, listings and details.
type Store interface {
	Ping(ctx context.Context) error
	OrgGet(ctx context.Context, id string) (*consign.Org, error)
	OrgList(ctx context.Context, p store.Page) ([]*consign.Org, error)
	KeyList(ctx context.Context, orgID string, p store.Page) ([]*consign.APIKey, error)
	EventTypeGet(ctx context.Context, name string) (*consign.EventType, error)
	EventTypeList(ctx context.Context) ([]*consign.EventType, error)
	EventGet(ctx context.Context, orgID, id string) (*consign.Event, error)
	EventList(ctx context.Context, orgID string, f store.EventFilter) ([]*consign.Event, error)
	DeliveryList(ctx context.Context, orgID string, f store.DeliveryFilter) ([]*consign.Delivery, error)
	DeliveryGet(ctx context.Context, orgID, id string) (*consign.Delivery, error)
	store.StatsReader
}

// Publisher publishes events (ingest.Service), and checks payloads where they stand in
// a request body (payloadReader).
type Publisher interface {
	Publish(ctx context.Context, orgID string, in []ingest.EventInput) ([]ingest.Result, error)
	payloadReader
}

// payloadReader checks the payload of an event of type typ where it stands, at the
// start of b (ingest.Service.ReadPayload): its length when accepted, else -1. prev is
// the event read before from the same body, or nil.
type payloadReader interface {
	ReadPayload(ctx context.Context, typ string, b []byte, in, prev *ingest.EventInput) (n int, verbatim bool)
}

// Dispatcher sends test events, retries and recovers deliveries, is told when deliveries
// become due, and says how it sends to an endpoint now (dispatch.Dispatcher).
type Dispatcher interface {
	EndpointState(endpointID string) *consign.EndpointDispatch
	SendTest(ctx context.Context, orgID, endpointID, typ string, payload json.RawMessage) (*consign.Delivery, error)
	Retry(ctx context.Context, orgID, id string) (*consign.Delivery, error)
	Recover(ctx context.Context, orgID, endpointID string, in dispatch.RecoverInput) (int, error)
	Wake(endpointIDs ...string)
}

// Jobs starts, lists and cancels jobs (job.Service).
type Jobs interface {
	Replay(ctx context.Context, orgID, endpointID string, in job.ReplayInput) (*consign.Job, error)
	RecordRecover(ctx context.Context, orgID, endpointID string, p consign.JobParams, n int) (*consign.Job, error)
	Get(ctx context.Context, orgID, id string) (*consign.Job, error)
	List(ctx context.Context, orgID, endpointID string, p store.Page) ([]*consign.Job, error)
	Cancel(ctx context.Context, orgID, id string) (*consign.Job, error)
}

// Sources manages inbound sources, lists their receipts and receives their requests
// (inbound.Service).
type Sources interface {
	CreateSource(ctx context.Context, orgID string, in *inbound.SourceInput) (*consign.Source, error)
	Source(ctx context.Context, orgID, id string) (*consign.Source, error)
	Sources(ctx context.Context, orgID string, p store.Page) ([]*consign.Source, error)
	UpdateSource(ctx context.Context, orgID, id string, decode func(*inbound.SourceInput) error) (*consign.Source, error)
	RotateToken(ctx context.Context, orgID, id string) (*consign.Source, error)
	DeleteSource(ctx context.Context, orgID, id string) error
	Receipts(ctx context.Context, orgID, sourceID string, f store.ReceiptFilter) ([]*consign.Receipt, error)
	Receipt(ctx context.Context, orgID, sourceID, id string) (*consign.Receipt, error)
	Receive(ctx context.Context, token string, h http.Header, body []byte) (*consign.Receipt, error)
	// MaxBody is the largest body an ingest URL reads.
	MaxBody() int64
}

// Throttle slows clients that keep presenting keys that do not authenticate
// (guard.Guard).
type Throttle interface {
	// Allow says whether the client of r may present credential now: nil, or an error
	// to answer instead of looking at the key.
	Allow(r *http.Request, credential string) error
	// Failed counts a key that did not authenticate against the client of r.
	Failed(r *http.Request)
	// Succeeded remembers a key that authenticated.
	Succeeded(credential string)
}
