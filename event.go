package consign

import (
	"encoding/json"
	"time"
)

// Limits on events.
const (
	MaxBatch          = 1000
	MaxKeyLength      = 255
	IdempotencyWindow = 72 * time.Hour
)

// Event is one occurrence of an event type in an org. Payload is kept exactly as the
// client sent it (raw JSON), stored once however many endpoints receive it.
type Event struct {
	ID             string          `json:"id"`
	OrgID          string          `json:"org_id"`
	Type           string          `json:"type"`
	Payload        json.RawMessage `json:"payload"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	OrderingKey    string          `json:"ordering_key,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
}

// Delivery states.
const (
	StatusPending    = "pending"    // waiting for its next attempt
	StatusDelivering = "delivering" // an attempt is in flight
	StatusSucceeded  = "succeeded"  // a 2xx was received
	StatusFailed     = "failed"     // gave up after the retry schedule
	StatusPaused     = "paused"     // the endpoint is inactive; sent when it is activated
	StatusSuperseded = "superseded" // coalesced: a newer event of the same type and key replaced it
	StatusCancelled  = "cancelled"  // will not be sent
)

// ValidStatus reports whether s is a delivery state.
func ValidStatus(s string) bool {
	switch s {
	case StatusPending, StatusDelivering, StatusSucceeded, StatusFailed, StatusPaused, StatusSuperseded, StatusCancelled:
		return true
	}
	return false
}

// Delivery is one event for one endpoint.
type Delivery struct {
	ID            string     `json:"id"`
	OrgID         string     `json:"org_id"`
	EventID       string     `json:"event_id"`
	EndpointID    string     `json:"endpoint_id"`
	EventType     string     `json:"event_type"`
	Status        string     `json:"status"`
	AttemptsCount int        `json:"attempts_count"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	// ResponseReference is the value the endpoint's response_reference_pointer found in the
	// JSON reply of the successful attempt (such as the vendor's own order reference).
	ResponseReference *string `json:"response_reference"`
	// ResponseFields are the values the endpoint's response_fields found in that reply,
	// by name (null when it sets none or found nothing).
	ResponseFields map[string]string `json:"response_fields"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	Attempts       []Attempt         `json:"attempts,omitempty"`
}

// Attempt is one HTTP request of a delivery and what came back.
type Attempt struct {
	N          int              `json:"n"`
	StartedAt  time.Time        `json:"started_at"`
	DurationMS int64            `json:"duration_ms"`
	Request    AttemptRequest   `json:"request"`
	Response   *AttemptResponse `json:"response"`
	Error      *string          `json:"error"`
	// Refused marks a 2xx reply that the endpoint's success_statuses do not count as
	// success: the attempt failed (stored as such, counted by the failure policy).
	Refused bool `json:"-"`
}

// AttemptRequest is what was sent (the body is the event's, not repeated here).
type AttemptRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
}

// AttemptResponse is what the endpoint answered; Body holds at most 64 KiB. A broker
// destination's answer is its acknowledgement, Ack, with Status 0 and no headers or body.
type AttemptResponse struct {
	Status    int               `json:"status"`
	Headers   map[string]string `json:"headers"`
	Body      string            `json:"body"`
	Truncated bool              `json:"truncated,omitempty"`
	// Ack is what a broker acknowledged, by name: stream and sequence (NATS JetStream),
	// delivery_tag (AMQP publisher confirm), partition and offset (Kafka), id (Redis
	// stream entry). Stores keep it where an HTTP reply's headers go, since an attempt
	// has one or the other.
	Ack map[string]string `json:"ack,omitempty" doc:"a broker destination's acknowledgement (status is then 0): stream and sequence (NATS JetStream), delivery_tag and confirm (AMQP), topic, partition and offset (Kafka), stream and id (Redis)"`
}

// OK reports whether r is a success: a 2xx reply, or a broker's acknowledgement.
func (r *AttemptResponse) OK() bool {
	return r != nil && (r.Status >= 200 && r.Status < 300 || r.Status == 0 && r.Ack != nil)
}

// StoredHeaders returns what a store keeps in r's headers column: the headers of an
// HTTP reply, or a broker's acknowledgement (Status 0).
func (r *AttemptResponse) StoredHeaders() map[string]string {
	if r.Status == 0 && r.Ack != nil {
		return r.Ack
	}
	return r.Headers
}

// FromStoredHeaders sets r's headers, or its Ack when Status is 0, from what a store
// kept (StoredHeaders).
func (r *AttemptResponse) FromStoredHeaders(h map[string]string) {
	if r.Status == 0 {
		r.Ack = h
		return
	}
	r.Headers = h
}

// EndpointStats summarises an endpoint's recent deliveries and attempts.
type EndpointStats struct {
	EndpointID string         `json:"endpoint_id"`
	Window     Duration       `json:"window"`
	Since      time.Time      `json:"since"`
	Deliveries map[string]int `json:"deliveries"` // created in the window, by status
	Attempts   int            `json:"attempts"`
	Succeeded  int            `json:"succeeded"`
	Failed     int            `json:"failed"`
	// Filtered counts the events of the endpoint's topics that its filter turned away in
	// the window (no delivery was made for them). Counted by the minute: the minute the
	// window starts in counts whole.
	Filtered int `json:"filtered"`
	// SuccessRate is Succeeded/Attempts, null without attempts.
	SuccessRate  *float64 `json:"success_rate"`
	LatencyP50MS *int64   `json:"latency_p50_ms"`
	LatencyP99MS *int64   `json:"latency_p99_ms"`
	// Dispatch is how the node that answered is sending to the endpoint now; null when
	// it holds nothing for it (no recent work, or in a cluster another node sends to it).
	Dispatch *EndpointDispatch `json:"dispatch"`
}

// EndpointDispatch is one node's live sending state for an endpoint.
type EndpointDispatch struct {
	// Queued is deliveries held in memory for their turn; InFlight attempts running.
	Queued   int `json:"queued"`
	InFlight int `json:"in_flight"`
	// Concurrency is how many attempts may run at once now: BurstLimit, or fewer while
	// the endpoint's answers show requests queueing at the partner (the adaptive window).
	Concurrency int `json:"concurrency"`
	BurstLimit  int `json:"burst_limit"`
	// RoundTripMinMS is the quickest answer lately, the endpoint's time without
	// queueing; null before its first answer.
	RoundTripMinMS *float64 `json:"round_trip_min_ms"`
	// ConsecutiveFailures counts attempts failed in a row; from five on, the endpoint
	// gets single probes with a growing pause between them.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// HeldUntil is when attempts may start again after a Retry-After or that pause;
	// null when not held.
	HeldUntil *time.Time `json:"held_until"`
}
