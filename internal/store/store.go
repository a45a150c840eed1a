// Package store is the storage seam: the contract every driver (embedded SQLite, and
// PostgreSQL) implements, and the parameter types that cross it.
//
// Business rules live above this seam (internal/manage, internal/ingest,
// internal/dispatch); a driver holds only its SQL, its migrations and the translation of
// its errors into *consign.Error. Secrets cross the seam already sealed: drivers never see
// a plaintext secret. One conformance suite, internal/store/storetest, runs against every
// driver.
//
// The delivery queue is the deliveries table itself. A delivery is due when its status is
// pending or delivering and next_attempt_at has passed. Claiming sets it delivering and
// moves next_attempt_at to the end of a lease, so work claimed by a process that died comes
// due again by itself; recording an outcome ends the lease.
package store

import (
	"context"
	"time"

	"github.com/consign-dev/consign"
)

// Store is the whole storage contract. Methods are named noun first. A method that does
// not find its object returns a *consign.Error with code ENOTFOUND; a unique-key clash
// returns ECONFLICT. Methods that take an orgID never return another org's rows.
type Store interface {
	Close() error
	Ping(ctx context.Context) error

	OrgInsert(ctx context.Context, o *consign.Org) error
	OrgGet(ctx context.Context, id string) (*consign.Org, error)
	OrgList(ctx context.Context, p Page) ([]*consign.Org, error)
	OrgUpdate(ctx context.Context, o *consign.Org) error
	// OrgDelete removes the org and everything that belongs to it.
	OrgDelete(ctx context.Context, id string) error

	KeyInsert(ctx context.Context, k *consign.APIKey, hash []byte) error
	KeyByHash(ctx context.Context, hash []byte) (*consign.APIKey, error)
	KeyList(ctx context.Context, orgID string, p Page) ([]*consign.APIKey, error)
	KeyDelete(ctx context.Context, orgID, id string) error
	// AdminKeyExists reports whether any admin (org-less) key is stored.
	AdminKeyExists(ctx context.Context) (bool, error)

	// EventTypeEnsure inserts the given types where missing; existing ones are kept.
	EventTypeEnsure(ctx context.Context, ts []consign.EventType) error
	EventTypeInsert(ctx context.Context, t *consign.EventType) error
	EventTypeGet(ctx context.Context, name string) (*consign.EventType, error)
	EventTypeList(ctx context.Context) ([]*consign.EventType, error)
	EventTypeUpdate(ctx context.Context, t *consign.EventType) error

	// EndpointInsert stores a new endpoint with its first secrets in one transaction.
	EndpointInsert(ctx context.Context, e *EndpointRow, secrets []*SecretRow) error
	// EndpointGet returns an endpoint of the org; orgID "" finds it in any org (the
	// dispatcher's view).
	EndpointGet(ctx context.Context, orgID, id string) (*EndpointRow, error)
	EndpointList(ctx context.Context, orgID string, p Page) ([]*EndpointRow, error)
	// EndpointListActive returns the org's active endpoints, for fan-out.
	EndpointListActive(ctx context.Context, orgID string) ([]*EndpointRow, error)
	// EndpointUpdate saves every field and bumps the version. When the endpoint goes from
	// active to inactive its waiting deliveries become paused; from inactive to active
	// they become pending and due at once.
	EndpointUpdate(ctx context.Context, e *EndpointRow) error
	// EndpointDelete removes the endpoint, its secrets and its deliveries.
	EndpointDelete(ctx context.Context, orgID, id string) error

	// Secret changes bump the endpoint's version, so caches of signing keys see them.
	SecretInsert(ctx context.Context, s *SecretRow) error
	SecretList(ctx context.Context, endpointID string) ([]*SecretRow, error)
	SecretUpdate(ctx context.Context, s *SecretRow) error
	SecretDelete(ctx context.Context, endpointID, id string) error
	// SecretRotate inserts s and makes every other secret of the endpoint expire at
	// expireAt, unless it expires sooner already.
	SecretRotate(ctx context.Context, s *SecretRow, expireAt time.Time) error

	// EventsInsert writes a batch of events and their deliveries in one durable
	// transaction: when it returns nil, every event is on disk. An event whose
	// idempotency key was used in its org within consign.IdempotencyWindow is not
	// inserted: w.Event is replaced by the first event and w.Duplicate set.
	EventsInsert(ctx context.Context, ws []*EventWrite) error
	EventGet(ctx context.Context, orgID, id string) (*consign.Event, error)
	EventList(ctx context.Context, orgID string, f EventFilter) ([]*consign.Event, error)

	DeliveryList(ctx context.Context, orgID string, f DeliveryFilter) ([]*consign.Delivery, error)
	// DeliveryGet returns the delivery with its attempts, oldest first.
	DeliveryGet(ctx context.Context, orgID, id string) (*consign.Delivery, error)
	// DeliveryRequeue makes a delivery pending and due at p.Now with a new deadline,
	// whatever its state; ENOTFOUND if it is not in the org.
	DeliveryRequeue(ctx context.Context, orgID, id string, now, deadline time.Time) (*consign.Delivery, error)
	// DeliveriesRecover requeues the endpoint's deliveries that match p and returns how
	// many.
	DeliveriesRecover(ctx context.Context, p RecoverParams) (int, error)
	// DeliveriesClaim leases up to p.Limit due deliveries, oldest due first.
	DeliveriesClaim(ctx context.Context, p ClaimParams) ([]*Claim, error)
	// DeliveriesRecord writes a batch of outcomes (attempt rows and new states) in one
	// transaction.
	DeliveriesRecord(ctx context.Context, os []*Outcome) error
	// DeliveriesNextDue returns when the earliest waiting delivery comes due.
	DeliveriesNextDue(ctx context.Context) (time.Time, bool, error)
}

