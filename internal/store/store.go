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
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/consign-dev/consign"
)

// Store is the whole storage contract. Methods are named noun first. A method that does
// not find its object returns a *consign.Error with code ENOTFOUND; a unique-key clash
// returns ECONFLICT. Methods that take an orgID never return another org's rows.
type Store interface {
	SourceStore
	JobStore
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

	// PortalLinkInsert stores a new portal link under its token's hash, and deletes the
	// links (of every org) that expired before purgeBefore, so that the table holds only
	// recent ones.
	PortalLinkInsert(ctx context.Context, l *consign.PortalLink, hash []byte, purgeBefore time.Time) error
	// PortalLinkUse marks the link with the hash used at now when it is unused and
	// expires after now, atomically (of two concurrent uses one claims it), and returns
	// it with claimed true; a link used or expired already is returned as it is with
	// claimed false; no such link: ENOTFOUND.
	PortalLinkUse(ctx context.Context, hash []byte, now time.Time) (l *consign.PortalLink, claimed bool, err error)

	// EventTypeEnsure inserts the given types where missing; existing ones are kept,
	// except that one whose keys were never set (stored before types had keys) takes the
	// given type's.
	EventTypeEnsure(ctx context.Context, ts []consign.EventType) error
	EventTypeInsert(ctx context.Context, t *consign.EventType) error
	EventTypeGet(ctx context.Context, name string) (*consign.EventType, error)
	EventTypeList(ctx context.Context) ([]*consign.EventType, error)
	EventTypeUpdate(ctx context.Context, t *consign.EventType) error
	// EventTypeVersionsUpdate replaces a type's versions and sets its updated_at to now,
	// if its updated_at is still was; else ECONFLICT (ENOTFOUND when it is gone).
	EventTypeVersionsUpdate(ctx context.Context, name string, versions []consign.EventTypeVersion, was, now time.Time) error

	// EndpointInsert stores a new endpoint with its first secrets in one transaction.
	EndpointInsert(ctx context.Context, e *EndpointRow, secrets []*SecretRow) error
	// EndpointGet returns an endpoint of the org; orgID "" finds it in any org (the
	// dispatcher's view).
	EndpointGet(ctx context.Context, orgID, id string) (*EndpointRow, error)
	EndpointList(ctx context.Context, orgID string, p Page) ([]*EndpointRow, error)
	// EndpointListAll returns every endpoint of the org, active or not, in ID order, for
	// fan-out: an inactive endpoint's deliveries wait, paused.
	EndpointListAll(ctx context.Context, orgID string) ([]*EndpointRow, error)
	// OrgEndpointsVersion returns a number that changes whenever any endpoint of the org
	// is created, changed (health aside; a secret's change included) or deleted: fan-out
	// reads it to tell whether the endpoints it holds are still current.
	OrgEndpointsVersion(ctx context.Context, orgID string) (int64, error)
	// EndpointUpdate saves every field and bumps the version. When the endpoint goes from
	// active to inactive its waiting deliveries become paused; from inactive to active
	// they become pending and due at once, or cancelled when e.DiscardPaused. Deliveries
	// are changed in steps (a backlog may be millions), so that publishing and recording
	// go on meanwhile: those to pause or resume after the endpoint's row changed
	// (DeliveriesSettle finishes what an interrupted update left), those to cancel before
	// it, while the endpoint is still inactive, the last of them with the row's change.
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
	// inserted: w.Event is replaced by the first event and w.Duplicate set. A delivery to
	// an endpoint that is inactive when the batch is written is paused (and not leased),
	// and its NewDelivery.Paused set: the endpoint's state is read so that it and
	// EndpointUpdate's change of it are seen in one order, and no delivery is left paused
	// on an endpoint that is active.
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
	// DeliveriesClaim leases, for each quota, up to its Limit due deliveries of that
	// endpoint, oldest due first. Of deliveries that share an ordering key and have a
	// sequence, only the unfinished one with the lowest sequence is due. The result also
	// says, per endpoint, when its earliest remaining work comes due.
	DeliveriesClaim(ctx context.Context, p ClaimParams) (*ClaimResult, error)
	// DeliveriesRecord writes a batch of outcomes (attempt rows and new states) and
	// endpoint health changes in one transaction. An outcome of paused for an endpoint that
	// is active (again) by then makes the delivery pending and due instead. Outcomes and
	// health changes of endpoints deleted meanwhile (with their deliveries) are left out,
	// so that they never fail the rest of the batch.
	DeliveriesRecord(ctx context.Context, p RecordParams) error
	// DeliveriesReleaseLeases makes every leased (delivering) delivery due at now. Only a
	// process that knows no other process dispatches from the store may call it: the
	// embedded store at start, whose leases can only be its own previous life's.
	DeliveriesReleaseLeases(ctx context.Context, now time.Time) (int, error)
	// DeliveriesDue returns, per endpoint with waiting work, when its earliest delivery
	// comes due (a leased one counts at its lease's end).
	DeliveriesDue(ctx context.Context) (map[string]time.Time, error)
	// DeliveriesSettle finishes the pauses and resumes that EndpointUpdate began and did
	// not end (a crash, a canceled request): paused deliveries of active endpoints become
	// due at now, pending ones of inactive endpoints paused. It returns how many
	// endpoints it settled.
	DeliveriesSettle(ctx context.Context, now time.Time) (int, error)

	// EndpointFailures answers, in one round trip, what the failure policy needs to know
	// of each queried endpoint: whether it is active, since when it is failing, and how
	// many failed attempts it made from q.Since on, counting none made before it was last
	// reactivated (ReactivatedAt) and no further than q.Max. Endpoints that no longer
	// exist are left out; the others come in the order asked.
	EndpointFailures(ctx context.Context, qs []FailureQuery) ([]FailureCount, error)
	// EndpointListFailing returns active endpoints whose attempts are failing
	// (FailingSince set), across orgs, for failure-policy sweeps.
	EndpointListFailing(ctx context.Context) ([]*EndpointRow, error)
	// StatsReader counts an endpoint's deliveries and attempts for EndpointStats.
	StatsReader
}

