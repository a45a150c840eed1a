package web

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/dispatch"
	"github.com/consign-dev/consign/internal/inbound"
	"github.com/consign-dev/consign/internal/job"
	"github.com/consign-dev/consign/internal/store"
)

// Store is what the dashboard reads from the store: listings and details. Every change
// goes through internal/manage, internal/dispatch or internal/inbound.
type Store interface {
	KeyByHash(ctx context.Context, hash []byte) (*consign.APIKey, error)
	KeyList(ctx context.Context, orgID string, p store.Page) ([]*consign.APIKey, error)
	OrgGet(ctx context.Context, id string) (*consign.Org, error)
	OrgList(ctx context.Context, p store.Page) ([]*consign.Org, error)
	EventTypeList(ctx context.Context) ([]*consign.EventType, error)
	EventTypeGet(ctx context.Context, name string) (*consign.EventType, error)
	EventGet(ctx context.Context, orgID, id string) (*consign.Event, error)
	EventList(ctx context.Context, orgID string, f store.EventFilter) ([]*consign.Event, error)
	DeliveryList(ctx context.Context, orgID string, f store.DeliveryFilter) ([]*consign.Delivery, error)
	DeliveryGet(ctx context.Context, orgID, id string) (*consign.Delivery, error)
	store.StatsReader
}

// Dispatcher sends test events, retries and recovers deliveries, is told when
// deliveries become due, and says how it sends to an endpoint now (dispatch.Dispatcher).
type Dispatcher interface {
	EndpointState(endpointID string) *consign.EndpointDispatch
	SendTest(ctx context.Context, orgID, endpointID, typ string, payload json.RawMessage) (*consign.Delivery, error)
	Retry(ctx context.Context, orgID, id string) (*consign.Delivery, error)
	Recover(ctx context.Context, orgID, endpointID string, in dispatch.RecoverInput) (int, error)
	Wake(endpointIDs ...string)
}

// Jobs starts, lists and cancels jobs: replays and recover runs (job.Service).
type Jobs interface {
	Replay(ctx context.Context, orgID, endpointID string, in job.ReplayInput) (*consign.Job, error)
	RecordRecover(ctx context.Context, orgID, endpointID string, p consign.JobParams, n int) (*consign.Job, error)
	Get(ctx context.Context, orgID, id string) (*consign.Job, error)
	List(ctx context.Context, orgID, endpointID string, p store.Page) ([]*consign.Job, error)
	Cancel(ctx context.Context, orgID, id string) (*consign.Job, error)
}

// Sources manages inbound sources and lists their receipts (inbound.Service).
type Sources interface {
	CreateSource(ctx context.Context, orgID string, in *inbound.SourceInput) (*consign.Source, error)
	Source(ctx context.Context, orgID, id string) (*consign.Source, error)
	Sources(ctx context.Context, orgID string, p store.Page) ([]*consign.Source, error)
	RotateToken(ctx context.Context, orgID, id string) (*consign.Source, error)
	DeleteSource(ctx context.Context, orgID, id string) error
	Receipts(ctx context.Context, orgID, sourceID string, f store.ReceiptFilter) ([]*consign.Receipt, error)
	Receipt(ctx context.Context, orgID, sourceID, id string) (*consign.Receipt, error)
}

// Throttle slows clients that keep signing in with keys that do not authenticate
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