// Page selects a slice of a list ordered newest first: at most Limit rows with IDs below
// Cursor (all when Cursor is "").
type Page struct {
	Limit  int
	Cursor string
}

// EndpointRow is an endpoint as stored: the auth token is sealed, and Version counts
// updates so that caches can tell a stale copy.
type EndpointRow struct {
	consign.Endpoint
	TokenSealed []byte
	Version     int64
}

// SecretRow is a secret as stored: Value is empty and Sealed holds it encrypted.
type SecretRow struct {
	consign.Secret
	Sealed []byte
}

// EventWrite is one event of a batch with its fan-out.
type EventWrite struct {
	Event      *consign.Event
	Deliveries []NewDelivery
	Duplicate  bool // set by EventsInsert
}

// NewDelivery is a delivery created with its event.
type NewDelivery struct {
	ID         string
	EndpointID string
	Deadline   time.Time // after this, a failed attempt is final
	// LeaseUntil, when set, creates the delivery already claimed (delivering) until then:
	// the caller sends it itself (test sends).
	LeaseUntil time.Time
}

// EventFilter selects events.
type EventFilter struct {
	Page
	Type string
}

// DeliveryFilter selects deliveries; empty fields match all.
type DeliveryFilter struct {
	Page
	EndpointID string
	EventID    string
	Status     string
}

// RecoverParams selects the deliveries of an endpoint to send again.
type RecoverParams struct {
	OrgID, EndpointID string
	Since, Until      time.Time // by creation time; Until zero = now
	Statuses          []string  // default: failed
	Types             []string  // event types; empty = all
	Now, Deadline     time.Time
}

// ClaimParams asks for due work.
type ClaimParams struct {
	Now        time.Time
	Limit      int
	LeaseUntil time.Time
	// SkipEndpoints are left out: endpoints at their concurrency cap or told to wait.
	SkipEndpoints []string
}

// Claim is a leased delivery with what is needed to send it.
type Claim struct {
	DeliveryID      string
	OrgID           string
	EndpointID      string
	EndpointVersion int64
	EventID         string
	EventType       string
	Payload         []byte
	OrderingKey     string
	EventCreatedAt  time.Time
	AttemptsCount   int
	Deadline        time.Time
}

// Outcome is the result of handling a claim: an attempt (nil when none was made, e.g.
// the endpoint was found inactive) and the delivery's new state.
type Outcome struct {
	DeliveryID    string
	Attempt       *consign.Attempt
	Status        string
	NextAttemptAt time.Time // when Status is pending
	At            time.Time // when the outcome was decided
}