// Page selects a slice of a list ordered newest first: at most Limit rows with IDs below
// Cursor (all when Cursor is ""). Drivers read it through Size and Below.
type Page struct {
	Limit  int
	Cursor string
}

// Page sizes: the default when Limit is zero or less, and the most one page holds.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// Size is the number of rows the page holds at most: Limit within 1..MaxPageSize, or
// DefaultPageSize when Limit is not set.
func (p Page) Size() int {
	if p.Limit <= 0 {
		return DefaultPageSize
	}
	return min(p.Limit, MaxPageSize)
}

// Below is the ID the page's rows sort below: Cursor, or when it is empty a value that
// sorts after every ID (byte order, as both drivers compare IDs).
func (p Page) Below() string {
	if p.Cursor == "" {
		return "\U0010FFFF"
	}
	return p.Cursor
}

// EndpointRow is an endpoint as stored: the auth token is sealed, and Version counts
// updates so that caches can tell a stale copy.
type EndpointRow struct {
	consign.Endpoint
	TokenSealed []byte
	// HeadersSealed, when set, holds the endpoint's headers (a JSON object) sealed; they
	// are then not stored in clear, and Headers is empty when read back.
	HeadersSealed []byte
	// TLSKeySealed is the sealed private key of the endpoint's client certificate.
	TLSKeySealed []byte
	// URLPasswordSealed, when set, is the sealed password of the URL's user information
	// (a broker's credential, amqp://user:PASSWORD@host/); URL is then stored without it.
	URLPasswordSealed []byte
	// TLSExpiryNotified is the fingerprint (consign.EndpointTLS.Fingerprint) of the client
	// certificate whose coming expiry the org was told of: each certificate is announced
	// once, and a new one is announced again.
	TLSExpiryNotified string
	Version           int64
	// DiscardPaused, on EndpointUpdate only (not stored): when the update activates the
	// endpoint, the deliveries that waited for it (paused) become cancelled instead of due.
	DiscardPaused bool
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
	// Filtered are the endpoints whose filter turned the event away: EventsInsert adds
	// one to each one's filtered count (endpoint_filtered, by minute) unless the event
	// is a duplicate.
	Filtered []string
	// Keys are the event's business keys (internal/bizkey): EventsInsert indexes them
	// with the event, in its transaction, unless the event is a duplicate.
	Keys []string
}

// Refused reports whether err is a store refusing what it was asked to write (a
// constraint, a value it cannot hold) rather than failing to write anything at the
// moment: trying the same write again will not help.
func Refused(err error) bool {
	var ce *consign.Error
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.Code {
	case consign.EINVALID, consign.ENOTFOUND, consign.ECONFLICT, consign.ETOOLARGE:
		return true
	}
	return false
}

// EndpointIDs returns the endpoints that a batch's deliveries go to, each once.
func EndpointIDs(ws []*EventWrite) []string {
	seen := map[string]bool{}
	var ids []string
	for _, w := range ws {
		for _, d := range w.Deliveries {
			if !seen[d.EndpointID] {
				seen[d.EndpointID] = true
				ids = append(ids, d.EndpointID)
			}
		}
	}
	return ids
}

// FilteredCount is what a batch adds to an endpoint's filtered count of one minute.
type FilteredCount struct {
	EndpointID string
	Minute     time.Time
	N          int
}

// FilteredCounts sums the batch's filtered events (EventWrite.Filtered) by endpoint and
// minute, leaving out duplicates; call it after the events are written. The counts come
// in one order (endpoint, then minute), so that concurrent batches update the same rows
// in the same order.
func FilteredCounts(ws []*EventWrite) []FilteredCount {
	type key struct {
		id     string
		minute int64
	}
	var n map[key]int
	for _, w := range ws {
		if w.Duplicate || len(w.Filtered) == 0 {
			continue
		}
		if n == nil {
			n = map[key]int{}
		}
		m := w.Event.CreatedAt.Truncate(time.Minute).UnixMilli()
		for _, id := range w.Filtered {
			n[key{id, m}]++
		}
	}
	out := make([]FilteredCount, 0, len(n))
	for k, c := range n {
		out = append(out, FilteredCount{EndpointID: k.id, Minute: time.UnixMilli(k.minute).UTC(), N: c})
	}
	slices.SortFunc(out, func(a, b FilteredCount) int {
		if c := strings.Compare(a.EndpointID, b.EndpointID); c != 0 {
			return c
		}
		return a.Minute.Compare(b.Minute)
	})
	return out
}

// NewDelivery is a delivery created with its event.
type NewDelivery struct {
	ID         string
	EndpointID string
	// Endpoint is the endpoint as fan-out saw it; not stored (ingest hands it to the
	// dispatcher with the delivery).
	Endpoint *EndpointRow
	// OrderingKey is the event's key when the endpoint orders or coalesces by key.
	OrderingKey string
	// Ordered gives the delivery the next sequence number of its endpoint and key, so it
	// waits for the ones before it.
	Ordered bool
	// Paused is set by EventsInsert when the endpoint was inactive as the delivery was
	// written: it waits, paused, and was not written leased whatever LeaseUntil said.
	Paused bool
	// Coalesce supersedes the endpoint's not-yet-attempted deliveries of the same event
	// type and ordering key.
	Coalesce bool
	Deadline time.Time // after this, a failed attempt is final
	// LeaseUntil, when set, creates the delivery already claimed (delivering) until then:
	// the caller sends it itself (test sends).
	LeaseUntil time.Time
	// TraceParent is the W3C traceparent of the fan-out that made the delivery; not
	// stored (ingest hands it to the dispatcher with the delivery).
	TraceParent string
}

// EventFilter selects events; empty fields match all.
type EventFilter struct {
	Page
	Type string
	// Key selects the events that have this business key (EventWrite.Keys), through the
	// key index.
	Key string
}

// DeliveryFilter selects deliveries; empty fields match all.
type DeliveryFilter struct {
	Page
	EndpointID string
	EventID    string
	Status     string
	// Key selects the deliveries of the events that have this business key, listed by
	// event, newest first, and within an event newest first (the same order as the
	// deliveries' own for those written with their events; a replay's come with their
	// event), so that a page reads only its events' rows.
	Key string
}

// RecoverParams selects the deliveries of an endpoint to send again.
type RecoverParams struct {
	OrgID, EndpointID string
	Since, Until      time.Time // by creation time; Until zero = now
	Statuses          []string  // default: failed
	Types             []string  // event types; empty = all
	Now, Deadline     time.Time
}

// ClaimParams asks for due work, endpoint by endpoint.
type ClaimParams struct {
	Now        time.Time
	LeaseUntil time.Time
	Quotas     []Quota
}

// Quota is how many deliveries of one endpoint a claim may take.
type Quota struct {
	EndpointID string
	Limit      int
}

// ClaimResult is what a claim leased, and per endpoint asked for, when its earliest
// remaining work comes due (absent: it has none).
type ClaimResult struct {
	Claims  []*Claim
	NextDue map[string]time.Time
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
	Sequence        int64 // per endpoint and key, 0 when the endpoint does not order
	EventCreatedAt  time.Time
	AttemptsCount   int
	Deadline        time.Time
	// TraceParent, when set, is the W3C traceparent the attempt's span continues: only
	// for deliveries handed over in memory by ingest; not stored.
	TraceParent string
	// Version is the payload version the envelope names ("" none), set by the shape
	// stage (dispatch); not stored.
	Version string
	// Shared, when set, is common to the claims of one event handed over together by
	// ingest: what every delivery of the event sends alike is built once. Not stored.
	Shared *EventShared
}

// EventShared holds what the deliveries of one event in memory share.
type EventShared struct {
	once     sync.Once
	envelope []byte
}

// Envelope returns the event's body in the envelope format, made by build the first
// time it is asked for. The result is shared: treat it as read-only.
func (s *EventShared) Envelope(build func() []byte) []byte {
	s.once.Do(func() { s.envelope = build() })
	return s.envelope
}

// Outcome is the result of handling a claim: an attempt (nil when none was made, e.g.
// the endpoint was found inactive) and the delivery's new state.
type Outcome struct {
	DeliveryID    string
	EndpointID    string
	Attempt       *consign.Attempt
	Status        string
	NextAttemptAt time.Time // when Status is pending
	At            time.Time // when the outcome was decided
	// ResponseReference, when not nil, is stored on the delivery (deliveries.response_reference):
	// the value the endpoint's response_reference_pointer found in a successful reply.
	ResponseReference *string
	// ResponseFields, when not empty, are stored on the delivery (deliveries.response_fields,
	// a JSON object): the values the endpoint's response_fields found in a successful reply.
	ResponseFields map[string]string
}

// RecordParams is a batch of outcomes and what they did to their endpoints' health.
type RecordParams struct {
	Outcomes []*Outcome
	Health   []HealthChange
}

// Endpoints returns the distinct endpoints of the batch's outcomes and health changes.
func (p RecordParams) Endpoints() []string {
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, o := range p.Outcomes {
		add(o.EndpointID)
	}
	for _, h := range p.Health {
		add(h.EndpointID)
	}
	return ids
}

// Without returns the batch less the outcomes and health changes of the given endpoints
// (p itself when there are none).
func (p RecordParams) Without(endpointIDs []string) RecordParams {
	if len(endpointIDs) == 0 {
		return p
	}
	q := RecordParams{}
	for _, o := range p.Outcomes {
		if !slices.Contains(endpointIDs, o.EndpointID) {
			q.Outcomes = append(q.Outcomes, o)
		}
	}
	for _, h := range p.Health {
		if !slices.Contains(endpointIDs, h.EndpointID) {
			q.Health = append(q.Health, h)
		}
	}
	return q
}

// HealthChange is the net effect of a batch's attempts on one endpoint: after a success
// it is healthy; after failures it is failing since the first failure of the run.
type HealthChange struct {
	EndpointID   string
	OK           bool
	FailingSince time.Time // when !OK: the first failed attempt after the last success
	// Failures counts the batch's failed attempts of the endpoint, also when a success
	// came after them (not stored: the failure policy judges every batch with failures).
	Failures int
}

// FailureQuery asks EndpointFailures about one endpoint.
type FailureQuery struct {
	EndpointID string
	// Since is the start of the failure policy's window; attempts before the endpoint's
	// last reactivation are not counted either.
	Since time.Time
	// Max is the most failures worth counting (max_failures + 1: enough to tell whether
	// there were more than max_failures); 0 counts none.
	Max int
}

// FailureCount is what EndpointFailures found of one endpoint.
type FailureCount struct {
	EndpointID   string
	Active       bool
	FailingSince *time.Time
	Failures     int // at most the query's Max
}
